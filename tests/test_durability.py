"""Matches survive a game service restart: stored moves, fair clocks, history."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from conftest import LinePlayer, World
from twisted.internet import defer
from twisted.internet.task import Clock

from chupacabra.games import TicTacToe, installed_games, replay
from chupacabra.service import MatchService
from chupacabra.testing import MemoryStore


def _drain(*players: LinePlayer) -> None:
    for player in players:
        player.read()


def _say(player: LinePlayer, line: str) -> list[str]:
    """Send a line after reading what was pushed before it."""
    player.read()
    return player.send(line)


def test_moves_are_restored_after_the_service_dies() -> None:
    """After the game service dies and comes back, play goes on from the last move."""
    world = World(service_store=MemoryStore())
    first, second, match = world.pair()
    assert _say(first, "MOVE 1")[0].startswith("OK")
    assert _say(second, "MOVE 5")[0].startswith("OK")
    _drain(first, second)

    world.kill_service()
    world.start_service()
    world.reconnect()

    pushed = first.read()
    assert pushed[0] == (
        f"* match {match}: tictactoe, {' vs '.join(_sides(world))}, 2 moves played"
    )
    assert "   X | 2 | 3" in pushed
    assert second.read()[0].startswith(f"* match {match}: ")
    assert _say(first, "MOVE 2")[0] == f"OK played 2 in match {match}"
    assert _say(second, "MOVE 9")[0].startswith("OK")
    reply = _say(first, "MOVE 3")
    assert reply[0] == f"OK played 3 in match {match}"
    assert reply[-1].endswith("won")


def _sides(world: World) -> list[str]:
    match = next(iter(world.service.matches.values()))
    return [f"{name} ({'XO'[seat]})" for seat, name in enumerate(match.players)]


def test_downtime_is_not_charged_to_the_player_to_move() -> None:
    """The mover keeps the time used before the crash, not the time it was down."""
    store = MemoryStore()
    world = World(service_store=store, turn_timeout=120)
    world.service.start_heartbeat(5)
    first, second, _ = world.pair()
    world.reactor.advance(12)  # heartbeats at 0, 5 and 10 seconds
    world.kill_service()
    world.service.stop_heartbeat()
    world.reactor.advance(300)  # down for five minutes
    world.start_service()
    world.reconnect()
    _drain(first, second)

    first.send("JSON")
    [state] = [json.loads(line) for line in first.send("BOARD")]
    # 10 s were used before the last heartbeat; reconnecting took a few more.
    used = 120 - state["result"]["seconds_left"]
    assert 10 <= used <= 15, state
    assert state["result"]["to_move"] is not None


def test_a_move_is_acknowledged_only_once_stored() -> None:
    """Neither player hears of a move until the store has it."""
    store = MemoryStore()
    pending: list[defer.Deferred[None]] = []
    real = store.record_move

    def slow(*args: Any) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        pending.append(d)
        d.addCallback(lambda _: real(*args))
        return d

    store.record_move = slow  # type: ignore[method-assign]
    world = World(service_store=store)
    first, second, match = world.pair()
    assert _say(first, "MOVE 5") == []
    assert second.read() == []
    assert store.matches[match]["record"].moves == []

    pending.pop().callback(None)
    assert first.read()[0] == f"OK played 5 in match {match}"
    assert any("played 5" in line for line in second.read())
    assert store.matches[match]["record"].moves == ["5"]


@pytest.mark.expected_log("could not store")
def test_a_move_the_store_refuses_is_not_made() -> None:
    """If the store fails, the mover is told and the position is unchanged."""
    store = MemoryStore()
    store.record_move = lambda *args: defer.fail(OSError("disk full"))  # type: ignore[method-assign]
    world = World(service_store=store)
    first, second, match = world.pair()
    reply = _say(first, "MOVE 5")
    assert reply == [
        "ERR unavailable the move could not be stored; try again",
    ]
    assert second.read() == []
    assert world.service.matches[match].moves == []
    assert first.send("BOARD")[-1].startswith("  your move")
    world.flush()


def test_history_and_replay_of_a_finished_match() -> None:
    """HISTORY lists finished matches, and replaying the log gives the same end."""
    store = MemoryStore()
    world = World(service_store=store)
    first, second, match = world.pair()
    for player, cell in [(first, 1), (second, 4), (first, 2), (second, 5), (first, 3)]:
        assert _say(player, f"MOVE {cell}")[0].startswith("OK")
    _drain(first, second)
    record = store.matches[match]["record"]
    assert record.status == "over"
    assert record.moves == ["1", "4", "2", "5", "3"]

    game = TicTacToe()
    final = replay(game, record.moves)[-1]
    outcome = game.outcome(final)
    assert outcome is not None
    assert record.players[outcome.winner or 0] == record.winner
    assert record.reason == outcome.reason == "win"

    lines = _say(second, "HISTORY")
    assert lines[0] == f"OK 1 finished match of {second.protocol.session.name}"
    assert lines[1].startswith(f"  {match} tictactoe: ")
    assert lines[1].endswith(f"{record.winner} won, 5 moves")
    other = first.protocol.session.name
    assert second.send(f"HISTORY {other.upper()}")[0] == (
        f"OK 1 finished match of {other}"
    )
    assert second.send("HISTORY nobody")[0] == "ERR not-found there is no player nobody"


def test_a_match_that_ended_before_a_restart_is_still_over() -> None:
    """
    After the game service restarts, a match that had ended answers as
    over, not as unreachable: MOVE and FORFEIT say game-over, BOARD points
    to its record, and play goes on.
    """
    world = World(service_store=MemoryStore())
    first, second, match = world.pair()
    for player, cell in [(first, 1), (second, 4), (first, 2), (second, 5)]:
        assert _say(player, f"MOVE {match} {cell}")[0].startswith("OK")
    assert _say(first, f"MOVE {match} 3")[-1].endswith("won")
    _drain(first, second)

    world.kill_service()
    world.start_service()
    world.reconnect()
    _drain(first, second)

    assert _say(first, f"MOVE {match} 7") == [f"ERR game-over match {match} is over"]
    assert _say(second, "FORFEIT") == [f"ERR game-over match {match} is over"]
    assert _say(first, f"BOARD {match}") == [
        f"ERR no-match match {match} is over; HISTORY lists its record"
    ]
    assert _say(first, "HISTORY")[0].startswith("OK 1 finished match of ")
    first.send("PLAY tictactoe")
    assert _say(second, "PLAY tictactoe")[0].startswith("OK")


def test_a_second_login_keeps_the_recent_matches_whole() -> None:
    """
    Logging in again elsewhere (an API token) while the game service stays
    up leaves the player's recently ended matches as they were.
    """
    world = World(service_store=MemoryStore())
    first, second, match = world.pair()
    for player, cell in [(first, 1), (second, 4), (first, 2), (second, 5)]:
        assert _say(player, f"MOVE {match} {cell}")[0].startswith("OK")
    assert _say(first, f"MOVE {match} 3")[-1].endswith("won")
    before = _say(first, f"BOARD {match}")
    assert before[0].startswith("OK")

    opened = defer.Deferred.fromCoroutine(
        world.gateway.open_token(first.protocol.session.name, "password1")
    )
    world.flush()
    assert opened.called

    assert _say(first, f"BOARD {match}") == before
    assert _say(first, f"MOVE {match} 7") == [f"ERR game-over match {match} is over"]


@pytest_twisted.ensureDeferred
async def test_a_match_whose_end_was_not_stored_is_finished_on_restore() -> None:
    """
    If the store took a match's last move but failed on its end, the next
    start records the end instead of restoring a match nobody can move in.
    """
    store = MemoryStore()
    await store.create_match("default", "m1", "tictactoe", ["ann", "bo"], 100.0)
    for number, (player, cell) in enumerate(
        [("ann", "1"), ("bo", "4"), ("ann", "2"), ("bo", "5"), ("ann", "3")], 1
    ):
        await store.record_move("m1", number, player, cell, 100.0 + number)

    service = MatchService(installed_games(), Clock(), store=store)
    assert await service.restore() == 0
    record = await store.match("m1")
    assert (record.status, record.winner, record.reason) == ("over", "ann", "win")

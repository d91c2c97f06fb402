"""Matchmaking, live matches and their clocks, seen through the line protocol."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import LinePlayer, World

UNAVAILABLE = "ERR unavailable the game service is unreachable; try again shortly"


@pytest.fixture
def make_world() -> Iterator[Callable[..., World]]:
    """Build worlds with chosen settings, stopping each after the test."""
    worlds: list[World] = []

    def make(**settings: Any) -> World:
        worlds.append(World(**settings))
        return worlds[-1]

    yield make
    for world in worlds:
        world.gateway.stopService()


def name_of(player: LinePlayer) -> str:
    session = player.protocol.session
    assert session is not None and session.name is not None
    return session.name


def on_clock(world: World, name: str | None = None) -> LinePlayer:
    """A player whose idle timeout runs on the world's clock."""
    protocol = world.factory.buildProtocol(None)
    protocol.callLater = world.reactor.callLater
    player = LinePlayer(world, protocol)
    if name is not None:
        player.login(name)
    return player


def play(moves: list[tuple[LinePlayer, int]], *others: LinePlayer) -> list[str]:
    """Make each move in turn, each answered OK; return the last reply."""
    reply: list[str] = []
    for player, cell in moves:
        for someone in others:
            someone.read()
        reply = player.send(f"MOVE {cell}")
        assert reply[0].startswith(("OK ", '{"ok": true')), reply
    return reply


# Queues


def test_play_twice_waits_once(world: World) -> None:
    """A second PLAY while waiting changes nothing, and one opponent matches."""
    alice, bob = world.player("alice"), world.player("bob")
    waiting = ["OK waiting for an opponent for tictactoe; CANCEL to stop"]
    assert alice.send("PLAY tictactoe") == waiting
    assert alice.send("PLAY tictactoe") == waiting
    assert list(world.service.queues["tictactoe"]) == ["alice"]
    assert alice.send("MATCHES") == ["OK 0 live matches", "  waiting for: tictactoe"]

    assert bob.send("PLAY tictactoe")[0].startswith("OK matched: match ")
    assert len(world.service.matches) == 1
    assert world.service.queues["tictactoe"] == {}


def test_never_matched_against_oneself(world: World) -> None:
    """A player seeking again, even from a new connection, is not self-matched."""
    alice = world.player("alice")
    alice.send("PLAY tictactoe")
    alice.send("PLAY tictactoe")
    again = world.player()
    again.send("LOGIN alice password1")
    assert again.send("PLAY tictactoe") == [
        "OK waiting for an opponent for tictactoe; CANCEL to stop"
    ]
    assert world.service.matches == {}
    assert again.send("MATCHES") == ["OK 0 live matches", "  waiting for: tictactoe"]


def test_cancel_leaves_the_queue(world: World) -> None:
    """After CANCEL another player's PLAY waits instead of matching."""
    alice, bob = world.player("alice"), world.player("bob")
    alice.send("PLAY tictactoe")
    assert alice.send("CANCEL") == ["OK stopped waiting for tictactoe"]
    assert alice.send("MATCHES") == ["OK 0 live matches"]
    assert bob.send("PLAY tictactoe") == [
        "OK waiting for an opponent for tictactoe; CANCEL to stop"
    ]
    assert world.service.matches == {}
    assert alice.read() == []


def test_cancel_when_not_waiting(world: World) -> None:
    """CANCEL without a PLAY says there was nothing to stop."""
    alice = world.player("alice")
    assert alice.send("CANCEL") == ["OK you were not waiting for a game"]


def test_disconnect_while_waiting_leaves_the_queue(world: World) -> None:
    """A waiting player whose connection drops is no longer matched."""
    alice, bob = world.player("alice"), world.player("bob")
    alice.send("PLAY tictactoe")
    alice.close()
    assert bob.send("PLAY tictactoe") == [
        "OK waiting for an opponent for tictactoe; CANCEL to stop"
    ]
    assert world.service.matches == {}
    assert list(world.service.queues["tictactoe"]) == ["bob"]


def test_unknown_game(world: World) -> None:
    """PLAY of a game no service offers is an unknown-game error."""
    alice = world.player("alice")
    assert alice.send("PLAY chess") == [
        "ERR unknown-game there is no game called chess"
    ]
    assert alice.send("PLAY TicTacToe")[0].startswith("OK waiting")


def test_first_mover_follows_the_service_rng(make_world: Callable[..., World]) -> None:
    """The seat order is the service rng's shuffle, and both orders occur."""
    orders = set()
    for seed in range(12):
        world = make_world(seed=seed)
        first, second, match = world.pair()
        players = world.service.matches[match].players

        expected = ["alice", "bob"]
        random.Random(seed).shuffle(expected)
        assert players == expected
        assert name_of(first) == players[0]

        assert first.send("BOARD")[-1] == "  your move (120 s left): MOVE <move>"
        assert second.send("BOARD")[-1] == (
            f"  waiting for {players[0]} to move (120 s left)"
        )
        orders.add(tuple(players))
    assert orders == {("alice", "bob"), ("bob", "alice")}


# How matches end


def test_draw(world: World) -> None:
    """A full board without a line ends the match with no winner."""
    first, second, match = world.pair()
    second.send("JSON")
    cells = [1, 2, 3, 5, 4, 6, 8, 7, 9]
    moves = [(first if i % 2 == 0 else second, c) for i, c in enumerate(cells)]
    reply = play(moves, first, second)
    assert reply[-1] == f"* match {match} is over: a draw"
    lines = [json.loads(line) for line in second.read()]
    assert lines[-1] == {
        "event": "match-ended",
        "match": match,
        "players": [name_of(first), name_of(second)],
        "winner": None,
        "reason": "draw",
    }
    assert lines[-2]["event"] == "moved"
    assert lines[-2]["to_move"] is None


def test_forfeit(world: World) -> None:
    """FORFEIT ends the match with the other player as winner."""
    first, second, match = world.pair()
    loser, winner = name_of(first), name_of(second)
    second.send("JSON")
    assert first.send("FORFEIT") == [
        f"OK forfeited match {match}",
        f"* match {match} is over: {loser} forfeited, {winner} won",
    ]
    assert [json.loads(line) for line in second.read()] == [
        {
            "event": "match-ended",
            "match": match,
            "players": [loser, winner],
            "winner": winner,
            "reason": "forfeit",
        }
    ]
    assert first.send("FORFEIT") == [f"ERR game-over match {match} is over"]
    assert first.send("MATCHES") == ["OK 0 live matches"]
    board = first.send("BOARD")
    assert board[-1] == f"  over: {loser} forfeited, {winner} won"
    assert not any("waiting for" in line or "your move" in line for line in board)
    [state] = [json.loads(line) for line in second.send("BOARD")]
    assert state["result"]["to_move"] is None
    assert state["result"]["winner"] == winner
    assert "text" not in state["result"]


def test_turn_timeout(make_world: Callable[..., World]) -> None:
    """Past turn_timeout the player to move loses on time."""
    world = make_world(turn_timeout=30)
    first, second, match = world.pair()
    mover, waiter = name_of(first), name_of(second)
    world.reactor.advance(29)
    assert first.read() == []
    assert second.read() == []

    world.reactor.advance(1)
    ended = f"* match {match} is over: {mover} ran out of time, {waiter} won"
    assert first.read() == [ended]
    assert second.read() == [ended]
    assert world.service.matches == {}
    assert first.send("MOVE 5") == [f"ERR game-over match {match} is over"]


def test_turn_clock_restarts_after_each_move(make_world: Callable[..., World]) -> None:
    """Each move gives the next player a whole turn_timeout, then they lose."""
    world = make_world(turn_timeout=30)
    first, second, match = world.pair()
    second.send("JSON")
    world.reactor.advance(20)
    play([(first, 5)], second)
    second.read()

    world.reactor.advance(29)
    assert second.read() == []
    world.reactor.advance(1)
    assert [json.loads(line) for line in second.read()] == [
        {
            "event": "match-ended",
            "match": match,
            "players": [name_of(first), name_of(second)],
            "winner": name_of(first),
            "reason": "time",
        }
    ]


def test_dropped_connection_keeps_the_seat(make_world: Callable[..., World]) -> None:
    """A dropped player keeps their seat and clock, and resumes after LOGIN."""
    world = make_world(turn_timeout=60)
    first, second, match = world.pair()
    name = name_of(second)
    play([(first, 5)], second)
    second.close()
    first.read()
    world.reactor.advance(45)
    assert first.read() == []
    assert world.service.matches[match].outcome is None

    again = world.player()
    reply = again.send(f"LOGIN {name} password1")
    assert reply[0] == f"OK logged in as {name}"
    assert reply[1].startswith(f"* match {match}: tictactoe, ")
    assert reply[1].endswith(", 1 move played")
    assert "   4 | X | 6" in reply
    assert reply[-1] == "  your move (15 s left): MOVE <move>"

    assert again.send("MOVE 1")[0] == f"OK played 1 in match {match}"
    assert first.read()[0] == f"* {name} played 1 in match {match}"


def test_dropped_player_can_still_lose_on_time(
    make_world: Callable[..., World],
) -> None:
    """The clock of a player who dropped runs out as if they were there."""
    world = make_world(turn_timeout=60)
    first, second, match = world.pair()
    gone, stayed = name_of(first), name_of(second)
    first.close()
    world.reactor.advance(60)
    assert second.read() == [
        f"* match {match} is over: {gone} ran out of time, {stayed} won"
    ]


def test_login_elsewhere_logs_out_the_first_connection(world: World) -> None:
    """A second LOGIN of a player logs out the first connection, which is told."""
    first, second, match = world.pair()
    name = name_of(first)
    elsewhere = world.player()
    reply = elsewhere.send(f"LOGIN {name} password1")
    assert reply[0] == f"OK logged in as {name}"
    assert reply[1].startswith(f"* match {match}: ")
    assert first.read() == ["* logged out: logged in elsewhere"]
    assert first.send("MOVE 5") == [
        "ERR login-required log in first: LOGIN name password"
    ]
    assert elsewhere.send("MOVE 5")[0] == f"OK played 5 in match {match}"
    assert second.read()[0] == f"* {name} played 5 in match {match}"
    assert elsewhere.send("WHO")[:2] == [
        "OK 2 players online",
        f"  {min(name, name_of(second))}",
    ]
    assert elsewhere.send("LOGOUT") == [f"OK logged out {name}"]
    assert elsewhere.send("WHO") == ["OK 1 player online", f"  {name_of(second)}"]


# The game service going away


def test_unavailable_while_service_is_down(world: World) -> None:
    """With the link down PLAY, MOVE and MATCHES fail at once, then recover."""
    first, second, match = world.pair()
    carol = world.player("carol")
    world.disconnect_service()

    assert carol.send("PLAY tictactoe") == [UNAVAILABLE]
    assert first.send("MOVE 5") == [UNAVAILABLE]
    assert first.send("MATCHES") == [UNAVAILABLE]
    assert first.send("WHO")[0] == "OK 3 players online"

    world.reactor.advance(2)
    world.connect()
    assert carol.send("PLAY tictactoe") == [
        "OK waiting for an opponent for tictactoe; CANCEL to stop"
    ]
    pushed = first.read()
    assert pushed[0].startswith(f"* match {match}: tictactoe, ")
    assert first.send("MOVE 5")[0] == f"OK played 5 in match {match}"
    assert second.read()[-1].startswith("  your move")


# Idle connections


def test_idle_connection_is_closed(world: World) -> None:
    """A connection silent for the idle timeout is told and closed."""
    player = on_clock(world, "alice")
    world.reactor.advance(599)
    assert player.read() == []
    assert not player.transport.disconnecting

    world.reactor.advance(1)
    assert player.read() == ["* closing the connection: idle for 10 minutes"]
    assert player.transport.disconnecting


def test_input_resets_the_idle_timer(world: World) -> None:
    """Any line received starts the idle timeout over."""
    player = on_clock(world)
    world.reactor.advance(500)
    player.send("WHO")
    world.reactor.advance(500)
    assert player.read() == []
    assert not player.transport.disconnecting
    world.reactor.advance(100)
    assert player.read()[0].startswith("* closing the connection")


# Listings


def test_who_lists_online_players(world: World) -> None:
    """WHO lists logged-in players by name, and not those who left."""
    alice, bob = world.player("alice"), world.player("bob")
    stranger = world.player()
    assert stranger.send("WHO") == ["OK 2 players online", "  alice", "  bob"]
    bob.send("LOGOUT")
    assert alice.send("WHO") == ["OK 1 player online", "  alice"]
    alice.close()
    assert stranger.send("WHO") == ["OK 0 players online"]


def test_matches_lists_live_matches(world: World) -> None:
    """MATCHES lists a player's live matches with seats and whose move it is."""
    first, second, match = world.pair()
    names = [name_of(first), name_of(second)]
    expected = [
        "OK 1 live match",
        f"  {match} tictactoe: {names[0]} vs {names[1]}, {names[0]} to move",
    ]
    assert first.send("MATCHES") == expected
    assert second.send("MATCHES") == expected
    play([(first, 1)], second)
    second.read()
    assert second.send("MATCHES")[1].endswith(f", {names[1]} to move")

    carol = world.player("carol")
    assert carol.send("MATCHES") == ["OK 0 live matches"]
    first.send("FORFEIT")
    assert first.send("MATCHES") == ["OK 0 live matches"]


def test_board_shows_free_cells(world: World) -> None:
    """BOARD draws taken cells with marks and free cells with their numbers."""
    first, second, match = world.pair()
    play([(first, 5), (second, 1), (first, 9)], first, second)
    names = [name_of(first), name_of(second)]
    second.read()
    assert second.send("BOARD") == [
        f"OK match {match}: tictactoe, {names[0]} (X) vs {names[1]} (O), "
        "3 moves played",
        "   O | 2 | 3",
        "  ---+---+---",
        "   4 | X | 6",
        "  ---+---+---",
        "   7 | 8 | X",
        "  your move (120 s left): MOVE <move>",
    ]
    assert second.send(f"BOARD {match}")[1:4] == [
        "   O | 2 | 3",
        "  ---+---+---",
        "   4 | X | 6",
    ]
    assert second.send("BOARD nosuch") == ["ERR no-match you have no match nosuch"]

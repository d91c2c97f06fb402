"""The game service on its own: listeners on several gateways, store failures."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import World
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from chupacabra.games import installed_games
from chupacabra.service import MatchService
from chupacabra.testing import MemoryStore


class _Ref:
    """A stand-in for a gateway's player reference that records pushes."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.recipients: list[list[str]] = []

    def callRemote(
        self, name: str, event: str, match: Any, recipients: list[str], **kw: Any
    ) -> Any:
        self.events.append(json.loads(event))
        self.recipients.append(recipients)
        # Pushes ask for no answer, as PB then returns none.
        assert kw == {"pbanswer": False}
        return None


def _alice_on_two_gateways_plays_bob() -> tuple[MatchService, _Ref, _Ref, _Ref]:
    """Alice on gateways A and B, Bob on A, matched: the service and refs."""
    service = MatchService(installed_games(), Clock())
    alice_a, alice_b, bob_a = _Ref(), _Ref(), _Ref()
    service.attach("alice", alice_a, "gateway-a")
    service.attach("alice", alice_b, "gateway-b")
    service.attach("bob", bob_a, "gateway-a")
    service.seek("alice", "tictactoe")
    service.seek("bob", "tictactoe")
    return service, alice_a, alice_b, bob_a


def test_a_player_on_two_gateways_hears_on_both() -> None:
    """Updates reach a player through every gateway they are logged in to."""
    _, on_a, on_b, bob = _alice_on_two_gateways_plays_bob()
    # Gateway A gets one message for both of its players, through either
    # player's reference; gateway B gets its own for alice.
    to_a = on_a.recipients + bob.recipients
    assert [sorted(names) for names in to_a] == [["alice", "bob"]]
    assert [e["event"] for e in on_a.events + bob.events] == ["match-started"]
    assert on_b.recipients == [["alice"]]
    assert [e["event"] for e in on_b.events] == ["match-started"]


def test_an_update_crosses_to_each_gateway_once() -> None:
    """Both players of a match on one gateway share one message per update."""
    service = MatchService(installed_games(), Clock())
    alice, bob = _Ref(), _Ref()
    service.attach("alice", alice, "gateway-a")
    service.attach("bob", bob, "gateway-a")
    service.seek("alice", "tictactoe")
    service.seek("bob", "tictactoe")
    sent = alice.events + bob.events
    assert [e["event"] for e in sent] == ["match-started"]
    assert sorted((alice.recipients + bob.recipients)[0]) == ["alice", "bob"]


def _move(match: Any, broker: str, player: str, text: str) -> dict[str, Any]:
    """Play as if through PB from ``broker``; return the decoded answer."""
    match._broker = broker
    try:
        d = match.remote_move(player, text)
    finally:
        match._broker = None
    answer: dict[str, Any] = json.loads(d.result)
    return answer


def test_a_move_answers_its_own_gateway_and_pushes_to_others() -> None:
    """
    The calling gateway gets a move's updates with its answer, and no push;
    every other gateway gets one push.
    """
    service, alice_a, alice_b, bob_a = _alice_on_two_gateways_plays_bob()
    [match] = service.matches.values()
    first, second = match.players
    for ref in (alice_a, alice_b, bob_a):
        ref.events.clear()

    answer = _move(match, "gateway-a", first, "5")
    assert answer["result"] == {"match": match.id, "move": "5", "to_move": second}
    assert [e["event"] for e in answer["events"]] == ["moved"]
    assert sorted(answer["recipients"]) == ["alice", "bob"]
    assert alice_a.events == bob_a.events == []
    assert [(e["event"], e["move"]) for e in alice_b.events] == [("moved", "5")]

    for player, cell in [(second, "1"), (first, "4"), (second, "2")]:
        _move(match, "gateway-a", player, cell)
    answer = _move(match, "gateway-a", first, "6")
    assert [e["event"] for e in answer["events"]] == ["moved", "match-ended"]
    assert answer["events"][1]["winner"] == first
    assert [e["event"] for e in alice_b.events][-2:] == ["moved", "match-ended"]
    assert alice_a.events == bob_a.events == []


def test_leaving_one_gateway_keeps_the_seek_while_another_listens() -> None:
    """A player leaves the queues only when their last gateway lets go."""
    service = MatchService(installed_games(), Clock())
    service.attach("alice", _Ref(), "gateway-a")
    service.attach("alice", _Ref(), "gateway-b")
    service.seek("alice", "tictactoe")
    service.broker_lost("gateway-a")
    assert service.waiting_for("alice") == ["tictactoe"]
    service.detach("alice", "gateway-b")
    assert service.waiting_for("alice") == []
    assert "alice" not in service.listeners


@pytest.mark.expected_log("the store failed")
def test_login_while_the_store_is_down_is_unavailable(world: World) -> None:
    """If the account store fails, LOGIN says unavailable and the line goes on."""
    player = world.player()
    player.send("REGISTER alice password1")
    broken = MemoryStore.find_account

    def failing(self: MemoryStore, key: str) -> Any:
        return defer.fail(OSError("database is locked"))

    MemoryStore.find_account = failing  # type: ignore[method-assign]
    try:
        assert player.send("LOGIN alice password1") == [
            "ERR unavailable the store is unreachable; try again shortly"
        ]
    finally:
        MemoryStore.find_account = broken  # type: ignore[method-assign]
    assert player.send("LOGIN alice password1") == ["OK logged in as alice"]


@pytest.mark.expected_log("could not read {what} from the store")
def test_history_while_the_store_is_down_is_unavailable() -> None:
    """If the match store fails, HISTORY says unavailable instead of failing."""
    store = MemoryStore()
    world = World(service_store=store)
    player = world.player("alice")
    store.player_matches = lambda *a: defer.fail(OSError("gone"))  # type: ignore[method-assign]
    assert player.send("HISTORY") == [
        "ERR unavailable the store is unreachable; try again shortly"
    ]
    assert player.send("WHO")[0] == "OK 1 player online"


def test_activity_is_logged_once_a_minute_not_per_match() -> None:
    """One line sums up the matches of the last minute; quiet minutes log none."""
    clock = Clock()
    service = MatchService(installed_games(), clock, turn_timeout=3600)
    lines: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace", "").startswith("chupacabra"):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        service.start_reports()
        for name in ("alice", "bob", "cy", "di", "ed"):
            service.attach(name, _Ref(), "gateway-a")
            service.seek(name, "tictactoe")
        [first, _] = service.matches.values()
        first.remote_forfeit(first.players[0])
        assert lines == []
        clock.advance(60)
        assert lines == [
            "2 matches started and 1 ended; 1 live, 1 waiting for an opponent"
        ]
        clock.advance(60)
        assert len(lines) == 1
        service.seek("ann", "tictactoe")
        service.stop_reports()
        assert lines[1:] == [
            "1 matches started and 0 ended; 2 live, 0 waiting for an opponent"
        ]
    finally:
        globalLogPublisher.removeObserver(observe)


class _HeldStore:
    """A store whose match writes wait until the test lets them finish."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, tuple[Any, ...], defer.Deferred[Any]]] = []

    def _held(self, name: str, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.writes.append((name, args, d))
        return d

    def create_match(self, *args: Any) -> defer.Deferred[Any]:
        return defer.succeed(True)

    def record_move(self, *args: Any) -> defer.Deferred[Any]:
        return self._held("move", *args)

    def finish_match(self, *args: Any) -> defer.Deferred[Any]:
        return self._held("finish", *args)

    def finish(self, outcome: Any = None) -> None:
        """Let the oldest held write succeed (or fail with ``outcome``)."""
        _, _, d = self.writes.pop(0)
        if isinstance(outcome, Exception):
            d.errback(outcome)
        else:
            d.callback(outcome)


def _held_match() -> tuple[_HeldStore, Any, _Ref, _Ref, str, str]:
    store = _HeldStore()
    service = MatchService(installed_games(), Clock(), store=store)
    alice, bob = _Ref(), _Ref()
    service.attach("alice", alice, "gateway-a")
    service.attach("bob", bob, "gateway-b")
    service.seek("alice", "tictactoe")
    service.seek("bob", "tictactoe")
    [match] = service.matches.values()
    x, o = match.players
    alice.events.clear()
    bob.events.clear()
    return store, match, alice, bob, x, o


def _told(*refs: _Ref) -> list[list[tuple[str, Any]]]:
    return [[(e["event"], e.get("move")) for e in ref.events] for ref in refs]


def _outcome(d: defer.Deferred[Any]) -> list[Any]:
    """What ``d`` ends with, in a list that stays empty until it does."""
    got: list[Any] = []
    d.addBoth(got.append)
    return got


def test_a_move_waits_for_the_one_being_stored() -> None:
    """
    A move sent while the opponent's is still being stored is judged, and
    told, only after it: every reply and update shows the position in order.
    """
    store, match, alice, bob, x, o = _held_match()
    first = _outcome(match.remote_move(x, "1"))
    second = _outcome(match.remote_move(o, "2"))
    assert first == second == []
    assert [name for name, _, _ in store.writes] == ["move"]

    store.finish()
    assert json.loads(first[0])["result"]["to_move"] == o
    assert second == []
    assert [args[1:4] for _, args, _ in store.writes] == [(2, o, "2")]
    assert alice.events[0]["board"]["cells"].count(None) == 8

    store.finish()
    assert json.loads(second[0])["result"]["to_move"] == x
    assert _told(alice, bob) == [[("moved", "1"), ("moved", "2")]] * 2
    assert match.moves == ["1", "2"]


def test_a_forfeit_after_a_final_move_is_too_late() -> None:
    """A forfeit sent while a match-ending move is stored finds the game over."""
    store, match, alice, bob, x, o = _held_match()
    for player, cell in [(x, "1"), (o, "4"), (x, "2"), (o, "5")]:
        match.remote_move(player, cell)
        store.finish()
    winning = _outcome(match.remote_move(x, "3"))
    forfeit = _outcome(match.remote_forfeit(o))
    store.finish()  # the move
    store.finish()  # the end of the match
    assert json.loads(winning[0])["result"]["to_move"] is None
    assert forfeit[0].value.code == "game-over"
    ends = [e for e in alice.events + bob.events if e["event"] == "match-ended"]
    assert [(e["winner"], e["reason"]) for e in ends] == [(x, "win")] * 2
    assert (match.service.started, match.service.ended) == (1, 1)


@pytest.mark.expected_log("could not store {what} match {match}")
def test_a_move_that_cannot_be_stored_is_undone_before_the_next() -> None:
    """
    When a move's write fails it is taken back, and a move sent meanwhile
    is then judged against the position without it.
    """
    store, match, alice, bob, x, o = _held_match()
    first = _outcome(match.remote_move(x, "1"))
    second = _outcome(match.remote_move(o, "2"))
    store.finish(OSError("disk full"))
    assert first[0].value.code == "unavailable"
    assert second[0].value.code == "not-your-turn"
    assert match.moves == []
    assert alice.events == bob.events == []

    again = _outcome(match.remote_move(x, "5"))
    assert store.writes[0][1][:4] == (match.id, 1, x, "5")
    store.finish()
    assert json.loads(again[0])["result"]["move"] == "5"
    assert match.moves == ["5"]

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

"""The line protocol over StringTransport, with the real core and service."""

from __future__ import annotations

import json

from conftest import World


def test_full_game_text_mode(world: World) -> None:
    """Two players play to a win and each sees the other's moves pushed."""
    first, second, match = world.pair()
    assert first.send("MOVE 1")[0] == f"OK played 1 in match {match}"
    pushed = second.read()
    assert pushed[0].startswith("* ") and "played 1" in pushed[0]
    for player, cell in [(second, 4), (first, 2), (second, 5)]:
        assert player.send(f"MOVE {cell}")[0].startswith("OK")
        first.read()
        second.read()
    reply = first.send("MOVE 3")
    assert reply[0] == f"OK played 3 in match {match}"
    assert any("is over" in line and "won" in line for line in reply)
    assert any("is over" in line for line in second.read())


def test_json_mode(world: World) -> None:
    """JSON mode answers and pushes one object per line."""
    first, second, _ = world.pair()
    reply = [json.loads(line) for line in second.send("JSON")]
    assert reply == [{"ok": True, "result": {"mode": "json"}}]
    first.send("MOVE 5")
    events = [json.loads(line) for line in second.read()]
    assert events[0]["event"] == "moved"
    assert events[0]["move"] == "5"
    assert "text" not in events[0]

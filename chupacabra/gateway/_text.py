"""How replies and events read in the line protocol's text mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Event = dict[str, Any]


def _plural(count: int, word: str, plural: str = "") -> str:
    return f"{count} {word}" if count == 1 else f"{count} {plural or word + 's'}"


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]


def _sides(event: Event) -> str:
    players = event.get("players") or []
    labels = event.get("labels") or []
    named = [
        f"{name} ({labels[i]})" if i < len(labels) else name
        for i, name in enumerate(players)
    ]
    return " vs ".join(named)


def _turn(event: Event, me: str | None) -> list[str]:
    to_move = event.get("to_move")
    if to_move is None:
        return []
    left = event.get("seconds_left")
    clock = "" if left is None else f" ({left} s left)"
    if to_move == me:
        return [f"  your move{clock}: MOVE <move>"]
    return [f"  waiting for {to_move} to move{clock}"]


def _ending(event: Event) -> str:
    winner = event.get("winner")
    reason = event.get("reason")
    losers = [p for p in event.get("players") or [] if p != winner]
    loser = " and ".join(losers) or "the other player"
    if reason == "draw":
        return "a draw"
    if reason == "aborted":
        return "it was lost when its game service stopped"
    if winner is None:
        return f"ended with no winner ({reason})"
    if reason == "forfeit":
        return f"{loser} forfeited, {winner} won"
    if reason == "time":
        return f"{loser} ran out of time, {winner} won"
    return f"{winner} won"


def _state(event: Event, me: str | None) -> list[str]:
    moves = len(event.get("moves") or [])
    head = f"match {event['match']}: {event['game']}, {_sides(event)}, "
    head += f"{_plural(moves, 'move')} played"
    lines = [head, *_indent(event.get("text", ""))]
    if event.get("reason") is not None:
        lines.append(f"  over: {_ending(event)}")
    return lines + _turn(event, me)


def event_lines(event: Event, me: str | None) -> list[str]:
    """The ``* `` line and indented lines announcing ``event``."""
    kind = event.get("event")
    if kind == "match-started":
        lines = [
            f"match {event['match']} of {event['game']} started: {_sides(event)}",
            *_indent(event.get("text", "")),
            *_turn(event, me),
        ]
    elif kind == "moved":
        lines = [
            f"{event['player']} played {event['move']} in match {event['match']}",
            *_indent(event.get("text", "")),
            *_turn(event, me),
        ]
    elif kind == "match-ended":
        lines = [f"match {event['match']} is over: {_ending(event)}"]
    elif kind == "match-state":
        lines = _state(event, me)
    elif kind == "logged-out":
        lines = [f"logged out: {event.get('reason')}"]
    elif kind == "closing":
        lines = [f"closing the connection: {event.get('reason')}"]
    else:
        lines = [f"{kind}"]
    return ["* " + lines[0], *lines[1:]]


def _games(result: Event, me: str | None) -> list[str]:
    lines = [_plural(len(result["games"]), "game")]
    for game in result["games"]:
        lines.append(f"  {game['name']}: {game['title']}. {game['description']}")
        lines.append(f"    moves: {game['moves']}")
    return lines


def _play(result: Event, me: str | None) -> list[str]:
    if result["status"] == "matched":
        return [f"matched: match {result['match']}"]
    return [f"waiting for an opponent for {result['game']}; CANCEL to stop"]


def _cancel(result: Event, me: str | None) -> list[str]:
    if not result["cancelled"]:
        return ["you were not waiting for a game"]
    return ["stopped waiting for " + ", ".join(result["cancelled"])]


def _matches(result: Event, me: str | None) -> list[str]:
    lines = [_plural(len(result["matches"]), "live match", "live matches")]
    for match in result["matches"]:
        lines.append(
            f"  {match['match']} {match['game']}: "
            f"{' vs '.join(match['players'])}, {match['to_move']} to move"
        )
    if result.get("waiting"):
        lines.append("  waiting for: " + ", ".join(result["waiting"]))
    return lines


def _who(result: Event, me: str | None) -> list[str]:
    players = result["players"]
    return [_plural(len(players), "player") + " online"] + [f"  {p}" for p in players]


def _history(result: Event, me: str | None) -> list[str]:
    matches = result["matches"]
    head = _plural(len(matches), "finished match", "finished matches")
    lines = [f"{head} of {result['player']}"]
    for match in matches:
        sides = " vs ".join(match["players"])
        moves = _plural(len(match["moves"]), "move")
        lines.append(
            f"  {match['match']} {match['game']}: {sides}, {_ending(match)}, {moves}"
        )
    return lines


def _help(result: Event, me: str | None) -> list[str]:
    if "command" in result:
        command = result["command"]
        return [command["usage"], "  " + command["summary"]]
    lines = ["commands (HELP <command> for one):"]
    width = max(len(c["usage"]) for c in result["commands"])
    for command in result["commands"]:
        lines.append(f"  {command['usage'].ljust(width)}  {command['summary']}")
    return lines


def _board(result: Event, me: str | None) -> list[str]:
    return _state(result, me)


_REPLIES: dict[str, Callable[[Event, str | None], list[str]]] = {
    "help": _help,
    "register": lambda r, me: [f"registered {r['username']}; now LOGIN to play"],
    "login": lambda r, me: [f"logged in as {r['username']}"],
    "logout": lambda r, me: [f"logged out {r['username']}"],
    "password": lambda r, me: ["password changed"],
    "games": _games,
    "play": _play,
    "cancel": _cancel,
    "matches": _matches,
    "board": _board,
    "move": lambda r, me: [f"played {r['move']} in match {r['match']}"],
    "forfeit": lambda r, me: [f"forfeited match {r['match']}"],
    "who": _who,
    "history": _history,
    "text": lambda r, me: ["text mode"],
    "json": lambda r, me: ["json mode"],
    "quit": lambda r, me: ["bye"],
}


def reply_lines(command: str, result: Event, me: str | None) -> list[str]:
    """The ``OK`` line and indented lines answering ``command``."""
    lines = _REPLIES[command](result, me)
    return ["OK " + lines[0], *lines[1:]]

"""What the API answers, as immutable attrs classes read from its JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


@attrs.frozen
class Account:
    """A registered account."""

    username: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(str(data["username"]))


@attrs.frozen
class Session:
    """A login: the bearer token, when it expires and whose it is."""

    token: str = attrs.field(repr=False)
    expires_at: datetime
    username: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        stamp = str(data["expires_at"]).replace("Z", "+00:00")
        return cls(
            str(data["token"]), datetime.fromisoformat(stamp), str(data["username"])
        )


@attrs.frozen
class Game:
    """A game type on offer, and how its moves are written."""

    name: str
    title: str
    description: str
    moves: str
    players: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Game:
        return cls(
            str(data["name"]),
            str(data.get("title", data["name"])),
            str(data.get("description", "")),
            str(data.get("moves", "")),
            int(data.get("players", 2)),
        )


@attrs.frozen
class Seek:
    """
    A request for an opponent.

    ``status`` is ``waiting``, ``matched`` or ``cancelled``; ``match`` is
    the match id once matched.
    """

    id: str
    game: str
    status: str
    match: str | None

    @property
    def matched(self) -> bool:
        return self.status == "matched"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Seek:
        return cls(
            str(data["id"]),
            str(data["game"]),
            str(data["status"]),
            _optional(data.get("match")),
        )


@attrs.frozen
class MatchSummary:
    """A live match: who plays and whose turn it is."""

    match: str
    game: str
    players: tuple[str, ...]
    to_move: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchSummary:
        return cls(
            str(data["match"]),
            str(data["game"]),
            _names(data.get("players")),
            _optional(data.get("to_move")),
        )


@attrs.frozen
class FinishedMatch:
    """A match that ended: the winner (``None`` for a draw) and why."""

    match: str
    game: str
    players: tuple[str, ...]
    winner: str | None
    reason: str
    moves: tuple[str, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinishedMatch:
        return cls(
            str(data["match"]),
            str(data["game"]),
            _names(data.get("players")),
            _optional(data.get("winner")),
            str(data.get("reason", "")),
            _names(data.get("moves")),
        )


@attrs.frozen
class Matches:
    """The caller's live matches and recently finished ones, newest first."""

    live: tuple[MatchSummary, ...]
    recent: tuple[FinishedMatch, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Matches:
        return cls(
            tuple(MatchSummary.from_json(m) for m in data.get("matches", ())),
            tuple(FinishedMatch.from_json(m) for m in data.get("recent", ())),
        )


@attrs.frozen
class MatchState:
    """
    Everything about one match: seats, position, moves, and how it ended.

    ``board`` is the game's own JSON (for tic-tac-toe, ``cells`` and
    ``marks``); ``labels`` name the seats in the order of ``players``.
    While the match is live ``over`` is false, ``to_move`` names a player
    and ``seconds_left`` counts down their turn; once it ended ``winner``
    (``None`` for a draw) and ``reason`` say how.  The ``match-started``
    and ``match-state`` events read into this class too.
    """

    match: str
    game: str
    players: tuple[str, ...]
    to_move: str | None
    board: dict[str, Any]
    moves: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    seconds_left: int | None = None
    winner: str | None = None
    reason: str | None = None

    @property
    def over(self) -> bool:
        return self.reason is not None

    def label_of(self, player: str) -> str:
        """The seat label (``X``, ``O``) of ``player``, or its name."""
        if player in self.players and len(self.labels) == len(self.players):
            return self.labels[self.players.index(player)]
        return player

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MatchState:
        seconds = data.get("seconds_left")
        board = data.get("board")
        return cls(
            match=str(data["match"]),
            game=str(data["game"]),
            players=_names(data.get("players")),
            to_move=_optional(data.get("to_move")),
            board=board if isinstance(board, dict) else {},
            moves=_names(data.get("moves")),
            labels=_names(data.get("labels")),
            seconds_left=None if seconds is None else int(seconds),
            winner=_optional(data.get("winner")),
            reason=_optional(data.get("reason")),
        )


@attrs.frozen
class Moved:
    """A move the server accepted: as written, and who moves next."""

    match: str
    move: str
    to_move: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Moved:
        return cls(
            str(data["match"]), str(data["move"]), _optional(data.get("to_move"))
        )


@attrs.frozen
class Forfeited:
    """A match given up, and who won it."""

    match: str
    winner: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Forfeited:
        return cls(str(data["match"]), _optional(data.get("winner")))


@attrs.frozen
class ServiceHealth:
    """One game service as the gateway sees it."""

    name: str
    up: bool
    games: tuple[str, ...]


@attrs.frozen
class Health:
    """Whether the gateway reaches every game service (``ok``) or not."""

    status: str
    services: tuple[ServiceHealth, ...]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Health:
        return cls(
            str(data["status"]),
            tuple(
                ServiceHealth(str(s["name"]), bool(s["up"]), _names(s.get("games")))
                for s in data.get("services", ())
            ),
        )


@attrs.frozen
class Event:
    """
    One Server-Sent Event from ``GET /v1/events``.

    ``kind`` is the event name (``match-started``, ``moved``,
    ``match-ended``, ``match-state``, ``stream-start``),
    ``id`` the id to resume after (``None`` if the event had none), and
    ``data`` the decoded JSON object (empty if the data was not one;
    ``text`` keeps it as sent).
    """

    kind: str
    id: str | None
    data: dict[str, Any]
    text: str = attrs.field(default="", repr=False)

    @property
    def match(self) -> str | None:
        """The match the event is about, if any."""
        return _optional(self.data.get("match"))

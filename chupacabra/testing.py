"""
Fakes for testing code that uses chupacabra, checked against the real thing.

L{MemoryStore} behaves like L{chupacabra.store.Store} (the store tests run
against both); L{InlineHasher} is real bcrypt at the lowest cost, run on
the calling thread so that tests need no threads.
"""

from __future__ import annotations

from typing import Any

import attrs
import bcrypt
from twisted.internet import defer

from .accounts import PasswordHasher
from .store import MIGRATIONS, MatchRecord, NameTakenError


class MemoryStore:
    """The store in dicts, with the same methods and errors as the SQL store."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, str]] = {}
        self.sessions: dict[str, tuple[str, float]] = {}
        self.matches: dict[str, dict[str, Any]] = {}
        self.beats: dict[str, float] = {}

    def migrate(self) -> defer.Deferred[int]:
        return defer.succeed(len(MIGRATIONS))

    def close(self) -> None:
        pass

    def create_account(
        self, name: str, name_key: str, password_hash: str
    ) -> defer.Deferred[None]:
        if name_key in self.accounts:
            return defer.fail(NameTakenError(name))
        self.accounts[name_key] = (name, password_hash)
        return defer.succeed(None)

    def find_account(self, name_key: str) -> defer.Deferred[Any]:
        return defer.succeed(self.accounts.get(name_key))

    def set_password(self, name_key: str, password_hash: str) -> defer.Deferred[Any]:
        if name_key in self.accounts:
            name, _ = self.accounts[name_key]
            self.accounts[name_key] = (name, password_hash)
        return defer.succeed(None)

    def create_session(
        self, token_hash: str, name: str, expires_at: float
    ) -> defer.Deferred[Any]:
        self.sessions[token_hash] = (name, expires_at)
        return defer.succeed(None)

    def find_session(self, token_hash: str) -> defer.Deferred[Any]:
        return defer.succeed(self.sessions.get(token_hash))

    def delete_session(self, token_hash: str) -> defer.Deferred[Any]:
        self.sessions.pop(token_hash, None)
        return defer.succeed(None)

    # Matches and moves

    def create_match(
        self, service: str, match_id: str, game: str, players: list[str], at: float
    ) -> defer.Deferred[bool]:
        if match_id in self.matches:
            return defer.succeed(False)
        self.matches[match_id] = {
            "service": service,
            "record": MatchRecord(
                match_id, game, list(players), "live", None, None, at, at, None, []
            ),
        }
        return defer.succeed(True)

    def _update(self, match_id: str, **changes: Any) -> None:
        entry = self.matches[match_id]
        entry["record"] = attrs.evolve(entry["record"], **changes)

    def record_move(
        self, match_id: str, number: int, player: str, move: str, at: float
    ) -> defer.Deferred[None]:
        record = self.matches[match_id]["record"]
        if number != len(record.moves) + 1:
            return defer.fail(ValueError(f"move {number} is out of order"))
        self._update(match_id, moves=[*record.moves, move], turn_started_at=at)
        return defer.succeed(None)

    def finish_match(
        self, match_id: str, winner: str | None, reason: str, at: float
    ) -> defer.Deferred[Any]:
        self._update(match_id, status="over", winner=winner, reason=reason, ended_at=at)
        return defer.succeed(None)

    def set_turn_started(self, match_id: str, at: float) -> defer.Deferred[Any]:
        self._update(match_id, turn_started_at=at)
        return defer.succeed(None)

    def live_matches(self, service: str) -> defer.Deferred[list[MatchRecord]]:
        found = [
            e["record"]
            for e in self.matches.values()
            if e["service"] == service and e["record"].status == "live"
        ]
        return defer.succeed(sorted(found, key=lambda r: r.started_at))

    def match(self, match_id: str) -> defer.Deferred[MatchRecord | None]:
        entry = self.matches.get(match_id)
        return defer.succeed(None if entry is None else entry["record"])

    def player_matches(
        self, name: str, limit: int = 20
    ) -> defer.Deferred[list[MatchRecord]]:
        found = [
            e["record"]
            for e in self.matches.values()
            if name in e["record"].players and e["record"].status == "over"
        ]
        found.sort(key=lambda r: r.ended_at or 0, reverse=True)
        return defer.succeed(found[:limit])

    def beat(self, service: str, at: float) -> defer.Deferred[None]:
        self.beats[service] = at
        return defer.succeed(None)

    def last_beat(self, service: str) -> defer.Deferred[Any]:
        return defer.succeed(self.beats.get(service))


class InlineHasher(PasswordHasher):
    """bcrypt at cost 4, on the calling thread."""

    def __init__(self) -> None:
        super().__init__(reactor=None, rounds=4, threads=1)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def hash(self, password: bytes) -> defer.Deferred[bytes]:
        return defer.succeed(bcrypt.hashpw(password, bcrypt.gensalt(self.rounds)))

    def check(self, password: bytes, hashed: bytes | None) -> defer.Deferred[bool]:
        ok = bcrypt.checkpw(password, self._decoy if hashed is None else hashed)
        return defer.succeed(ok and hashed is not None)

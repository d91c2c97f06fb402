"""
Fakes for testing code that uses chupacabra, checked against the real thing.

L{MemoryStore} behaves like L{chupacabra.store.Store} (the store tests run
against both); L{InlineHasher} is real bcrypt at the lowest cost, run on
the calling thread so that tests need no threads.
"""

from __future__ import annotations

from typing import Any

import bcrypt
from twisted.internet import defer

from .accounts import PasswordHasher
from .store import MIGRATIONS, NameTakenError


class MemoryStore:
    """Accounts in a dict, with the same methods and errors as the SQL store."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, str]] = {}
        self.sessions: dict[str, tuple[str, float]] = {}

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


class InlineHasher(PasswordHasher):
    """bcrypt at cost 4, on the calling thread."""

    def __init__(self) -> None:
        super().__init__(reactor=None, rounds=4, threads=1)  # type: ignore[arg-type]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def hash(self, password: bytes) -> defer.Deferred[bytes]:
        return defer.succeed(bcrypt.hashpw(password, bcrypt.gensalt(self.rounds)))

    def check(self, password: bytes, hashed: bytes | None) -> defer.Deferred[bool]:
        ok = bcrypt.checkpw(password, self._decoy if hashed is None else hashed)
        return defer.succeed(ok and hashed is not None)

"""
Where accounts live: a SQL database reached through adbapi.

SQLite in the data folder is the default.  The schema is a numbered list
of migrations, applied in order at start-up and recorded in the database.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.logger import Logger

#: Each entry moves the schema up one version; never edit a shipped one.
MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
    ],
    [
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )
        """,
    ],
]


class NameTakenError(Exception):
    """An account with that name key exists already."""


def _open_sqlite(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")


class Store:
    """Accounts in SQL, every query run in adbapi's thread pool."""

    log = Logger()

    def __init__(self, pool: adbapi.ConnectionPool) -> None:
        self.pool = pool

    @classmethod
    def sqlite(cls, path: str) -> Store:
        """Open (creating if needed) the SQLite database at ``path``."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            cp_min=1,
            cp_max=1,
            cp_openfun=_open_sqlite,
        )
        return cls(pool)

    def migrate(self) -> defer.Deferred[int]:
        """Bring the schema up to date; fires with the version reached."""
        d: defer.Deferred[int] = self.pool.runInteraction(_migrate)
        return d

    def close(self) -> None:
        self.pool.close()

    # Accounts

    def create_account(
        self, name: str, name_key: str, password_hash: str
    ) -> defer.Deferred[None]:
        def insert(cursor: Any) -> None:
            cursor.execute("SELECT 1 FROM accounts WHERE name_key = ?", (name_key,))
            if cursor.fetchone() is not None:
                raise NameTakenError(name)
            cursor.execute(
                "INSERT INTO accounts (name, name_key, password_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (name, name_key, password_hash, time.time()),
            )

        d: defer.Deferred[None] = self.pool.runInteraction(insert)
        return d

    @defer.inlineCallbacks
    def find_account(self, name_key: str) -> Any:
        """Fire with ``(name, password_hash)``, or ``None``."""
        rows = yield self.pool.runQuery(
            "SELECT name, password_hash FROM accounts WHERE name_key = ?",
            (name_key,),
        )
        return tuple(rows[0]) if rows else None

    def set_password(self, name_key: str, password_hash: str) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = self.pool.runOperation(
            "UPDATE accounts SET password_hash = ? WHERE name_key = ?",
            (password_hash, name_key),
        )
        return d

    # Sessions (API tokens, stored only as hashes)

    def create_session(
        self, token_hash: str, name: str, expires_at: float
    ) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = self.pool.runOperation(
            "INSERT INTO sessions (token_hash, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (token_hash, name, time.time(), expires_at),
        )
        return d

    @defer.inlineCallbacks
    def find_session(self, token_hash: str) -> Any:
        """Fire with ``(name, expires_at)``, or ``None``."""
        rows = yield self.pool.runQuery(
            "SELECT name, expires_at FROM sessions WHERE token_hash = ?",
            (token_hash,),
        )
        return (rows[0][0], float(rows[0][1])) if rows else None

    def delete_session(self, token_hash: str) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = self.pool.runOperation(
            "DELETE FROM sessions WHERE token_hash = ?", (token_hash,)
        )
        return d


def _migrate(cursor: Any) -> int:
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
    )
    cursor.execute("SELECT MAX(version) FROM schema_version")
    current = cursor.fetchone()[0] or 0
    for number, statements in enumerate(MIGRATIONS, start=1):
        if number <= current:
            continue
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        Store.log.info("store schema migrated to version {version}", version=number)
    return len(MIGRATIONS)

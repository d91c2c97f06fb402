"""
Where accounts, sessions, matches and moves live: SQL through adbapi.

SQLite in the data folder is the default; PostgreSQL when several
processes or machines share the store.  The schema is a numbered list
of migrations, applied in order at start-up and recorded in the database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

import attrs
from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

#: Each entry moves the schema up one version; never edit a shipped one.
#: The SQL is the common ground of SQLite and PostgreSQL.
MIGRATIONS: list[list[str]] = [
    [
        """
        CREATE TABLE accounts (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )
        """,
    ],
    [
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        )
        """,
    ],
    [
        """
        CREATE TABLE matches (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            game TEXT NOT NULL,
            players TEXT NOT NULL,
            status TEXT NOT NULL,
            winner TEXT,
            reason TEXT,
            started_at DOUBLE PRECISION NOT NULL,
            turn_started_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION
        )
        """,
        "CREATE INDEX matches_live ON matches (service, status)",
        """
        CREATE TABLE match_players (
            match_id TEXT NOT NULL REFERENCES matches (id),
            seat INTEGER NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (match_id, seat)
        )
        """,
        "CREATE INDEX match_players_name ON match_players (name)",
        """
        CREATE TABLE moves (
            match_id TEXT NOT NULL REFERENCES matches (id),
            number INTEGER NOT NULL,
            player TEXT NOT NULL,
            move TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (match_id, number)
        )
        """,
        """
        CREATE TABLE heartbeats (
            service TEXT PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL
        )
        """,
    ],
]


class NameTakenError(Exception):
    """An account with that name key exists already."""


class StoreError(Exception):
    """The store could not be opened or used."""


@attrs.frozen
class MatchRecord:
    """A match as the store keeps it: enough to rebuild it move by move."""

    id: str
    game: str
    players: list[str]
    status: str
    winner: str | None
    reason: str | None
    started_at: float
    turn_started_at: float
    ended_at: float | None
    moves: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "match": self.id,
            "game": self.game,
            "players": list(self.players),
            "status": self.status,
            "winner": self.winner,
            "reason": self.reason,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "moves": list(self.moves),
        }


def _open_sqlite(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=10000")


class Store:
    """
    Accounts, sessions, matches and moves in SQL.

    Every query runs in adbapi's thread pool.  Queries are written with
    ``?`` placeholders and rewritten for drivers that want ``%s``.
    """

    log = Logger()

    def __init__(self, pool: adbapi.ConnectionPool, paramstyle: str = "qmark") -> None:
        self.pool = pool
        self.paramstyle = paramstyle
        #: Writes waiting for the transaction in flight to commit.
        self._writes: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []
        self._writing = False

    @classmethod
    def open(cls, url: str) -> Store:
        """Open ``sqlite:PATH`` or a ``postgresql://`` URL."""
        if url.startswith("sqlite:"):
            return cls.sqlite(url[len("sqlite:") :])
        if url.startswith(("postgresql://", "postgres://")):
            return cls.postgresql(url)
        raise StoreError(
            f"unknown database URL {url!r}: use sqlite:PATH or postgresql://"
        )

    @classmethod
    def sqlite(cls, path: str) -> Store:
        """Open (creating if needed) the SQLite database at ``path``."""
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        pool = adbapi.ConnectionPool(
            "sqlite3",
            path,
            check_same_thread=False,
            timeout=10.0,
            cp_min=1,
            cp_max=1,
            cp_openfun=_open_sqlite,
        )
        return cls(pool)

    @classmethod
    def postgresql(cls, url: str) -> Store:
        """Connect to PostgreSQL through psycopg (installed separately)."""
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'")
        pool = adbapi.ConnectionPool(
            "psycopg", conninfo=url, cp_min=1, cp_max=4, cp_reconnect=True
        )
        return cls(pool, paramstyle="format")

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.paramstyle == "format" else query

    def _interaction(self, work: Any, *args: Any) -> defer.Deferred[Any]:
        def run(cursor: Any) -> Any:
            return work(_Cursor(cursor, self._sql), *args)

        d: defer.Deferred[Any] = self.pool.runInteraction(run)
        return d

    def _grouped(self, work: Any, *args: Any) -> defer.Deferred[Any]:
        """
        Run ``work`` in a transaction shared with the writes queued meanwhile.

        While one commit is on its way to disk the next writes queue, then
        commit together: one sync for many moves.  Alone, a write goes at once.
        """
        d: defer.Deferred[Any] = defer.Deferred()
        self._writes.append((work, args, d))
        if not self._writing:
            self._flush()
        return d

    def _flush(self) -> None:
        batch, self._writes = self._writes, []
        self._writing = True

        def run(cursor: Any) -> list[Any]:
            wrapped = _Cursor(cursor, self._sql)
            return [work(wrapped, *args) for work, args, _ in batch]

        def committed(results: list[Any]) -> None:
            self._next()
            for (_, _, d), result in zip(batch, results, strict=True):
                d.callback(result)

        def failed(failure: Failure) -> None:
            if len(batch) == 1:
                self._next()
                batch[0][2].errback(failure)
                return
            # One bad write must not sink the others: each on its own, in
            # order, ahead of anything queued since.
            self._one_by_one(batch)

        self.pool.runInteraction(run).addCallbacks(committed, failed)

    def _one_by_one(self, batch: list[Any]) -> None:
        if not batch:
            self._next()
            return
        (work, args, d), rest = batch[0], batch[1:]

        def then(result: Any) -> Any:
            self._one_by_one(rest)
            return result

        self._interaction(work, *args).addBoth(then).chainDeferred(d)

    def _next(self) -> None:
        self._writing = False
        if self._writes:
            self._flush()

    def _query(self, query: str, *args: Any) -> defer.Deferred[list[Any]]:
        d: defer.Deferred[list[Any]] = self.pool.runQuery(self._sql(query), args)
        return d

    def _operation(self, query: str, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = self.pool.runOperation(self._sql(query), args)
        return d

    def migrate(self) -> defer.Deferred[int]:
        """Bring the schema up to date; fires with the version reached."""
        # Processes started together on an empty store would all create
        # the tables: the first to take the lock migrates, the rest wait.
        if self.paramstyle == "format":
            lock = "SELECT pg_advisory_xact_lock(7653)"
        else:
            lock = "BEGIN IMMEDIATE"
        return self._interaction(_migrate, lock)

    def close(self) -> None:
        self.pool.close()

    # Accounts

    def create_account(
        self, name: str, name_key: str, password_hash: str
    ) -> defer.Deferred[None]:
        def insert(cursor: _Cursor) -> None:
            cursor.execute("SELECT 1 FROM accounts WHERE name_key = ?", (name_key,))
            if cursor.fetchone() is not None:
                raise NameTakenError(name)
            cursor.execute(
                "INSERT INTO accounts (name_key, name, password_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                (name_key, name, password_hash, time.time()),
            )

        return self._interaction(insert)

    @defer.inlineCallbacks
    def find_account(self, name_key: str) -> Any:
        """Fire with ``(name, password_hash)``, or ``None``."""
        rows = yield self._query(
            "SELECT name, password_hash FROM accounts WHERE name_key = ?", name_key
        )
        return tuple(rows[0]) if rows else None

    def set_password(self, name_key: str, password_hash: str) -> defer.Deferred[Any]:
        return self._operation(
            "UPDATE accounts SET password_hash = ? WHERE name_key = ?",
            password_hash,
            name_key,
        )

    # Sessions (API tokens, stored only as hashes)

    def create_session(
        self, token_hash: str, name: str, expires_at: float
    ) -> defer.Deferred[Any]:
        return self._operation(
            "INSERT INTO sessions (token_hash, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            token_hash,
            name,
            time.time(),
            expires_at,
        )

    @defer.inlineCallbacks
    def find_session(self, token_hash: str) -> Any:
        """Fire with ``(name, expires_at)``, or ``None``."""
        rows = yield self._query(
            "SELECT name, expires_at FROM sessions WHERE token_hash = ?", token_hash
        )
        return (rows[0][0], float(rows[0][1])) if rows else None

    def delete_session(self, token_hash: str) -> defer.Deferred[Any]:
        return self._operation("DELETE FROM sessions WHERE token_hash = ?", token_hash)

    # Matches and moves

    def create_match(
        self, service: str, match_id: str, game: str, players: list[str], at: float
    ) -> defer.Deferred[bool]:
        """Record a new match; fires ``False`` if the id is taken."""

        def insert(cursor: _Cursor) -> bool:
            cursor.execute("SELECT 1 FROM matches WHERE id = ?", (match_id,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(
                "INSERT INTO matches (id, service, game, players, status,"
                " started_at, turn_started_at) VALUES (?, ?, ?, ?, 'live', ?, ?)",
                (match_id, service, game, json.dumps(players), at, at),
            )
            for seat, name in enumerate(players):
                cursor.execute(
                    "INSERT INTO match_players (match_id, seat, name) VALUES (?, ?, ?)",
                    (match_id, seat, name),
                )
            return True

        return self._grouped(insert)

    def record_move(
        self, match_id: str, number: int, player: str, move: str, at: float
    ) -> defer.Deferred[None]:
        """
        Append move ``number`` (from 1), which restarts the turn clock.

        The clock's start is read back as the later of the match's
        ``turn_started_at`` and its last move's time, so a move is one row.
        """

        def insert(cursor: _Cursor) -> None:
            cursor.execute(
                "INSERT INTO moves (match_id, number, player, move, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (match_id, number, player, move, at),
            )

        return self._grouped(insert)

    def finish_match(
        self, match_id: str, winner: str | None, reason: str, at: float
    ) -> defer.Deferred[Any]:
        def update(cursor: _Cursor) -> None:
            cursor.execute(
                "UPDATE matches SET status = 'over', winner = ?, reason = ?,"
                " ended_at = ? WHERE id = ?",
                (winner, reason, at, match_id),
            )

        return self._grouped(update)

    def set_turn_started(self, match_id: str, at: float) -> defer.Deferred[Any]:
        return self._operation(
            "UPDATE matches SET turn_started_at = ? WHERE id = ?", at, match_id
        )

    def live_matches(self, service: str) -> defer.Deferred[list[MatchRecord]]:
        """Every match ``service`` was running, with its moves."""

        def load(cursor: _Cursor) -> list[MatchRecord]:
            cursor.execute(
                f"SELECT {_MATCH_COLUMNS} FROM matches"
                " WHERE service = ? AND status = 'live' ORDER BY started_at",
                (service,),
            )
            return [_record(cursor, row) for row in cursor.fetchall()]

        return self._interaction(load)

    def match(self, match_id: str) -> defer.Deferred[MatchRecord | None]:
        def load(cursor: _Cursor) -> MatchRecord | None:
            cursor.execute(
                f"SELECT {_MATCH_COLUMNS} FROM matches WHERE id = ?", (match_id,)
            )
            row = cursor.fetchone()
            return None if row is None else _record(cursor, row)

        return self._interaction(load)

    def player_matches(
        self, name: str, limit: int = 20
    ) -> defer.Deferred[list[MatchRecord]]:
        """``name``'s finished matches, newest first."""

        def load(cursor: _Cursor) -> list[MatchRecord]:
            cursor.execute(
                f"SELECT {_MATCH_COLUMNS} FROM matches"
                " JOIN match_players ON match_players.match_id = matches.id"
                " WHERE match_players.name = ? AND matches.status = 'over'"
                " ORDER BY matches.ended_at DESC LIMIT ?",
                (name, limit),
            )
            return [_record(cursor, row) for row in cursor.fetchall()]

        return self._interaction(load)

    def beat(self, service: str, at: float) -> defer.Deferred[None]:
        """Note that ``service`` was alive at ``at``."""

        def upsert(cursor: _Cursor) -> None:
            cursor.execute(
                "UPDATE heartbeats SET at = ? WHERE service = ?", (at, service)
            )
            if cursor.rowcount == 0:
                cursor.execute(
                    "INSERT INTO heartbeats (service, at) VALUES (?, ?)", (service, at)
                )

        return self._interaction(upsert)

    @defer.inlineCallbacks
    def last_beat(self, service: str) -> Any:
        """Fire with when ``service`` was last known alive, or ``None``."""
        rows = yield self._query("SELECT at FROM heartbeats WHERE service = ?", service)
        return float(rows[0][0]) if rows else None


_MATCH_COLUMNS = (
    "matches.id, matches.game, matches.players, matches.status, matches.winner,"
    " matches.reason, matches.started_at, matches.turn_started_at, matches.ended_at"
)


def _record(cursor: _Cursor, row: Any) -> MatchRecord:
    match_id = row[0]
    inner = cursor.cursor.connection.cursor()
    inner.execute(
        cursor.sql("SELECT move, at FROM moves WHERE match_id = ? ORDER BY number"),
        (match_id,),
    )
    rows = inner.fetchall()
    inner.close()
    moves = [m[0] for m in rows]
    turn_started_at = float(row[7])
    if rows:
        turn_started_at = max(turn_started_at, float(rows[-1][1]))
    return MatchRecord(
        id=match_id,
        game=row[1],
        players=json.loads(row[2]),
        status=row[3],
        winner=row[4],
        reason=row[5],
        started_at=float(row[6]),
        turn_started_at=turn_started_at,
        ended_at=None if row[8] is None else float(row[8]),
        moves=moves,
    )


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders whatever the driver."""

    def __init__(self, cursor: Any, sql: Any) -> None:
        self.cursor = cursor
        self.sql = sql

    def execute(self, query: str, args: tuple[Any, ...] = ()) -> Any:
        return self.cursor.execute(self.sql(query), args)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> Any:
        return self.cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return int(self.cursor.rowcount)


def _migrate(cursor: _Cursor, lock: str) -> int:
    cursor.execute(lock)
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

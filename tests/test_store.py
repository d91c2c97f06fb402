"""The account store: SQLite and the in-memory fake must behave alike."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import pytest_twisted
from twisted.internet import defer

from chupacabra.accounts import (
    BCRYPT_NICENESS,
    IDLE_ONLY_FOR,
    Accounts,
    PasswordHasher,
)
from chupacabra.errors import CommandError
from chupacabra.store import MIGRATIONS, NameTakenError, Store
from chupacabra.testing import InlineHasher, MemoryStore

HASH_A = "$2b$04$" + "a" * 53
HASH_B = "$2b$04$" + "b" * 53


def open_sqlite(path: Path) -> Store:
    return Store.sqlite(str(path))


@pytest_twisted.async_yield_fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: Any, tmp_path: Path) -> Any:
    """A migrated, empty store of each kind, closed afterwards."""
    if request.param == "memory":
        made: Any = MemoryStore()
    elif request.param == "postgresql":
        made = Store.open(request.getfixturevalue("postgres_database"))
    else:
        made = open_sqlite(tmp_path / "data" / "accounts.sqlite")
    await made.migrate()
    yield made
    made.close()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "accounts.sqlite"


# Behaviour both stores share


@pytest_twisted.inlineCallbacks
def test_migrate_reports_the_latest_version(store: Any) -> Generator[Any, Any, None]:
    """migrate() fires with the number of migrations, here again after setup."""
    version = yield store.migrate()
    assert version == len(MIGRATIONS)
    assert version >= 1


@pytest_twisted.inlineCallbacks
def test_unknown_key_is_none(store: Any) -> Generator[Any, Any, None]:
    """Looking up a key nobody registered fires with None."""
    row = yield store.find_account("nobody")
    assert row is None


@pytest_twisted.inlineCallbacks
def test_created_account_is_found(store: Any) -> Generator[Any, Any, None]:
    """An account created under a key is found as (name, hash) under that key."""
    yield store.create_account("Alice", "alice", HASH_A)
    row = yield store.find_account("alice")
    assert row == ("Alice", HASH_A)
    assert isinstance(row, tuple)


@pytest_twisted.inlineCallbacks
def test_create_fires_with_none(store: Any) -> Generator[Any, Any, None]:
    """create_account() fires with None on success."""
    result = yield store.create_account("Alice", "alice", HASH_A)
    assert result is None


@pytest_twisted.inlineCallbacks
def test_keys_match_exactly(store: Any) -> Generator[Any, Any, None]:
    """The store compares keys exactly: normalising them is the caller's job."""
    yield store.create_account("Alice", "alice", HASH_A)
    for other in ("Alice", "ALICE", "alice ", "alic"):
        row = yield store.find_account(other)
        assert row is None, other


@pytest_twisted.inlineCallbacks
def test_non_ascii_names_round_trip(store: Any) -> Generator[Any, Any, None]:
    """Display names and keys outside ASCII come back exactly."""
    yield store.create_account("Zo\u00eb_\u540d", "zo\u00eb_\u540d", HASH_A)
    row = yield store.find_account("zo\u00eb_\u540d")
    assert row == ("Zo\u00eb_\u540d", HASH_A)


@pytest_twisted.inlineCallbacks
def test_duplicate_key_is_name_taken(store: Any) -> Generator[Any, Any, None]:
    """A second account under a taken key fails with NameTakenError."""
    yield store.create_account("Alice", "alice", HASH_A)
    with pytest.raises(NameTakenError):
        yield store.create_account("ALICE", "alice", HASH_B)


@pytest_twisted.inlineCallbacks
def test_duplicate_leaves_the_first_account(store: Any) -> Generator[Any, Any, None]:
    """A refused duplicate changes neither the name nor the hash stored."""
    yield store.create_account("Alice", "alice", HASH_A)
    try:
        yield store.create_account("ALICE", "alice", HASH_B)
    except NameTakenError:
        pass
    row = yield store.find_account("alice")
    assert row == ("Alice", HASH_A)


@pytest_twisted.inlineCallbacks
def test_accounts_are_separate(store: Any) -> Generator[Any, Any, None]:
    """Accounts under different keys do not disturb one another."""
    yield store.create_account("Alice", "alice", HASH_A)
    yield store.create_account("Bob", "bob", HASH_B)
    alice = yield store.find_account("alice")
    bob = yield store.find_account("bob")
    assert (alice, bob) == (("Alice", HASH_A), ("Bob", HASH_B))


@pytest_twisted.inlineCallbacks
def test_set_password_replaces_only_the_hash(store: Any) -> Generator[Any, Any, None]:
    """set_password() changes that account's hash and keeps its name."""
    yield store.create_account("Alice", "alice", HASH_A)
    yield store.create_account("Bob", "bob", HASH_A)
    yield store.set_password("alice", HASH_B)
    alice = yield store.find_account("alice")
    bob = yield store.find_account("bob")
    assert alice == ("Alice", HASH_B)
    assert bob == ("Bob", HASH_A)


@pytest_twisted.inlineCallbacks
def test_accounts_work_on_either_store(store: Any) -> Generator[Any, Any, None]:
    """Registering, logging in and changing a password behave alike on both."""
    accounts = Accounts(store, InlineHasher())
    name = yield defer.ensureDeferred(accounts.register("Alice", "password1"))
    assert name == "Alice"

    with pytest.raises(CommandError) as caught:
        yield defer.ensureDeferred(accounts.register("ALICE", "password2"))
    assert caught.value.code == "name-taken"

    yield defer.ensureDeferred(
        accounts.change_password("alice", "password1", "password3")
    )
    name = yield defer.ensureDeferred(accounts.authenticate("aLiCe", "password3"))
    assert name == "Alice"

    with pytest.raises(CommandError) as caught:
        yield defer.ensureDeferred(accounts.authenticate("alice", "password1"))
    assert caught.value.code == "bad-credentials"


# SQLite only


@pytest_twisted.inlineCallbacks
def test_migrate_twice_is_harmless(sqlite_path: Path) -> Generator[Any, Any, None]:
    """A second migrate() keeps the data, reports the version, records it once."""
    store = open_sqlite(sqlite_path)
    try:
        first = yield store.migrate()
        yield store.create_account("Alice", "alice", HASH_A)
        second = yield store.migrate()
        row = yield store.find_account("alice")
    finally:
        store.close()

    assert first == second == len(MIGRATIONS)
    assert row == ("Alice", HASH_A)
    with sqlite3.connect(sqlite_path) as connection:
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]


@pytest_twisted.inlineCallbacks
def test_data_survives_reopening(sqlite_path: Path) -> Generator[Any, Any, None]:
    """Accounts written, closed and reopened are still there."""
    store = open_sqlite(sqlite_path)
    try:
        yield store.migrate()
        yield store.create_account("Alice", "alice", HASH_A)
        yield store.set_password("alice", HASH_B)
    finally:
        store.close()

    store = open_sqlite(sqlite_path)
    try:
        version = yield store.migrate()
        row = yield store.find_account("alice")
        with pytest.raises(NameTakenError):
            yield store.create_account("alice", "alice", HASH_A)
    finally:
        store.close()

    assert version == len(MIGRATIONS)
    assert row == ("Alice", HASH_B)


@pytest_twisted.inlineCallbacks
def test_sqlite_creates_its_folder(tmp_path: Path) -> Generator[Any, Any, None]:
    """Opening a database in a missing folder creates the folder and file."""
    path = tmp_path / "new" / "deeper" / "accounts.sqlite"
    store = open_sqlite(path)
    try:
        yield store.migrate()
    finally:
        store.close()
    assert path.is_file()


# PasswordHasher on its own threads


@pytest.fixture
def hasher() -> Generator[PasswordHasher, None, None]:
    from twisted.internet import reactor

    made = PasswordHasher(reactor, rounds=4, threads=2)
    made.start()
    yield made
    made.stop()


@pytest.fixture
def bcrypt_threads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the thread each bcrypt hash or check runs on."""
    threads: list[int] = []
    real_hashpw, real_checkpw = bcrypt.hashpw, bcrypt.checkpw

    def hashpw(password: bytes, salt: bytes) -> bytes:
        threads.append(threading.get_ident())
        policies.append(os.sched_getscheduler(threading.get_native_id()))
        return real_hashpw(password, salt)

    def checkpw(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.get_ident())
        policies.append(os.sched_getscheduler(threading.get_native_id()))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "hashpw", hashpw)
    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    return threads


#: The Linux scheduling policy each bcrypt call ran under, in order.
policies: list[int] = []

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="Linux scheduling"
)


@linux_only
@pytest_twisted.inlineCallbacks
def test_bcrypt_starts_on_idle_cpu_time_only(
    hasher: PasswordHasher, bcrypt_threads: list[int]
) -> Generator[Any, Any, None]:
    """Logins give way to play: each hash starts under SCHED_IDLE."""
    del policies[:]
    yield hasher.hash(b"password1")
    yield hasher.check(b"password1", None)
    assert policies == [os.SCHED_IDLE] * 2
    assert os.sched_getscheduler(threading.get_native_id()) != os.SCHED_IDLE
    assert hasher.running == {}


@linux_only
@pytest_twisted.inlineCallbacks
def test_a_hash_kept_waiting_gets_a_share_of_the_cpu(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> Generator[Any, Any, None]:
    """
    A hash still running after IDLE_ONLY_FOR (other programs keep the CPU
    busy) leaves SCHED_IDLE for a low normal priority, so logins finish.
    """
    started, release = threading.Event(), threading.Event()

    def slow_check(password: bytes, hashed: bytes) -> bool:
        started.set()
        release.wait(30)
        return True

    monkeypatch.setattr(bcrypt, "checkpw", slow_check)
    d = hasher.check(b"password1", None)
    assert started.wait(30)
    [(thread, began)] = hasher.running.items()
    assert os.sched_getscheduler(thread) == os.SCHED_IDLE

    hasher.promote_waiting(now=began + IDLE_ONLY_FOR / 2)
    assert os.sched_getscheduler(thread) == os.SCHED_IDLE
    hasher.promote_waiting(now=began + IDLE_ONLY_FOR)
    assert os.sched_getscheduler(thread) == os.SCHED_OTHER
    own = os.getpriority(os.PRIO_PROCESS, os.getpid())
    assert os.getpriority(os.PRIO_PROCESS, thread) == min(19, own + BCRYPT_NICENESS)

    release.set()
    assert (yield d) is False
    assert hasher.running == {}


@pytest_twisted.inlineCallbacks
def test_hasher_hashes_off_the_reactor_thread(
    hasher: PasswordHasher, bcrypt_threads: list[int]
) -> Generator[Any, Any, None]:
    """hash() returns at once and runs bcrypt on a pool thread."""
    d = hasher.hash(b"password1")
    assert not d.called
    hashed = yield d
    threads = list(bcrypt_threads)

    assert hashed.startswith(b"$2b$04$")
    assert bcrypt.checkpw(b"password1", hashed)
    assert len(threads) == 1
    assert threading.get_ident() not in threads


@pytest_twisted.inlineCallbacks
def test_hasher_checks_off_the_reactor_thread(
    hasher: PasswordHasher, bcrypt_threads: list[int]
) -> Generator[Any, Any, None]:
    """check() accepts the right password and refuses a wrong one, on the pool."""
    hashed = bcrypt.hashpw(b"password1", bcrypt.gensalt(4))
    del bcrypt_threads[:]

    d = hasher.check(b"password1", hashed)
    assert not d.called
    right = yield d
    wrong = yield hasher.check(b"password2", hashed)

    assert right is True
    assert wrong is False
    assert len(bcrypt_threads) == 2
    assert threading.get_ident() not in bcrypt_threads


@pytest_twisted.inlineCallbacks
def test_hasher_refuses_unknown_account(
    hasher: PasswordHasher, bcrypt_threads: list[int]
) -> Generator[Any, Any, None]:
    """check() with no hash still runs bcrypt, and is False even for the decoy."""
    result = yield hasher.check(b"decoy-password", None)
    assert result is False
    assert len(bcrypt_threads) == 1
    assert threading.get_ident() not in bcrypt_threads


@pytest_twisted.inlineCallbacks
def test_accounts_with_threaded_hasher_and_sqlite(
    hasher: PasswordHasher, sqlite_path: Path
) -> Generator[Any, Any, None]:
    """The real hasher and the real store together register and log in."""
    store = open_sqlite(sqlite_path)
    try:
        yield store.migrate()
        accounts = Accounts(store, hasher)
        yield defer.ensureDeferred(accounts.register("Alice", "password1"))
        name = yield defer.ensureDeferred(accounts.authenticate("alice", "password1"))
        with pytest.raises(CommandError) as caught:
            yield defer.ensureDeferred(accounts.authenticate("bob", "password1"))
    finally:
        store.close()
    assert name == "Alice"
    assert caught.value.code == "bad-credentials"


@pytest_twisted.inlineCallbacks
def test_set_password_for_unknown_key_does_nothing(store: Any) -> Any:
    """set_password for a key nobody holds creates nothing and does not fail."""
    yield store.set_password("ghost", HASH_A)
    row = yield store.find_account("ghost")
    assert row is None


@pytest_twisted.inlineCallbacks
def test_sessions_are_kept_found_and_deleted(store: Any) -> Any:
    """A session is found by its token hash until it is deleted."""
    yield store.migrate()
    yield store.create_session("hash-1", "alice", 1234.5)
    assert (yield store.find_session("hash-1")) == ("alice", 1234.5)
    assert (yield store.find_session("hash-2")) is None
    yield store.delete_session("hash-1")
    assert (yield store.find_session("hash-1")) is None


# Matches and moves, on every kind of store


@pytest_twisted.ensureDeferred
async def test_a_match_is_kept_move_by_move(store: Any) -> None:
    """A new match, its moves and its end come back as they were written."""
    assert await store.create_match("svc", "m1", "tictactoe", ["ann", "bo"], 100.0)
    assert not await store.create_match("svc", "m1", "tictactoe", ["x", "y"], 101.0)
    await store.record_move("m1", 1, "ann", "5", 110.0)
    await store.record_move("m1", 2, "bo", "1", 120.5)

    [live] = await store.live_matches("svc")
    assert (live.id, live.game, live.players) == ("m1", "tictactoe", ["ann", "bo"])
    assert live.moves == ["5", "1"]
    assert live.turn_started_at == 120.5
    assert await store.live_matches("elsewhere") == []
    # A restart moves the clock on without a move; the later time counts.
    await store.set_turn_started("m1", 125.0)
    assert (await store.live_matches("svc"))[0].turn_started_at == 125.0
    await store.record_move("m1", 3, "ann", "9", 126.0)
    assert (await store.live_matches("svc"))[0].turn_started_at == 126.0

    await store.finish_match("m1", "ann", "win", 130.0)
    assert await store.live_matches("svc") == []
    record = await store.match("m1")
    assert (record.status, record.winner, record.reason) == ("over", "ann", "win")
    assert record.ended_at == 130.0
    assert await store.match("m2") is None


@pytest_twisted.ensureDeferred
async def test_a_move_number_is_written_once(store: Any) -> None:
    """Writing the same move number twice fails rather than forking the log."""
    await store.create_match("svc", "m1", "tictactoe", ["ann", "bo"], 100.0)
    await store.record_move("m1", 1, "ann", "5", 110.0)
    with pytest.raises(Exception):  # noqa: B017 - each driver has its own
        await store.record_move("m1", 1, "ann", "6", 111.0)
    assert (await store.match("m1")).moves == ["5"]


@pytest_twisted.ensureDeferred
async def test_player_history_is_newest_first(store: Any) -> None:
    """A player's finished matches come newest first, live ones left out."""
    for number, ended in [(1, 300.0), (2, 100.0), (3, 200.0)]:
        await store.create_match("svc", f"m{number}", "tictactoe", ["ann", "bo"], 1.0)
        await store.finish_match(f"m{number}", None, "draw", ended)
    await store.create_match("svc", "live", "tictactoe", ["ann", "cy"], 1.0)
    found = await store.player_matches("ann", 2)
    assert [r.id for r in found] == ["m1", "m3"]
    assert await store.player_matches("cy") == []


@pytest_twisted.ensureDeferred
async def test_heartbeats_keep_the_latest(store: Any) -> None:
    """The last heartbeat of a service is the one most recently written."""
    assert await store.last_beat("svc") is None
    await store.beat("svc", 10.0)
    await store.beat("svc", 15.0)
    await store.beat("other", 99.0)
    assert await store.last_beat("svc") == 15.0
    await store.create_match("svc", "m1", "tictactoe", ["a", "b"], 1.0)
    await store.set_turn_started("m1", 42.0)
    assert (await store.match("m1")).turn_started_at == 42.0


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_stores_started_together_migrate_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Three processes' stores migrating one empty database at once all succeed."""
    if kind == "sqlite":
        url = f"sqlite:{tmp_path / 'shared.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_database")
    stores = [Store.open(url) for _ in range(3)]
    try:
        versions = await defer.gatherResults([s.migrate() for s in stores])
        assert versions == [len(MIGRATIONS)] * 3
        await stores[0].create_account("ann", "ann", HASH_A)
        assert await stores[2].find_account("ann") == ("ann", HASH_A)
    finally:
        for made in stores:
            made.close()


# Group commit: SQLite and PostgreSQL


@pytest_twisted.async_yield_fixture(params=["sqlite", "postgresql"])
async def database(request: Any, tmp_path: Path) -> Any:
    """A migrated real database, with its transactions counted."""
    if request.param == "postgresql":
        made = Store.open(request.getfixturevalue("postgres_database"))
    else:
        made = open_sqlite(tmp_path / "matches.sqlite")
    await made.migrate()
    made.transactions = 0
    real = made.pool.runInteraction

    def counted(*args: Any, **kw: Any) -> Any:
        made.transactions += 1
        return real(*args, **kw)

    made.pool.runInteraction = counted
    yield made
    made.close()


@pytest_twisted.ensureDeferred
async def test_writes_made_during_a_commit_commit_together(database: Any) -> None:
    """Moves queued behind a commit share the next transaction, and all land."""
    first = database.create_match("svc", "m1", "tictactoe", ["ann", "bo"], 100.0)
    queued = [
        database.record_move("m1", n, "ann", str(n), 100.0 + n) for n in range(1, 6)
    ]
    queued.append(database.finish_match("m1", "ann", "win", 200.0))
    assert not any(d.called for d in queued)
    assert await first is True
    await defer.gatherResults(queued)

    assert database.transactions == 2
    record = await database.match("m1")
    assert record.moves == ["1", "2", "3", "4", "5"]
    assert (record.status, record.winner) == ("over", "ann")


@pytest_twisted.ensureDeferred
async def test_a_failing_write_fails_alone(database: Any) -> None:
    """One bad write in a group fails its caller; the others still land."""
    await database.create_match("svc", "m1", "tictactoe", ["ann", "bo"], 100.0)
    await database.create_match("svc", "m2", "tictactoe", ["cy", "di"], 100.0)
    first = database.record_move("m1", 1, "ann", "5", 101.0)
    good = database.record_move("m1", 2, "bo", "1", 102.0)
    clash = database.record_move("m1", 2, "bo", "9", 102.0)
    other = database.record_move("m2", 1, "cy", "3", 103.0)
    await first
    await good
    with pytest.raises(Exception):  # noqa: B017 - each driver has its own
        await clash
    await other

    assert (await database.match("m1")).moves == ["5", "1"]
    assert (await database.match("m2")).moves == ["3"]


@pytest_twisted.ensureDeferred
async def test_a_write_alone_goes_at_once(database: Any) -> None:
    """With nothing in flight a write starts its own transaction at once."""
    await database.create_match("svc", "m1", "tictactoe", ["ann", "bo"], 100.0)
    before = database.transactions
    d = database.record_move("m1", 1, "ann", "5", 101.0)
    assert database.transactions == before + 1
    await d
    assert (await database.match("m1")).moves == ["5"]

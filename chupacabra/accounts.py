"""Accounts: the naming rules, and bcrypt kept off the reactor thread."""

from __future__ import annotations

import os
import threading
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import bcrypt
from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from .errors import CommandError
from .store import NameTakenError, Store

T = TypeVar("T")

MAX_NAME = 20
MIN_PASSWORD = 8
MAX_PASSWORD = 72


def normalise_name(raw: str) -> tuple[str, str]:
    """
    Return a username's display form and its key, or raise ``bad-username``.

    Names are 1-20 letters (with any combining marks), digits, ``_`` or
    ``-`` after NFKC normalisation; the key, which must be unique, ignores
    case.
    """
    name = unicodedata.normalize("NFKC", raw)
    if (
        not 1 <= len(name) <= MAX_NAME
        or not all(c.isalnum() or c in "_-" or _is_mark(c) for c in name)
        or _is_mark(name[0])
    ):
        raise CommandError(
            "bad-username", "a username is 1 to 20 letters, digits, _ or -"
        )
    return name, unicodedata.normalize("NFKC", name.casefold())


def _is_mark(c: str) -> bool:
    # Combining marks (such as vowel signs) belong to the letter before.
    return unicodedata.category(c) in ("Mn", "Mc")


def password_bytes(password: str) -> bytes:
    """Return the password as UTF-8, or raise ``bad-password``."""
    try:
        encoded = password.encode("utf-8")
    except UnicodeEncodeError:
        raise CommandError("bad-password", "a password must be valid Unicode text")
    if len(encoded) < MIN_PASSWORD:
        raise CommandError("bad-password", "a password needs at least 8 bytes")
    if len(encoded) > MAX_PASSWORD:
        raise CommandError(
            "bad-password", "a password may be at most 72 bytes of UTF-8"
        )
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise CommandError("bad-password", "a password may not hold control characters")
    return encoded


async def from_store(work: Awaitable[T]) -> T:
    """
    Await a store call, turning a store failure into ``unavailable``.

    The failure itself is logged once, here; the player is told to retry.
    """
    try:
        return await work
    except (NameTakenError, CommandError):
        raise
    except Exception:
        _log.failure("the store failed")
        raise CommandError(
            "unavailable", "the store is unreachable; try again shortly"
        ) from None


_log = Logger()


#: How long a hash runs on idle CPU time alone before it is given a share
#: of a busy machine's CPU (seconds).
IDLE_ONLY_FOR = 1.0
#: The niceness of a hash that has waited that long: low enough that a
#: waking reactor still takes the CPU back at once, high enough that
#: other busy programs on the machine cannot hold logins off.
BCRYPT_NICENESS = 10


def _set_priority(thread: int, idle: bool) -> None:
    """
    Run ``thread`` on idle CPU time only, or at BCRYPT_NICENESS.

    Where Linux's scheduling calls are missing or refused, nothing changes.
    """
    try:
        if idle:
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.sched_setscheduler(thread, os.SCHED_OTHER, os.sched_param(0))
            nice = os.getpriority(os.PRIO_PROCESS, os.getpid()) + BCRYPT_NICENESS
            os.setpriority(os.PRIO_PROCESS, thread, min(nice, 19))
    except (AttributeError, OSError):
        pass


class PasswordHasher:
    """
    bcrypt in a small pool of its own threads, below play in priority.

    bcrypt releases the GIL, so a couple of dedicated threads keep logins
    from queueing behind database work in the reactor's default pool. Each
    hash starts on idle CPU time only (Linux's SCHED_IDLE), so that logins
    wait rather than slow the moves of players already playing; one still
    running after IDLE_ONLY_FOR seconds, because something else keeps the
    CPU busy, is given a small share so that it finishes.
    """

    def __init__(self, reactor: Any, rounds: int = 12, threads: int = 2):
        self.reactor = reactor
        self.rounds = rounds
        self.pool = ThreadPool(minthreads=0, maxthreads=threads, name="bcrypt")
        # Any well-formed hash: checked against when the name is unknown, so
        # that a wrong name and a wrong password take the same time.
        self._decoy = bcrypt.hashpw(b"decoy-password", bcrypt.gensalt(rounds))
        #: The hashes running now: native thread id -> when it started.
        self.running: dict[int, float] = {}
        self._watch = task.LoopingCall(self.promote_waiting)
        self._watch.clock = reactor

    def start(self) -> None:
        self.pool.start()
        self._watch.start(IDLE_ONLY_FOR / 4, now=False)

    def stop(self) -> None:
        if self._watch.running:
            self._watch.stop()
        self.pool.stop()

    def promote_waiting(self, now: float | None = None) -> None:
        """Give each hash running longer than IDLE_ONLY_FOR a share of CPU."""
        now = time.monotonic() if now is None else now
        for thread, started in list(self.running.items()):
            if now - started >= IDLE_ONLY_FOR:
                _set_priority(thread, idle=False)

    def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        thread = threading.get_native_id()
        _set_priority(thread, idle=True)
        self.running[thread] = time.monotonic()
        try:
            return work(*args)
        finally:
            self.running.pop(thread, None)

    def hash(self, password: bytes) -> defer.Deferred[bytes]:
        salt = bcrypt.gensalt(self.rounds)
        return deferToThreadPool(
            self.reactor, self.pool, self._in_thread, bcrypt.hashpw, password, salt
        )

    def check(self, password: bytes, hashed: bytes | None) -> defer.Deferred[bool]:
        target = self._decoy if hashed is None else hashed
        d = deferToThreadPool(
            self.reactor, self.pool, self._in_thread, bcrypt.checkpw, password, target
        )
        if hashed is None:
            d.addCallback(lambda _: False)
        return d


class Accounts:
    """Register, authenticate and change passwords."""

    log = Logger()

    def __init__(self, store: Store, hasher: PasswordHasher) -> None:
        self.store = store
        self.hasher = hasher

    async def register(self, raw_name: str, password: str) -> str:
        name, key = normalise_name(raw_name)
        hashed = await self.hasher.hash(password_bytes(password))
        try:
            await from_store(
                self.store.create_account(name, key, hashed.decode("ascii"))
            )
        except NameTakenError:
            raise CommandError("name-taken", f"the name {name} is taken")
        self.log.info("account {name} registered", name=name)
        return name

    async def authenticate(self, raw_name: str, password: str) -> str:
        """Return the account's display name, or raise ``bad-credentials``."""
        wrong = CommandError("bad-credentials", "wrong username or password")
        try:
            _, key = normalise_name(raw_name)
            secret = password_bytes(password)
        except CommandError:
            raise wrong
        row: Any = await from_store(self.store.find_account(key))
        hashed = None if row is None else row[1].encode("ascii")
        if not await self.hasher.check(secret, hashed):
            raise wrong
        return str(row[0])

    async def change_password(self, name: str, old: str, new: str) -> None:
        await self.authenticate(name, old)
        await self.set_password(name, new)

    async def set_password(self, name: str, new: str) -> None:
        """Give ``name`` a new password; the caller has checked the old one."""
        _, key = normalise_name(name)
        hashed = await self.hasher.hash(password_bytes(new))
        await from_store(self.store.set_password(key, hashed.decode("ascii")))
        self.log.info("account {name} changed its password", name=name)

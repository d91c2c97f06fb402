"""Accounts: the naming rules, and bcrypt kept off the reactor thread."""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import bcrypt
from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
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


_lowered = threading.local()

#: How much lower than the reactor the bcrypt threads run (Linux nice).
#: Enough for a waking reactor to take the CPU back at once; not so much
#: that other busy programs on the machine could hold logins off for long
#: (at 10 a bcrypt thread still gets about a tenth of a contended core).
BCRYPT_NICENESS = 10


def _lower_priority() -> None:
    """Make the calling thread give way to the reactor for the CPU."""
    thread = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, thread) + BCRYPT_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(nice, 19))
    except (AttributeError, OSError):
        pass  # not Linux, or not allowed: run at the usual priority


def _yielding(work: Callable[..., T]) -> Callable[..., T]:
    """``work``, run in a thread that gives way to the reactor for the CPU."""

    def run(*args: Any) -> T:
        if not getattr(_lowered, "done", False):
            _lowered.done = True
            _lower_priority()
        return work(*args)

    return run


class PasswordHasher:
    """
    bcrypt in a small pool of its own threads.

    bcrypt releases the GIL, so a couple of dedicated threads keep logins
    from queueing behind database work in the reactor's default pool.
    """

    def __init__(self, reactor: IReactorThreads, rounds: int = 12, threads: int = 2):
        self.reactor = reactor
        self.rounds = rounds
        self.pool = ThreadPool(minthreads=0, maxthreads=threads, name="bcrypt")
        # Any well-formed hash: checked against when the name is unknown, so
        # that a wrong name and a wrong password take the same time.
        self._decoy = bcrypt.hashpw(b"decoy-password", bcrypt.gensalt(rounds))

    def start(self) -> None:
        self.pool.start()

    def stop(self) -> None:
        self.pool.stop()

    def hash(self, password: bytes) -> defer.Deferred[bytes]:
        salt = bcrypt.gensalt(self.rounds)
        return deferToThreadPool(
            self.reactor, self.pool, _yielding(bcrypt.hashpw), password, salt
        )

    def check(self, password: bytes, hashed: bytes | None) -> defer.Deferred[bool]:
        target = self._decoy if hashed is None else hashed
        d = deferToThreadPool(
            self.reactor, self.pool, _yielding(bcrypt.checkpw), password, target
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

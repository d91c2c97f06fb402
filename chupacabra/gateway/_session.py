"""
A client's session with the gateway: what every front end asks of it.

A front end owns a L{Session} per client (a line connection) or a
L{TokenSession} per API token, and calls its methods; each returns a
Deferred firing with a JSON-ready result or failing with a L{CommandError}.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from ..accounts import from_store, normalise_name, password_bytes
from ..errors import CommandError

if TYPE_CHECKING:
    from ._core import Gateway, OnlinePlayer, Seek

Event = dict[str, Any]
T = TypeVar("T")

#: How many events an API session keeps for event streams to resume from.
EVENT_BACKLOG = 1000


def _run(coro: Coroutine[Any, Any, T]) -> defer.Deferred[T]:
    return defer.Deferred.fromCoroutine(coro)


class Session:
    """
    One client of a front end: who they are and what they may do.

    Every public method returns a Deferred of a JSON-ready dict, or fails
    with a L{CommandError} whose code the front end shows.
    """

    log = Logger()

    #: Whether a new exclusive login of the same player ends this one.
    exclusive = True

    def __init__(
        self, gateway: Gateway, deliver: Callable[[Event], None], peer: str = ""
    ) -> None:
        #: The client's host, for limiting failed logins.
        self.peer = peer
        self.gateway = gateway
        self._deliver = deliver
        self.player: OnlinePlayer | None = None
        self.closed = False
        self.on_kicked: Callable[[], None] = lambda: None

    @property
    def name(self) -> str | None:
        return None if self.player is None else self.player.name

    def deliver(self, event: Event) -> None:
        self._deliver(event)

    def kicked(self) -> None:
        """Another login of the same player replaced this one."""
        self.deliver({"event": "logged-out", "reason": "logged in elsewhere"})
        self.gateway.log_out(self)
        self.on_kicked()

    def close(self) -> None:
        """The client went away."""
        self.closed = True
        self.gateway.log_out(self)

    def _need_player(self) -> OnlinePlayer:
        if self.player is None:
            raise CommandError("login-required", "log in first: LOGIN name password")
        return self.player

    # Accounts

    def register(self, name: str, password: str) -> defer.Deferred[Event]:
        async def run() -> Event:
            return {"username": await self.gateway.accounts.register(name, password)}

        return _run(run())

    def login(self, name: str, password: str) -> defer.Deferred[Event]:
        async def run() -> Event:
            if self.player is not None:
                raise CommandError(
                    "already-logged-in", f"already logged in as {self.player.name}"
                )
            display = await self.gateway.authenticate(name, password, self.peer)
            if self.player is not None:
                raise CommandError("already-logged-in", "already logged in")
            if self.closed:
                raise CommandError("bad-request", "the connection closed")
            await self.gateway.log_in(display, self)
            return {"username": display}

        return _run(run())

    def logout(self) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            self.gateway.log_out(self)
            return {"username": player.name}

        return _run(run())

    def change_password(self, old: str, new: str) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            password_bytes(new)
            try:
                await self.gateway.authenticate(player.name, old, self.peer)
                await self.gateway.accounts.set_password(player.name, new)
            except CommandError as e:
                if e.code == "bad-credentials":
                    raise CommandError("bad-credentials", "the old password is wrong")
                raise
            return {"username": player.name}

        return _run(run())

    # Games and matchmaking

    def games(self) -> defer.Deferred[Event]:
        async def run() -> Event:
            games: dict[str, Event] = {}
            for link in self.gateway.up_links():
                for name, info in link.games.items():
                    games.setdefault(name, info)
            return {"games": [games[name] for name in sorted(games)]}

        return _run(run())

    def play(self, game: str) -> defer.Deferred[Event]:
        """Seek an opponent; seeking again while waiting changes nothing."""

        async def run() -> Event:
            player = self._need_player()
            link = self.gateway.link_for(game)
            seek = player.waiting_seek(game)
            fresh = seek is None
            if seek is None:
                seek = player.new_seek(game)
            try:
                result: Event = await link.call("seek", player.name, game)
            except Exception:
                if fresh:
                    player.forget_seek(seek)
                raise
            if result["status"] == "matched" and seek.status == "waiting":
                seek.status, seek.match = "matched", result["match"]
            return {**result, "seek": seek.id}

        return _run(run())

    def seek(self, seek_id: str) -> defer.Deferred[Event]:
        async def run() -> Event:
            return self._own_seek(seek_id).to_json()

        return _run(run())

    def _own_seek(self, seek_id: str) -> Seek:
        player = self._need_player()
        seek = self.gateway.seeks.get(seek_id)
        if seek is None:
            raise CommandError("not-found", f"there is no seek {seek_id}")
        if seek.owner != player.name:
            raise CommandError("forbidden", f"seek {seek_id} is not yours")
        return seek

    def cancel_seek(self, seek_id: str) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            seek = self._own_seek(seek_id)
            if seek.status == "matched":
                raise CommandError(
                    "already-matched", f"seek {seek_id} became match {seek.match}"
                )
            if seek.status == "waiting":
                await self.gateway.link_for(seek.game).call(
                    "cancel", player.name, seek.game
                )
                if seek.status == "waiting":
                    seek.status = "cancelled"
            return seek.to_json()

        return _run(run())

    def cancel(self) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            left: list[str] = []
            for link in self.gateway.up_links():
                left.extend(await link.call("cancel", player.name))
            for seek in player.seeks.values():
                if seek.status == "waiting":
                    seek.status = "cancelled"
            return {"cancelled": sorted(left)}

        return _run(run())

    def matches(self) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            found: list[Event] = []
            waiting: list[str] = []
            for link in self.gateway.up_links():
                found.extend(await link.call("matches", player.name))
                waiting.extend(await link.call("waiting", player.name))
            return {"matches": found, "waiting": sorted(waiting)}

        return _run(run())

    def board(self, match: str | None = None) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            handle = player.pick(match)
            result: Event = await handle.call("state", player.name)
            return result

        return _run(run())

    def move(self, match: str | None, move: str) -> defer.Deferred[Event]:
        # The busiest command: plain callbacks, no coroutine around them.
        try:
            player = self._need_player()
            handle = player.pick(match)
        except CommandError:
            return defer.fail()
        return handle.call("move", player.name, move).addCallback(player.answered)

    def forfeit(self, match: str | None = None) -> defer.Deferred[Event]:
        async def run() -> Event:
            player = self._need_player()
            handle = player.pick(match)
            result: Event = await handle.call("forfeit", player.name)
            return result

        return _run(run())

    def recent(self) -> defer.Deferred[Event]:
        """The player's recently finished matches, newest first."""

        async def run() -> Event:
            player = self._need_player()
            found = []
            for handle in list(player.ended):
                try:
                    state = await handle.call("state", player.name)
                except CommandError:
                    continue
                found.append({k: state.get(k) for k in _ENDED_FIELDS})
            return {"matches": found}

        return _run(run())

    def history(
        self, name: str | None = None, limit: int = 20
    ) -> defer.Deferred[Event]:
        """A player's finished matches (by default the caller's), newest first."""

        async def run() -> Event:
            player = self._need_player()
            display = player.name
            if name is not None:
                display = await self._find_player(name)
            # Game services sharing a store each list every match in it.
            found: dict[str, Event] = {}
            for link in self.gateway.up_links():
                for match in await link.call("history", display, limit):
                    found.setdefault(match["match"], match)
            ordered = sorted(
                found.values(), key=lambda m: m.get("ended_at") or 0, reverse=True
            )
            return {"player": display, "matches": ordered[:limit]}

        return _run(run())

    async def _find_player(self, name: str) -> str:
        try:
            _, key = normalise_name(name)
        except CommandError:
            raise CommandError("not-found", f"there is no player {name[:32]}")
        row = await from_store(self.gateway.accounts.store.find_account(key))
        if row is None:
            raise CommandError("not-found", f"there is no player {name}")
        return str(row[0])

    def record(self, match_id: str) -> defer.Deferred[Event]:
        """A match as stored, with every move, from whichever service has it."""

        async def run() -> Event:
            self._need_player()
            for link in self.gateway.up_links():
                found: Event | None = await link.call("record", match_id)
                if found is not None:
                    return found
            raise CommandError("no-match", f"there is no match {match_id}")

        return _run(run())

    def who(self) -> defer.Deferred[Event]:
        return defer.succeed({"players": sorted(self.gateway.players)})


_ENDED_FIELDS = ("match", "game", "players", "winner", "reason", "moves")


class EventLog:
    """
    The last events of an API session, numbered, for streams to resume from.

    Numbers count up from 1 for the life of the session.
    """

    def __init__(self, size: int = EVENT_BACKLOG, first_id: int = 1) -> None:
        self.events: deque[tuple[int, Event]] = deque(maxlen=size)
        self.first_id = first_id
        self.last_id = first_id - 1
        self.listeners: list[Callable[[int, Event], None]] = []

    def append(self, event: Event) -> None:
        self.last_id += 1
        self.events.append((self.last_id, event))
        for listener in list(self.listeners):
            listener(self.last_id, event)

    def since(self, last_id: int) -> list[tuple[int, Event]] | None:
        """Events after ``last_id``, or ``None`` if some were dropped."""
        if last_id < self.first_id - 1 or last_id > self.last_id:
            # From before this log began (another session, say before the
            # gateway restarted) or never handed out: events may be lost.
            return None
        if last_id == self.last_id:
            return []
        if not self.events or self.events[0][0] > last_id + 1:
            return None
        return [(i, e) for i, e in self.events if i > last_id]


class TokenSession(Session):
    """
    An API client's session: it keeps the events it is sent.

    Event numbers start from the clock in milliseconds, so that a session
    made again after a gateway restart numbers past anything the old one
    handed out, and a client resuming across the restart is told of the gap.
    """

    exclusive = False

    def __init__(self, gateway: Gateway, key: str, expires_at: float) -> None:
        self.log_ = EventLog(first_id=int(gateway.clock.seconds() * 1000) + 1)
        super().__init__(gateway, self.log_.append)
        self.key = key
        self.expires_at = expires_at
        self.expiry: IDelayedCall | None = None
        #: When the store last confirmed the token (another gateway may
        #: have ended it since).
        self.checked_at = gateway.clock.seconds()
        #: Called when the session ends (logout or expiry).
        self.on_close: list[Callable[[], None]] = []

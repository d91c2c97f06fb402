"""
The gateway's core: what every front end asks of it.

A front end (the line protocol, the HTTP API) owns a L{Session} per
client and calls its methods; each returns a Deferred firing with a
JSON-ready result or failing with a L{CommandError}.  Updates that game
services push arrive at the player's L{OnlinePlayer} and are handed to
every session of that player.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from ..accounts import Accounts, from_store
from ..errors import CommandError
from ._link import ServiceLink, call_remote, unavailable
from ._session import EventLog, Session, TokenSession

Event = dict[str, Any]

#: How many finished matches a player's gateway remembers, so that a late
#: move is told ``game-over`` rather than ``no-match``.
RECENT_MATCHES = 10

#: How many finished seeks a player's gateway remembers.
RECENT_SEEKS = 20
#: Wrong passwords a client host may send in FAILURE_WINDOW seconds.
MAX_FAILURES = 20
FAILURE_WINDOW = 60.0
#: How long an API token lasts, in seconds, unless configured.
TOKEN_LIFETIME = 7 * 24 * 3600.0
#: Seconds a gateway trusts its memory of a token before asking the store
#: again, so that a logout on another gateway takes effect here too.
TOKEN_RECHECK = 5.0


@attrs.define
class Seek:
    """A player's request for an opponent in one game."""

    id: str
    owner: str
    game: str
    status: str = "waiting"
    match: str | None = None

    def to_json(self) -> Event:
        return {
            "id": self.id,
            "game": self.game,
            "status": self.status,
            "match": self.match,
        }


class MatchHandle:
    """The gateway's reference to one match on one game service."""

    def __init__(self, match_id: str, ref: pb.RemoteReference, link: ServiceLink):
        self.id = match_id
        self.ref = ref
        self.link = link

    def call(self, method: str, *args: Any) -> defer.Deferred[Any]:
        if not self.link.up or self.ref.broker.disconnected:
            return defer.fail(unavailable())
        return call_remote(self.ref, method, *args)


class FinishedMatch(MatchHandle):
    """
    A match that ended before its game service restarted.

    A service keeps only live matches in memory, so only the stored record
    is left: moves and forfeits find the game over, and its state is a
    ``no-match`` for callers to look the record up instead.
    """

    def __init__(self, match_id: str, link: ServiceLink) -> None:
        self.id = match_id
        self.link = link

    def call(self, method: str, *args: Any) -> defer.Deferred[Any]:
        if method in ("move", "forfeit"):
            return defer.fail(CommandError("game-over", f"match {self.id} is over"))
        return defer.fail(
            CommandError(
                "no-match", f"match {self.id} is over; HISTORY lists its record"
            )
        )


class OnlinePlayer(pb.Referenceable):
    """
    A logged-in player: the reference game services push updates to.

    One exists per player per gateway, however many sessions they have.
    """

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name
        self.sessions: list[Session] = []
        self.matches: dict[str, MatchHandle] = {}
        self.ended: deque[MatchHandle] = deque(maxlen=RECENT_MATCHES)
        self.seeks: dict[str, Seek] = {}

    def remote_event(
        self,
        encoded: str,
        match: pb.RemoteReference | None,
        recipients: list[str] | None = None,
    ) -> None:
        """
        An update (in JSON) from a game service for ``recipients`` here.

        One message serves every named player here (by default just this
        one), so that the service sends an update once per gateway.
        """
        names = recipients if isinstance(recipients, list) else [self.name]
        self._deliver_to(names, json.loads(encoded), match)

    def answered(self, answer: str) -> Event:
        """
        A game service's answer to a move: its reply, returned, and the
        updates it carries for players on this gateway, delivered.
        """
        data = json.loads(answer)
        for event in data["events"]:
            self._deliver_to(data["recipients"], event, None)
        result: Event = data["result"]
        return result

    def _deliver_to(
        self, names: list[str], event: Event, match: pb.RemoteReference | None
    ) -> None:
        for name in names:
            player = self if name == self.name else self.gateway.players.get(name)
            if isinstance(player, OnlinePlayer):
                player.receive(event, match)

    def receive(self, event: Event, match: pb.RemoteReference | None) -> None:
        match_id = event.get("match")
        kind = event.get("event")
        if match is not None and isinstance(match_id, str):
            link = self.gateway.link_of(match)
            if link is not None:
                self.matches[match_id] = MatchHandle(match_id, match, link)
        if kind == "match-started" and isinstance(match_id, str):
            seek = self.waiting_seek(str(event.get("game")))
            if seek is not None:
                seek.status, seek.match = "matched", match_id
        if kind == "match-ended" and match_id in self.matches:
            self.ended.appendleft(self.matches.pop(match_id))
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        for session in list(self.sessions):
            session.deliver(event)

    def adopt(self, link: ServiceLink, live: list[Any]) -> list[Event]:
        """
        Take the live matches ``link`` reported; return their snapshots.

        Matches the gateway knew on that link but the service no longer
        has were lost with it, and their players are told so.
        """
        snapshots = []
        seen = set()
        for snapshot, ref in live:
            seen.add(snapshot["match"])
            self.matches[snapshot["match"]] = MatchHandle(snapshot["match"], ref, link)
            snapshots.append(snapshot)
        for i, handle in enumerate(self.ended):
            if isinstance(handle, FinishedMatch) or handle.link is not link:
                continue
            if handle.ref.broker.disconnected:
                # Its game service restarted and kept only live matches.
                self.ended[i] = FinishedMatch(handle.id, link)
        for match_id, handle in list(self.matches.items()):
            if handle.link is link and match_id not in seen:
                del self.matches[match_id]
                self.deliver(
                    {
                        "event": "match-ended",
                        "match": match_id,
                        "players": None,
                        "winner": None,
                        "reason": "aborted",
                    }
                )
        return snapshots

    # Seeks

    def waiting_seek(self, game: str | None = None) -> Seek | None:
        for seek in self.seeks.values():
            if seek.status == "waiting" and game in (None, seek.game):
                return seek
        return None

    def new_seek(self, game: str) -> Seek:
        seek = Seek(secrets.token_hex(6), self.name, game)
        self.seeks[seek.id] = seek
        self.gateway.seeks[seek.id] = seek
        finished = [s for s in self.seeks.values() if s.status != "waiting"]
        for old in finished[: max(0, len(finished) - RECENT_SEEKS)]:
            self.forget_seek(old)
        return seek

    def forget_seek(self, seek: Seek) -> None:
        self.seeks.pop(seek.id, None)
        self.gateway.seeks.pop(seek.id, None)

    def pick(self, match_id: str | None) -> MatchHandle:
        """The match a command names, or the only live one."""
        if match_id is not None:
            handle = self.matches.get(match_id)
            if handle is None:
                handle = next((h for h in self.ended if h.id == match_id), None)
            if handle is None:
                raise CommandError("no-match", f"you have no match {match_id}")
            return handle
        if len(self.matches) == 1:
            return next(iter(self.matches.values()))
        if len(self.matches) > 1:
            names = ", ".join(sorted(self.matches))
            raise CommandError("no-match", f"name one of your matches: {names}")
        if self.ended:
            return self.ended[0]
        raise CommandError("no-match", "you have no live match; PLAY a game first")


class Gateway(service.MultiService):
    """
    Accounts, online players and the links to every game service.

    Front ends create a L{Session} per client with L{session}.
    """

    log = Logger()

    def __init__(
        self,
        accounts: Accounts,
        clock: IReactorTime | None = None,
        token_lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        super().__init__()
        self.clock: IReactorTime = default_clock() if clock is None else clock
        self.accounts = accounts
        self.token_lifetime = token_lifetime
        self.links: list[ServiceLink] = []
        self.players: dict[str, OnlinePlayer] = {}
        self.seeks: dict[str, Seek] = {}
        self.tokens: dict[str, TokenSession] = {}
        self._failures: dict[str, deque[float]] = {}

    # API tokens

    async def authenticate(self, name: str, password: str, peer: str) -> str:
        """
        Check a password, refusing a client host with too many recent failures.

        Each check costs a bcrypt hash; without the limit, one host sending
        wrong passwords could keep everyone else waiting to log in.
        """
        now = self.clock.seconds()
        failures = self._failures.get(peer)
        if failures is not None:
            while failures and failures[0] <= now - FAILURE_WINDOW:
                failures.popleft()
            if len(failures) >= MAX_FAILURES:
                raise CommandError(
                    "too-many-attempts",
                    "too many wrong passwords from your address; wait a minute",
                )
        try:
            return await self.accounts.authenticate(name, password)
        except CommandError as error:
            if error.code == "bad-credentials":
                self._failures.setdefault(peer, deque()).append(now)
            raise

    async def open_token(
        self, name: str, password: str, peer: str = ""
    ) -> tuple[str, TokenSession]:
        """Log in for the API: a new token and the session it stands for."""
        display = await self.authenticate(name, password, peer)
        token = secrets.token_urlsafe(32)
        expires_at = self.clock.seconds() + self.token_lifetime
        await from_store(
            self.accounts.store.create_session(_hash(token), display, expires_at)
        )
        session = await self._token_session(_hash(token), display, expires_at)
        return token, session

    async def by_token(self, token: str) -> TokenSession:
        """The session a token stands for, or ``unauthorized``."""
        key = _hash(token)
        session = self.tokens.get(key)
        now = self.clock.seconds()
        if session is not None and now - session.checked_at >= TOKEN_RECHECK:
            if not await self.recheck(session):
                raise CommandError("unauthorized", "a valid bearer token is required")
        if session is None:
            row = await from_store(self.accounts.store.find_session(key))
            if row is not None and key not in self.tokens:
                session = await self._token_session(key, row[0], row[1])
            else:
                session = self.tokens.get(key)
        if session is None or session.expires_at <= self.clock.seconds():
            if session is not None:
                await self.close_token(session)
            raise CommandError("unauthorized", "a valid bearer token is required")
        return session

    async def recheck(self, session: TokenSession) -> bool:
        """
        Whether ``session``'s token is still in the store; if another
        gateway sharing the store has logged it out, end it here too.
        """
        if await from_store(self.accounts.store.find_session(session.key)):
            session.checked_at = self.clock.seconds()
            return True
        if self.tokens.get(session.key) is session:
            await self.close_token(session)
        return False

    async def _token_session(
        self, key: str, name: str, expires_at: float
    ) -> TokenSession:
        session = TokenSession(self, key, expires_at)
        self.tokens[key] = session
        await self.log_in(name, session)
        delay = max(0.0, expires_at - self.clock.seconds())
        session.expiry = self.clock.callLater(delay, self._expire, session)
        return session

    def _expire(self, session: TokenSession) -> None:
        session.expiry = None
        self.close_token(session).addErrback(
            lambda f: self.log.failure("could not end an expired session", f)
        )

    def close_token(self, session: TokenSession) -> defer.Deferred[None]:
        """End an API session: its token stops working at once."""
        self.tokens.pop(session.key, None)
        if session.expiry is not None and session.expiry.active():
            session.expiry.cancel()
        session.expiry = None
        session.close()
        for call in session.on_close:
            call()
        session.on_close.clear()
        d: defer.Deferred[None] = self.accounts.store.delete_session(session.key)
        return d

    def add_link(self, link: ServiceLink) -> None:
        link.on_up = self._link_up
        link.on_down = self._link_down
        self.links.append(link)
        link.setServiceParent(self)

    def session(self, deliver: Callable[[Event], None], peer: str = "") -> Session:
        return Session(self, deliver, peer)

    def link_of(self, ref: pb.RemoteReference) -> ServiceLink | None:
        for link in self.links:
            if link.avatar is not None and link.avatar.broker is ref.broker:
                return link
        return None

    def link_for(self, game: str) -> ServiceLink:
        """The link to a service offering ``game``, or the reason there is none."""
        for link in self.links:
            if game in link.games and link.up:
                return link
        if any(game in link.games for link in self.links):
            raise unavailable()
        if not all(link.up for link in self.links):
            raise CommandError(
                "unavailable",
                f"no game service reachable now offers {game}; try again shortly",
            )
        raise CommandError("unknown-game", f"there is no game called {game}")

    def up_links(self) -> list[ServiceLink]:
        up = [link for link in self.links if link.up]
        if not up:
            raise unavailable()
        return up

    async def _link_up(self, link: ServiceLink) -> None:
        """A service (re)appeared: attach every online player to it."""
        for player in list(self.players.values()):
            try:
                live = await link.call("attach", player.name, player)
            except Exception:
                self.log.failure("could not attach {player}", player=player.name)
                continue
            for snapshot in player.adopt(link, live):
                player.deliver(snapshot)
            # The service forgot the queues when the link dropped.
            for seek in list(player.seeks.values()):
                if seek.status == "waiting" and seek.game in link.games:
                    await self._reseek(link, player, seek)

    async def _reseek(
        self, link: ServiceLink, player: OnlinePlayer, seek: Seek
    ) -> None:
        try:
            result = await link.call("seek", player.name, seek.game)
        except Exception:
            self.log.failure("could not seek again for {player}", player=player.name)
            return
        if result["status"] == "matched" and seek.status == "waiting":
            seek.status, seek.match = "matched", result["match"]

    def _link_down(self, link: ServiceLink) -> None:
        self.log.info("game service {service} is down", service=link.description)

    # Online players

    async def log_in(self, name: str, session: Session) -> OnlinePlayer:
        """
        Log ``session`` in as ``name`` at once, then fetch its live matches.

        The session counts as logged in from the start, so that a second
        login arriving meanwhile replaces it like any other.
        """
        player = self.players.get(name)
        if player is None:
            player = self.players[name] = OnlinePlayer(self, name)
        replaced = [o for o in player.sessions if o.exclusive and session.exclusive]
        player.sessions.append(session)
        session.player = player
        for other in replaced:
            other.kicked()
        self.log.info("{player} logged in", player=name)

        snapshots = []
        for link in self.links:
            if not link.up:
                continue
            try:
                live = await link.call("attach", name, player)
            except CommandError:
                continue
            snapshots.extend(player.adopt(link, live))
        for snapshot in snapshots:
            session.deliver(snapshot)
        return player

    def log_out(self, session: Session) -> None:
        player = session.player
        if player is None:
            return
        session.player = None
        if session in player.sessions:
            player.sessions.remove(session)
        self.log.info("{player} logged out", player=player.name)
        if player.sessions:
            return
        del self.players[player.name]
        for seek in list(player.seeks.values()):
            player.forget_seek(seek)
        for link in self.links:
            if link.up:
                link.call("detach", player.name).addErrback(
                    self._ignore, "detach", player.name
                )

    def _ignore(self, failure: Failure, action: str, name: str) -> None:
        if not failure.check(CommandError):
            self.log.failure(
                "{action} {player} failed", failure, action=action, player=name
            )


def default_clock() -> IReactorTime:
    """The global reactor, for code that was given no clock."""
    from twisted.internet import reactor

    return cast(IReactorTime, reactor)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def unexpected(log: Logger, failure: Failure, command: str) -> CommandError:
    """Log a failure nobody planned for and say so without details."""
    log.failure("command {command} failed unexpectedly", failure, command=command)
    return CommandError("internal", "the server failed; the failure was logged")


__all__ = [
    "EventLog",
    "Gateway",
    "MatchHandle",
    "OnlinePlayer",
    "Session",
    "TokenSession",
]

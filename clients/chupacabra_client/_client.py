"""The HTTP client: one method per endpoint, each returning a Deferred."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import quote

import treq
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from ._errors import UnknownError, error_from_response
from ._events import IDLE_TIMEOUT, MAX_DELAY, EventStream
from ._models import (
    Account,
    Event,
    Forfeited,
    Game,
    Health,
    Matches,
    MatchState,
    Moved,
    Seek,
    Session,
)

T = TypeVar("T")

#: Where C{chupacabra} serves its HTTP API unless told otherwise.
DEFAULT_URL = "http://127.0.0.1:7655"
#: Seconds a request may wait for its response before it is given up.
TIMEOUT = 30.0

#: Any reactor treq's Agent accepts: TCP, time and name resolution.
Reactor = Any


def _run(coroutine: Coroutine[Any, Any, T]) -> defer.Deferred[T]:
    return defer.Deferred.fromCoroutine(coroutine)


def _segment(value: str) -> str:
    return quote(value, safe="")


class Client:
    """
    A client of one chupacabra server's HTTP API.

    Every method returns a Deferred (``await`` it in an ``async def``
    run by C{Deferred.fromCoroutine} or C{pytest_twisted.ensureDeferred})
    that fires with an attrs object, or fails with a L{ChupacabraError}
    subclass for the server's error code.  Network failures arrive as
    Twisted's own exceptions (C{ConnectionRefusedError} and the like).

    @param url: The server's base URL, such as C{http://127.0.0.1:7655}.
    @param token: A bearer token from an earlier L{log_in}, if any.
    @param reactor: The reactor to use; the global one if not given.
    @param http: A treq C{HTTPClient} to send requests with; by default
        one over a connection pool of the client's own.
    @param pool: The connection pool L{close} closes; give it along with
        ``http`` if that client uses it.
    @param timeout: Seconds each request may wait for its response.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        reactor: Reactor | None = None,
        http: HTTPClient | None = None,
        pool: HTTPConnectionPool | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        if http is None:
            if pool is None:
                pool = HTTPConnectionPool(reactor, persistent=True)
            http = HTTPClient(Agent(reactor, pool=pool))

        self.url = url.rstrip("/")
        #: The bearer token sent with every request, set by L{log_in}.
        self.token = token
        #: Who L{log_in} logged in as.
        self.username: str | None = None
        self._reactor: Reactor = reactor
        self._http = http
        self._pool = pool
        self._timeout = timeout
        self._streams: set[EventStream] = set()

    # Accounts and sessions

    def register(self, username: str, password: str) -> defer.Deferred[Account]:
        """Create an account (this does not log in)."""
        body = {"username": username, "password": password}
        d = self._call("POST", "/v1/accounts", body, ok=201)
        return d.addCallback(Account.from_json)

    def log_in(self, username: str, password: str) -> defer.Deferred[Session]:
        """Open a session; later requests carry its token."""

        async def run() -> Session:
            body = {"username": username, "password": password}
            session = Session.from_json(
                await self._call("POST", "/v1/sessions", body, ok=201)
            )
            self.token, self.username = session.token, session.username
            return session

        return _run(run())

    def log_out(self) -> defer.Deferred[None]:
        """End the session: its token stops working at once."""

        async def run() -> None:
            await self._call("DELETE", "/v1/sessions/current", ok=204)
            self.token = self.username = None

        return _run(run())

    def change_password(self, old: str, new: str) -> defer.Deferred[Account]:
        body = {"old_password": old, "new_password": new}
        d = self._call("PUT", "/v1/accounts/me/password", body)
        return d.addCallback(Account.from_json)

    # Games and matchmaking

    def games(self) -> defer.Deferred[list[Game]]:
        """The game types on offer."""
        d = self._call("GET", "/v1/games")
        return d.addCallback(lambda data: [Game.from_json(g) for g in data["games"]])

    def seek(self, game: str = "tictactoe") -> defer.Deferred[Seek]:
        """
        Ask for an opponent in ``game``.

        The seek is ``matched`` at once if someone was waiting; otherwise
        the ``match-started`` event says when it is.
        """
        d = self._call("POST", f"/v1/games/{_segment(game)}/seeks", ok=201)
        return d.addCallback(Seek.from_json)

    def get_seek(self, seek_id: str) -> defer.Deferred[Seek]:
        d = self._call("GET", f"/v1/seeks/{_segment(seek_id)}")
        return d.addCallback(Seek.from_json)

    def cancel_seek(self, seek_id: str) -> defer.Deferred[Seek]:
        """Stop waiting; fails with L{AlreadyMatched} if too late."""
        d = self._call("DELETE", f"/v1/seeks/{_segment(seek_id)}")
        return d.addCallback(Seek.from_json)

    # Matches

    def matches(self) -> defer.Deferred[Matches]:
        """The caller's live matches and recently finished ones."""
        return self._call("GET", "/v1/matches").addCallback(Matches.from_json)

    def match(self, match_id: str) -> defer.Deferred[MatchState]:
        """One match's state, live or recently finished."""
        d = self._call("GET", f"/v1/matches/{_segment(match_id)}")
        return d.addCallback(MatchState.from_json)

    def move(self, match_id: str, move: str | int) -> defer.Deferred[Moved]:
        """Make a move, written as a player would type it (``5``)."""
        path = f"/v1/matches/{_segment(match_id)}/moves"
        d = self._call("POST", path, {"move": str(move)}, ok=201)
        return d.addCallback(Moved.from_json)

    def forfeit(self, match_id: str) -> defer.Deferred[Forfeited]:
        """Give up a match; the other player wins."""
        d = self._call("POST", f"/v1/matches/{_segment(match_id)}/forfeit")
        return d.addCallback(Forfeited.from_json)

    # The server

    def health(self) -> defer.Deferred[Health]:
        """Whether the gateway reaches its game services (``ok``) or not."""
        return self._call("GET", "/healthz", ok=(200, 503)).addCallback(
            Health.from_json
        )

    def openapi(self) -> defer.Deferred[dict[str, Any]]:
        """The server's OpenAPI document."""
        return self._call("GET", "/v1/openapi.json")

    # Events

    def events(
        self,
        last_event_id: str | int | None = None,
        *,
        on_event: Callable[[Event], object] | None = None,
        clock: IReactorTime | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_delay: float = MAX_DELAY,
    ) -> EventStream:
        """
        Open the caller's event stream, already connecting.

        Without ``last_event_id`` the stream starts now, with a
        ``stream-start`` event (once it arrives, no later event can be
        missed); with one it replays the events after that id.
        ``on_event`` takes each event instead of L{EventStream.next};
        ``clock`` times reconnections (the reactor by default).
        """
        stream = EventStream(
            self._open_events,
            self._reactor if clock is None else clock,
            None if last_event_id is None else str(last_event_id),
            on_event=on_event,
            idle_timeout=idle_timeout,
            max_delay=max_delay,
        )
        self._streams.add(stream)
        stream.when_ended().addBoth(lambda _: self._streams.discard(stream))
        return stream.start()

    def _open_events(self, last_id: str | None) -> defer.Deferred[IResponse]:
        headers = self._headers("text/event-stream")
        headers.addRawHeader("cache-control", "no-cache")
        if last_id is not None:
            headers.addRawHeader("last-event-id", last_id)
        d = self._http.request(
            "GET",
            self.url + "/v1/events",
            headers=headers,
            unbuffered=True,
            timeout=self._timeout,
            reactor=self._reactor,
        )
        return cast("defer.Deferred[IResponse]", d)

    # Closing

    def close(self) -> defer.Deferred[None]:
        """Stop every event stream and close the pool's idle connections."""

        async def run() -> None:
            await defer.gatherResults([s.stop() for s in list(self._streams)])
            if self._pool is not None:
                await self._pool.closeCachedConnections()

        return _run(run())

    # Requests

    def _headers(self, accept: str) -> Headers:
        headers = Headers({"accept": [accept]})
        if self.token is not None:
            headers.addRawHeader("authorization", f"Bearer {self.token}")
        return headers

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        ok: int | tuple[int, ...] = 200,
    ) -> defer.Deferred[Any]:
        return _run(
            self._send(method, path, body, (ok,) if isinstance(ok, int) else ok)
        )

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        ok: tuple[int, ...],
    ) -> Any:
        url, headers = self.url + path, self._headers("application/json")
        if body is None:
            response = await self._http.request(
                method,
                url,
                headers=headers,
                timeout=self._timeout,
                reactor=self._reactor,
            )
        else:
            response = await self._http.request(
                method,
                url,
                headers=headers,
                json=body,
                timeout=self._timeout,
                reactor=self._reactor,
            )

        data = await treq.content(response)
        if response.code not in ok:
            raise error_from_response(response.code, data)
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise UnknownError(
                "bad-json", response.code, f"{method} {path} answered with non-JSON"
            )

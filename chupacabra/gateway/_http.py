"""
The HTTP/JSON API, on twisted.web, over the same core as the line protocol.

Every response is JSON, errors included: ``{"error": {"code", "message"}}``
with the status that fits the code.  Updates reach clients as Server-Sent
Events on ``GET /v1/events``, numbered so that a dropped stream resumes
from ``Last-Event-ID`` without losing or repeating one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

import attrs
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from ..errors import CommandError
from ._core import Event, Gateway, Session, TokenSession, default_clock, unexpected
from ._openapi import openapi_document

#: The largest request body accepted, in bytes.
MAX_BODY = 64 * 1024
#: Seconds between comments that keep an idle event stream open.
KEEPALIVE = 15.0

STATUS = {
    "bad-request": 400,
    "bad-username": 400,
    "bad-password": 400,
    "unauthorized": 401,
    "bad-credentials": 401,
    "login-required": 401,
    "forbidden": 403,
    "not-found": 404,
    "no-match": 404,
    "unknown-game": 404,
    "method-not-allowed": 405,
    "name-taken": 409,
    "not-your-turn": 409,
    "game-over": 409,
    "already-matched": 409,
    "too-large": 413,
    "too-many-attempts": 429,
    "unsupported-media-type": 415,
    "bad-move": 422,
    "illegal-move": 422,
    "internal": 500,
    "unavailable": 503,
}


class HttpError(CommandError):
    """A L{CommandError} with a status other than its code's usual one."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


class ApiRequest(server.Request):
    """A request that stops reading its body past L{MAX_BODY} bytes."""

    too_large = False
    _received = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self.too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > MAX_BODY:
            self.too_large = True
        if not self.too_large:
            super().handleContentChunk(data)


@attrs.frozen
class Reply:
    """What a handler answers: a status and a JSON body (or none)."""

    status: int
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)


Handler = Callable[..., Awaitable[Reply | None]]


@attrs.frozen
class Route:
    method: str
    template: str
    name: str
    auth: bool
    pattern: re.Pattern[str]


def _route(method: str, template: str, name: str, auth: bool) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, template, name, auth, re.compile(f"^{regex}$"))


ROUTES = [
    _route("POST", "/v1/accounts", "create_account", False),
    _route("PUT", "/v1/accounts/me/password", "change_password", True),
    _route("POST", "/v1/sessions", "create_session", False),
    _route("DELETE", "/v1/sessions/current", "delete_session", True),
    _route("GET", "/v1/games", "games", False),
    _route("POST", "/v1/games/{game}/seeks", "seek", True),
    _route("GET", "/v1/seeks/{seek}", "get_seek", True),
    _route("DELETE", "/v1/seeks/{seek}", "delete_seek", True),
    _route("GET", "/v1/matches", "matches", True),
    _route("GET", "/v1/matches/{match}", "get_match", True),
    _route("POST", "/v1/matches/{match}/moves", "move", True),
    _route("POST", "/v1/matches/{match}/forfeit", "forfeit", True),
    _route("GET", "/v1/players/{name}/matches", "player_matches", True),
    _route("GET", "/v1/events", "events", True),
    _route("GET", "/v1/openapi.json", "openapi", False),
    _route("GET", "/healthz", "health", False),
]


#: The routes that read a JSON body; the others ignore any body sent.
_TAKES_BODY = {"create_account", "change_password", "create_session", "move"}


def _iso(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _string(body: Event, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise CommandError("bad-request", f"the body needs a string field {name!r}")
    return value


def _public(event: Event) -> Event:
    return {k: v for k, v in event.items() if k != "text"}


class ApiResource(resource.Resource):
    """The whole API: one leaf resource that routes by method and path."""

    isLeaf = True
    log = Logger()

    def __init__(self, gateway: Gateway, clock: IReactorTime | None = None) -> None:
        super().__init__()
        self.gateway = gateway
        self.clock = default_clock() if clock is None else clock

    def render(self, request: Any) -> Any:
        request.setHeader(b"access-control-allow-origin", b"*")
        d = defer.Deferred.fromCoroutine(self._respond(request))
        d.addErrback(self._broken, request)
        return server.NOT_DONE_YET

    def _broken(self, failure: Failure, request: Any) -> None:
        error = unexpected(self.log, failure, request.path.decode("latin-1"))
        self._send(request, Reply(500, _error_body(error)))

    async def _respond(self, request: Any) -> None:
        method = request.method.decode("latin-1").upper()
        path = request.path.decode("utf-8", "replace")
        try:
            reply = await self._dispatch(request, method, path)
        except HttpError as error:
            reply = Reply(error.status, _error_body(error))
        except CommandError as error:
            reply = Reply(STATUS.get(error.code, 400), _error_body(error))
        if reply is not None:
            self._send(request, reply)

    async def _dispatch(self, request: Any, method: str, path: str) -> Reply | None:
        found = [(r, m) for r in ROUTES if (m := r.pattern.match(path))]
        if not found:
            raise CommandError("not-found", f"there is nothing at {path}")
        methods = {r.method for r, _ in found}
        if "GET" in methods:
            methods.add("HEAD")
        allowed = sorted(methods)
        if method == "OPTIONS":
            return Reply(204, None, _preflight(allowed))
        # HEAD is GET without the body, which twisted.web leaves out.
        wanted = "GET" if method == "HEAD" else method
        matching = [(r, m) for r, m in found if r.method == wanted]
        if not matching:
            error = CommandError(
                "method-not-allowed", f"{path} allows {', '.join(allowed)}"
            )
            return Reply(405, _error_body(error), {"allow": ", ".join(allowed)})
        route, params = matching[0]
        body: Event = {}
        if route.name in _TAKES_BODY:
            if getattr(request, "too_large", False):
                raise CommandError(
                    "too-large", f"request bodies may be at most {MAX_BODY} bytes"
                )
            body = self._body(request)
        session: Session | None = None
        if route.auth:
            session = await self._authenticate(request, route)
        if method == "HEAD" and route.name == "events":
            # The stream's headers, without opening the stream.
            return Reply(200, None, dict(EVENT_STREAM_HEADERS))
        handler: Handler = getattr(self, "_" + route.name)
        values = {k: unquote(v) for k, v in params.groupdict().items()}
        return await handler(request, session, body, **values)

    def _body(self, request: Any) -> Event:
        raw = request.content.read() if request.content is not None else b""
        if not raw.strip():
            return {}
        kind = (request.getHeader(b"content-type") or b"").decode("latin-1")
        if kind.split(";")[0].strip().lower() != "application/json":
            raise CommandError(
                "unsupported-media-type", "request bodies must be application/json"
            )
        try:
            body = json.loads(raw)
            # JSON may escape half of a UTF-16 pair ("\ud800"): no text.
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):
            raise CommandError("bad-request", "the body is not valid JSON in UTF-8")
        if not isinstance(body, dict):
            raise CommandError("bad-request", "the body must be a JSON object")
        return body

    async def _authenticate(self, request: Any, route: Route) -> TokenSession:
        header = (request.getHeader(b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token = ""
            if route.name == "events":
                # EventSource in browsers cannot set headers.
                raw = request.args.get(b"access_token", [b""])[0]
                token = raw.decode("utf-8", "replace")
        if not token.strip():
            raise CommandError(
                "unauthorized",
                "send Authorization: Bearer <token> from POST /v1/sessions",
            )
        return await self.gateway.by_token(token.strip())

    def _send(self, request: Any, reply: Reply) -> None:
        if request.finished or request._disconnected:
            return
        request.setResponseCode(reply.status)
        for name, value in reply.headers.items():
            request.setHeader(name.encode(), value.encode())
        if reply.body is not None:
            data = json.dumps(reply.body).encode("utf-8")
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"content-length", str(len(data)).encode())
            request.write(data)
        request.finish()

    # Handlers: (request, session, body, **path parameters) -> Reply

    def _anonymous(self) -> Session:
        return self.gateway.session(lambda event: None)

    async def _create_account(self, request: Any, session: None, body: Event) -> Reply:
        name, password = _string(body, "username"), _string(body, "password")
        result = await self._anonymous().register(name, password)
        return Reply(201, result)

    async def _change_password(
        self, request: Any, session: Session, body: Event
    ) -> Reply:
        old, new = _string(body, "old_password"), _string(body, "new_password")
        session.peer = str(getattr(request.getClientAddress(), "host", ""))
        try:
            result = await session.change_password(old, new)
        except CommandError as error:
            if error.code == "bad-credentials":
                raise HttpError(403, error.code, error.message)
            raise
        return Reply(200, result)

    async def _create_session(self, request: Any, session: None, body: Event) -> Reply:
        name, password = _string(body, "username"), _string(body, "password")
        peer = str(getattr(request.getClientAddress(), "host", ""))
        token, opened = await self.gateway.open_token(name, password, peer)
        return Reply(
            201,
            {
                "token": token,
                "expires_at": _iso(opened.expires_at),
                "username": opened.name,
            },
        )

    async def _delete_session(
        self, request: Any, session: TokenSession, body: Event
    ) -> Reply:
        await self.gateway.close_token(session)
        return Reply(204)

    async def _games(self, request: Any, session: None, body: Event) -> Reply:
        return Reply(200, await self._anonymous().games())

    async def _seek(
        self, request: Any, session: Session, body: Event, game: str
    ) -> Reply:
        result = await session.play(game.lower())
        seek = await session.seek(result["seek"])
        return Reply(201, seek, {"location": f"/v1/seeks/{seek['id']}"})

    async def _get_seek(
        self, request: Any, session: Session, body: Event, seek: str
    ) -> Reply:
        return Reply(200, await session.seek(seek))

    async def _delete_seek(
        self, request: Any, session: Session, body: Event, seek: str
    ) -> Reply:
        return Reply(200, await session.cancel_seek(seek))

    async def _matches(self, request: Any, session: Session, body: Event) -> Reply:
        live = await session.matches()
        recent = await session.recent()
        return Reply(200, {"matches": live["matches"], "recent": recent["matches"]})

    async def _get_match(
        self, request: Any, session: Session, body: Event, match: str
    ) -> Reply:
        try:
            return Reply(200, _public(await session.board(match)))
        except CommandError as error:
            if error.code != "no-match":
                raise
        # Not one of the caller's: finished matches are public record.
        record = await session.record(match)
        if record["status"] != "over":
            raise CommandError("no-match", f"you have no match {match}")
        return Reply(200, record)

    async def _player_matches(
        self, request: Any, session: Session, body: Event, name: str
    ) -> Reply:
        return Reply(200, await session.history(name))

    async def _move(
        self, request: Any, session: Session, body: Event, match: str
    ) -> Reply:
        move = body.get("move")
        if isinstance(move, float) and move.is_integer():
            move = int(move)
        if isinstance(move, int) and not isinstance(move, bool):
            move = str(move)
        if not isinstance(move, str):
            raise CommandError("bad-request", "the body needs a string field 'move'")
        return Reply(201, await session.move(match, move))

    async def _forfeit(
        self, request: Any, session: Session, body: Event, match: str
    ) -> Reply:
        return Reply(200, await session.forfeit(match))

    async def _openapi(self, request: Any, session: None, body: Event) -> Reply:
        return Reply(200, openapi_document())

    async def _health(self, request: Any, session: None, body: Event) -> Reply:
        services = [
            {"name": link.description, "up": link.up, "games": sorted(link.games)}
            for link in self.gateway.links
        ]
        healthy = all(s["up"] for s in services)
        return Reply(
            200 if healthy else 503,
            {"status": "ok" if healthy else "degraded", "services": services},
        )

    async def _events(self, request: Any, session: TokenSession, body: Event) -> None:
        raw = request.getHeader(b"last-event-id")
        if raw is None:
            raw = request.args.get(b"last_event_id", [None])[0]
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        if text is not None and not (text.isascii() and text.isdigit()):
            raise CommandError("bad-request", "Last-Event-ID must be a whole number")
        last_id = None if text is None else int(text)
        EventStream(request, session, self.clock).start(last_id)


EVENT_STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
}


class EventStream:
    """One open ``GET /v1/events`` response."""

    def __init__(
        self, request: Any, session: TokenSession, clock: IReactorTime
    ) -> None:
        self.request = request
        self.session = session
        self.keepalive = task.LoopingCall(self._comment)
        self.keepalive.clock = clock

    def start(self, last_id: int | None) -> None:
        request = self.request
        for name, value in EVENT_STREAM_HEADERS.items():
            request.setHeader(name.encode(), value.encode())
        request.write(b"retry: 2000\n\n")

        log = self.session.log_
        backlog = [] if last_id is None else log.since(last_id)
        if backlog is None:
            self._reset(log.last_id, "events since that id were dropped")
        elif last_id is None:
            self._reset(log.last_id, "stream started")
        for number, event in backlog or []:
            self._send(number, event)

        log.listeners.append(self._send)
        self.session.on_close.append(self._end)
        self.keepalive.start(KEEPALIVE, now=False)
        request.notifyFinish().addBoth(self._finished)

    def _reset(self, last_id: int, why: str) -> None:
        # Carries the id to resume from, so a client that saw nothing yet
        # still resumes without a gap.
        self._send(
            last_id, {"event": "stream-start", "last_id": last_id, "reason": why}
        )

    def _send(self, number: int, event: Event) -> None:
        data = json.dumps(_public(event))
        kind = event.get("event", "message")
        self.request.write(f"id: {number}\nevent: {kind}\ndata: {data}\n\n".encode())

    def _comment(self) -> None:
        self.request.write(b": keepalive\n\n")
        # A stream outlives any request: see whether the token still holds.
        d = defer.Deferred.fromCoroutine(self.session.gateway.recheck(self.session))
        d.addErrback(lambda f: f.trap(CommandError))  # store down: keep going

    def _end(self) -> None:
        if not self.request.finished and not self.request._disconnected:
            self.request.finish()

    def _finished(self, result: Any) -> None:
        if self.keepalive.running:
            self.keepalive.stop()
        if self._send in self.session.log_.listeners:
            self.session.log_.listeners.remove(self._send)
        if self._end in self.session.on_close:
            self.session.on_close.remove(self._end)


def _preflight(allowed: list[str]) -> dict[str, str]:
    return {
        "allow": ", ".join([*allowed, "OPTIONS"]),
        "access-control-allow-methods": ", ".join([*allowed, "OPTIONS"]),
        "access-control-allow-headers": "authorization, content-type, last-event-id",
        "access-control-max-age": "600",
    }


def _error_body(error: CommandError) -> Event:
    return {"error": {"code": error.code, "message": error.message}}


def _access_log(timestamp: str, request: Any) -> str:
    """The combined log format, leaving out query strings (tokens travel there)."""
    line: str = http.combinedLogFormatter(timestamp, _WithoutQuery(request))
    return line


class _WithoutQuery:
    def __init__(self, request: Any) -> None:
        self._request = request
        self.uri = request.uri.split(b"?", 1)[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def api_site(gateway: Gateway, clock: IReactorTime | None = None) -> server.Site:
    """The twisted.web site serving the API."""
    site = server.Site(ApiResource(gateway, clock), logFormatter=_access_log)
    site.requestFactory = ApiRequest
    site.displayTracebacks = False
    return site

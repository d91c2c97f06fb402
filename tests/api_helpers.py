"""An in-memory treq client for the HTTP API, pumped together with a World."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import attrs
from treq.client import HTTPClient
from treq.testing import RequestTraversalAgent
from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from zope.interface import implementer

from chupacabra.gateway import ApiResource
from chupacabra.gateway._http import ROUTES, ApiRequest, Route

BASE = "http://127.0.0.1"
PASSWORD = "password1"
#: Rounds of pumping after which a request that has not finished never will.
PUMP_ROUNDS = 100


def result_of(d: defer.Deferred[Any]) -> Any:
    """The result ``d`` already has, raising its failure if it failed."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]


def route_of(method: str, path: str) -> Route | None:
    """The route that serves ``method`` on ``path``, if any."""
    bare = path.split("?")[0]
    for route in ROUTES:
        if route.method == method and route.pattern.match(bare):
            return route
    return None


def concrete(template: str) -> str:
    """A path for a route template, with made-up parameters."""
    return re.sub(
        r"\{(\w+)\}",
        lambda m: "tictactoe" if m.group(1) == "game" else "nosuch",
        template,
    )


def credentials(name: str, password: str = PASSWORD) -> dict[str, str]:
    """A login or registration body."""
    return {"username": name, "password": password}


@implementer(IBodyProducer)
class BytesBody:
    """A request body written in one go; chunked when its length is withheld."""

    def __init__(self, data: bytes, chunked: bool = False) -> None:
        self.data = data
        self.length = UNKNOWN_LENGTH if chunked else len(data)

    def startProducing(self, consumer: Any) -> defer.Deferred[None]:
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _producer(data: Any) -> Any:
    return data if IBodyProducer.providedBy(data) else BytesBody(data)


@attrs.frozen
class Answer:
    """A whole response: status, headers and body."""

    method: str
    path: str
    status: int
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return None if values is None else values[0]

    @property
    def media_type(self) -> str | None:
        kind = self.header("content-type")
        return None if kind is None else kind.split(";")[0].strip()

    def json(self) -> Any:
        assert self.media_type == "application/json", (self.status, self.headers)
        return json.loads(self.body)

    def error(self) -> str:
        """The code of a JSON error body, checking the body's shape."""
        body = self.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str), body
        code: str = body["error"]["code"]
        return code


class Collector(Protocol):
    """Receives a streamed response body as it arrives."""

    def __init__(self) -> None:
        self.data = b""
        self.done: defer.Deferred[None] = defer.Deferred()
        self.reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.reason = reason
        self.done.callback(None)

    def close(self) -> None:
        """Hang up, as a client that goes away does."""
        assert self.transport is not None
        self.transport.stopProducing()


class EventReader:
    """One open ``GET /v1/events`` response, parsed into SSE messages."""

    def __init__(self, api: Api, response: IResponse) -> None:
        self.api = api
        self.response = response
        self.collector = Collector()
        response.deliverBody(self.collector)

    @property
    def ended(self) -> bool:
        self.api.pump()
        return self.collector.done.called

    def close(self) -> None:
        self.collector.close()
        self.api.pump()

    def messages(self) -> list[dict[str, Any]]:
        """Every complete message so far: fields, or ``{"comment": text}``."""
        self.api.pump()
        blocks = self.collector.data.decode("utf-8").split("\n\n")[:-1]
        found: list[dict[str, Any]] = []
        for block in blocks:
            message: dict[str, Any] = {}
            for line in block.split("\n"):
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "":
                    message["comment"] = value
                elif field == "data":
                    message["data"] = json.loads(value)
                else:
                    message[field] = value
            found.append(message)
        return found

    def events(self) -> list[dict[str, Any]]:
        """The messages that are events, each as its id, type and data."""
        return [
            {"id": int(m["id"]), "event": m["event"], "data": m["data"]}
            for m in self.messages()
            if "event" in m
        ]


class Api:
    """
    treq over the API resource in memory, served the way L{api_site} serves
    it, with the world's PB connections pumped alongside.
    """

    def __init__(self, world: Any) -> None:
        self.world = world
        # The gateway keeps its own clock for token expiry and event ids:
        # let it be the world's, so that tests can move time.
        world.gateway.clock = world.reactor
        self.resource = ApiResource(world.gateway, world.reactor)
        self.agent = RequestTraversalAgent(self.resource)
        # api_site serves the resource with ApiRequest, which counts body
        # bytes; ApiResource fails on the plain Request a default Site makes.
        self.agent._serverFactory.requestFactory = ApiRequest
        self.client = HTTPClient(self.agent, data_to_body_producer=_producer)
        #: Every answer so far, for checks that look at all of them.
        self.answers: list[Answer] = []
        #: The player each token was issued to.
        self.names: dict[str, str] = {}

    def pump(self, until: Callable[[], bool] = lambda: False) -> None:
        """Move bytes over PB and HTTP until ``until()``, or for a while."""
        for _ in range(PUMP_ROUNDS):
            self.world.flush()
            self.agent.flush()
            if until():
                return
        self.world.flush()

    def _wait(self, d: defer.Deferred[Any]) -> Any:
        self.pump(lambda: d.called)
        return result_of(d)

    def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any,
        data: bytes | BytesBody | None,
        headers: dict[str, str] | None,
    ) -> defer.Deferred[Any]:
        sent = Headers()
        for name, value in (headers or {}).items():
            sent.addRawHeader(name, value)
        if token is not None:
            sent.addRawHeader("authorization", f"Bearer {token}")

        if body is not None:
            data = json.dumps(body).encode("utf-8")
            if not sent.hasHeader("content-type"):
                sent.addRawHeader("content-type", "application/json")
        return self.client.request(
            method, BASE + path, headers=sent, data=data, unbuffered=True
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        data: bytes | BytesBody | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Make one request and return its whole response."""
        response = self._wait(self._send(method, path, token, body, data, headers))
        content = self._wait(response.content())
        answer = Answer(method, path, response.code, response.headers, content)
        self.answers.append(answer)
        return answer

    def events(
        self,
        token: str,
        last_id: int | str | None = None,
        query: str = "",
        authorize: bool = True,
    ) -> EventReader:
        """Open an event stream, resuming after ``last_id`` if given."""
        headers = {} if last_id is None else {"last-event-id": str(last_id)}
        d = self._send(
            "GET",
            "/v1/events" + query,
            token if authorize else None,
            None,
            None,
            headers,
        )
        response = self._wait(d)
        assert response.code == 200, response.code
        answer = Answer("GET", "/v1/events", 200, response.headers, b"")
        self.answers.append(answer)
        return EventReader(self, response)

    # Conversations

    def register(self, name: str, password: str = PASSWORD) -> None:
        answer = self.call(
            "POST", "/v1/accounts", {"username": name, "password": password}
        )
        assert answer.status == 201, answer

    def login(self, name: str, password: str = PASSWORD) -> str:
        answer = self.call(
            "POST", "/v1/sessions", {"username": name, "password": password}
        )
        assert answer.status == 201, answer
        token: str = answer.json()["token"]
        self.names[token] = answer.json()["username"]
        return token

    def account(self, name: str) -> str:
        """Register ``name`` and return a token for them."""
        self.register(name)
        return self.login(name)

    def seek(self, token: str, game: str = "tictactoe") -> dict[str, Any]:
        answer = self.call("POST", f"/v1/games/{game}/seeks", token=token)
        assert answer.status == 201, answer
        seek: dict[str, Any] = answer.json()
        return seek

    def match(self, first: str, second: str) -> tuple[str, str, str]:
        """Two tokens in a new match: (token to move, the other, match id)."""
        self.seek(first)
        match_id: str = self.seek(second)["match"]
        state = self.call("GET", f"/v1/matches/{match_id}", token=first).json()
        if state["to_move"] == self.names[first]:
            return first, second, match_id
        return second, first, match_id

    def move(self, token: str, match_id: str, move: Any) -> Answer:
        return self.call(
            "POST", f"/v1/matches/{match_id}/moves", {"move": move}, token=token
        )

"""
chupacabra_client in memory: the SSE parser, the event stream's reconnects
on a fake clock, error classes, requests through treq's StubTreq, and how
chupacabra-play draws boards and reports failures.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from chupacabra_client import (
    BadMove,
    ChupacabraError,
    Client,
    Event,
    EventStream,
    IllegalMove,
    NotYourTurn,
    SseParser,
    StreamClosed,
    Unauthorized,
    UnknownError,
)
from chupacabra_client._errors import ERRORS, error_from_response
from chupacabra_client._events import MAX_LINE
from chupacabra_client._play import (
    check_options,
    parse,
    render_board,
    why_refused,
    why_unreachable,
)
from hypothesis import given
from hypothesis import strategies as st
from treq.testing import StubTreq
from twisted.internet import defer, task
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web._newclient import ParseError
from twisted.web.client import ResponseDone, ResponseNeverReceived
from twisted.web.iweb import UNKNOWN_LENGTH

# The parser

STREAM = (
    b"\xef\xbb\xbfretry: 2000\r\n"
    b"\r\n"
    b": keepalive\n\n"
    b"id: 0\nevent: stream-start\n"
    b'data: {"event": "stream-start", "last_id": 0}\n\n'
    b'id: 1\revent: moved\rdata: {"move": "5",\rdata:  "to_move": null}\r\r'
    b"data:plain text\n\n"
    b"id\nid: 7\0\ndata: x\n\n"
)


def expected_events() -> list[Event]:
    return [
        Event(
            "stream-start",
            "0",
            {"event": "stream-start", "last_id": 0},
            '{"event": "stream-start", "last_id": 0}',
        ),
        Event(
            "moved",
            "1",
            {"move": "5", "to_move": None},
            '{"move": "5",\n "to_move": null}',
        ),
        Event("message", "1", {}, "plain text"),
        Event("message", "", {}, "x"),
    ]


def test_parser_reads_every_field_and_line_ending() -> None:
    """The parser handles comments, retry, ids, CR/LF/CRLF and multi-line data."""
    parser = SseParser()

    assert parser.feed(STREAM) == expected_events()
    assert parser.retry == 2000
    assert parser.last_id == ""


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_parser_gives_the_same_events_however_the_bytes_are_split(
    cuts: list[int],
) -> None:
    """Feeding the stream in pieces split anywhere gives the same events."""
    parser = SseParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    events = []
    for start, end in itertools.pairwise(bounds):
        events += parser.feed(STREAM[start:end])

    assert events == expected_events()


def test_parser_keeps_the_last_id_across_a_reset() -> None:
    """A reset drops a half-received event but keeps the id to resume after."""
    parser = SseParser("4")
    assert parser.feed(b"id: 5\ndata: half") == []
    parser.reset()

    assert parser.last_id == "4"
    assert parser.feed(b"data: whole\n\n") == [Event("message", "4", {}, "whole")]


def test_parser_refuses_an_endless_line() -> None:
    """A line longer than MAX_LINE raises ValueError instead of growing forever."""
    parser = SseParser()
    with pytest.raises(ValueError):
        parser.feed(b"data: " + b"x" * MAX_LINE)


# Errors


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (409, {"error": {"code": "not-your-turn", "message": "m"}}, NotYourTurn, None),
        (422, {"error": {"code": "illegal-move", "message": "m"}}, IllegalMove, None),
        (401, {"error": {"code": "unauthorized", "message": "m"}}, Unauthorized, None),
        (418, {"error": {"code": "teapot", "message": "m"}}, UnknownError, "teapot"),
        (502, "<html>bad gateway</html>", UnknownError, "http-502"),
    ],
)
def test_error_responses_become_their_classes(
    status: int, body: Any, kind: type[ChupacabraError], code: str | None
) -> None:
    """Each error code raises its own class; unknown codes and HTML do not crash."""
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    error = error_from_response(status, raw)

    assert type(error) is kind
    assert error.status == status
    if code is not None:
        assert error.code == code


def test_every_server_code_has_a_class() -> None:
    """The client knows every code the HTTP API maps to a status."""
    from chupacabra.gateway._http import STATUS

    assert set(STATUS) <= set(ERRORS)


# The event stream, over a fake connection


class FakeBody:
    """The transport a response body is delivered over."""

    def __init__(self, response: FakeResponse) -> None:
        self.response = response

    def stopProducing(self) -> None:
        self.response.end(Failure(ConnectionLost("dropped")))

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass


class FakeResponse:
    """An IResponse whose body the test writes and ends."""

    def __init__(self, code: int = 200, body: bytes = b"") -> None:
        self.code = code
        self.length = UNKNOWN_LENGTH
        self.protocol: Protocol | None = None
        self._body = body

    def deliverBody(self, protocol: Protocol) -> None:
        self.protocol = protocol
        protocol.makeConnection(FakeBody(self))
        if self._body:
            self.write(self._body)
        if self.code != 200:
            self.end(Failure(ResponseDone()))

    def write(self, data: bytes) -> None:
        assert self.protocol is not None
        self.protocol.dataReceived(data)

    def end(self, reason: Failure) -> None:
        protocol, self.protocol = self.protocol, None
        if protocol is not None:
            protocol.connectionLost(reason)


class FakeServer:
    """Answers each connection attempt with the next planned outcome."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []
        self.pending: list[defer.Deferred[Any]] = []

    def connect(self, last_id: str | None) -> defer.Deferred[Any]:
        self.asked.append(last_id)
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(d)
        return d

    def answer(self, response: FakeResponse | Exception) -> FakeResponse | None:
        d = self.pending.pop(0)
        if isinstance(response, Exception):
            d.errback(response)
            return None
        d.callback(response)
        return response


def event_bytes(number: int, kind: str = "moved") -> bytes:
    return f'id: {number}\nevent: {kind}\ndata: {{"n": {number}}}\n\n'.encode()


def stream_on(fake: FakeServer, clock: task.Clock, **options: Any) -> EventStream:
    return EventStream(fake.connect, clock, **options).start()


def test_stream_resumes_after_a_drop_from_the_last_whole_event() -> None:
    """A dropped stream reconnects after the delay with Last-Event-ID."""
    fake, clock = FakeServer(), task.Clock()
    stream = stream_on(fake, clock)
    first = fake.answer(FakeResponse())
    assert first is not None and stream.connected
    first.write(b"retry: 500\n\n" + event_bytes(1) + event_bytes(2) + b"id: 3\nda")
    first.end(Failure(ConnectionLost()))

    assert not stream.connected
    assert fake.asked == [None]
    clock.advance(0.5)
    assert fake.asked == [None, "2"]
    second = fake.answer(FakeResponse())
    assert second is not None
    second.write(event_bytes(3))

    got = [stream.next() for _ in range(4)]
    assert [d.result.id for d in got[:3]] == ["1", "2", "3"]
    assert not got[3].called
    got[3].cancel()
    got[3].addErrback(lambda f: f.trap(defer.CancelledError))


def test_stream_backs_off_while_the_server_is_down() -> None:
    """Failed connections wait longer each time, up to the maximum delay."""
    fake, clock = FakeServer(), task.Clock()
    stream_on(fake, clock, max_delay=5.0)
    delays = []
    for _ in range(5):
        fake.answer(ConnectionRefusedError())
        (call,) = clock.getDelayedCalls()
        delays.append(call.getTime() - clock.seconds())
        clock.advance(delays[-1])

    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert fake.answer(FakeResponse()) is not None
    assert len(fake.asked) == 6


def test_stream_retries_an_unavailable_server_but_not_a_dead_token() -> None:
    """A 503 is retried; a 401 ends the stream with Unauthorized."""
    fake, clock = FakeServer(), task.Clock()
    stream = stream_on(fake, clock)
    waiting = stream.next()
    unavailable = {"error": {"code": "unavailable", "message": "later"}}
    fake.answer(FakeResponse(503, json.dumps(unavailable).encode()))
    clock.advance(1.0)
    unauthorized = {"error": {"code": "unauthorized", "message": "no"}}
    fake.answer(FakeResponse(401, json.dumps(unauthorized).encode()))

    assert stream.ended
    assert clock.getDelayedCalls() == []
    assert isinstance(waiting.result.value, Unauthorized)
    waiting.addErrback(lambda f: None)
    ended = stream.when_ended()
    assert isinstance(ended.result.value, Unauthorized)
    ended.addErrback(lambda f: None)


def test_stream_replaces_a_silent_connection() -> None:
    """With no byte for the idle timeout, the stream reconnects on its own."""
    fake, clock = FakeServer(), task.Clock()
    stream = stream_on(fake, clock, idle_timeout=45.0)
    response = fake.answer(FakeResponse())
    assert response is not None
    response.write(event_bytes(1))
    clock.advance(30)
    response.write(b": keepalive\n\n")
    clock.advance(30)
    assert stream.connected

    clock.advance(15)
    assert not stream.connected and response.protocol is None
    clock.advance(1.0)
    assert fake.asked == [None, "1"]


def test_stop_ends_the_stream_cleanly() -> None:
    """stop closes the connection, fails waiters with StreamClosed, and fires."""
    fake, clock = FakeServer(), task.Clock()
    seen: list[Event] = []
    stream = stream_on(fake, clock, on_event=seen.append)
    response = fake.answer(FakeResponse())
    assert response is not None
    response.write(event_bytes(1, "match-started"))
    waiting = stream.next()

    stopped = stream.stop()
    assert stopped.called and stopped.result is None
    assert response.protocol is None
    assert [e.kind for e in seen] == ["match-started"]
    assert isinstance(waiting.result.value, StreamClosed)
    waiting.addErrback(lambda f: None)
    assert clock.getDelayedCalls() == []


def test_stop_while_connecting_cancels_the_request() -> None:
    """Stopping before the server answered cancels the pending request."""
    fake, clock = FakeServer(), task.Clock()
    stream = stream_on(fake, clock)
    pending = fake.pending[0]

    assert stream.stop().called
    assert pending.called
    assert clock.getDelayedCalls() == []


# Requests, through StubTreq


class FakeApi(resource.Resource):
    """Answers like the server for a few paths, recording what was asked."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str | None, Any]] = []

    def render(self, request: server.Request) -> bytes:
        raw = request.content.read() if request.content is not None else b""
        body = json.loads(raw) if raw else None
        auth = request.getHeader(b"authorization")
        path = request.path.decode()
        method = request.method.decode()
        self.seen.append((method, path, auth.decode() if auth else None, body))

        request.setHeader(b"content-type", b"application/json")
        if path == "/v1/sessions":
            request.setResponseCode(201)
            answer: Any = {
                "token": "t0k",
                "expires_at": "2030-01-02T03:04:05Z",
                "username": body["username"],
            }
        elif path.endswith("/moves") and body["move"] == "0":
            request.setResponseCode(422)
            answer = {"error": {"code": "bad-move", "message": "1 to 9"}}
        elif path.endswith("/moves"):
            request.setResponseCode(201)
            answer = {"match": path.split("/")[3], "move": body["move"], "to_move": "b"}
        else:
            request.setResponseCode(404)
            answer = {"error": {"code": "not-found", "message": "nothing"}}
        return json.dumps(answer).encode()


def settle(d: defer.Deferred[Any], stub: StubTreq) -> Any:
    """The result of ``d`` once the stub's in-memory traffic is done."""
    for _ in range(50):
        stub.flush()
        if d.called:
            break
    assert d.called
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def test_requests_carry_the_token_and_json_bodies() -> None:
    """log_in keeps the token, later calls send it and parse typed results."""
    api = FakeApi()
    stub = StubTreq(api)
    client = Client("http://server/", reactor=task.Clock(), http=stub)

    session = settle(client.log_in("alice", "password1"), stub)
    assert (session.token, session.username) == ("t0k", "alice")
    assert session.expires_at.year == 2030
    moved = settle(client.move("m1 /x", 5), stub)
    assert (moved.match, moved.move, moved.to_move) == ("m1%20%2Fx", "5", "b")
    with pytest.raises(BadMove) as refused:
        settle(client.move("m1", 0), stub)
    assert (refused.value.status, refused.value.message) == (422, "1 to 9")

    assert api.seen == [
        ("POST", "/v1/sessions", None, {"username": "alice", "password": "password1"}),
        ("POST", "/v1/matches/m1%20%2Fx/moves", "Bearer t0k", {"move": "5"}),
        ("POST", "/v1/matches/m1/moves", "Bearer t0k", {"move": "0"}),
    ]


# chupacabra-play


def played(game: Any, *moves: str) -> tuple[dict[str, Any], str]:
    """A real game's board JSON after ``moves``, and its move syntax."""
    state = game.new_state(2)
    for move in moves:
        state, _ = game.play(state, move)
    return game.render_json(state), game.move_syntax


def test_tictactoe_board_is_a_grid_numbering_the_free_cells() -> None:
    """A tic-tac-toe board is drawn 3x3 with each free cell's number."""
    from chupacabra.games.tictactoe import TicTacToe

    board, moves = played(TicTacToe(), "5", "1")
    assert render_board(board, moves) == [
        " O | 2 | 3",
        "---+---+---",
        " 4 | X | 6",
        "---+---+---",
        " 7 | 8 | 9",
    ]


def test_connect4_board_is_a_grid_with_column_numbers() -> None:
    """A Connect Four board is drawn top row first, numbered by column."""
    from chupacabra.games.connect4 import ConnectFour

    board, moves = played(ConnectFour(), "4", "4", "3")
    empty = " . . . . . . ."
    assert render_board(board, moves) == [
        " 1 2 3 4 5 6 7",
        *[empty] * 4,
        " . . . O . . .",
        " . . X X . . .",
        " 1 2 3 4 5 6 7",
    ]


def test_reversi_board_has_coordinates_legal_squares_and_counts() -> None:
    """A Reversi board shows letters and row numbers, stars and the counts."""
    from chupacabra.games.reversi import Reversi

    board, moves = played(Reversi(), "d3")
    assert render_board(board, moves) == [
        "   a b c d e f g h",
        " 1 . . . . . . . .",
        " 2 . . . . . . . .",
        " 3 . . * X * . . .",
        " 4 . . . X X . . .",
        " 5 . . * X O . . .",
        " 6 . . . . . . . .",
        " 7 . . . . . . . .",
        " 8 . . . . . . . .",
        "   a b c d e f g h",
        "X 4, O 1",
    ]


def test_a_board_without_a_grid_lists_its_fields() -> None:
    """A board with no drawable cells is one readable line per field."""
    board = {"heaps": [3, 4, 5], "left": 12, "passed": None}
    assert render_board(board, "heap:count") == ["heaps: [3, 4, 5]", "left: 12"]


def test_network_failures_are_told_in_one_line() -> None:
    """Twisted's wrapped failures are explained, never shown as reprs."""
    not_http = ResponseNeverReceived([Failure(ParseError("bad status", b"* hi"))])
    timed_out = ResponseNeverReceived([Failure(defer.CancelledError())])
    refused = ConnectionRefusedError("Connection refused")

    assert why_unreachable(not_http) == (
        "it does not answer in HTTP (is that the API's port?)"
    )
    assert why_unreachable(timed_out) == "no answer in time"
    assert why_unreachable(refused) == (
        "Connection was refused by other side: Connection refused."
    )


def test_an_answer_not_from_chupacabra_is_told_in_one_line() -> None:
    """An HTML error page is named by its status, not printed."""
    page = error_from_response(501, b"<html>\n<body>\nUnsupported</body>\n</html>")
    assert why_refused(page, "http://h:1") == (
        "http://h:1 answered HTTP 501 without a chupacabra error: "
        "is that the API's address?"
    )
    refusal = error_from_response(401, b'{"error": {"code": "x", "message": "no"}}')
    assert why_refused(refusal, "http://h:1") == "no"


@pytest.mark.parametrize(
    ("argv", "terminal", "problem"),
    [
        (["--user", "bob"], False, "give --password: there is no terminal to ask on"),
        ([], False, "give --user and --password: there is no terminal to ask on"),
        (["--user", "bob"], True, None),
        (["--user", "bob", "--password", "pw-pw-pw-pw"], False, None),
        (
            ["--url", "127.0.0.1:7655", "--user", "bob", "--password", "pw"],
            True,
            "--url must be an http:// URL such as http://127.0.0.1:7655, "
            "not '127.0.0.1:7655'",
        ),
    ],
)
def test_play_refuses_options_it_cannot_use(
    argv: list[str], terminal: bool, problem: str | None
) -> None:
    """Without a terminal the login must be given, and the URL must be HTTP."""
    assert check_options(parse(argv), terminal) == problem

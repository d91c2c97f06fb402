"""
The event stream: Server-Sent Events parsed as they arrive, resumed on loss.

The body goes to a protocol of our own rather than through
C{treq.collect}: C{collect} gives no handle on the connection, and the
stream must be able to drop it (L{EventStream.stop}, the idle watchdog).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import treq
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.iweb import IResponse

from ._errors import ChupacabraError, error_from_response
from ._models import Event

#: The longest line the parser holds before giving up on a connection.
MAX_LINE = 1024 * 1024
#: Seconds without a byte (the server sends a comment every 15) after
#: which the connection is taken for dead and replaced.
IDLE_TIMEOUT = 45.0
#: The first reconnection delay, in seconds, until the server sets one.
FIRST_DELAY = 1.0
#: The longest reconnection delay, in seconds.
MAX_DELAY = 30.0

Connect = Callable[[str | None], "defer.Deferred[IResponse]"]


class StreamClosed(Exception):  # noqa: N818 (reads like the other errors)
    """The event stream was stopped; no more events will come."""


class SseParser:
    """
    A Server-Sent Events parser, fed bytes in pieces of any size.

    It keeps C{last_id} (the id to resume after) and C{retry} (the
    reconnection delay the server asked for, in milliseconds) as the
    format says: both outlive the events that set them.
    """

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry: int | None = None
        self._buffer = b""
        self._started = False
        self._id_buffer = last_id
        self._kind = ""
        self._data: list[str] = []

    def reset(self) -> None:
        """Forget a half-received event, as a new connection must."""
        self._buffer = b""
        self._started = False
        self._id_buffer = self.last_id
        self._kind = ""
        self._data = []

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by ``data``; raises ValueError on a huge line."""
        self._buffer += data
        events = []
        for line in self._lines():
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) > MAX_LINE:
            raise ValueError(f"an event stream line is over {MAX_LINE} bytes")
        return events

    def _lines(self) -> list[str]:
        # A CR at the very end may be the first half of a CRLF: keep it.
        lines: list[str] = []
        while True:
            cr, lf = self._buffer.find(b"\r"), self._buffer.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                return lines
            end = min(ends)
            width = 1
            if end == cr:
                if cr + 1 == len(self._buffer):
                    return lines
                if self._buffer[cr + 1 : cr + 2] == b"\n":
                    width = 2
            raw, self._buffer = self._buffer[:end], self._buffer[end + width :]
            text = raw.decode("utf-8", "replace")
            if not self._started:
                self._started = True
                text = text.removeprefix("\ufeff")
            lines.append(text)

    def _line(self, line: str) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]

        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._kind = value
        elif field == "id" and "\0" not in value:
            self._id_buffer = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        self.last_id = self._id_buffer
        kind, self._kind = self._kind or "message", ""
        if not self._data:
            return None
        text, self._data = "\n".join(self._data), []
        return Event(kind, self.last_id, _decode(text), text)


def _decode(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class _Receiver(Protocol):
    """Hands a response body to its stream, and lets the stream drop it."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream

    def dataReceived(self, data: bytes) -> None:
        self.stream._received(self, data)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.stream._lost(self, reason)

    def drop(self) -> None:
        # A response body's transport is a producer: stopping it closes
        # the connection.
        if self.transport is not None:
            cast(IPushProducer, self.transport).stopProducing()


def _fatal(error: ChupacabraError) -> bool:
    # Asking again cannot help a refused token or a bad Last-Event-ID;
    # it can help an overloaded or restarting server.
    return 400 <= error.status < 500 and error.status not in (408, 429)


class EventStream:
    """
    The caller's events as they happen, across dropped connections.

    Events arrive in order, each once: read them with L{next} (or
    ``async for``), or pass ``on_event`` to have them handed over as they
    arrive.  When the connection drops, the stream reconnects with growing
    delays and sends ``Last-Event-ID``, so the server replays what was
    missed.  A refusal that asking again cannot fix (a dead token:
    L{Unauthorized}) ends the stream with that error; L{stop} ends it
    cleanly.  Create streams with C{Client.events}.
    """

    log = Logger()

    def __init__(
        self,
        connect: Connect,
        clock: IReactorTime,
        last_event_id: str | None = None,
        on_event: Callable[[Event], object] | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self._connect = connect
        self._clock = clock
        self._on_event = on_event
        self._idle_timeout = idle_timeout
        self._max_delay = max_delay
        self._parser = SseParser(last_event_id)
        self._queue: deque[Event] = deque()
        self._waiters: list[defer.Deferred[Event]] = []
        self._failures = 0
        self._pending: defer.Deferred[IResponse] | None = None
        self._receiver: _Receiver | None = None
        self._retry_call: IDelayedCall | None = None
        self._idle_call: IDelayedCall | None = None
        self._ended: BaseException | None = None
        self._done: list[defer.Deferred[None]] = []
        self._connected: list[defer.Deferred[None]] = []
        #: How many connections the stream has tried to open so far.
        self.connections = 0

    # What callers use

    @property
    def last_id(self) -> str | None:
        """The id of the last event received: where a new stream resumes."""
        return self._parser.last_id

    @property
    def connected(self) -> bool:
        """Whether a connection is open and streaming now."""
        return self._receiver is not None

    @property
    def ended(self) -> bool:
        """Whether the stream was stopped or refused for good."""
        return self._ended is not None

    def start(self) -> EventStream:
        """Open the first connection; C{Client.events} does this for you."""
        if self._pending is None and self._receiver is None and not self.ended:
            self._open()
        return self

    def next(self) -> defer.Deferred[Event]:
        """
        The next event, at once if one is waiting.

        Fails with L{StreamClosed} once the stream was stopped and every
        event received was read, or with the error that ended it.
        Cancelling the Deferred (to time out a wait) loses no event.
        """
        if self._queue:
            return defer.succeed(self._queue.popleft())
        if self._ended is not None:
            return defer.fail(self._ended)
        waiter: defer.Deferred[Event] = defer.Deferred(self._waiters.remove)
        self._waiters.append(waiter)
        return waiter

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.next()
        except StreamClosed:
            raise StopAsyncIteration

    def when_connected(self) -> defer.Deferred[None]:
        """Fires once a connection is open (at once if one is now)."""
        if self._receiver is not None:
            return defer.succeed(None)
        if self._ended is not None:
            return defer.fail(self._ended)
        d: defer.Deferred[None] = defer.Deferred(self._connected.remove)
        self._connected.append(d)
        return d

    def when_ended(self) -> defer.Deferred[None]:
        """
        Fires when the stream has ended and its connection is closed.

        It succeeds after L{stop}, and fails with the error that ended it
        otherwise.
        """
        d: defer.Deferred[None] = defer.Deferred()
        if self._ended is not None and self._receiver is None:
            self._fire_done(d)
        else:
            self._done.append(d)
        return d

    def drop_connection(self) -> None:
        """
        Close the current connection as a network failure would.

        The stream reconnects after its usual delay and resumes from
        L{last_id}; nothing is lost or repeated.
        """
        if self._receiver is None or self._ended is not None:
            return
        receiver, self._receiver = self._receiver, None
        self._unwatch()
        receiver.drop()
        self._reconnect_later("dropped on purpose")

    def stop(self) -> defer.Deferred[None]:
        """End the stream and close its connection; fires once closed."""
        if self._ended is None:
            self._end(StreamClosed("the event stream was stopped"))
        done = self.when_ended()
        done.addErrback(lambda failure: None)
        return done

    # Connecting

    def _open(self) -> None:
        self._retry_call = None
        self.connections += 1
        pending = self._pending = self._connect(self.last_id)
        pending.addCallbacks(self._responded, self._not_connected)
        pending.addErrback(self._unexpected, "opening the event stream")

    def _responded(self, response: IResponse) -> None:
        self._pending = None
        if self._ended is not None:
            stray = _Receiver(self)
            response.deliverBody(stray)
            stray.drop()
            return
        if response.code != 200:
            body = treq.content(response)
            body.addCallback(
                lambda data: self._refused(error_from_response(response.code, data))
            )
            body.addErrback(self._not_connected)
            return

        self._failures = 0
        self._parser.reset()
        self._receiver = receiver = _Receiver(self)
        self._watch()
        response.deliverBody(receiver)
        self.log.debug("event stream open after id {last_id}", last_id=self.last_id)
        waiting, self._connected = self._connected, []
        for d in waiting:
            d.callback(None)

    def _refused(self, error: ChupacabraError) -> None:
        if _fatal(error):
            self.log.info("event stream refused: {error}", error=str(error))
            self._end(error)
        else:
            self._reconnect_later(str(error))

    def _not_connected(self, failure: Failure) -> None:
        self._pending = None
        if self._ended is None:
            self._reconnect_later(failure.getErrorMessage() or repr(failure.value))

    def _reconnect_later(self, why: str) -> None:
        if self._ended is not None:
            return
        retry = self._parser.retry
        base = FIRST_DELAY if retry is None else retry / 1000
        delay = min(self._max_delay, base * 2 ** min(self._failures, 16))
        self._failures += 1
        self.log.info(
            "event stream lost ({why}); reconnecting in {delay:.1f} s",
            why=why,
            delay=delay,
        )
        self._retry_call = self._clock.callLater(delay, self._open)

    # A connection's life

    def _received(self, receiver: _Receiver, data: bytes) -> None:
        if receiver is not self._receiver:
            return
        self._watch()
        try:
            events = self._parser.feed(data)
        except ValueError as error:
            self.log.warn("dropping the event stream: {error}", error=str(error))
            receiver.drop()
            return
        for event in events:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                self.log.failure("the event handler failed on {kind}", kind=event.kind)
        elif self._waiters:
            self._waiters.pop(0).callback(event)
        else:
            self._queue.append(event)

    def _lost(self, receiver: _Receiver, reason: Failure | None) -> None:
        if receiver is not self._receiver:
            return
        self._receiver = None
        self._unwatch()
        if self._ended is None:
            why = "the server ended it"
            if reason is not None and not reason.check(ResponseDone):
                why = reason.getErrorMessage() or type(reason.value).__name__
            self._reconnect_later(why)
        else:
            self._finish()

    def _watch(self) -> None:
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.reset(self._idle_timeout)
        else:
            self._idle_call = self._clock.callLater(self._idle_timeout, self._idle)

    def _unwatch(self) -> None:
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.cancel()
        self._idle_call = None

    def _idle(self) -> None:
        self._idle_call = None
        self.log.info(
            "event stream silent for {seconds} s; reconnecting",
            seconds=self._idle_timeout,
        )
        self.drop_connection()

    # Ending

    def _end(self, reason: BaseException) -> None:
        self._ended = reason
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()

        waiting, self._waiters = self._waiters, []
        for waiter in waiting:
            waiter.errback(reason)
        connecting, self._connected = self._connected, []
        for d in connecting:
            d.errback(reason)

        if self._receiver is not None:
            self._receiver.drop()
        else:
            self._finish()

    def _finish(self) -> None:
        self._unwatch()
        done, self._done = self._done, []
        for d in done:
            self._fire_done(d)

    def _fire_done(self, d: defer.Deferred[None]) -> None:
        if isinstance(self._ended, StreamClosed):
            d.callback(None)
        else:
            d.errback(self._ended or StreamClosed())

    def _unexpected(self, failure: Failure, doing: str) -> None:
        self.log.failure("failed {doing}", failure, doing=doing)

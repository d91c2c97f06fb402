"""
The line protocol for telnet and netcat players.

Lines arrive with any common ending, possibly a byte at a time and mixed
with telnet negotiation.  Commands run one after another: a command's
reply is written before the next line is read, and updates that arrive
while a command runs are written just after its reply.
"""

from __future__ import annotations

import json
import unicodedata
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from ..errors import CommandError
from ._core import Event, Gateway, Session, default_clock, unexpected
from ._framing import TOO_LONG, LineSplitter, TelnetFilter
from ._text import event_lines, reply_lines

#: The longest line accepted, in bytes, not counting its ending.
MAX_LINE = 4096
#: Lines read ahead of the command running before reading pauses.
MAX_QUEUED = 64
#: Seconds without input before a connection is closed.
IDLE_TIMEOUT = 1800.0

#: Runs a command for a session with its arguments: a result or a Deferred.
Runner = Callable[[Session, list[str]], Any]


@attrs.frozen
class Command:
    name: str
    usage: str
    summary: str
    run: Runner
    min_args: int = 0
    max_args: int = 0


def _match_and(args: list[str]) -> tuple[str | None, str]:
    return (None, args[0]) if len(args) == 1 else (args[0].lower(), args[1])


def _optional(args: list[str]) -> str | None:
    return args[0].lower() if args else None


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        Command("help", "HELP [command]", "list the commands, or explain one",
                lambda s, a: {}, 0, 1),
        Command("register", "REGISTER name password", "create an account",
                lambda s, a: s.register(a[0], a[1]), 2, 2),
        Command("login", "LOGIN name password", "log in to play",
                lambda s, a: s.login(a[0], a[1]), 2, 2),
        Command("logout", "LOGOUT", "log out, staying connected",
                lambda s, a: s.logout()),
        Command("password", "PASSWORD old new", "change your password",
                lambda s, a: s.change_password(a[0], a[1]), 2, 2),
        Command("games", "GAMES", "list the games you can play",
                lambda s, a: s.games()),
        Command("play", "PLAY game", "wait for an opponent in a game",
                lambda s, a: s.play(a[0].lower()), 1, 1),
        Command("cancel", "CANCEL", "stop waiting for an opponent",
                lambda s, a: s.cancel()),
        Command("matches", "MATCHES", "list your live matches",
                lambda s, a: s.matches()),
        Command("board", "BOARD [match]", "show a match's board",
                lambda s, a: s.board(_optional(a)), 0, 1),
        Command("move", "MOVE [match] move", "make a move",
                lambda s, a: s.move(*_match_and(a)), 1, 2),
        Command("forfeit", "FORFEIT [match]", "give up a match",
                lambda s, a: s.forfeit(_optional(a)), 0, 1),
        Command("history", "HISTORY [player]", "list finished matches",
                lambda s, a: s.history(a[0] if a else None), 0, 1),
        Command("who", "WHO", "list the players online",
                lambda s, a: s.who()),
        Command("json", "JSON", "answer in JSON, one object per line",
                lambda s, a: {"mode": "json"}),
        Command("text", "TEXT", "answer in text (the default)",
                lambda s, a: {"mode": "text"}),
        Command("quit", "QUIT", "close the connection",
                lambda s, a: {}),
    ]
}  # fmt: skip


def _help(args: list[str]) -> Event:
    if args:
        command = COMMANDS.get(args[0].lower())
        if command is None:
            raise CommandError("unknown-command", f"no command {args[0].upper()}")
        return {"command": {"usage": command.usage, "summary": command.summary}}
    return {
        "commands": [
            {"usage": c.usage, "summary": c.summary} for c in COMMANDS.values()
        ]
    }


def _words(raw: bytes) -> list[str]:
    """Decode and split one line, or raise the error it deserves."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("bad-encoding", "lines must be UTF-8 text")
    if not line.isprintable() and any(
        unicodedata.category(c) == "Cc" and c != "\t" for c in line
    ):
        raise CommandError(
            "control-characters", "lines may not hold control characters"
        )
    return line.split()


def _public(data: Event) -> Event:
    """Leave out the text rendering, which only text mode shows."""
    return {k: v for k, v in data.items() if k != "text"}


class LineProtocol(Protocol, TimeoutMixin):
    """One telnet or netcat connection."""

    log = Logger()
    transport: Any

    def __init__(
        self,
        gateway: Gateway,
        idle_timeout: float | None,
        clock: IReactorTime | None = None,
    ) -> None:
        self.clock = default_clock() if clock is None else clock
        self.gateway = gateway
        self.idle_timeout = idle_timeout
        self.json = False
        self.session: Session | None = None
        self._telnet = TelnetFilter()
        self._lines = LineSplitter(MAX_LINE)
        self._queue: deque[bytes | None] = deque()
        self._busy = False
        self._running = False
        self._reading = True
        self._blocked = False
        self._held: list[Event] = []
        self._closed = False

    def callLater(  # type: ignore[override]
        self, delay: float, call: Callable[..., Any], *args: Any, **kw: Any
    ) -> IDelayedCall:
        """Schedule the idle timer on our clock (TimeoutMixin calls this)."""
        return self.clock.callLater(delay, call, *args, **kw)

    def connectionMade(self) -> None:
        # Replies and pushes are small writes that a client does not answer
        # at once: with Nagle on, each waits for a delayed ACK (40 ms).
        if hasattr(self.transport, "setTcpNoDelay"):
            self.transport.setTcpNoDelay(True)
        self.session = self.gateway.session(self._event, self._peer_host())
        # The transport tells us (pauseProducing) when a client stops
        # reading and our replies pile up: we then stop reading its lines.
        self.transport.registerProducer(self, True)
        self.setTimeout(self.idle_timeout)
        peer = self.transport.getPeer()
        self.log.info("line connection from {peer}", peer=str(peer))
        self._write(["* welcome to chupacabra; type HELP for the commands"])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._closed = True
        self.setTimeout(None)
        self._queue.clear()
        if self.session is not None:
            self.session.close()

    def _peer_host(self) -> str:
        return str(getattr(self.transport.getPeer(), "host", "unknown"))

    # IPushProducer: the transport's say on how much we may write

    def pauseProducing(self) -> None:
        self._blocked = True
        self._update_reading()

    def resumeProducing(self) -> None:
        self._blocked = False
        self._update_reading()
        self._run_queue()

    def stopProducing(self) -> None:
        self._closed = True

    def _update_reading(self) -> None:
        wanted = not self._blocked and len(self._queue) <= MAX_QUEUED
        if wanted != self._reading and not self._closed:
            self._reading = wanted
            if wanted:
                self.transport.resumeProducing()
            else:
                self.transport.pauseProducing()

    def timeoutConnection(self) -> None:
        seconds = round(self.idle_timeout or 0)
        if seconds >= 120:
            reason = f"idle for {seconds // 60} minutes"
        else:
            reason = f"idle for {seconds} seconds"
        self._event({"event": "closing", "reason": reason})
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        text, answer = self._telnet.feed(data)
        if answer:
            self.transport.write(answer)
        self._queue.extend(self._lines.feed(text))
        self._update_reading()
        self._run_queue()

    # Running commands one at a time

    def _run_queue(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while (
                self._queue
                and not self._busy
                and not self._blocked
                and not self._closed
            ):
                d = self._handle(self._queue.popleft())
                if d is not None:
                    self._busy = True
                    d.addCallback(self._answered).addErrback(self._broken)
        finally:
            self._running = False
        self._update_reading()

    def _handle(self, raw: bytes | None) -> defer.Deferred[Any] | None:
        try:
            if raw is TOO_LONG:
                raise CommandError(
                    "line-too-long", f"lines may be at most {MAX_LINE} bytes"
                )
            words = _words(raw)
            if not words:
                return None
            name = words[0].lower()
            command = COMMANDS.get(name)
            if command is None:
                raise CommandError(
                    "unknown-command",
                    f"no command {words[0][:32]}; type HELP for the commands",
                )
            args = words[1:]
            if not command.min_args <= len(args) <= command.max_args:
                raise CommandError("bad-request", f"usage: {command.usage}")
        except CommandError as error:
            return defer.succeed((None, error))

        assert self.session is not None
        if name == "help":
            d = defer.maybeDeferred(_help, args)
        else:
            d = defer.maybeDeferred(command.run, self.session, args)
        return d.addCallbacks(
            lambda result: (name, result),
            lambda failure: (name, self._error(failure, name)),
        )

    def _error(self, failure: Failure, name: str) -> CommandError:
        if failure.check(CommandError):
            error = failure.value
            assert isinstance(error, CommandError)
            return error
        return unexpected(self.log, failure, name)

    def _answered(self, outcome: tuple[str | None, Any]) -> None:
        name, result = outcome
        self._busy = False
        if self._closed:
            return
        if isinstance(result, CommandError):
            self._reply_error(result)
        else:
            if name == "json":
                self.json = True
            elif name == "text":
                self.json = False
            self._reply(name or "", result)
        held, self._held = self._held, []
        for event in held:
            self._event(event)
        if name == "quit":
            self.transport.loseConnection()
            return
        self._run_queue()

    def _broken(self, failure: Failure) -> None:
        self.log.failure("line connection failed; closing it", failure)
        self.transport.abortConnection()

    # Writing

    def _write(self, lines: list[str]) -> None:
        if not self._closed:
            self.transport.write(("\r\n".join(lines) + "\r\n").encode("utf-8"))

    def _reply(self, name: str, result: Event) -> None:
        if self.json:
            self._write([json.dumps({"ok": True, "result": _public(result)})])
        else:
            self._write(reply_lines(name, result, self._me()))

    def _reply_error(self, error: CommandError) -> None:
        if self.json:
            body = {"code": error.code, "message": error.message}
            self._write([json.dumps({"ok": False, "error": body})])
        else:
            self._write([f"ERR {error.code} {error.message}"])

    def _event(self, event: Event) -> None:
        if self._busy:
            self._held.append(event)
        elif self.json:
            self._write([json.dumps(_public(event))])
        else:
            self._write(event_lines(event, self._me()))

    def _me(self) -> str | None:
        return None if self.session is None else self.session.name


class LineFactory(Factory):
    """Builds a L{LineProtocol} for each telnet or netcat connection."""

    def __init__(
        self,
        gateway: Gateway,
        idle_timeout: float | None = IDLE_TIMEOUT,
        clock: IReactorTime | None = None,
    ):
        self.gateway = gateway
        self.idle_timeout = idle_timeout
        self.clock = clock

    def buildProtocol(self, addr: Any) -> LineProtocol:
        protocol = LineProtocol(self.gateway, self.idle_timeout, self.clock)
        protocol.factory = self
        return protocol

"""chupacabra-play: play one match at a terminal, over the HTTP API."""

from __future__ import annotations

import argparse
import getpass
import json
import string
import sys
from collections.abc import Callable
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import attrs
from twisted.internet import defer, error, task
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

# A response that is not HTTP; twisted.web.client does not export its class.
from twisted.web._newclient import ParseError
from twisted.web.client import (
    RequestGenerationFailed,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)
from zope.interface import implementer

from ._client import DEFAULT_URL, Client, Reactor
from ._errors import ChupacabraError, NameTaken
from ._events import EventStream, StreamClosed
from ._models import Event, Game, MatchState

HELP = (
    "type a move to play it; also: board (show the match), forfeit (give up), "
    "quit (leave; a live match goes on without you), help"
)
#: Failures of the network rather than of a request, told as one line
#: (a request that timed out is cancelled).
NETWORK_ERRORS = (
    error.ConnectError,
    error.ConnectionLost,
    error.DNSLookupError,
    error.TimeoutError,
    defer.CancelledError,
    ResponseFailed,
    ResponseNeverReceived,
    RequestGenerationFailed,
    RequestTransmissionFailed,
)
#: Twisted's failures that wrap the real reasons in a list of Failures.
WRAPPED_ERRORS = (ResponseFailed, RequestGenerationFailed, RequestTransmissionFailed)
#: Board fields drawn as part of the grid rather than listed after it.
GRID_FIELDS = {"cells", "marks", "columns", "rows"}


def render_board(board: dict[str, Any], moves: str = "") -> list[str]:
    """
    Draw a board for a terminal.

    ``cells`` holding rows (Connect Four, Reversi) becomes a grid whose
    columns, and rows, are labelled when ``moves`` (the game's move syntax)
    names them by number or letter; squares in ``legal`` show ``*``.  A
    flat square list of ``cells`` (tic-tac-toe) becomes a grid with each
    free cell's number.  The board's other fields follow, one a line.
    """
    cells = board.get("cells")
    legal = board.get("legal")
    lines: list[str] = []
    drawn = set(GRID_FIELDS)
    if _is_rows(cells):
        lines, starred = _grid(cells, moves, legal)
        if starred:
            drawn.add("legal")
    elif _is_square(cells):
        lines = _numbered(cells)
    else:
        drawn = set()
    return lines + _fields({k: v for k, v in board.items() if k not in drawn})


def _is_rows(cells: Any) -> TypeGuard[list[list[Any]]]:
    return (
        isinstance(cells, list)
        and len(cells) > 0
        and all(isinstance(row, list) for row in cells)
    )


def _is_square(cells: Any) -> TypeGuard[list[Any]]:
    if not isinstance(cells, list) or not cells:
        return False
    side = round(len(cells) ** 0.5)
    return side * side == len(cells) and not any(isinstance(c, list) for c in cells)


def _numbered(cells: list[Any]) -> list[str]:
    """A square grid whose free cells show their numbers, 1 top left."""
    side = round(len(cells) ** 0.5)
    shown = [str(i + 1) if c is None else str(c) for i, c in enumerate(cells)]
    width = max(len(text) for text in shown)
    rows = [
        " " + " | ".join(text.center(width) for text in shown[r : r + side]).rstrip()
        for r in range(0, len(cells), side)
    ]
    rule = "+".join(["-" * (width + 2)] * side)
    lines = [rows[0]]
    for row in rows[1:]:
        lines += [rule, row]
    return lines


def _grid(cells: list[list[Any]], moves: str, legal: Any) -> tuple[list[str], bool]:
    """
    Rows of marks, ``.`` for empty cells, labelled as ``moves`` names them.

    Also says whether the ``legal`` squares were starred on the grid.
    """
    syntax = moves.lower()
    heads = _column_labels(syntax, max(len(row) for row in cells))
    sides = [str(r + 1) for r in range(len(cells))] if "row number" in syntax else []
    starred = bool(heads and sides) and isinstance(legal, list)
    stars = {str(square) for square in legal} if starred else set()

    shown = [
        [
            _cell(cell, starred and f"{heads[c]}{sides[r]}" in stars)
            for c, cell in enumerate(row)
        ]
        for r, row in enumerate(cells)
    ]
    width = max(len(text) for text in [*heads, *(t for row in shown for t in row)])
    margin = max((len(side) for side in sides), default=0)

    def line(side: str, texts: list[str]) -> str:
        label = f"{side.rjust(margin)} " if sides else ""
        return " " + label + " ".join(text.center(width) for text in texts)

    rows = [line(sides[r] if sides else "", row) for r, row in enumerate(shown)]
    if heads:
        rows = [line("", heads), *rows, line("", heads)]
    return rows, starred


def _column_labels(syntax: str, columns: int) -> list[str]:
    """Letters or numbers for the columns, if the move syntax names them."""
    if "column letter" in syntax and columns <= len(string.ascii_lowercase):
        return list(string.ascii_lowercase[:columns])
    if "column number" in syntax:
        return [str(c + 1) for c in range(columns)]
    return []


def _cell(cell: Any, star: bool) -> str:
    if cell is not None:
        return str(cell)
    return "*" if star else "."


def _fields(extra: dict[str, Any]) -> list[str]:
    """The board's fields not drawn on a grid, as ``name: value`` lines."""
    lines = []
    for name, value in extra.items():
        if value is None:
            continue
        if name == "counts" and isinstance(value, dict):
            lines.append(", ".join(f"{mark} {count}" for mark, count in value.items()))
        elif name == "passed":
            lines.append(f"{value} had no move and was skipped")
        elif name == "legal" and isinstance(value, list):
            lines.append("legal moves: " + (", ".join(map(str, value)) or "none"))
        else:
            lines.append(f"{name}: {json.dumps(value)}")
    return lines


def describe_end(state: dict[str, Any], me: str | None) -> str:
    """How a match ended, in words, for the player ``me``."""
    winner, reason = state.get("winner"), state.get("reason")
    if winner is None:
        return "it was a draw" if reason == "draw" else f"no winner ({reason})"
    who = "you" if winner == me else winner
    return f"{who} won" + ("" if reason == "win" else f" ({reason})")


def why_unreachable(failure: BaseException) -> str:
    """Why a request got no answer, in one line for people."""
    if isinstance(failure, WRAPPED_ERRORS) and failure.reasons:
        return why_unreachable(failure.reasons[0].value)
    if isinstance(failure, ParseError):
        return "it does not answer in HTTP (is that the API's port?)"
    if isinstance(failure, (defer.CancelledError, error.TimeoutError)):
        return "no answer in time"
    if isinstance(failure, error.ConnectionClosed):
        return "the connection closed before an answer came"
    return " ".join(str(failure).split()) or type(failure).__name__


def why_refused(refused: ChupacabraError, url: str) -> str:
    """A server's refusal in one line; a reply not from chupacabra says so."""
    if refused.code.startswith("http-"):
        return (
            f"{url} answered HTTP {refused.status} without a chupacabra error: "
            "is that the API's address?"
        )
    return " ".join(refused.message.split())


@implementer(IHalfCloseableProtocol)
class Terminal(LineReceiver):
    """Standard input as lines, and a place to write to standard output."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.on_line: Callable[[str], object] = lambda line: None
        self.on_eof: Callable[[], object] = lambda: None
        self.closed: defer.Deferred[None] = defer.Deferred()

    def say(self, *lines: str) -> None:
        if self.transport is not None:
            for line in lines:
                self.transport.write(line.encode("utf-8") + b"\n")

    def lineReceived(self, line: bytes) -> None:
        self.on_line(line.decode("utf-8", "replace").strip())

    def readConnectionLost(self) -> None:
        self.on_eof()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.closed.called:
            self.closed.callback(None)


@attrs.define
class Player:
    """One player's session: log in, seek, then follow and play the match."""

    client: Client
    terminal: Terminal
    username: str
    password: str
    game_name: str
    register: bool = False
    game: Game | None = None
    stream: EventStream | None = None
    seek_id: str | None = None
    state: MatchState | None = None
    quitting: bool = False

    async def run(self) -> int:
        """Play until the match ends or the player quits; the exit code."""
        say = self.terminal.say
        if self.register:
            try:
                await self.client.register(self.username, self.password)
                say(f"registered {self.username}")
            except NameTaken:
                say(f"{self.username} is already registered")
        session = await self.client.log_in(self.username, self.password)
        self.username = session.username
        say(f"logged in as {session.username}")

        games = await self.client.games()
        self.game = next((g for g in games if g.name == self.game_name), None)
        if self.game is None:
            names = ", ".join(g.name for g in games)
            say(f"there is no game {self.game_name}; the server offers {names}")
            return 1

        if self.quitting:
            return 0
        # Once stream-start has come, no event can be missed.
        self.stream = self.client.events()
        await self.stream.next()
        self.terminal.on_line = self.line
        await self._find_or_seek()

        try:
            async for event in self.stream:
                if self.event(event):
                    return 0
        except ChupacabraError as refused:
            say(f"the session ended: {refused.message}")
            return 1
        return 0

    async def _find_or_seek(self) -> None:
        matches = await self.client.matches()
        live = [m for m in matches.live if m.game == self.game_name]
        if live:
            state = await self.client.match(live[0].match)
            self.terminal.say(f"resuming match {state.match}")
            self.show(state)
            return
        seek = await self.client.seek(self.game_name)
        if not seek.matched and self.state is None:
            self.seek_id = seek.id
            self.terminal.say(f"waiting for an opponent for {self.game_name}")

    # Events

    def event(self, event: Event) -> bool:
        """Show ``event``; whether the match is over."""
        data, say = event.data, self.terminal.say
        if event.kind in ("match-started", "match-state") and self.state is None:
            if data.get("game") == self.game_name:
                self.seek_id = None
                state = MatchState.from_json(data)
                seats = " vs ".join(f"{p} ({state.label_of(p)})" for p in state.players)
                say(f"match {state.match} of {state.game}: {seats}")
                self.show(state)
            return False
        if event.kind == "stream-start" and self.state is not None:
            # The server could not replay what we missed: ask for the match.
            self._do(defer.Deferred.fromCoroutine(self._resync(self.state.match)))
            return False
        if self.state is None or event.match != self.state.match:
            return False

        if event.kind == "moved":
            mover = data.get("player")
            say(f"{'you' if mover == self.username else mover} played {data['move']}")
            board = data.get("board", self.state.board)
            self.show(attrs.evolve(self.state, board=board, to_move=data["to_move"]))
        elif event.kind == "match-state":
            self.show(MatchState.from_json(data))
        elif event.kind == "match-ended":
            say(f"match {event.match} is over: {describe_end(data, self.username)}")
            return True
        return False

    async def _resync(self, match: str) -> None:
        state = await self.client.match(match)
        self.show(state)
        if state.over and self.stream is not None:
            ending = describe_end(attrs.asdict(state), self.username)
            self.terminal.say(f"match {match} is over: {ending}")
            await self.stream.stop()

    def show(self, state: MatchState) -> None:
        self.state = state
        syntax = self.game.moves if self.game is not None else ""
        self.terminal.say(*render_board(state.board, syntax))
        if state.over:
            return
        if state.to_move == self.username:
            moves = syntax or "a move"
            self.terminal.say(f"your move ({state.label_of(self.username)}): {moves}")
        elif state.to_move is not None:
            self.terminal.say(f"waiting for {state.to_move} to move")

    # Input

    def line(self, line: str) -> None:
        if not line:
            return
        command = line.lower()
        if command in ("quit", "exit"):
            self.quit()
        elif command == "help":
            self.terminal.say(HELP)
        elif self.state is None:
            self.terminal.say("no match yet: waiting for an opponent")
        elif command == "board":
            self._do(self.client.match(self.state.match).addCallback(self.show))
        elif command == "forfeit":
            self._do(self.client.forfeit(self.state.match))
        else:
            self._do(self.client.move(self.state.match, line))

    def _do(self, d: defer.Deferred[Any]) -> None:
        d.addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        value = failure.value
        if isinstance(value, ChupacabraError):
            if value.code.startswith("http-"):
                self.terminal.say(why_refused(value, self.client.url))
            else:
                self.terminal.say(str(value))
        elif isinstance(value, NETWORK_ERRORS):
            self.terminal.say(f"cannot talk to the server: {why_unreachable(value)}")
        else:
            failure.raiseException()

    def quit(self) -> None:
        """Leave: cancel a waiting seek, then end the event stream."""
        if not self.quitting:
            self.quitting = True
            self._do(defer.Deferred.fromCoroutine(self._leave()))

    async def _leave(self) -> None:
        if self.state is not None and not self.state.over:
            self.terminal.say(f"leaving; match {self.state.match} goes on")
        try:
            if self.seek_id is not None:
                await self.client.cancel_seek(self.seek_id)
                self.terminal.say("stopped waiting for an opponent")
        finally:
            if self.stream is not None:
                await self.stream.stop()


async def play(reactor: Reactor, options: argparse.Namespace) -> None:
    """Run one session of the terminal client; fails with SystemExit."""
    terminal = Terminal()
    StandardIO(terminal, reactor=reactor)
    client = Client(options.url, reactor=reactor)
    player = Player(
        client,
        terminal,
        options.user,
        options.password,
        options.game,
        register=options.register,
    )
    terminal.on_eof = player.quit

    try:
        code = await player.run()
    except ChupacabraError as refused:
        terminal.say(why_refused(refused, options.url))
        code = 1
    except NETWORK_ERRORS as failed:
        terminal.say(f"cannot talk to {options.url}: {why_unreachable(failed)}")
        code = 1
    except StreamClosed:
        code = 0

    if client.token is not None:
        try:
            await client.log_out()
        except (ChupacabraError, *NETWORK_ERRORS):
            pass
    await client.close()
    if terminal.transport is not None:
        terminal.transport.loseConnection()
        await terminal.closed
    if code:
        raise SystemExit(code)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="chupacabra-play",
        description="Play a turn-based game on a chupacabra server.",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="the server's HTTP API (%(default)s)"
    )
    parser.add_argument("--user", help="your username (asked at a terminal if missing)")
    parser.add_argument(
        "--password", help="your password (asked at a terminal if missing)"
    )
    parser.add_argument(
        "--register", action="store_true", help="create the account first"
    )
    parser.add_argument(
        "--game", default="tictactoe", help="the game to play (%(default)s)"
    )
    return parser.parse_args(argv)


def check_options(options: argparse.Namespace, terminal: bool) -> str | None:
    """
    What makes ``options`` unusable, in one line, or ``None``.

    Without a ``terminal`` to ask on, the username and password must be
    given: standard input carries the moves.
    """
    url = urlsplit(options.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        return (
            f"--url must be an http:// URL such as {DEFAULT_URL}, not {url.geturl()!r}"
        )
    missing = []
    if not options.user:
        missing.append("--user")
    if options.password is None:
        missing.append("--password")
    if missing and not terminal:
        return f"give {' and '.join(missing)}: there is no terminal to ask on"
    return None


def main(argv: list[str] | None = None) -> None:
    """The chupacabra-play command."""
    options = parse(argv)
    problem = check_options(options, sys.stdin.isatty())
    if problem is not None:
        raise SystemExit(f"chupacabra-play: {problem}")
    try:
        if not options.user:
            options.user = input("username: ").strip()
        if options.password is None:
            options.password = getpass.getpass("password: ")
    except (EOFError, KeyboardInterrupt):
        raise SystemExit("\nchupacabra-play: stopped before logging in")
    task.react(lambda reactor: defer.Deferred.fromCoroutine(play(reactor, options)))

"""chupacabra-play: play one match at a terminal, over the HTTP API."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer, error, task
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.web.client import (
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
    RequestTransmissionFailed,
)


def render_board(board: dict[str, Any]) -> list[str]:
    """
    Draw a board for a terminal.

    A 3x3 ``cells`` board (tic-tac-toe) becomes a grid with free cells
    numbered as they are played; any other game's board is its JSON.
    """
    cells = board.get("cells")
    if isinstance(cells, list) and len(cells) == 9:
        shown = [str(i + 1) if c is None else str(c) for i, c in enumerate(cells)]
        rows = [" " + " | ".join(shown[r : r + 3]) for r in (0, 3, 6)]
        return [rows[0], "---+---+---", rows[1], "---+---+---", rows[2]]
    return json.dumps(board, indent=2, sort_keys=True).splitlines()


def describe_end(state: dict[str, Any], me: str | None) -> str:
    """How a match ended, in words, for the player ``me``."""
    winner, reason = state.get("winner"), state.get("reason")
    if winner is None:
        return "it was a draw" if reason == "draw" else f"no winner ({reason})"
    who = "you" if winner == me else winner
    return f"{who} won" + ("" if reason == "win" else f" ({reason})")


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
        if event.kind == "logged-out":
            say(f"logged out: {data.get('reason', '')}")
            return True
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
        self.terminal.say(*render_board(state.board))
        if state.over:
            return
        if state.to_move == self.username:
            moves = self.game.moves if self.game is not None else "a move"
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
        if failure.check(ChupacabraError):
            self.terminal.say(str(failure.value))
        elif failure.check(*NETWORK_ERRORS):
            self.terminal.say(f"cannot reach the server: {failure.getErrorMessage()}")
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
        terminal.say(refused.message)
        code = 1
    except NETWORK_ERRORS as failed:
        terminal.say(f"cannot reach {options.url}: {failed}")
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
    parser.add_argument("--user", help="your username (asked if missing)")
    parser.add_argument("--password", help="your password (asked if missing)")
    parser.add_argument(
        "--register", action="store_true", help="create the account first"
    )
    parser.add_argument(
        "--game", default="tictactoe", help="the game to play (%(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """The chupacabra-play command."""
    options = parse(argv)
    try:
        if not options.user:
            options.user = input("username: ").strip()
        if options.password is None:
            options.password = getpass.getpass("password: ")
    except (EOFError, KeyboardInterrupt):
        raise SystemExit(1)
    task.react(lambda reactor: defer.Deferred.fromCoroutine(play(reactor, options)))

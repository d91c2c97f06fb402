"""
End-to-end tests of chupacabra_client, chupacabra-play and the example
script against the real twistd on loopback.

They run the installed package, as CI does: reinstall it after a change.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
import pytest_twisted
from chupacabra_client import (
    Client,
    Event,
    EventStream,
    GameOver,
    IllegalMove,
    NotYourTurn,
    Unauthorized,
)
from processes import (
    HOST,
    LineClient,
    Server,
    environment,
    exactly,
    free_port,
    listen_on,
)
from twisted.internet import defer, protocol, reactor, task, threads
from twisted.python.failure import Failure

T = TypeVar("T")

#: How long any one awaited step may take.
STEP_TIMEOUT = 20.0
#: How long a whole child process (a game of the example script) may take.
CHILD_TIMEOUT = 60.0

PASSWORD = "secret-password"
#: Cells for X and O in turn: X takes the top row with its third mark.
WIN = [1, 4, 2, 5, 3]
#: Cells for X and O in turn: O takes the top row while X has 4, 5, 9.
O_WINS = [4, 1, 5, 2, 9, 3]
#: Cells for X and O in turn that fill the board with no line of three.
DRAW = [1, 2, 3, 5, 4, 6, 8, 7, 9]

ROOT = Path(__file__).resolve().parent.parent


# The server


@attrs.frozen
class Running:
    """A running twistd chupacabra: its API's URL and line protocol port."""

    url: str
    line_port: int


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    """Run ``twistd chupacabra`` with the HTTP API; stop it and check its log."""
    line_port = free_port()
    http_port = free_port()
    while http_port == line_port:
        http_port = free_port()
    args = ["--data", str(tmp_path / "data"), "--bcrypt-rounds", "4"]
    args += ["--line", listen_on(line_port), "--http", listen_on(http_port)]
    process = Server("chupacabra", args, tmp_path / "chupacabra.log", cwd=tmp_path)
    process.start()
    try:
        process.wait_listening(http_port)
        process.wait_listening(line_port)
        yield Running(f"http://{HOST}:{http_port}", line_port)
    finally:
        process.stop()
    text = process.log()
    assert "Traceback" not in text, text
    assert "Unhandled Error" not in text, text


# Bounded waits


def within(d: defer.Deferred[T], seconds: float = STEP_TIMEOUT) -> defer.Deferred[T]:
    """``d``, failing with TimeoutError if it has not fired in ``seconds``."""
    return d.addTimeout(seconds, reactor)


async def next_event(stream: EventStream, kind: str | None = None) -> Event:
    """The next event on ``stream`` (of ``kind``, skipping others), bounded."""
    while True:
        event = await within(stream.next())
        if kind is None or event.kind == kind:
            return event


# HTTP players


@attrs.define
class Player:
    """A chupacabra_client player: its client and its started event stream."""

    name: str
    client: Client
    stream: EventStream


async def sign_up(url: str, name: str, **stream_options: Any) -> Player:
    """Register ``name``, log in and open an event stream that has started."""
    client = Client(url, reactor=reactor)
    await within(client.register(name, PASSWORD))
    session = await within(client.log_in(name, PASSWORD))
    assert session.username == name
    stream = client.events(**stream_options)
    started = await next_event(stream)
    assert started.kind == "stream-start"
    return Player(name, client, stream)


@pytest.fixture
def players() -> Iterator[list[Player]]:
    """A list to put players in; every one is closed after the test."""
    made: list[Player] = []
    yield made
    for player in made:
        pytest_twisted.blockon(within(player.client.close()))


async def start_match(first: Player, second: Player) -> tuple[str, Player, Player]:
    """``first`` seeks, then ``second``; both see it start. Match id, X and O."""
    waiting = await within(first.client.seek("tictactoe"))
    assert (waiting.status, waiting.match) == ("waiting", None)
    matched = await within(second.client.seek("tictactoe"))
    assert matched.status == "matched"

    events = [await next_event(p.stream, "match-started") for p in (first, second)]
    assert events[0].data == events[1].data
    data = events[0].data
    assert data["match"] == matched.match
    assert data["board"]["cells"] == [None] * 9
    assert await within(first.client.get_seek(waiting.id)) == attrs.evolve(
        waiting, status="matched", match=matched.match
    )

    x_name, o_name = data["players"]
    assert data["to_move"] == x_name
    x, o = (first, second) if x_name == first.name else (second, first)
    assert o_name == o.name
    return data["match"], x, o


async def play_cells(
    x: Player, o: Player, match: str, cells: list[int], start: int = 0
) -> None:
    """Play ``cells[start:]`` in turn; both players see each move pushed."""
    board: list[str | None] = [None] * 9
    for turn, cell in enumerate(cells):
        mover, mark = (x, "X") if turn % 2 == 0 else (o, "O")
        board[cell - 1] = mark
        if turn < start:
            continue
        moved = await within(mover.client.move(match, cell))
        assert (moved.match, moved.move) == (match, str(cell))

        for player in (x, o):
            event = await next_event(player.stream)
            assert event.kind == "moved"
            assert event.data["player"] == mover.name
            assert event.data["move"] == str(cell)
            assert event.data["to_move"] == moved.to_move
            assert event.data["board"]["cells"] == board


async def expect_end(match: str, winner: str | None, *players: Player) -> None:
    """Every one of ``players`` is told that ``match`` ended with ``winner``."""
    reason = "draw" if winner is None else "win"
    for player in players:
        ended = await next_event(player.stream)
        assert ended.kind == "match-ended"
        assert ended.match == match
        assert (ended.data["winner"], ended.data["reason"]) == (winner, reason)


# Two chupacabra_client players


@pytest_twisted.ensureDeferred
async def test_two_clients_play_to_a_win_then_a_draw(
    server: Running, players: list[Player]
) -> None:
    """Two clients play to a win and to a draw, each seeing the other's moves."""
    alice = await sign_up(server.url, "alice")
    bob = await sign_up(server.url, "bob")
    players += [alice, bob]

    match, x, o = await start_match(alice, bob)
    with pytest.raises(NotYourTurn) as refused:
        await within(o.client.move(match, 5))
    assert (refused.value.code, refused.value.status) == ("not-your-turn", 409)
    await play_cells(x, o, match, WIN)
    await expect_end(match, x.name, x, o)
    first_winner = x.name
    with pytest.raises(GameOver):
        await within(o.client.move(match, 9))

    state = await within(alice.client.match(match))
    assert state.over and state.winner == x.name and state.reason == "win"
    assert state.board["cells"][:3] == ["X", "X", "X"]
    assert state.moves == tuple(str(c) for c in WIN)

    second, x, o = await start_match(bob, alice)
    assert second != match
    await play_cells(x, o, second, DRAW[:2])
    with pytest.raises(IllegalMove) as refused:
        await within(x.client.move(second, DRAW[0]))
    assert refused.value.message == f"cell {DRAW[0]} is already taken"
    await play_cells(x, o, second, DRAW, start=2)
    await expect_end(second, None, x, o)

    history = await within(alice.client.matches())
    assert history.live == ()
    assert [(m.match, m.winner) for m in history.recent] == [
        (second, None),
        (match, first_winner),
    ]


# A line protocol player against an HTTP one


@pytest_twisted.ensureDeferred
async def test_line_player_beats_http_player(
    server: Running, players: list[Player]
) -> None:
    """A telnet-style socket player beats a client player, each seeing all moves."""
    line = await threads.deferToThread(LineClient, server.line_port, "carol")
    try:
        await play_line_against_http(server, players, line)
    finally:
        line.close()


async def play_line_against_http(
    server: Running, players: list[Player], line: LineClient
) -> None:
    def ask(command: str) -> defer.Deferred[str]:
        return within(threads.deferToThread(line.ask, command))

    def expect(text: str) -> defer.Deferred[str]:
        return within(threads.deferToThread(line.expect, exactly(text)))

    await expect("* welcome to chupacabra; type HELP for the commands")
    assert await ask(f"REGISTER carol {PASSWORD}") == (
        "OK registered carol; now LOGIN to play"
    )
    assert await ask(f"LOGIN carol {PASSWORD}") == "OK logged in as carol"
    dave = await sign_up(server.url, "dave")
    players.append(dave)

    assert (await ask("PLAY tictactoe")).startswith("OK waiting for an opponent")
    seek = await within(dave.client.seek("tictactoe"))
    assert seek.matched
    match = seek.match
    started = await next_event(dave.stream, "match-started")
    x_name, o_name = started.data["players"]
    await expect(f"* match {match} of tictactoe started: {x_name} (X) vs {o_name} (O)")

    cells = WIN if x_name == "carol" else O_WINS
    for turn, cell in enumerate(cells):
        mover = x_name if turn % 2 == 0 else o_name
        if mover == "carol":
            assert await ask(f"MOVE {cell}") == f"OK played {cell} in match {match}"
        else:
            await within(dave.client.move(str(match), cell))
        await expect(f"* {mover} played {cell} in match {match}")
        moved = await next_event(dave.stream)
        assert (moved.kind, moved.data["player"]) == ("moved", mover)
        assert moved.data["move"] == str(cell)

    await expect(f"* match {match} is over: carol won")
    ended = await next_event(dave.stream)
    assert (ended.kind, ended.data["winner"]) == ("match-ended", "carol")


# Event streams


@pytest_twisted.ensureDeferred
async def test_dropped_stream_resumes_without_gaps_or_repeats(
    server: Running, players: list[Player]
) -> None:
    """A stream dropped mid-game resumes with Last-Event-ID: nothing lost or twice."""
    clock = task.Clock()
    erin = await sign_up(server.url, "erin", clock=clock)
    frank = await sign_up(server.url, "frank")
    players += [erin, frank]
    match, x, o = await start_match(erin, frank)
    await play_cells(x, o, match, WIN[:2])
    seen_before = erin.stream.last_id
    assert seen_before is not None

    erin.stream.drop_connection()
    assert not erin.stream.connected
    for turn in (2, 3, 4):
        mover = x if turn % 2 == 0 else o
        await within(mover.client.move(match, WIN[turn]))
    for _ in range(4):
        await next_event(frank.stream)
    assert not erin.stream.connected

    # The reconnection waits on the fake clock: let it happen now.
    clock.advance(60)
    await within(erin.stream.when_connected())
    replayed = [await next_event(erin.stream) for _ in range(4)]

    assert erin.stream.connections == 2
    assert [e.kind for e in replayed] == ["moved"] * 3 + ["match-ended"]
    assert [e.data.get("move") for e in replayed[:3]] == [str(c) for c in WIN[2:]]
    assert [int(str(e.id)) for e in replayed] == [
        int(seen_before) + n for n in (1, 2, 3, 4)
    ]
    assert replayed[3].data["winner"] == x.name

    # Nothing else was waiting: the next event is one that happens later.
    later = erin.stream.next()
    assert not later.called
    await within(frank.client.seek("tictactoe"))
    await within(erin.client.seek("tictactoe"))
    started = await within(later)
    assert started.kind == "match-started"
    assert int(str(started.id)) == int(seen_before) + 5


@pytest_twisted.ensureDeferred
async def test_log_out_kills_the_token(server: Running, players: list[Player]) -> None:
    """After logging out, the old token is refused and its event stream ends."""
    gina = await sign_up(server.url, "gina")
    players.append(gina)
    token = gina.client.token
    assert token is not None
    ended = gina.stream.when_ended()

    await within(gina.client.log_out())
    assert gina.client.token is None

    stale = Client(server.url, token=token, reactor=reactor)
    try:
        with pytest.raises(Unauthorized) as refused:
            await within(stale.matches())
        assert refused.value.status == 401
        with pytest.raises(Unauthorized):
            await within(stale.seek("tictactoe"))
    finally:
        await within(stale.close())
    with pytest.raises(Unauthorized):
        await within(ended)
    with pytest.raises(Unauthorized):
        await within(gina.stream.next())


# Child processes: the example script and chupacabra-play


class Child(protocol.ProcessProtocol):
    """A child process whose output is read as lines, waited for in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cursor = 0
        self._partial = b""
        self._waiting: list[tuple[re.Pattern[str], defer.Deferred[str]]] = []
        self.ended: defer.Deferred[int | None] = defer.Deferred()

    def send(self, line: str) -> None:
        assert self.transport is not None
        self.transport.write(line.encode() + b"\n")

    def expect(self, pattern: str) -> defer.Deferred[str]:
        """The first line from the cursor on matching ``pattern`` in full."""
        wanted = re.compile(pattern)
        d: defer.Deferred[str] = defer.Deferred(
            lambda d: self._waiting.remove((wanted, d))
        )
        self._waiting.append((wanted, d))
        self._match()
        return within(d).addErrback(self._explain, pattern)

    def _explain(self, failure: Failure, pattern: str) -> Failure:
        if failure.check(defer.TimeoutError):
            tail = "\n".join(self.lines[-30:])
            raise AssertionError(f"no line matching {pattern!r}; last lines:\n{tail}")
        return failure

    def _match(self) -> None:
        while self._waiting:
            wanted, d = self._waiting[0]
            for i in range(self.cursor, len(self.lines)):
                if wanted.fullmatch(self.lines[i]):
                    self.cursor = i + 1
                    self._waiting.pop(0)
                    d.callback(self.lines[i])
                    break
            else:
                return

    def outReceived(self, data: bytes) -> None:
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines += [raw.decode("utf-8", "replace").rstrip() for raw in complete]
        self._match()

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if self._partial:
            self.outReceived(b"\n")
        self.ended.callback(getattr(reason.value, "exitCode", None))

    def kill(self) -> None:
        if not self.ended.called and self.transport is not None:
            self.transport.signalProcess("KILL")


@pytest.fixture
def spawn() -> Iterator[Any]:
    """Start child processes; kill any still running after the test."""
    children: list[Child] = []

    def spawn(*command: str) -> Child:
        child = Child()
        env = {k.encode(): v.encode() for k, v in environment().items()}
        reactor.spawnProcess(child, command[0], list(command), env=env, path=ROOT)
        children.append(child)
        return child

    yield spawn

    for child in children:
        if not child.ended.called:
            child.kill()
            pytest_twisted.blockon(within(child.ended))


def play_command() -> list[str]:
    """How to run chupacabra-play as installed with the Python running tests."""
    script = Path(sys.executable).parent / "chupacabra-play"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from chupacabra_client._play import main; main()"]


@pytest_twisted.ensureDeferred
async def test_example_script_plays_a_whole_game(
    server: Running, players: list[Player], spawn: Any
) -> None:
    """The example script registers or logs in its players and plays to the end."""
    players.append(await sign_up(server.url, "kate"))
    script = str(ROOT / "clients" / "example_game.py")
    child = spawn(
        sys.executable,
        *(script, server.url, "--players", "kate", "liam", "--password", PASSWORD),
    )
    code = await within(child.ended, CHILD_TIMEOUT)
    output = "\n".join(child.lines)

    assert code == 0, output
    assert "Traceback" not in output
    assert re.search(r"^match \w+: \S+ \(X\) vs \S+ \(O\)$", output, re.M), output
    assert len(re.findall(r"^(kate|liam) \([XO]\) plays [1-9]$", output, re.M)) >= 5
    assert re.fullmatch(r"match \w+ is over: (a draw|\S+ won)", child.lines[-1])
    liam = Client(server.url, reactor=reactor)
    await within(liam.log_in("liam", PASSWORD))
    await within(liam.close())


@pytest_twisted.ensureDeferred
async def test_chupacabra_play_against_a_client_player(
    server: Running, players: list[Player], spawn: Any
) -> None:
    """chupacabra-play logs in, shows pushed moves, makes moves and sees the end."""
    url, name = server.url, "henry"
    play = spawn(
        *play_command(),
        *("--url", url, "--user", name, "--password", PASSWORD, "--register"),
    )
    await play.expect(f"registered {name}")
    await play.expect(f"logged in as {name}")
    await play.expect("waiting for an opponent for tictactoe")

    iris = await sign_up(url, "iris")
    players.append(iris)
    seek = await within(iris.client.seek("tictactoe"))
    match = str(seek.match)
    started = await next_event(iris.stream, "match-started")
    x_name, o_name = started.data["players"]
    await play.expect(rf"match {match} of tictactoe: {x_name} \(X\) vs {o_name} \(O\)")
    await play.expect(r" 1 \| 2 \| 3")

    if x_name != name:
        play.send("5")
        await play.expect(f"not-your-turn: it is {x_name}'s turn")
    tried_illegal = False
    for turn, cell in enumerate(WIN):
        mover = x_name if turn % 2 == 0 else o_name
        if mover == name:
            await play.expect(r"your move \([XO]\): a cell number .*")
            if turn > 0 and not tried_illegal:
                play.send(str(WIN[0]))
                await play.expect(f"illegal-move: cell {WIN[0]} is already taken")
                tried_illegal = True
            play.send(str(cell))
            await play.expect(f"you played {cell}")
        else:
            await within(iris.client.move(match, cell))
            await play.expect(f"{mover} played {cell}")
        moved = await next_event(iris.stream, "moved")
        assert moved.data["move"] == str(cell)

    winner = "you" if x_name == name else x_name
    await play.expect(r" X \| X \| X")
    await play.expect(f"match {match} is over: {winner} won")
    code = await within(play.ended)
    assert code == 0, "\n".join(play.lines)
    assert "Traceback" not in "\n".join(play.lines)
    assert tried_illegal


@pytest_twisted.ensureDeferred
async def test_chupacabra_play_draws_connect_four_as_a_grid(
    server: Running, players: list[Player], spawn: Any
) -> None:
    """chupacabra-play draws Connect Four with column numbers, not JSON."""
    url, name = server.url, "nora"
    play = spawn(
        *play_command(),
        *("--url", url, "--user", name, "--password", PASSWORD, "--register"),
        *("--game", "connect4"),
    )
    await play.expect("waiting for an opponent for connect4")
    oscar = await sign_up(url, "oscar")
    players.append(oscar)
    match = str((await within(oscar.client.seek("connect4"))).match)
    started = await next_event(oscar.stream, "match-started")

    await play.expect(rf"match {match} of connect4: .*")
    await play.expect(r" 1 2 3 4 5 6 7")
    if started.data["to_move"] == name:
        await play.expect(r"your move \(X\): a column number from 1 .*")
        play.send("4")
        await play.expect("you played 4")
    else:
        await within(oscar.client.move(match, 4))
        await play.expect("oscar played 4")
    await play.expect(r" 1 2 3 4 5 6 7")
    await play.expect(r" \. \. \. X \. \. \.")
    play.send("forfeit")
    await play.expect(f"match {match} is over: oscar won \\(forfeit\\)")

    assert await within(play.ended) == 0, "\n".join(play.lines)
    assert not any(line.lstrip().startswith(("{", '"')) for line in play.lines)


@pytest_twisted.ensureDeferred
async def test_chupacabra_play_without_a_terminal_asks_for_the_password(
    spawn: Any,
) -> None:
    """Run from a pipe without --password, chupacabra-play says so in one line."""
    play = spawn(*play_command(), "--user", "pat")
    code = await within(play.ended)
    assert code != 0
    assert play.lines == [
        "chupacabra-play: give --password: there is no terminal to ask on"
    ]


@pytest_twisted.ensureDeferred
async def test_chupacabra_play_at_a_port_that_is_not_http(
    server: Running, spawn: Any
) -> None:
    """Pointed at the line protocol's port, chupacabra-play says so in one line."""
    url = f"http://{HOST}:{server.line_port}"
    play = spawn(*play_command(), "--url", url, "--user", "pat", "--password", "x" * 8)
    code = await within(play.ended)
    assert code == 1
    assert play.lines == [
        f"cannot talk to {url}: it does not answer in HTTP (is that the API's port?)"
    ]

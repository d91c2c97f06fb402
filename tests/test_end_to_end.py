"""
End-to-end tests: the real twistd plugins on loopback, driven over sockets.

They run the installed package, as CI does: reinstall it after a change.
"""

from __future__ import annotations

import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from processes import (
    HOST,
    READ_TIMEOUT,
    LineClient,
    Server,
    connect_to,
    exactly,
    free_port,
    listen_on,
    matching,
    run_twistd,
)

IAC, DONT, DO, WONT, WILL = 255, 254, 253, 252, 251
TERMINAL_TYPE, ECHO = 0x18, 0x01

#: Cells for X and O in turn: X takes the top row with its third mark.
WIN = [1, 4, 2, 5, 3]
#: Cells for X and O in turn that fill the board with no line of three.
DRAW = [1, 2, 3, 5, 4, 6, 8, 7, 9]

#: How long the gateway may take to link to a (re)started game service.
LINK_TIMEOUT = 30.0

WAITING = "OK waiting for an opponent for tictactoe; CANCEL to stop"
PASSWORD = "secret-password"

Launch = Callable[..., Server]
Connect = Callable[..., LineClient]


# Fixtures: processes and clients that always go away


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start twistd plugins; stop them all and check their logs afterwards."""
    servers: list[Server] = []

    def launch(
        plugin: str, *args: str, log: str | None = None, tidy_log: bool = True
    ) -> Server:
        log_path = tmp_path / f"{log or plugin}.log"
        server = Server(plugin, list(args), log_path, tmp_path, tidy_log)
        servers.append(server)
        return server.start()

    yield launch

    stopped = {server: server.stop() for server in reversed(servers)}
    for server, status in stopped.items():
        if not server.killed:
            assert status in (0, -signal.SIGTERM), f"{server.plugin}: {status}"
        if not server.tidy_log:
            continue
        text = server.log()
        assert "Unhandled Error" not in text, f"{server.log_path}:\n{text}"
        assert "Traceback" not in text, f"{server.log_path}:\n{text}"


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open line clients that have been welcomed, closing them afterwards."""
    clients: list[LineClient] = []

    def connect(port: int, name: str, ending: bytes = b"\n") -> LineClient:
        client = LineClient(port, name, ending)
        clients.append(client)
        client.expect("* welcome to chupacabra; type HELP for the commands")
        return client

    yield connect

    for client in clients:
        client.close()


def start_everything(tmp_path: Path, launch: Launch, *options: str) -> int:
    """Run ``twistd chupacabra`` until it listens; its line protocol's port."""
    port = free_port()
    data = str(tmp_path / "data")
    server = launch(
        "chupacabra",
        *("--data", data, "--bcrypt-rounds", "4", "--line", listen_on(port)),
        *("--http", listen_on(0)),
        *options,
    )
    server.wait_listening(port)
    return port


def start_gateway(
    launch: Launch, data: str, pb_port: int, log: str, port: int | None = None
) -> tuple[Server, int]:
    """Run ``twistd chupacabra-gateway`` until it listens; it and its line port."""
    port = port or free_port()
    server = launch(
        "chupacabra-gateway",
        *("--data", data, "--bcrypt-rounds", "4", "--line", listen_on(port)),
        *("--http", listen_on(0), "--game-service", connect_to(pb_port)),
        log=log,
    )
    server.wait_listening(port)
    return server, port


# Playing tic-tac-toe over the line protocol


def sign_up(*players: LineClient) -> None:
    """Register and log in each of ``players`` under its name."""
    for player in players:
        assert player.ask(f"REGISTER {player.name} {PASSWORD}") == (
            f"OK registered {player.name}; now LOGIN to play"
        )
        assert player.ask(f"LOGIN {player.name} {PASSWORD}") == (
            f"OK logged in as {player.name}"
        )


def expect_start(
    first: LineClient, second: LineClient
) -> tuple[str, LineClient, LineClient]:
    """
    Both players are told that a match between them started.

    Return the match id, the player with X and the player with O.
    """
    started = r"\* match (\w+) of tictactoe started: (\w+) \(X\) vs (\w+) \(O\)"
    lines = [player.expect(matching(started)) for player in (first, second)]
    assert lines[0] == lines[1]
    found = re.fullmatch(started, lines[0])
    assert found is not None
    match, x_name, o_name = found.groups()
    assert {x_name, o_name} == {first.name, second.name}

    x, o = (first, second) if x_name == first.name else (second, first)
    x.expect(exactly("  your move: MOVE <move>"))
    o.expect(exactly(f"  waiting for {x.name} to move"))
    return match, x, o


def matched(
    first: LineClient, second: LineClient
) -> tuple[str, LineClient, LineClient]:
    """``second`` seeks the game ``first`` waits for; see L{expect_start}."""
    reply = second.ask("PLAY tictactoe")
    found = re.fullmatch(r"OK matched: match (\w+)", reply)
    assert found, reply
    match, x, o = expect_start(first, second)
    assert match == found.group(1)
    return match, x, o


def start_match(
    first: LineClient, second: LineClient
) -> tuple[str, LineClient, LineClient]:
    """``first`` waits for tic-tac-toe, then ``second`` joins; see L{matched}."""
    assert first.ask("PLAY tictactoe") == WAITING
    return matched(first, second)


def play_text(
    x: LineClient, o: LineClient, match: str, cells: list[int], start: int = 0
) -> None:
    """
    Play ``cells[start:]`` in turn; both players see every move pushed.

    O names the match in its moves; X lets the gateway pick its only one.
    """
    for turn in range(start, len(cells)):
        cell = cells[turn]
        mover, other = (x, o) if turn % 2 == 0 else (o, x)
        command = f"MOVE {cell}" if mover is x else f"MOVE {match} {cell}"
        assert mover.ask(command) == f"OK played {cell} in match {match}"
        pushed = exactly(f"* {mover.name} played {cell} in match {match}")
        for player in (mover, other):
            player.expect(pushed)


def expect_end(
    players: list[LineClient], match: str, ending: str, timeout: float = READ_TIMEOUT
) -> None:
    """Every one of ``players`` is told that ``match`` ended with ``ending``."""
    for player in players:
        player.expect(exactly(f"* match {match} is over: {ending}"), timeout)


def poll_play(player: LineClient, timeout: float = LINK_TIMEOUT) -> str:
    """Send PLAY until a game service is linked or time is up; the last reply."""
    deadline = time.monotonic() + timeout
    while True:
        reply = player.ask("PLAY tictactoe")
        if not reply.startswith("ERR unavailable ") or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def test_netcat_and_telnet_players_win_then_draw(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """A netcat and a telnet player play to a win, then a draw, seeing every move."""
    port = start_everything(tmp_path, launch)
    alice = connect(port, "alice")
    bob = connect(port, "bob", ending=b"\r\n")

    bob.send_raw(bytes([IAC, WILL, TERMINAL_TYPE, IAC, DO, ECHO]))
    assert bob.read_bytes(6) == bytes([IAC, DONT, TERMINAL_TYPE, IAC, WONT, ECHO])
    bob.send_raw(bytes([IAC, WILL, TERMINAL_TYPE]) + b"HELP LOGIN\r\n")
    assert bob.next_line() == "OK LOGIN name password"

    sign_up(alice, bob)
    for byte in b"WHO\r\n":
        bob.send_raw(bytes([byte]))
    assert bob.expect("OK") == "OK 2 players online"

    match, x, o = start_match(alice, bob)
    assert o.ask("MOVE 5") == f"ERR not-your-turn it is {x.name}'s turn"
    play_text(x, o, match, WIN)
    x.expect(exactly("   X | X | X"))
    expect_end([x, o], match, f"{x.name} won")
    assert o.ask(f"MOVE {match} 9") == f"ERR game-over match {match} is over"

    second, x, o = start_match(bob, alice)
    assert second != match
    play_text(x, o, second, DRAW[:2])
    assert x.ask("MOVE 2") == "ERR illegal-move cell 2 is already taken"
    play_text(x, o, second, DRAW, start=2)
    for player in (x, o):
        player.expect(exactly("   O | X | X"))
    expect_end([x, o], second, "a draw")


def test_json_player_against_text_player(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """A JSON-mode player gets replies and match events as one object per line."""
    port = start_everything(tmp_path, launch)
    alice = connect(port, "alice")
    bob = connect(port, "bob")
    sign_up(alice)

    bob.send("JSON")
    assert bob.expect_json() == {"ok": True, "result": {"mode": "json"}}
    for command in (f"REGISTER bob {PASSWORD}", f"LOGIN bob {PASSWORD}"):
        bob.send(command)
        assert bob.expect_json() == {"ok": True, "result": {"username": "bob"}}
    bob.send("MOVE 5")
    error = bob.expect_json()
    assert error["ok"] is False
    assert error["error"]["code"] == "no-match"

    assert alice.ask("PLAY tictactoe") == WAITING
    bob.send("PLAY tictactoe")
    reply = bob.expect_json()
    assert reply["ok"] is True
    assert reply["result"]["status"] == "matched"
    match = reply["result"]["match"]

    started = bob.expect_event("match-started")
    assert started["match"] == match
    assert started["game"] == "tictactoe"
    assert sorted(started["players"]) == ["alice", "bob"]
    assert started["labels"] == ["X", "O"]
    assert started["to_move"] == started["players"][0]
    assert started["board"]["cells"] == [None] * 9
    assert "text" not in started
    x_name, o_name = started["players"]
    alice.expect(
        exactly(f"* match {match} of tictactoe started: {x_name} (X) vs {o_name} (O)")
    )

    cells: list[str | None] = [None] * 9
    for turn, cell in enumerate(WIN):
        mover, mark = (x_name, "X") if turn % 2 == 0 else (o_name, "O")
        to_move = None if turn == len(WIN) - 1 else ({x_name, o_name} - {mover}).pop()
        cells[cell - 1] = mark

        if mover == "bob":
            bob.send(f"MOVE {cell}")
            assert bob.expect_json() == {
                "ok": True,
                "result": {"match": match, "move": str(cell), "to_move": to_move},
            }
        else:
            assert alice.ask(f"MOVE {cell}") == f"OK played {cell} in match {match}"

        moved = bob.expect_event("moved")
        assert moved["match"] == match
        assert moved["player"] == mover
        assert moved["move"] == str(cell)
        assert moved["to_move"] == to_move
        assert moved["board"]["cells"] == cells
        assert "text" not in moved
        alice.expect(exactly(f"* {mover} played {cell} in match {match}"))

    assert bob.expect_event("match-ended") == {
        "event": "match-ended",
        "match": match,
        "players": [x_name, o_name],
        "winner": x_name,
        "reason": "win",
    }
    expect_end([alice], match, f"{x_name} won")

    bob.send("TEXT")
    assert bob.expect("OK") == "OK text mode"


def test_turn_and_idle_timeouts(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """--turn-timeout ends a match nobody moves in; --idle-timeout closes silence."""
    port = start_everything(
        tmp_path, launch, "--turn-timeout", "0.5", "--idle-timeout", "3"
    )
    idler = connect(port, "idler")
    alice = connect(port, "alice")
    bob = connect(port, "bob")
    sign_up(alice, bob)

    match, x, o = start_match(alice, bob)
    expect_end([x, o], match, f"{x.name} ran out of time, {o.name} won")

    idler.expect(exactly("* closing the connection: idle for 3 seconds"))
    idler.expect_closed()


# Running the gateway and the game service apart


@pytest.mark.parametrize("same_store", [True, False], ids=["same-store", "new-store"])
def test_gateway_outlives_game_service_restart(
    tmp_path: Path, launch: Launch, connect: Connect, same_store: bool
) -> None:
    """A killed game service fails commands at once; once restarted, play goes on."""
    data = str(tmp_path / "data")
    pb_port = free_port()
    game = launch("chupacabra-game", "--data", data, "--pb", listen_on(pb_port))
    game.wait_listening(pb_port)
    _, line_port = start_gateway(launch, data, pb_port, "gateway")

    alice = connect(line_port, "alice")
    bob = connect(line_port, "bob", ending=b"\r\n")
    carol = connect(line_port, "carol")
    sign_up(alice, bob, carol)
    assert poll_play(alice) == WAITING
    first, x, o = matched(alice, bob)
    play_text(x, o, first, WIN[:1])
    assert carol.ask("PLAY tictactoe") == WAITING

    game.kill()
    assert o.ask(f"MOVE {WIN[1]}").startswith("ERR unavailable ")
    assert x.ask("PLAY tictactoe").startswith("ERR unavailable ")
    assert x.ask("WHO") == "OK 3 players online"

    if same_store:
        store = ["--data", data]
    else:
        secret = str(tmp_path / "data" / "link-secret")
        store = ["--data", str(tmp_path / "other"), "--secret-file", secret]
    restarted = launch(
        "chupacabra-game", *store, "--pb", listen_on(pb_port), log="game-2"
    )
    restarted.wait_listening(pb_port)

    if same_store:
        # The match was stored move by move and carries on where it was.
        resumed = rf"\* match {first}: tictactoe, {x.name} \(X\) vs {o.name} \(O\), "
        for player in (x, o):
            player.expect(matching(resumed + "1 move played"), timeout=LINK_TIMEOUT)
            player.expect(exactly("   X | 2 | 3"))
        play_text(x, o, first, WIN, start=1)
        expect_end([x, o], first, f"{x.name} won")
    else:
        ending = "it was lost when its game service stopped"
        expect_end([x, o], first, ending, timeout=LINK_TIMEOUT)
        assert alice.ask(f"MOVE {first} 5").startswith("ERR no-match ")

    # The gateway seeks again for carol, so alice meets her either way.
    reply = poll_play(alice)
    assert reply == WAITING or reply.startswith("OK matched: match "), reply
    second, x, o = expect_start(alice, carol)
    assert second != first
    play_text(x, o, second, WIN)
    expect_end([x, o], second, f"{x.name} won")


def test_game_service_keeps_matches_across_gateway_restart(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """After a gateway is killed and restarted, its players log in and play on."""
    data = str(tmp_path / "data")
    pb_port = free_port()
    game = launch("chupacabra-game", "--data", data, "--pb", listen_on(pb_port))
    game.wait_listening(pb_port)
    gateway, line_port = start_gateway(launch, data, pb_port, "gateway-1")

    alice = connect(line_port, "alice")
    bob = connect(line_port, "bob")
    sign_up(alice, bob)
    assert poll_play(alice) == WAITING
    match, x, o = matched(alice, bob)
    play_text(x, o, match, WIN[:1])

    gateway.kill()
    for player in (alice, bob):
        player.expect_closed()

    start_gateway(launch, data, pb_port, "gateway-2", port=line_port)
    x, o = connect(line_port, x.name), connect(line_port, o.name)
    resumed = rf"\* match {match}: tictactoe, {x.name} \(X\) vs {o.name} \(O\), "
    for player in (x, o):
        assert player.ask(f"LOGIN {player.name} {PASSWORD}") == (
            f"OK logged in as {player.name}"
        )
        player.expect(matching(resumed + "1 move played"), timeout=LINK_TIMEOUT)
        player.expect(exactly("   X | 2 | 3"))
    play_text(x, o, match, WIN, start=1)
    expect_end([x, o], match, f"{x.name} won")


def test_gateway_with_the_wrong_secret_is_refused(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """A gateway whose link secret differs from the game service's cannot link."""
    pb_port = free_port()
    game = launch(
        "chupacabra-game",
        *("--data", str(tmp_path / "game-data"), "--pb", listen_on(pb_port)),
    )
    game.wait_listening(pb_port)
    line_port = free_port()
    gateway = launch(
        "chupacabra-gateway",
        *("--data", str(tmp_path / "gateway-data"), "--bcrypt-rounds", "4"),
        *("--line", listen_on(line_port), "--http", listen_on(0)),
        *("--game-service", connect_to(pb_port)),
    )
    gateway.wait_listening(line_port)

    gateway.wait_for_log("refused the shared secret")
    player = connect(line_port, "alice")
    sign_up(player)
    assert player.ask("PLAY tictactoe").startswith("ERR unavailable ")


# Starting up, and failing to


@pytest.mark.parametrize(
    ("plugin", "args", "complaint"),
    [
        ("chupacabra", ["--turn-timeout", "abc"], "--turn-timeout"),
        ("chupacabra", ["--line", "nonsense:foo"], "--line 'nonsense:foo'"),
        ("chupacabra", ["--bcrypt-rounds", "2"], "--bcrypt-rounds"),
        ("chupacabra", ["--frobnicate"], "--frobnicate"),
        ("chupacabra-gateway", ["--idle-timeout", "0"], "--idle-timeout"),
        ("chupacabra-gateway", ["--game-service", "nonsense:foo"], "--game-service"),
        ("chupacabra-game", ["--pb", "nonsense:foo"], "--pb 'nonsense:foo'"),
        ("chupacabra-game", ["--line", listen_on(0)], "--line"),
    ],
)
def test_bad_option_exits_with_one_error_line(
    tmp_path: Path, plugin: str, args: list[str], complaint: str
) -> None:
    """A bad option value stops twistd with a one-line error and no traceback."""
    data = str(tmp_path / "data")
    done = run_twistd(["-n", "--pidfile=", plugin, "--data", data, *args], tmp_path)

    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert lines, done.stdout
    assert lines[0].startswith(f"twistd {plugin}: error: "), done.stderr
    assert complaint in lines[0]
    assert [line for line in lines if "error" in line] == lines[:1]
    assert "Traceback" not in done.stdout + done.stderr
    assert "starting up" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("plugin", "option", "what"),
    [
        ("chupacabra", "--line", "line protocol"),
        ("chupacabra", "--pb", "built-in game service"),
        ("chupacabra-gateway", "--line", "line protocol"),
        ("chupacabra-gateway", "--http", "HTTP API"),
        ("chupacabra-game", "--pb", "game service"),
    ],
)
def test_port_in_use_exits_with_clear_log_line(
    tmp_path: Path, plugin: str, option: str, what: str
) -> None:
    """A port already taken stops twistd with a clear log line and no traceback."""
    args = ["-n", "--pidfile=", plugin, "--data", str(tmp_path / "data")]
    if plugin != "chupacabra-game":
        args += ["--bcrypt-rounds", "4", "--line", listen_on(0), "--http", listen_on(0)]
    if plugin == "chupacabra-gateway":
        args += ["--game-service", connect_to(free_port())]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen()
        endpoint = listen_on(taken.getsockname()[1])
        done = run_twistd([*args, option, endpoint], tmp_path)

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    complaints = [line for line in output.splitlines() if "already in use" in line]
    assert len(complaints) == 1, output
    assert f"{what} on {endpoint}: " in complaints[0]
    assert "Traceback" not in output
    assert "Unhandled Error" not in output


def test_twistd_lists_the_plugins(tmp_path: Path) -> None:
    """twistd, run outside the source tree, lists the three chupacabra plugins."""
    done = run_twistd(["--help"], tmp_path)

    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert {"chupacabra", "chupacabra-gateway", "chupacabra-game"} <= listed


#: Options of the gateway, of the game service, and of both.
GATEWAY_ONLY = ["--line", "--http", "--idle-timeout", "--bcrypt-rounds"]
GAME_ONLY = ["--pb", "--turn-timeout"]
COMMON = ["--data", "--secret-file"]


@pytest.mark.parametrize(
    ("plugin", "documented", "absent"),
    [
        ("chupacabra", [*COMMON, *GATEWAY_ONLY, *GAME_ONLY, "--game-service"], []),
        ("chupacabra-gateway", [*COMMON, *GATEWAY_ONLY, "--game-service"], GAME_ONLY),
        ("chupacabra-game", [*COMMON, *GAME_ONLY], [*GATEWAY_ONLY, "--game-service"]),
    ],
)
def test_plugin_help_documents_its_options(
    tmp_path: Path, plugin: str, documented: list[str], absent: list[str]
) -> None:
    """Each plugin's --help documents its own options, no others, and writes nothing."""
    done = run_twistd([plugin, "--help"], tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: twistd [options] {plugin} [options]")
    options = set(re.findall(r"^ +(--[a-z-]+)=", done.stdout, re.MULTILINE))
    assert set(documented) <= options, done.stdout
    assert not set(absent) & options, done.stdout
    assert list(tmp_path.iterdir()) == []

"""
Games as plug-ins, end to end: the nim example installed from outside
chupacabra, and every game played to its end against the real twistd.

The nim test builds a new virtual environment that sees this one's
packages, pip-installs examples/nim into it without touching the network,
and runs that environment's twistd.  The others run the twistd of the
Python running the tests, like test_end_to_end.py: reinstall the package
after a change.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import site
import subprocess
import sys
import venv
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import processes
import pytest
from nim_example import EXAMPLE, Nim
from processes import (
    HOST,
    READ_TIMEOUT,
    LineClient,
    Server,
    environment,
    exactly,
    free_port,
    listen_on,
    matching,
)

from chupacabra.games import (
    ConnectFour,
    Game,
    Outcome,
    Reversi,
    TicTacToe,
    installed_games,
)

PASSWORD = "secret-password"
#: How long pip may take to install the example.
INSTALL_TIMEOUT = 120.0
#: Runs twistd with whichever Python runs this.
RUN_TWISTD = "from twisted.scripts.twistd import run; run()"

#: Prints, as JSON, the games installed_games() finds and where the nim
#: game's class comes from (null while nim is not installed).
REPORT_GAMES = """
import json, sys
from chupacabra.games import installed_games
games = installed_games()
nim = games.get("nim")
module = None if nim is None else sys.modules[type(nim).__module__]
print(json.dumps({
    "games": sorted(games),
    "nim": None if module is None else [module.__name__, module.__file__],
}))
"""

#: Prints whether the setuptools this Python sees can build a wheel with
#: no download: from version 70.1 on, or with the wheel package present.
CAN_BUILD_WHEELS = """
import importlib.metadata, importlib.util, re
try:
    version = importlib.metadata.version("setuptools")
except importlib.metadata.PackageNotFoundError:
    version = "0"
numbers = [int(n) for n in re.findall(r"\\d+", version)[:2]] + [0, 0]
print((numbers[:2] >= [70, 1]) or (
    numbers[:2] >= [64, 0] and importlib.util.find_spec("wheel") is not None
))
"""

#: The random games' seeds: Python's random module plays the Reversi one
#: to a draw with an automatic pass on the way.
SEEDS = {"tictactoe": "tictactoe", "connect4": "connect4", "reversi": "reversi 10"}

Launch = Callable[..., Server]
Connect = Callable[..., LineClient]


# Processes and clients that always go away


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start twistd plugins; stop them all and check their logs afterwards."""
    servers: list[Server] = []

    def launch(plugin: str, *args: str, cwd: Path | None = None) -> Server:
        log_path = tmp_path / f"{plugin}-{len(servers)}.log"
        server = Server(plugin, list(args), log_path, cwd or tmp_path)
        servers.append(server)
        return server.start()

    yield launch

    stopped = {server: server.stop() for server in reversed(servers)}
    for server, status in stopped.items():
        assert status in (0, -signal.SIGTERM), f"{server.plugin}: {status}"
        text = server.log()
        assert "Unhandled Error" not in text, f"{server.log_path}:\n{text}"
        assert "Traceback" not in text, f"{server.log_path}:\n{text}"


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open line clients that have been welcomed, closing them afterwards."""
    clients: list[LineClient] = []

    def connect(port: int, name: str) -> LineClient:
        client = LineClient(port, name)
        clients.append(client)
        client.expect("* welcome to chupacabra; type HELP for the commands")
        return client

    yield connect

    for client in clients:
        client.close()


def start_chupacabra(
    launch: Launch, data: Path, *options: str, cwd: Path | None = None
) -> tuple[int, int]:
    """
    Run ``twistd chupacabra`` until its gateway has linked to its game
    service; return its line and HTTP ports.
    """
    line_port, http_port = free_port(), free_port()
    args = ["--data", str(data), "--bcrypt-rounds", "4"]
    args += ["--line", listen_on(line_port), "--http", listen_on(http_port)]
    server = launch("chupacabra", *args, *options, cwd=cwd)
    server.wait_listening(line_port)
    server.wait_listening(http_port)
    server.wait_for_log("linked to game service")
    return line_port, http_port


# Talking to the server


def sign_up(*players: LineClient) -> None:
    """Register and log in each of ``players`` under its name."""
    for player in players:
        assert player.ask(f"REGISTER {player.name} {PASSWORD}").startswith("OK")
        assert player.ask(f"LOGIN {player.name} {PASSWORD}") == (
            f"OK logged in as {player.name}"
        )


def listed_games(player: LineClient) -> list[str]:
    """The names of the games GAMES lists, in its order."""
    head = player.ask("GAMES")
    found = re.fullmatch(r"OK (\d+) games?", head)
    assert found, head
    lines = [player.next_line() for _ in range(2 * int(found[1]))]
    names = [line.split(":")[0].strip() for line in lines[::2]]
    assert all(line.startswith("    moves: ") for line in lines[1::2]), lines
    return names


def http_games(port: int) -> list[str]:
    """The names of the games ``GET /v1/games`` lists."""
    connection = http.client.HTTPConnection(HOST, port, timeout=READ_TIMEOUT)
    try:
        connection.request("GET", "/v1/games")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200, body
    return [game["name"] for game in body["games"]]


def expect_position(
    player: LineClient, game: Game[Any, Any], state: Any, names: list[str]
) -> None:
    """
    The lines after the one just read show ``state`` drawn by ``game``,
    then whose turn it is, unless the game is over.
    """
    drawn = ["  " + line for line in game.render_text(state).splitlines()]
    assert [player.next_line() for _ in drawn] == drawn
    seat = game.to_move(state)
    if seat is None:
        return
    if names[seat] == player.name:
        assert player.next_line() == "  your move: MOVE <move>"
    else:
        assert player.next_line() == f"  waiting for {names[seat]} to move"


def play_to_the_end(
    first: LineClient, second: LineClient, game: Game[Any, Any], seed: str
) -> Outcome:
    """
    ``first`` waits for ``game`` and ``second`` joins; they play random
    legal moves, worked out with ``game`` locally, until the match ends.

    Both players must see every move, the same position as the local
    game after it, and the end; return how the game ended.
    """
    rng = random.Random(seed)
    waiting = f"OK waiting for an opponent for {game.name}; CANCEL to stop"
    assert first.ask(f"PLAY {game.name}") == waiting
    reply = second.ask(f"PLAY {game.name}")
    found = re.fullmatch(r"OK matched: match (\w+)", reply)
    assert found, reply
    match = found[1]

    labels = [re.escape(label) for label in game.seat_labels]
    started = (
        rf"\* match {match} of {game.name} started: "
        rf"(\w+) \({labels[0]}\) vs (\w+) \({labels[1]}\)"
    )
    players = {player.name: player for player in (first, second)}
    state = game.new_state(2)
    seen = []
    for player in players.values():
        line = player.expect(matching(started))
        sides = re.fullmatch(started, line)
        assert sides is not None
        seen.append(list(sides.groups()))
        expect_position(player, game, state, seen[-1])
    names = seen[0]
    assert seen[1] == names
    assert sorted(names) == sorted(players)

    while (seat := game.to_move(state)) is not None:
        mover = players[names[seat]]
        move = rng.choice(list(game.legal_moves(state)))
        text = game.format_move(move)
        assert mover.ask(f"MOVE {match} {text}") == f"OK played {text} in match {match}"
        state = game.apply(state, move)
        for player in players.values():
            player.expect(exactly(f"* {mover.name} played {text} in match {match}"))
            expect_position(player, game, state, names)

    outcome = game.outcome(state)
    assert outcome is not None
    ending = "a draw" if outcome.winner is None else f"{names[outcome.winner]} won"
    for player in players.values():
        player.expect(exactly(f"* match {match} is over: {ending}"))
    return outcome


# The built-in games


def test_every_built_in_game_is_played_to_its_end(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """Two line players play tic-tac-toe, Connect Four and Reversi to their ends."""
    port, http_port = start_chupacabra(launch, tmp_path / "data")
    alice, bob = connect(port, "alice"), connect(port, "bob")
    sign_up(alice, bob)
    assert set(listed_games(alice)) == set(installed_games())
    assert {"tictactoe", "connect4", "reversi"} <= set(http_games(http_port))

    for game in (TicTacToe(), ConnectFour(), Reversi()):
        play_to_the_end(alice, bob, game, SEEDS[game.name])
        alice, bob = bob, alice


def test_games_option_serves_only_the_games_named(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """With --games connect4, only Connect Four is listed and can be played."""
    port, http_port = start_chupacabra(launch, tmp_path / "data", "--games", "connect4")
    alice, bob = connect(port, "alice"), connect(port, "bob")
    sign_up(alice, bob)

    assert listed_games(alice) == ["connect4"]
    assert http_games(http_port) == ["connect4"]
    assert alice.ask("PLAY tictactoe") == (
        "ERR unknown-game there is no game called tictactoe"
    )
    assert alice.ask("PLAY connect4") == (
        "OK waiting for an opponent for connect4; CANCEL to stop"
    )
    assert alice.ask("CANCEL") == "OK stopped waiting for connect4"
    play_to_the_end(bob, alice, ConnectFour(), seed="only connect4")


# A game installed from outside


def test_example_declares_its_game_as_an_entry_point() -> None:
    """The example's pyproject.toml registers Nim as nim in chupacabra.games."""
    tomllib = pytest.importorskip("tomllib")
    text = (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    points = tomllib.loads(text)["project"]["entry-points"]
    assert points == {"chupacabra.games": {"nim": "chupacabra_nim:Nim"}}
    assert Nim.name == "nim"


def test_example_passes_strict_type_checks() -> None:
    """mypy --strict finds nothing to complain about in the nim package."""
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "examples/nim/chupacabra_nim"],
        cwd=EXAMPLE.parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def make_venv(path: Path) -> Path:
    """
    Create a virtual environment at ``path`` that sees the packages of
    the one running the tests; return its Python.

    ``--system-site-packages`` alone shows only the base installation's
    packages when the tests run in a virtual environment themselves, so
    a .pth file adds this environment's site folders as site folders,
    whose own .pth files (editable installs, say) then count too.
    """
    builder = venv.EnvBuilder(system_site_packages=True, symlinks=os.name != "nt")
    builder.create(path)
    bin_dir = path / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")

    done = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        timeout=READ_TIMEOUT,
        check=True,
    )
    purelib = Path(done.stdout.strip())
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    line = f"import site; list(map(site.addsitedir, {parents!r}))\n"
    (purelib / "_chupacabra_tests_parent.pth").write_text(line, encoding="utf-8")
    return python


def run_python(python: Path, script: str, cwd: Path) -> str:
    """Run ``script`` with ``python`` in ``cwd``; its output."""
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=READ_TIMEOUT,
        env=environment(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wheel_hash(data: bytes) -> str:
    """A RECORD file's hash of ``data``."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel_by_hand(source: Path, out: Path) -> Path:
    """
    Build a pure-Python wheel of the project in ``source`` from its
    pyproject.toml alone: its packages, metadata and entry points.

    This stands in for setuptools where the setuptools installed cannot
    build wheels without downloading the wheel package; pip then
    installs the result as it would any wheel.
    """
    try:
        import tomllib
    except ImportError:
        pytest.skip("setuptools here cannot build wheels, nor read pyproject.toml")
    config = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    name = re.sub(r"[-_.]+", "_", project["name"])
    dist_info = f"{name}-{project['version']}.dist-info"

    files: dict[str, bytes] = {}
    for package in config["tool"]["setuptools"]["packages"]:
        for path in sorted((source / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(source).as_posix()] = path.read_bytes()

    metadata = ["Metadata-Version: 2.1", f"Name: {project['name']}"]
    metadata.append(f"Version: {project['version']}")
    metadata += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    files[f"{dist_info}/METADATA"] = "".join(f"{m}\n" for m in metadata).encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: chupacabra tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    points = ""
    for group, entries in project.get("entry-points", {}).items():
        points += f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
    files[f"{dist_info}/entry_points.txt"] = points.encode()
    record = [f"{path},{wheel_hash(data)},{len(data)}" for path, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "".join(f"{r}\n" for r in record).encode()

    wheel = out / f"{name}-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def install_example(python: Path, work: Path) -> None:
    """
    pip-install a copy of examples/nim into ``python``'s environment,
    with no dependencies, no build isolation and no index: nothing is
    downloaded.  The copy keeps build files out of the source tree.
    """
    source = work / "nim-source"
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    shutil.copytree(EXAMPLE, source, ignore=ignore)
    target = source
    if run_python(python, CAN_BUILD_WHEELS, work).strip() != "True":
        target = build_wheel_by_hand(source, work)

    env = {k: v for k, v in environment().items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = ["-m", "pip", "install", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [str(python), *command, "--no-index", str(target)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_game_installed_from_outside_is_served(
    tmp_path: Path, launch: Launch, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nim pip-installed into a new environment is found there and played to the end."""
    env_dir, run_dir = tmp_path / "venv", tmp_path / "run"
    run_dir.mkdir()
    python = make_venv(env_dir)
    before = json.loads(run_python(python, REPORT_GAMES, run_dir))
    if "nim" not in installed_games():
        assert "nim" not in before["games"]

    install_example(python, tmp_path)
    after = json.loads(run_python(python, REPORT_GAMES, run_dir))
    assert set(after["games"]) >= {"nim", "tictactoe", "connect4", "reversi"}
    module, module_file = after["nim"]
    assert module == "chupacabra_nim._rules"
    assert Path(module_file).resolve().is_relative_to(env_dir.resolve())

    # The Server helper runs processes.twistd_command(): make it this
    # environment's twistd.
    monkeypatch.setattr(
        processes, "twistd_command", lambda: [str(python), "-c", RUN_TWISTD]
    )
    port, http_port = start_chupacabra(launch, tmp_path / "data", cwd=run_dir)
    alice, bob = connect(port, "alice"), connect(port, "bob")
    sign_up(alice, bob)
    assert "nim" in listed_games(alice)
    assert "nim" in http_games(http_port)

    outcome = play_to_the_end(alice, bob, Nim(), seed="nim")
    assert outcome.reason == "win"
    assert bob.ask("MOVE 1:1").startswith("ERR game-over ")

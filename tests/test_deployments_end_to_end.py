"""
End-to-end tests of deployments: processes killed and restarted, two
gateways over one store, and one gateway over two game services.

They run the installed package, as CI does: reinstall it after a change.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import processes
import pytest
import pytest_twisted
import test_client_end_to_end as client_tests
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
    starting,
)
from test_client_end_to_end import Player, players
from test_end_to_end import (
    LINK_TIMEOUT,
    PASSWORD,
    WAITING,
    WIN,
    Connect,
    Launch,
    connect,
    expect_end,
    launch,
    matched,
    play_text,
    poll_play,
    sign_up,
)
from twisted.internet import task, threads

# The fixtures imported above are requested by name, not used directly.
__all__ = ["connect", "launch", "players"]

#: Columns for the first and second player in turn: the first stacks four.
CONNECT4_WIN = ["1", "2", "1", "2", "1", "2", "1"]
#: Squares for the first and second player in turn: the first takes every disc.
REVERSI_WIPEOUT = ["d3", "c3", "b3", "d2", "e1", "d6", "d7", "e3", "f4"]

#: A match starting, in the line protocol's text mode.
STARTED = r"\* match (\w+) of (\w+) started: (\w+) \((\w+)\) vs (\w+) \((\w+)\)"


# Processes


def start_game(
    launch: Launch, pb_port: int, *options: str, log: str = "game"
) -> Server:
    """Run ``twistd chupacabra-game`` on ``pb_port`` until it listens."""
    server = launch("chupacabra-game", "--pb", listen_on(pb_port), *options, log=log)
    server.wait_listening(pb_port)
    return server


def start_gateway(
    launch: Launch,
    line_port: int,
    http_port: int,
    pb_ports: list[int],
    *options: str,
    log: str = "gateway",
) -> Server:
    """Run ``twistd chupacabra-gateway`` until it listens and has linked."""
    services = [
        arg for port in pb_ports for arg in ("--game-service", connect_to(port))
    ]
    server = launch(
        "chupacabra-gateway",
        *("--bcrypt-rounds", "4", "--line", listen_on(line_port)),
        *("--http", listen_on(http_port), *services, *options),
        log=log,
    )
    server.wait_listening(line_port)
    server.wait_listening(http_port)
    for port in pb_ports:
        server.wait_for_log(f"linked to game service {connect_to(port)} ")
    return server


def ports(count: int) -> list[int]:
    """``count`` different free loopback ports."""
    found: set[int] = set()
    while len(found) < count:
        found.add(free_port())
    return sorted(found)


@pytest.fixture
def shared_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every process started by the test one secret in $CHUPACABRA_SECRET."""
    clean = processes.environment()
    secret = {"CHUPACABRA_SECRET": "one-secret-for-every-process"}
    monkeypatch.setattr(processes, "environment", lambda: {**clean, **secret})


# The HTTP API, read with the standard library

#: Sends requests straight to loopback, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """One API request to the gateway on ``port``: its status and JSON body."""
    headers = {"accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://{HOST}:{port}{path}", data=data, headers=headers, method=method
    )
    try:
        with _OPENER.open(request, timeout=READ_TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def api_token(port: int, name: str) -> str:
    """Log ``name`` in through the API and return the new token."""
    account = {"username": name, "password": PASSWORD}
    status, session = api(port, "POST", "/v1/sessions", account)
    assert status == 201, session
    return str(session["token"])


def api_login(port: int, name: str) -> str:
    """Register ``name`` through the API and return a fresh token."""
    account = {"username": name, "password": PASSWORD}
    assert api(port, "POST", "/v1/accounts", account)[0] == 201
    return api_token(port, name)


# Any game over the line protocol


def start_any(
    first: LineClient, second: LineClient, game: str
) -> tuple[str, LineClient, LineClient]:
    """
    ``first`` seeks ``game``, then ``second``; both see the match start.

    Return its id, the player who moves first and the other.
    """
    assert first.ask(f"PLAY {game}").startswith(
        f"OK waiting for an opponent for {game}"
    )
    reply = second.ask(f"PLAY {game}")
    found = re.fullmatch(r"OK matched: match (\w+)", reply)
    assert found, reply
    match = found.group(1)

    lines = [player.expect(matching(STARTED)) for player in (first, second)]
    assert lines[0] == lines[1]
    started = re.fullmatch(STARTED, lines[0])
    assert started is not None
    assert started.group(1, 2) == (match, game)
    by_name = {first.name: first, second.name: second}
    return match, by_name[started.group(3)], by_name[started.group(5)]


def play_any(
    leader: LineClient, other: LineClient, match: str, moves: list[str]
) -> None:
    """Play ``moves`` in turn, naming the match; both see every move pushed."""
    for turn, move in enumerate(moves):
        mover = leader if turn % 2 == 0 else other
        assert mover.ask(f"MOVE {match} {move}") == f"OK played {move} in match {match}"
        pushed = exactly(f"* {mover.name} played {move} in match {match}")
        for player in (leader, other):
            player.expect(pushed)


# A game service killed and restarted


def test_killed_game_service_loses_no_acknowledged_move(
    tmp_path: Path, launch: Launch, connect: Connect, postgres_database: str
) -> None:
    """A game service SIGKILLed just after acknowledging a move keeps it on restart."""
    store = ["--data", str(tmp_path / "data"), "--db", postgres_database]
    pb_port, line_port, http_port = ports(3)
    game = start_game(launch, pb_port, *store, log="game-1")
    start_gateway(launch, line_port, http_port, [pb_port], *store)

    alice = connect(line_port, "alice")
    bob = connect(line_port, "bob")
    sign_up(alice, bob)
    assert poll_play(alice) == WAITING
    match, x, o = matched(alice, bob)
    play_text(x, o, match, WIN[:2])
    assert x.ask(f"MOVE {WIN[2]}") == f"OK played {WIN[2]} in match {match}"
    game.kill()

    # The gateway links to the new process, which restored the match from
    # PostgreSQL, and pushes it to both players; the mover's clock was not
    # charged for the restart (of the 120 s default, nearly all are left).
    start_game(launch, pb_port, *store, log="game-2")
    resumed = rf"\* match {match}: tictactoe, {x.name} \(X\) vs {o.name} \(O\), "
    for player in (x, o):
        player.expect(matching(resumed + "3 moves played"), timeout=LINK_TIMEOUT)
        player.expect(exactly("   X | X | 3"))
        player.expect(exactly("   O | 5 | 6"))
    x.expect(matching(rf"  waiting for {o.name} to move \(\d+ s left\)"))
    turn = o.expect(matching(r"  your move \(\d+ s left\): MOVE <move>"))
    assert int(re.findall(r"\d+", turn)[0]) >= 110, turn

    play_text(x, o, match, WIN, start=3)
    for player in (x, o):
        player.expect(exactly("   X | X | X"))
    expect_end([x, o], match, f"{x.name} won")

    assert o.ask("HISTORY") == f"OK 1 finished match of {o.name}"
    o.expect(
        exactly(f"  {match} tictactoe: {x.name} vs {o.name}, {x.name} won, 5 moves")
    )
    # A third player's view of the match comes from the store itself.
    token = api_login(http_port, "carol")
    status, stored = api(http_port, "GET", f"/v1/matches/{match}", None, token)
    assert status == 200, stored
    assert stored["moves"] == [str(cell) for cell in WIN]
    assert (stored["status"], stored["winner"]) == ("over", x.name)


# A gateway killed and restarted


def in_thread(call: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking wait in a thread, bounded, so the reactor runs on."""
    d = threads.deferToThread(call, *args, **kwargs)
    return client_tests.within(d, LINK_TIMEOUT)


@pytest_twisted.ensureDeferred
async def test_restarted_gateway_honours_tokens_and_reports_the_event_gap(
    tmp_path: Path, launch: Launch, players: list[Player]
) -> None:
    """After a gateway restart old tokens work, and resumed streams report the gap."""
    store = ["--data", str(tmp_path / "data")]
    store += ["--db", f"sqlite:{tmp_path / 'store.sqlite3'}"]
    pb_port, line_port, http_port = ports(3)
    start_game(launch, pb_port, *store)
    gateway = await in_thread(
        start_gateway, launch, line_port, http_port, [pb_port], *store
    )

    # Reconnections wait on this clock: the test says when they happen.
    clock = task.Clock()
    url = f"http://{HOST}:{http_port}"
    for name in ("alice", "bob"):
        players.append(await client_tests.sign_up(url, name, clock=clock))
    match, x, o = await client_tests.start_match(*players)
    await client_tests.play_cells(x, o, match, WIN[:2])
    before = {player.name: player.stream.last_id for player in players}
    tokens = {player.name: player.client.token for player in players}

    gateway.kill()
    await in_thread(
        start_gateway, launch, line_port, http_port, [pb_port], *store, log="gateway-2"
    )
    assert not any(player.stream.connected for player in players)

    # The same tokens still work, and the match is still live.
    for player in players:
        assert player.client.token == tokens[player.name]
        live = await client_tests.within(player.client.matches())
        assert [m.match for m in live.live] == [match]

    # Resumed from an id the new process never handed out, each stream
    # says that it cannot replay, then carries on with the match.
    clock.advance(60)
    for player in players:
        await client_tests.within(player.stream.when_connected())
        gap = await client_tests.next_event(player.stream)
        assert gap.kind == "stream-start"
        assert gap.data["reason"] == "events since that id were dropped"
        assert int(str(gap.id)) > int(str(before[player.name]))
    await client_tests.play_cells(x, o, match, WIN, start=2)
    await client_tests.expect_end(match, x.name, x, o)
    assert all(player.stream.connections == 2 for player in players)


# Two gateways over one store and one game service


@pytest.mark.usefixtures("shared_secret")
def test_players_on_two_gateways_play_each_other(
    tmp_path: Path, launch: Launch, connect: Connect, postgres_database: str
) -> None:
    """Players on two gateways sharing PostgreSQL and a game service play a match."""
    pb_port, a_line, a_http, b_line, b_http = ports(5)
    store = ["--db", postgres_database]
    start_game(launch, pb_port, "--data", str(tmp_path / "game"), *store)
    for name, line_port, http_port in [("a", a_line, a_http), ("b", b_line, b_http)]:
        options = ["--data", str(tmp_path / name), *store]
        start_gateway(
            launch, line_port, http_port, [pb_port], *options, log=f"gateway-{name}"
        )
    # The secret came from the environment: no process wrote one of its own.
    assert not list(tmp_path.glob("*/link-secret"))

    alice = connect(a_line, "alice")
    bob = connect(b_line, "bob")
    sign_up(alice, bob)
    assert alice.ask("WHO") == "OK 1 player online"
    assert alice.ask("PLAY tictactoe") == WAITING
    match, x, o = matched(alice, bob)
    play_text(x, o, match, WIN)
    for player in (x, o):
        player.expect(exactly("   X | X | X"))
    expect_end([x, o], match, f"{x.name} won")

    # Accounts and API tokens live in the shared store: either gateway knows them.
    assert bob.ask("HISTORY alice") == "OK 1 finished match of alice"
    token = api_login(a_http, "carol")
    status, found = api(b_http, "GET", f"/v1/matches/{match}", None, token)
    assert status == 200, found
    assert found["moves"] == [str(cell) for cell in WIN]


# One gateway over two game services


def test_gateway_offers_the_games_of_two_game_services(
    tmp_path: Path, launch: Launch, connect: Connect
) -> None:
    """A gateway linked to two game services lists and plays all their games."""
    data = ["--data", str(tmp_path / "data")]
    small, boards, line_port, http_port = ports(4)
    for port, games, name in [
        (small, "tictactoe", "small"),
        (boards, "connect4,reversi", "boards"),
    ]:
        options = ["--games", games, "--service-name", name]
        start_game(launch, port, *data, *options, log=name)
    start_gateway(launch, line_port, http_port, [small, boards], *data)

    alice = connect(line_port, "alice")
    bob = connect(line_port, "bob")
    sign_up(alice, bob)
    assert alice.ask("GAMES") == "OK 3 games"
    for name in ("connect4", "reversi", "tictactoe"):
        alice.expect(starting(f"  {name}: "))

    # Three live matches at once, on two services; each move names its match.
    games = {
        "tictactoe": [str(cell) for cell in WIN],
        "connect4": CONNECT4_WIN,
        "reversi": REVERSI_WIPEOUT,
    }
    started = {game: start_any(alice, bob, game) for game in games}
    assert alice.ask("MATCHES") == "OK 3 live matches"
    for game, (match, leader, other) in started.items():
        play_any(leader, other, match, games[game])
        expect_end([leader, other], match, f"{leader.name} won")
        # The store says which service hosted it.
        with sqlite3.connect(tmp_path / "data" / "chupacabra.sqlite3") as db:
            [(host,)] = db.execute("SELECT service FROM matches WHERE id = ?", (match,))
        assert host == ("small" if game == "tictactoe" else "boards")

    assert alice.ask("MATCHES") == "OK 0 live matches"
    # Both services read the shared store; each match is listed once.
    assert alice.ask("HISTORY") == "OK 3 finished matches of alice"
    token = api_token(http_port, "alice")
    status, history = api(http_port, "GET", "/v1/players/alice/matches", None, token)
    assert status == 200, history
    finished = [found["match"] for found in history["matches"]]
    assert sorted(finished) == sorted(match for match, _, _ in started.values())

"""Shared fixtures: an in-memory world of gateway, game service and players."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import globalLogPublisher
from twisted.test import iosim

from chupacabra.accounts import Accounts
from chupacabra.games import installed_games
from chupacabra.gateway import Gateway, LineFactory, LineProtocol, ServiceLink
from chupacabra.service import MatchService, server_factory
from chupacabra.testing import InlineHasher, MemoryStore


@pytest.fixture(autouse=True)
def no_logged_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """
    Fail any test during which something logged an error or a failure.

    A test marked ``expected_log("text")`` must log an error whose format
    holds that text, and may log no other.
    """
    marker = request.node.get_closest_marker("expected_log")
    expected = marker.args[0] if marker else None
    bad: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        level = getattr(event.get("log_level"), "name", None)
        if level in ("error", "critical") or "log_failure" in event:
            bad.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield
        gc.collect()
    finally:
        globalLogPublisher.removeObserver(observe)
    if expected is not None:
        seen = [e for e in bad if expected in (e.get("log_format") or "")]
        assert seen, f"nothing logged {expected!r}"
        bad = [e for e in bad if e not in seen]
    assert not bad, [e.get("log_format") for e in bad]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expected_log(text): the test must log an error holding text"
    )


SECRET = b"test-secret"
PB_PORT = 7654


class LinePlayer:
    """A line-protocol client over a StringTransport."""

    def __init__(self, world: World, protocol: LineProtocol) -> None:
        self.world = world
        self.protocol = protocol
        self.transport = StringTransport()
        protocol.makeConnection(self.transport)
        self.read()

    def send_raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.world.flush()

    def send(self, line: str) -> list[str]:
        """Send one line and return everything written since the last read."""
        self.send_raw(line.encode("utf-8") + b"\r\n")
        return self.read()

    def read(self) -> list[str]:
        self.world.flush()
        data = self.transport.value()
        self.transport.clear()
        return data.decode("utf-8").splitlines()

    def login(self, name: str, password: str = "password1") -> None:
        reply = self.send(f"REGISTER {name} {password}")
        assert reply[0].startswith("OK"), reply
        reply = self.send(f"LOGIN {name} {password}")
        assert reply[0].startswith("OK"), reply

    def close(self) -> None:
        self.protocol.connectionLost(None)
        self.world.flush()


class World:
    """
    A gateway and a game service on one fake reactor, linked by real PB
    over in-memory connections.
    """

    def __init__(
        self,
        turn_timeout: float = 120.0,
        seed: int = 1,
        service_store: Any = None,
    ) -> None:
        self.reactor = MemoryReactorClock()
        self.completer = iosim.ConnectionCompleter(self.reactor)
        self.pumps: list[iosim.IOPump] = []
        self.rng = random.Random(seed)
        self.turn_timeout = turn_timeout
        self.service_store = service_store
        self.start_service()
        self.store = MemoryStore()
        self.gateway = Gateway(Accounts(self.store, InlineHasher()), self.reactor)
        self.link = ServiceLink(
            TCP4ClientEndpoint(self.reactor, "127.0.0.1", PB_PORT),
            "memory",
            SECRET,
            self.reactor,
        )
        self.gateway.add_link(self.link)
        self.gateway.startService()
        self.connect()
        self.factory = LineFactory(self.gateway, idle_timeout=600, clock=self.reactor)

    def start_service(self) -> None:
        """Start a game service (again), restoring from its store."""
        self.service = MatchService(
            installed_games(),
            self.reactor,
            self.turn_timeout,
            rng=self.rng,
            store=self.service_store,
        )
        restored = Deferred.fromCoroutine(self.service.restore())
        assert restored.called, "an in-memory store restores at once"
        self.reactor.tcpServers = [
            s for s in self.reactor.tcpServers if s[0] != PB_PORT
        ]
        self.port = self.reactor.listenTCP(
            PB_PORT, server_factory(self.service, SECRET)
        )

    def kill_service(self) -> None:
        """The game service dies: its connections drop, its memory is gone."""
        self.disconnect_service()
        for match in self.service.matches.values():
            match._cancel_timer()
        self.service.matches.clear()

    def reconnect(self) -> None:
        """Let the gateway's backoff run out and complete its reconnection."""
        for _ in range(50):
            self.reactor.advance(1)
            self.connect()
            if self.link.up:
                return
        raise AssertionError("the gateway did not reconnect")

    def connect(self) -> None:
        """Complete every pending PB connection."""
        while True:
            pump = self.completer.succeedOnce()
            if pump is None:
                break
            self.pumps.append(pump)
        self.flush()

    def flush(self) -> None:
        for _ in range(100):
            moved = False
            for pump in list(self.pumps):
                moved = pump.flush() or moved
            if not moved:
                return

    def disconnect_service(self) -> None:
        """Drop every PB connection, as if the game service went away."""
        for pump in self.pumps:
            pump.server.transport.loseConnection()
        self.flush()
        self.pumps = []

    def player(self, name: str | None = None) -> LinePlayer:
        player = LinePlayer(self, self.factory.buildProtocol(None))
        if name is not None:
            player.login(name)
        return player

    def pair(self, game: str = "tictactoe") -> tuple[LinePlayer, LinePlayer, str]:
        """Two logged-in players in a new match: (first to move, second, id)."""
        a, b = self.player("alice"), self.player("bob")
        a.send(f"PLAY {game}")
        b.send(f"PLAY {game}")
        a.read()
        match = next(iter(self.service.matches.values()))
        first = a if match.players[0] == "alice" else b
        second = b if first is a else a
        return first, second, match.id


@pytest.fixture
def world() -> Any:
    w = World()
    yield w
    w.gateway.stopService()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A private PostgreSQL server for the whole run (skipped where absent)."""
    from postgres import postgres_server

    with postgres_server() as url:
        yield url


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_database(postgres_url: str) -> str:
    """A new, empty database on the test server."""
    from postgres import fresh_database

    return fresh_database(postgres_url, f"test_{next(_databases)}")

"""
The twistd plugins: options and the service trees they build.

``chupacabra`` runs a gateway and a game service in one process, linked
over PB on loopback; ``chupacabra-gateway`` and ``chupacabra-game`` run
the two halves apart.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Callable
from typing import Any, NoReturn

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

DEFAULT_DATA = "chupacabra-data"
DEFAULT_LINE = "tcp:7653"
DEFAULT_HTTP = "tcp:7655"
DEFAULT_PB = "tcp:7654:interface=127.0.0.1"
DEFAULT_SERVICE = "tcp:127.0.0.1:7654"

log = Logger()


class _Stub:
    """A stand-in reactor: endpoint parsers only store it."""


def _positive(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise usage.UsageError(f"--{name} must be a number of seconds, not {text!r}")
    if not 0 < value < 10**9:
        raise usage.UsageError(f"--{name} must be more than 0 seconds")
    return value


def _endpoint(name: str, description: str, parse: Callable[..., Any]) -> str:
    try:
        parse(_Stub(), description)
    except Exception as e:
        raise usage.UsageError(f"--{name} {description!r} is not a valid endpoint: {e}")
    return description


def _server_endpoint(name: str, description: str) -> str:
    return _endpoint(name, description, endpoints.serverFromString)


def _client_endpoint(name: str, description: str) -> str:
    return _endpoint(name, description, endpoints.clientFromString)


class _Options(usage.Options):
    """Options every plugin takes, and one-line errors instead of usage dumps."""

    optParameters: list[list[Any]] = [
        ["data", None, DEFAULT_DATA, "Folder for the store and link secret."],
        [
            "db",
            None,
            None,
            "The store: sqlite:PATH or a postgresql:// URL "
            "(default: sqlite:DATA/chupacabra.sqlite3).",
        ],
        [
            "secret-file",
            None,
            None,
            "File holding the PB link's shared secret "
            "(default: DATA/link-secret, created if missing; "
            "$CHUPACABRA_SECRET overrides it).",
        ],
    ]

    plugin = "chupacabra"

    def parseOptions(self, options: Any = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            self._fail(str(e))

    def _fail(self, message: str) -> NoReturn:
        print(
            f"twistd {self.plugin}: error: {message} "
            f"(twistd {self.plugin} --help lists the options)",
            file=sys.stderr,
        )
        raise SystemExit(2)

    def postOptions(self) -> None:
        data = os.path.abspath(self["data"])
        try:
            os.makedirs(data, exist_ok=True)
        except OSError as e:
            raise usage.UsageError(f"cannot create data folder {data}: {e.strerror}")
        if not os.access(data, os.W_OK):
            raise usage.UsageError(f"data folder {data} is not writable")
        self["data"] = data
        self["secret"] = self._secret()
        db = self["db"] or "sqlite:" + os.path.join(data, "chupacabra.sqlite3")
        if not db.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise usage.UsageError(
                f"--db {db!r} must be sqlite:PATH or a postgresql:// URL"
            )
        self["db"] = db

    def _secret(self) -> bytes:
        env = os.environ.get("CHUPACABRA_SECRET")
        if env:
            return env.encode("utf-8")
        path = self["secret-file"] or os.path.join(self["data"], "link-secret")
        try:
            if not os.path.exists(path) and not self["secret-file"]:
                _create_secret(path)
            with open(path, "rb") as f:
                secret = f.read().strip()
        except OSError as e:
            raise usage.UsageError(f"cannot read secret file {path}: {e.strerror}")
        if not secret:
            raise usage.UsageError(f"secret file {path} is empty")
        return secret


def _create_secret(path: str) -> None:
    """Write a new secret to ``path``, unless another process just did."""
    fd, scratch = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".secret-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        # A hard link appears whole or not at all, unlike a file being written.
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(scratch)


def _gateway_options(options: _Options) -> None:
    options["line"] = _server_endpoint("line", options["line"])
    options["http"] = _server_endpoint("http", options["http"])
    options["token-lifetime"] = _positive("token-lifetime", options["token-lifetime"])
    options["idle-timeout"] = _positive("idle-timeout", options["idle-timeout"])
    try:
        rounds = int(options["bcrypt-rounds"])
    except ValueError:
        rounds = 0
    if not 4 <= rounds <= 31:
        raise usage.UsageError("--bcrypt-rounds must be a whole number from 4 to 31")
    options["bcrypt-rounds"] = rounds
    options["game-service"] = [
        _client_endpoint("game-service", d) for d in options["game-service"]
    ]


def _game_options(options: _Options) -> None:
    from ..games import installed_games

    options["pb"] = _server_endpoint("pb", options["pb"])
    options["turn-timeout"] = _positive("turn-timeout", options["turn-timeout"])
    try:
        installed = installed_games()
    except ValueError as e:
        raise usage.UsageError(str(e))
    wanted = [g.strip().lower() for g in (options["games"] or "").split(",")]
    wanted = [g for g in wanted if g] or sorted(installed)
    unknown = [g for g in wanted if g not in installed]
    if unknown:
        raise usage.UsageError(
            f"--games: {', '.join(unknown)} not installed; "
            f"installed: {', '.join(sorted(installed))}"
        )
    options["games"] = {name: installed[name] for name in wanted}


_GATEWAY_PARAMETERS: list[list[Any]] = [
    ["line", None, DEFAULT_LINE, "Endpoint for the telnet/netcat line protocol."],
    ["http", None, DEFAULT_HTTP, "Endpoint for the HTTP/JSON API."],
    ["token-lifetime", None, "604800", "Seconds an API token stays valid."],
    ["idle-timeout", None, "1800", "Seconds without input before a line "
     "connection is closed."],
    ["bcrypt-rounds", None, "12", "bcrypt cost for new password hashes (4-31)."],
]  # fmt: skip

_GAME_PARAMETERS: list[list[Any]] = [
    ["turn-timeout", None, "120", "Seconds a player has for each move."],
    ["service-name", None, "default", "Which matches in a shared store are "
     "this game service's to restore."],
    ["games", None, None, "Comma-separated games to serve (default: every "
     "installed game)."],
]  # fmt: skip


class GatewayOptions(_Options):
    plugin = "chupacabra-gateway"
    optParameters = _Options.optParameters + _GATEWAY_PARAMETERS

    def __init__(self) -> None:
        super().__init__()
        self["game-service"] = []

    def opt_game_service(self, description: str) -> None:
        """Client endpoint of a game service (repeatable; default
        tcp:127.0.0.1:7654)."""
        self["game-service"].append(description)

    def postOptions(self) -> None:
        super().postOptions()
        if not self["game-service"]:
            self["game-service"] = [DEFAULT_SERVICE]
        _gateway_options(self)


class GameOptions(_Options):
    plugin = "chupacabra-game"
    optParameters = [
        *_Options.optParameters,
        ["pb", None, DEFAULT_PB, "Endpoint the PB service listens on."],
        *_GAME_PARAMETERS,
    ]

    def postOptions(self) -> None:
        super().postOptions()
        _game_options(self)


class AllOptions(_Options):
    plugin = "chupacabra"
    optParameters = (
        _Options.optParameters
        + _GATEWAY_PARAMETERS
        + [
            [
                "pb",
                None,
                "tcp:0:interface=127.0.0.1",
                "Endpoint the built-in game service listens on.",
            ]
        ]
        + _GAME_PARAMETERS
    )

    def __init__(self) -> None:
        super().__init__()
        self["game-service"] = []

    def opt_game_service(self, description: str) -> None:
        """Client endpoint of a further game service (repeatable)."""
        self["game-service"].append(description)

    def postOptions(self) -> None:
        super().postOptions()
        _gateway_options(self)
        _game_options(self)


class Listen(service.Service):
    """
    Listen on an endpoint string, or stop the process with one clear line.

    twistd's own listening service logs a traceback and runs on without
    the port; a server that cannot take its port should not run at all.
    ``before``, if given, must finish first (the store being ready, say).
    """

    def __init__(
        self,
        reactor: Any,
        description: str,
        factory: Any,
        what: str,
        on_listening: Callable[[IListeningPort], Any] = lambda port: None,
        before: Callable[[], Any] | None = None,
    ) -> None:
        self.reactor = reactor
        self.description = description
        self.factory = factory
        self.what = what
        self.on_listening = on_listening
        self.before = before
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        endpoint = endpoints.serverFromString(self.reactor, self.description)
        d = defer.maybeDeferred(self.before or (lambda: None))
        d.addCallback(lambda _: endpoint.listen(self.factory))
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port: IListeningPort) -> None:
        if not self.running:
            port.stopListening()
            return
        self.port = port
        host = port.getHost()
        log.info(
            "{what} listening on {host}:{port}",
            what=self.what,
            host=getattr(host, "host", host),
            port=getattr(host, "port", ""),
        )
        self.on_listening(port)

    def _failed(self, failure: Failure) -> None:
        log.critical(
            "cannot start {what} on {endpoint}: {why}",
            what=self.what,
            endpoint=self.description,
            why=failure.getErrorMessage(),
        )
        _exit_soon(self.reactor)

    def stopService(self) -> Any:
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


def _exit_soon(reactor: Any) -> None:
    """Stop the process with a failing exit status."""
    reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
    reactor.callWhenRunning(reactor.stop)


class StoreService(service.Service):
    """Opens and migrates the store at start-up; others wait on L{ready}."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._migrated = False
        self._waiting: list[defer.Deferred[None]] = []

    def startService(self) -> None:
        super().startService()
        self.store.migrate().addCallbacks(self._done, self._failed)

    def ready(self) -> defer.Deferred[None]:
        if self._migrated:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(d)
        return d

    def _done(self, version: int) -> None:
        self._migrated = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def _failed(self, failure: Failure) -> None:
        log.critical("cannot open the store: {why}", why=failure.getErrorMessage())
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(failure)

    def stopService(self) -> None:
        super().stopService()
        self.store.close()


class _Threads(service.Service):
    """Starts and stops the bcrypt threads with the process."""

    def __init__(self, hasher: Any) -> None:
        self.hasher = hasher

    def startService(self) -> None:
        super().startService()
        self.hasher.start()

    def stopService(self) -> None:
        super().stopService()
        self.hasher.stop()


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _store(options: _Options) -> StoreService:
    from ..store import Store

    return StoreService(Store.open(options["db"]))


def _gateway(options: _Options, reactor: Any, stored: StoreService) -> Any:
    from ..accounts import Accounts, PasswordHasher
    from ..gateway import Gateway, LineFactory, api_site

    hasher = PasswordHasher(reactor, rounds=options["bcrypt-rounds"])
    gateway = Gateway(
        Accounts(stored.store, hasher),
        reactor,
        token_lifetime=options["token-lifetime"],
    )
    _Threads(hasher).setServiceParent(gateway)
    Listen(
        reactor,
        options["line"],
        LineFactory(gateway, options["idle-timeout"], reactor),
        "line protocol",
        before=stored.ready,
    ).setServiceParent(gateway)
    Listen(
        reactor,
        options["http"],
        api_site(gateway, reactor),
        "HTTP API",
        before=stored.ready,
    ).setServiceParent(gateway)
    for description in options["game-service"]:
        _link(gateway, options, reactor, description)
    return gateway


def _link(
    gateway: Any, options: _Options, reactor: Any, description: str | None
) -> Any:
    from ..gateway import ServiceLink

    link = ServiceLink(
        None
        if description is None
        else endpoints.clientFromString(reactor, description),
        description or "built-in game service",
        options["secret"],
        reactor,
        gateway_name=f"{socket.gethostname()}:{os.getpid()}",
    )
    gateway.add_link(link)
    return link


class GameService(service.MultiService):
    """
    A game service: restores its live matches from the store, then
    listens for gateways, and notes a heartbeat while it runs.
    """

    def __init__(
        self,
        options: _Options,
        reactor: Any,
        stored: StoreService,
        on_listening: Callable[[IListeningPort], Any] = lambda port: None,
        what: str = "game service",
    ) -> None:
        from ..service import MatchService, server_factory

        super().__init__()
        self.stored = stored
        self.matches = MatchService(
            options["games"],
            reactor,
            turn_timeout=options["turn-timeout"],
            store=stored.store,
            name=options["service-name"],
        )
        self.on_listening = on_listening
        Listen(
            reactor,
            options["pb"],
            server_factory(self.matches, options["secret"]),
            what,
            on_listening=self._listening,
            before=self._restore,
        ).setServiceParent(self)

    async def _restore(self) -> None:
        await self.stored.ready()
        await self.matches.restore()

    def _listening(self, port: IListeningPort) -> None:
        self.matches.start_heartbeat()
        self.matches.start_reports()
        self.on_listening(port)

    def stopService(self) -> Any:
        super().stopService()
        self.matches.stop_reports()
        return self.matches.stop_heartbeat()


def make_gateway(options: GatewayOptions) -> service.IService:
    reactor = _reactor()
    top = service.MultiService()
    stored = _store(options)
    stored.setServiceParent(top)
    _gateway(options, reactor, stored).setServiceParent(top)
    return top


def make_game(options: GameOptions) -> service.IService:
    top = service.MultiService()
    stored = _store(options)
    stored.setServiceParent(top)
    GameService(options, _reactor(), stored).setServiceParent(top)
    return top


def make_all(options: AllOptions) -> service.IService:
    """A gateway and a game service in one process, linked over loopback PB."""
    reactor = _reactor()
    top = service.MultiService()
    stored = _store(options)
    stored.setServiceParent(top)
    gateway = _gateway(options, reactor, stored)
    gateway.setServiceParent(top)
    local = _link(gateway, options, reactor, None)

    def linked(port: IListeningPort) -> None:
        address: Any = port.getHost()
        local.use_endpoint(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", address.port)
        )

    GameService(
        options, reactor, stored, on_listening=linked, what="built-in game service"
    ).setServiceParent(top)
    return top

"""The gateway's link to one game service, over PB with reconnection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.spread import pb

from .._wire import Broker
from ..errors import CommandError, from_remote

#: How long a connected service has to accept our login.
LOGIN_TIMEOUT = 10.0


class _Broker(Broker):
    factory: Any

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        # A fresh PBClientFactory per connection, so nothing waits forever
        # on a connection that closed before PB finished its greeting.
        self.factory._failAll(reason)
        super().connectionLost(reason)


class _BrokerFactory(Factory):
    def buildProtocol(self, addr: Any) -> Any:
        client = pb.PBClientFactory()
        client.protocol = _Broker
        return client.buildProtocol(addr)


class ServiceLink(service.Service):
    """
    One game service as the gateway sees it: up or down, and its games.

    The link logs in with the shared secret, learns which games the
    service offers, and reconnects with backoff whenever it drops.
    """

    log = Logger()

    def __init__(
        self,
        endpoint: IStreamClientEndpoint | None,
        description: str,
        secret: bytes,
        clock: IReactorTime,
        gateway_name: str = "gateway",
        on_up: Callable[[ServiceLink], Any] = lambda link: None,
        on_down: Callable[[ServiceLink], Any] = lambda link: None,
    ) -> None:
        self.endpoint = endpoint
        self.description = description
        self.secret = secret
        self.clock = clock
        self.gateway_name = gateway_name
        self.on_up = on_up
        self.on_down = on_down
        self.avatar: pb.RemoteReference | None = None
        self.games: dict[str, dict[str, Any]] = {}
        self._client: ClientService | None = None
        self._refused = False

    @property
    def up(self) -> bool:
        return self.avatar is not None and not self.avatar.broker.disconnected

    def startService(self) -> None:
        super().startService()
        if self.endpoint is not None:
            self._connect(self.endpoint)

    def use_endpoint(self, endpoint: IStreamClientEndpoint) -> None:
        """Connect to ``endpoint``, once it is known, if running."""
        self.endpoint = endpoint
        if self.running and self._client is None:
            self._connect(endpoint)

    def _connect(self, endpoint: IStreamClientEndpoint) -> None:
        self._client = ClientService(
            endpoint,
            _BrokerFactory(),
            retryPolicy=backoffPolicy(initialDelay=0.25, maxDelay=5.0),
            clock=self.clock,
            prepareConnection=self._log_in,
        )
        self._client.startService()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self._client is None:
            return None
        return self._client.stopService()

    def _log_in(self, broker: Any) -> defer.Deferred[None]:
        d = defer.Deferred.fromCoroutine(self._link(broker))
        d.addTimeout(LOGIN_TIMEOUT, self.clock)
        d.addErrback(self._login_failed, broker)
        return d

    async def _link(self, broker: Any) -> None:
        creds = UsernamePassword(self.gateway_name.encode("utf-8"), self.secret)
        # Awaiting a remote failure raises pb.RemoteError, which hides the
        # refusal's type: turn it into a local UnauthorizedLogin first.
        avatar = await broker.factory.login(creds, client=None).addErrback(
            _local_refusal
        )
        games = await avatar.callRemote("games")
        self.games = {game["name"]: game for game in games}
        self.avatar = avatar
        self._refused = False
        avatar.notifyOnDisconnect(self._lost)
        self.log.info(
            "linked to game service {service} offering {games}",
            service=self.description,
            games=sorted(self.games),
        )
        await defer.maybeDeferred(self.on_up, self)

    def _login_failed(self, failure: Failure, broker: Any) -> Failure:
        if failure.check(UnauthorizedLogin):
            if not self._refused:
                self.log.error(
                    "game service {service} refused the shared secret",
                    service=self.description,
                )
            self._refused = True
        else:
            self.log.warn(
                "could not link to game service {service}: {why}",
                service=self.description,
                why=failure.getErrorMessage(),
            )
        # ClientService already counts this as a failed attempt; hearing of
        # this connection's loss as well would raise automat's NoTransition.
        broker._lostNotification = lambda reason: None
        broker.transport.loseConnection()
        return failure

    def _lost(self, avatar: pb.RemoteReference) -> None:
        if self.avatar is avatar:
            self.avatar = None
            self.log.warn(
                "lost the game service {service}; reconnecting",
                service=self.description,
            )
            self.on_down(self)

    def call(self, method: str, *args: Any) -> defer.Deferred[Any]:
        """Call ``method`` on our avatar, or fail with ``unavailable``."""
        avatar = self.avatar
        if avatar is None or not self.up:
            return defer.fail(unavailable())
        return call_remote(avatar, method, *args)


def _local_refusal(failure: Failure) -> Failure:
    if failure.check(UnauthorizedLogin):
        raise UnauthorizedLogin(failure.getErrorMessage())
    return failure


def unavailable() -> CommandError:
    return CommandError(
        "unavailable", "the game service is unreachable; try again shortly"
    )


def call_remote(
    ref: pb.RemoteReference, method: str, *args: Any
) -> defer.Deferred[Any]:
    """
    Call ``method`` on ``ref``, turning remote failures into L{CommandError}s.

    Unexpected failures pass through unchanged, for the caller to log.
    """

    def translate(failure: Failure) -> Any:
        error = from_remote(failure)
        if error is None:
            return failure
        raise error

    try:
        d: defer.Deferred[Any] = ref.callRemote(method, *args)
    except Exception:
        d = defer.fail()
    return d.addErrback(translate)

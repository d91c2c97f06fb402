"""The game service's Perspective Broker face, behind twisted.cred."""

from __future__ import annotations

import hmac
from typing import Any

from twisted.cred import credentials, error, portal
from twisted.cred.checkers import ICredentialsChecker
from twisted.internet import defer
from twisted.logger import Logger
from twisted.spread import pb
from zope.interface import implementer

from .._wire import Broker
from ..errors import ServiceError
from ._matches import Event, MatchService


def _check_name(player: object) -> str:
    if not isinstance(player, str) or not player:
        raise ServiceError("bad-request", "a player name is required")
    return player


class GatewayAvatar(pb.Avatar):
    """
    What one logged-in gateway may do.

    Every method names the player it acts for; the gateway has already
    authenticated that player.
    """

    log = Logger()

    def __init__(self, service: MatchService, gateway: str) -> None:
        self.service = service
        self.gateway = gateway
        self.broker: Any = None

    def attached(self, mind: Any) -> None:
        self.log.info("gateway {gateway} connected", gateway=self.gateway)

    def logout(self) -> None:
        self.log.info("gateway {gateway} disconnected", gateway=self.gateway)
        if self.broker is not None:
            self.service.broker_lost(self.broker)

    def perspectiveMessageReceived(
        self, broker: Any, message: bytes, args: Any, kw: Any
    ) -> Any:
        self.broker = broker
        return super().perspectiveMessageReceived(broker, message, args, kw)

    def perspective_games(self) -> list[Event]:
        return self.service.game_list()

    def perspective_attach(self, player: str, ref: Any) -> list[Any]:
        """Push ``player``'s updates to ``ref``; return their live matches."""
        if not isinstance(ref, pb.RemoteReference):
            raise ServiceError("bad-request", "a player reference is required")
        return [
            [snapshot, match]
            for snapshot, match in self.service.attach(
                _check_name(player), ref, ref.broker
            )
        ]

    def perspective_detach(self, player: str) -> None:
        self.service.detach(_check_name(player), self.broker)

    def perspective_seek(self, player: str, game: str) -> Any:
        return self.service.seek(_check_name(player), str(game))

    def perspective_cancel(self, player: str, game: str | None = None) -> list[str]:
        return self.service.cancel(
            _check_name(player), None if game is None else str(game)
        )

    def perspective_matches(self, player: str) -> list[Event]:
        player = _check_name(player)
        return [m.summary() for m in self.service.live_matches(player)]

    def perspective_waiting(self, player: str) -> list[str]:
        return self.service.waiting_for(_check_name(player))

    def perspective_history(self, player: str, limit: int = 20) -> Any:
        limit = limit if isinstance(limit, int) and 0 < limit <= 100 else 20
        return self.service.history(_check_name(player), limit)

    def perspective_record(self, match_id: str) -> Any:
        return self.service.record(str(match_id))


@implementer(portal.IRealm)
class ServiceRealm:
    """Gives each gateway that logs in its own L{GatewayAvatar}."""

    def __init__(self, service: MatchService) -> None:
        self.service = service

    def requestAvatar(
        self, avatar_id: bytes | tuple[()], mind: Any, *interfaces: Any
    ) -> tuple[Any, GatewayAvatar, Any]:
        if pb.IPerspective not in interfaces:
            raise NotImplementedError("only PB perspectives are offered")
        name = avatar_id.decode("utf-8", "replace") if avatar_id else "anonymous"
        avatar = GatewayAvatar(self.service, name)
        avatar.attached(mind)
        return pb.IPerspective, avatar, avatar.logout


class WrongSecret(pb.Error, error.UnauthorizedLogin):
    """A refused gateway: crosses PB as a message, not a logged traceback."""


@implementer(ICredentialsChecker)
class SharedSecretChecker:
    """Lets in any gateway name that proves it knows the shared secret."""

    credentialInterfaces = (
        credentials.IUsernameHashedPassword,
        credentials.IUsernamePassword,
    )

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def requestAvatarId(self, creds: Any) -> defer.Deferred[bytes | tuple[()]]:
        if credentials.IUsernamePassword.providedBy(creds):
            ok = hmac.compare_digest(creds.password, self.secret)
        else:
            ok = creds.checkPassword(self.secret)
        if ok:
            return defer.succeed(creds.username)
        return defer.fail(WrongSecret("wrong shared secret"))


def server_factory(service: MatchService, secret: bytes) -> pb.PBServerFactory:
    """Build the PB factory a game service listens with."""
    checker = SharedSecretChecker(secret)
    factory = pb.PBServerFactory(portal.Portal(ServiceRealm(service), [checker]))
    factory.protocol = Broker
    return factory

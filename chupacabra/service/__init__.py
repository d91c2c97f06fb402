"""
A game service: matchmaking queues and live matches, offered over PB.

Game services are internal: only gateways that know the shared secret
log in, and they act on behalf of players they have authenticated.
"""

from ._matches import Match, MatchService
from ._pb import GatewayAvatar, ServiceRealm, SharedSecretChecker, server_factory

__all__ = [
    "GatewayAvatar",
    "Match",
    "MatchService",
    "ServiceRealm",
    "SharedSecretChecker",
    "server_factory",
]

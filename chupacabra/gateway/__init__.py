"""
The gateway: accounts, sessions and the public front ends.

Front ends call one shared core (L{Gateway} and its L{Session}s), which
forwards player actions to game services over PB and routes the updates
they push back to the right players.
"""

from ._core import Gateway, MatchHandle, OnlinePlayer, Session, TokenSession
from ._http import ApiResource, api_site
from ._line import LineFactory, LineProtocol
from ._link import ServiceLink

__all__ = [
    "ApiResource",
    "Gateway",
    "LineFactory",
    "LineProtocol",
    "MatchHandle",
    "OnlinePlayer",
    "ServiceLink",
    "Session",
    "TokenSession",
    "api_site",
]

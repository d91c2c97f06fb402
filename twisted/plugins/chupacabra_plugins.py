"""twistd plugins: chupacabra, chupacabra-gateway and chupacabra-game."""

from twisted.application.service import ServiceMaker

everything = ServiceMaker(
    "chupacabra",
    "chupacabra.tap.everything",
    "Run a chupacabra gateway and game service in one process.",
    "chupacabra",
)
gateway = ServiceMaker(
    "chupacabra gateway",
    "chupacabra.tap.gateway",
    "Run a chupacabra gateway (line protocol, accounts) alone.",
    "chupacabra-gateway",
)
game = ServiceMaker(
    "chupacabra game service",
    "chupacabra.tap.game",
    "Run a chupacabra game service (matchmaking, matches) alone.",
    "chupacabra-game",
)

"""What twistd loads for the `chupacabra-gateway` plugin."""

from . import GatewayOptions as Options
from . import make_gateway as makeService

__all__ = ["Options", "makeService"]

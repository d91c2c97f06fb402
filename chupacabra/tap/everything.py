"""What twistd loads for the `chupacabra` plugin."""

from . import AllOptions as Options
from . import make_all as makeService

__all__ = ["Options", "makeService"]

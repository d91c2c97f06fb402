"""What twistd loads for the `chupacabra-game` plugin."""

from . import GameOptions as Options
from . import make_game as makeService

__all__ = ["Options", "makeService"]

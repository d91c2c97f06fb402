"""
Nim as a chupacabra game, installed as a package of its own.

The package's entry point in the ``chupacabra.games`` group names L{Nim},
which is all chupacabra needs to serve it.
"""

from ._rules import START, Nim, NimMove, NimState

__all__ = ["START", "Nim", "NimMove", "NimState"]

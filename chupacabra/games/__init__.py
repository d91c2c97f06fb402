"""
The common game interface and the games that ship with chupacabra.

A game is plain Python: a L{Game} subclass whose methods take and return
immutable states.  Nothing here imports Twisted.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from ._interface import Game, MoveError, Outcome, replay
from .connect4 import ConnectFour
from .reversi import Reversi
from .tictactoe import TicTacToe

__all__ = [
    "ConnectFour",
    "Game",
    "MoveError",
    "Outcome",
    "Reversi",
    "TicTacToe",
    "installed_games",
    "replay",
]

#: The entry point group that installed packages add games to.
ENTRY_POINT_GROUP = "chupacabra.games"


def installed_games() -> dict[str, Game[Any, Any]]:
    """
    Return every game that can be served, by name.

    The games shipped here are always present; packages add more through
    the ``chupacabra.games`` entry point group, each naming a L{Game}
    subclass.
    """
    games: dict[str, Game[Any, Any]] = {
        game.name: game for game in (TicTacToe(), ConnectFour(), Reversi())
    }
    for point in entry_points(group=ENTRY_POINT_GROUP):
        cls = point.load()
        games.setdefault(cls.name, cls())
    return games

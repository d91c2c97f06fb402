"""
The common game interface and the games that ship with chupacabra.

A game is plain Python: a L{Game} subclass whose methods take and return
immutable states.  Nothing here imports Twisted.
"""

from __future__ import annotations

import re
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


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def installed_games() -> dict[str, Game[Any, Any]]:
    """
    Return every game that can be served, by name.

    The games shipped here are always present; packages add more through
    the ``chupacabra.games`` entry point group, each naming a L{Game}
    subclass.  A game that fails to load, has a name players could not
    type, or takes a name another game has, raises L{ValueError} naming
    its entry point.
    """
    games: dict[str, Game[Any, Any]] = {
        game.name: game for game in (TicTacToe(), ConnectFour(), Reversi())
    }
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.name} = {point.value}"
        try:
            cls = point.load()
            game = cls()
        except Exception as e:
            raise ValueError(f"{where} failed to load: {e}") from e
        name = getattr(game, "name", None)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"{where}: a game's name must be lowercase letters, digits, "
                f"_ or - (at most 32), not {name!r}"
            )
        existing = games.get(name)
        if existing is not None and type(existing) is not type(game):
            raise ValueError(
                f"{where}: the name {name} is taken by {type(existing).__qualname__}"
            )
        games.setdefault(name, game)
    return games

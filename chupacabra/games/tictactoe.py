"""Tic-tac-toe: three in a row on a 3x3 board."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ._interface import Game, MoveError, Outcome

_LINES = (
    (0, 1, 2),
    (3, 4, 5),
    (6, 7, 8),
    (0, 3, 6),
    (1, 4, 7),
    (2, 5, 8),
    (0, 4, 8),
    (2, 4, 6),
)
_MARKS = ("X", "O")


@attrs.frozen
class TicTacToeState:
    """Nine cells in reading order, each empty (``None``) or a seat."""

    cells: tuple[int | None, ...] = (None,) * 9

    @property
    def filled(self) -> int:
        return sum(cell is not None for cell in self.cells)

    def winner(self) -> int | None:
        for a, b, c in _LINES:
            seat = self.cells[a]
            if seat is not None and seat == self.cells[b] == self.cells[c]:
                return seat
        return None


class TicTacToe(Game[TicTacToeState, int]):
    """
    Tic-tac-toe for two players: X (seat 0) moves first.

    Moves are cell numbers 1 to 9 in reading order; the move values are
    the cell indexes 0 to 8.
    """

    name = "tictactoe"
    title = "Tic-tac-toe"
    description = (
        "Take turns marking cells of a 3x3 grid; three of your marks in a "
        "row, column or diagonal wins, a full grid without one is a draw."
    )
    move_syntax = "a cell number from 1 (top left) to 9 (bottom right)"
    seat_labels = _MARKS

    def new_state(self, players: int, seed: int | None = None) -> TicTacToeState:
        if players != 2:
            raise ValueError("tic-tac-toe is played by two players")
        return TicTacToeState()

    def parse_move(self, state: TicTacToeState, text: str) -> int:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 9:
            raise MoveError("bad-move", "cells are numbered 1 to 9")
        return int(text) - 1

    def legal_moves(self, state: TicTacToeState) -> Sequence[int]:
        if self.outcome(state) is not None:
            return ()
        return tuple(i for i, cell in enumerate(state.cells) if cell is None)

    def apply(self, state: TicTacToeState, move: int) -> TicTacToeState:
        if self.outcome(state) is not None:
            raise MoveError("game-over", "the game is over")
        if not 0 <= move <= 8:
            raise MoveError("bad-move", "cells are numbered 1 to 9")
        if state.cells[move] is not None:
            raise MoveError("illegal-move", f"cell {move + 1} is already taken")
        seat = state.filled % 2
        cells = (*state.cells[:move], seat, *state.cells[move + 1 :])
        return TicTacToeState(cells)

    def to_move(self, state: TicTacToeState) -> int | None:
        if self.outcome(state) is not None:
            return None
        return state.filled % 2

    def outcome(self, state: TicTacToeState) -> Outcome | None:
        winner = state.winner()
        if winner is not None:
            return Outcome(winner, "win")
        if state.filled == 9:
            return Outcome(None, "draw")
        return None

    def format_move(self, move: int) -> str:
        return str(move + 1)

    def render_text(self, state: TicTacToeState) -> str:
        def cell(i: int) -> str:
            seat = state.cells[i]
            return str(i + 1) if seat is None else _MARKS[seat]

        rows = [
            " " + " | ".join(cell(row * 3 + col) for col in range(3))
            for row in range(3)
        ]
        return "\n---+---+---\n".join(rows)

    def render_json(self, state: TicTacToeState) -> dict[str, Any]:
        return {
            "cells": [None if c is None else _MARKS[c] for c in state.cells],
            "marks": list(_MARKS),
        }

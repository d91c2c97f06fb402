"""
Connect Four: drop discs into a 7x6 grid, four in a line wins.

The grid is kept as two bitboards, one per seat.  Each column takes seven
bits, six for its cells from the bottom up and one that always stays clear
so that a line can never run from the top of one column into the bottom of
the next: cell (column ``c``, height ``h``) is bit ``7 * c + h``.  With that
layout a move is one addition and a win is four shift-and-mask tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import attrs

from ._interface import Game, MoveError, Outcome

__all__ = ["ConnectFour", "ConnectFourState"]

COLUMNS = 7
ROWS = 6
_STRIDE = ROWS + 1
_CELLS = COLUMNS * ROWS
_MARKS = ("X", "O")

#: The lowest cell of each column.
_BOTTOM = tuple(1 << (_STRIDE * c) for c in range(COLUMNS))
#: The highest cell of each column: once it is taken the column is full.
_TOP = tuple(1 << (_STRIDE * c + ROWS - 1) for c in range(COLUMNS))
#: All six cells of each column.
_COLUMN = tuple(((1 << ROWS) - 1) << (_STRIDE * c) for c in range(COLUMNS))
#: Bit distances between neighbours along a line: up a column, along a
#: row, and along the two diagonals.
_STEPS = (1, _STRIDE, _STRIDE - 1, _STRIDE + 1)
#: The top cells of all columns together.
_ALL_TOPS = sum(_TOP)
#: The open columns for every choice of full ones, keyed by the full
#: columns' top cells, so that listing the legal moves is one lookup.
_OPEN_COLUMNS = {
    sum(top for top, full in zip(_TOP, fulls, strict=True) if full): tuple(
        c for c, full in enumerate(fulls) if not full
    )
    for fulls in itertools.product((False, True), repeat=COLUMNS)
}


def _has_four(board: int) -> bool:
    """Whether ``board`` holds four discs in a line in any direction."""
    for step in _STEPS:
        pairs = board & (board >> step)
        if pairs & (pairs >> (2 * step)):
            return True
    return False


@attrs.frozen
class ConnectFourState:
    """
    A Connect Four position.

    ``boards`` holds one bitboard per seat (see the module docstring for
    the layout), ``plies`` counts the discs dropped so far and ``winner``
    is the seat that completed a line, if any.  States are made by
    L{ConnectFour.new_state} and L{ConnectFour.apply}, which keep the three
    consistent.
    """

    boards: tuple[int, int] = (0, 0)
    plies: int = 0
    winner: int | None = None

    @property
    def occupied(self) -> int:
        """Every taken cell as one bitboard."""
        return self.boards[0] | self.boards[1]

    @property
    def over(self) -> bool:
        """Whether someone has won or the grid is full."""
        return self.winner is not None or self.plies == _CELLS

    def seat_at(self, column: int, row: int) -> int | None:
        """
        Return the seat whose disc fills a cell, or ``None`` if empty.

        ``column`` counts from 0 on the left and ``row`` from 0 at the
        bottom.
        """
        bit = 1 << (_STRIDE * column + row)
        for seat, board in enumerate(self.boards):
            if board & bit:
                return seat
        return None


def _mark(state: ConnectFourState, column: int, row: int) -> str | None:
    """The mark of the disc in a cell, or ``None`` for an empty one."""
    seat = state.seat_at(column, row)
    return None if seat is None else _MARKS[seat]


class ConnectFour(Game[ConnectFourState, int]):
    """
    Connect Four for two players: X (seat 0) drops first.

    Moves are column numbers 1 to 7 from the left; the move values are the
    column indexes 0 to 6.
    """

    name = "connect4"
    title = "Connect Four"
    description = (
        "Take turns dropping discs into a grid of seven columns and six rows; "
        "a disc falls to the lowest free cell of its column.  Four of your "
        "discs in a line across, up or diagonally wins; a full grid without "
        "one is a draw."
    )
    move_syntax = "a column number from 1 (left) to 7 (right)"
    seat_labels = _MARKS

    def new_state(self, players: int, seed: int | None = None) -> ConnectFourState:
        if players != 2:
            raise ValueError("Connect Four is played by two players")
        return ConnectFourState()

    def parse_move(self, state: ConnectFourState, text: str) -> int:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= COLUMNS:
            raise MoveError("bad-move", "columns are numbered 1 to 7")
        return int(text) - 1

    def legal_moves(self, state: ConnectFourState) -> Sequence[int]:
        if state.over:
            return ()
        return _OPEN_COLUMNS[state.occupied & _ALL_TOPS]

    def apply(self, state: ConnectFourState, move: int) -> ConnectFourState:
        boards, plies = state.boards, state.plies
        if state.winner is not None or plies == _CELLS:
            raise MoveError("game-over", "the game is over")
        if not 0 <= move < COLUMNS:
            raise MoveError("bad-move", "columns are numbered 1 to 7")
        occupied = boards[0] | boards[1]
        if occupied & _TOP[move]:
            raise MoveError("illegal-move", f"column {move + 1} is full")

        # Adding the column's bottom bit carries through the taken cells
        # and lands on the lowest free one.
        disc = (occupied + _BOTTOM[move]) & _COLUMN[move]
        seat = plies & 1
        mine = boards[seat] | disc
        boards = (mine, boards[1]) if seat == 0 else (boards[0], mine)

        winner = seat if _has_four(mine) else None
        return ConnectFourState(boards, plies + 1, winner)

    def to_move(self, state: ConnectFourState) -> int | None:
        if state.over:
            return None
        return state.plies % 2

    def outcome(self, state: ConnectFourState) -> Outcome | None:
        if state.winner is not None:
            return Outcome(state.winner, "win")
        if state.plies == _CELLS:
            return Outcome(None, "draw")
        return None

    def format_move(self, move: int) -> str:
        return str(move + 1)

    def render_text(self, state: ConnectFourState) -> str:
        lines = [
            " ".join(_mark(state, c, row) or "." for c in range(COLUMNS))
            for row in reversed(range(ROWS))
        ]
        lines.append(" ".join(str(c + 1) for c in range(COLUMNS)))
        return "\n".join(lines)

    def render_json(self, state: ConnectFourState) -> dict[str, Any]:
        cells = [
            [_mark(state, c, row) for c in range(COLUMNS)]
            for row in reversed(range(ROWS))
        ]
        return {
            "columns": COLUMNS,
            "rows": ROWS,
            "cells": cells,
            "marks": list(_MARKS),
        }

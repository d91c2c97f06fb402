"""
Reversi (Othello): outflank the other side's discs on an 8x8 board.

The board is kept as two 64-bit bitboards, one per seat; square ``a1`` (top
left) is bit 0, ``h1`` bit 7 and ``h8`` bit 63, so the square in column
``c`` and row ``r`` (both from 0) is bit ``8 * r + c``.  Legal moves and
flips are found for all squares of a direction at once by shifting whole
bitboards.

Passing is automatic.  A player who has no legal move never types one:
when a move leaves the opponent without a legal move but the mover still
has one, L{Reversi.apply} hands the turn straight back to the mover and
records the skipped seat in L{ReversiState.passed}.  So L{Reversi.to_move}
always names a player who can move, L{Reversi.legal_moves} only ever holds
disc placements (never a pass), and the game ends when neither side can
move, won by whoever has more discs.  Move counters that treat a pass as a
move of its own, such as the usual perft tables, count one extra ply for
each state whose ``passed`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ._interface import Game, MoveError, Outcome

__all__ = ["Reversi", "ReversiState"]

SIZE = 8
_SQUARES = SIZE * SIZE
_FULL = (1 << _SQUARES) - 1
_MARKS = ("X", "O")
_LETTERS = "abcdefgh"

_FILE_A = sum(1 << (SIZE * r) for r in range(SIZE))
_NOT_A = _FULL & ~_FILE_A
_NOT_H = _FULL & ~(_FILE_A << (SIZE - 1))

#: The eight directions as bit distances with, for each, the mask of
#: squares a step can land on without wrapping round the board's edge:
#: first those that step towards higher bits (east, south, south-east,
#: south-west), then those that step towards lower bits.
_UP = ((1, _NOT_A), (SIZE, _FULL), (SIZE + 1, _NOT_A), (SIZE - 1, _NOT_H))
_DOWN = ((1, _NOT_H), (SIZE, _FULL), (SIZE - 1, _NOT_A), (SIZE + 1, _NOT_H))


def _moves(mine: int, theirs: int) -> int:
    """Every empty square where a disc of ``mine`` would flip some of ``theirs``."""
    empty = _FULL & ~(mine | theirs)
    moves = 0
    # In each direction, grow runs of their discs out from mine one square
    # at a time (a run holds at most six discs), then step once more onto
    # an empty square.  The shifts are written out for speed.
    for step, mask in _UP:
        targets = theirs & mask
        run = (mine << step) & targets
        run |= (run << step) & targets
        run |= (run << step) & targets
        run |= (run << step) & targets
        run |= (run << step) & targets
        run |= (run << step) & targets
        moves |= (run << step) & empty & mask
    for step, mask in _DOWN:
        targets = theirs & mask
        run = (mine >> step) & targets
        run |= (run >> step) & targets
        run |= (run >> step) & targets
        run |= (run >> step) & targets
        run |= (run >> step) & targets
        run |= (run >> step) & targets
        moves |= (run >> step) & empty & mask
    return moves


def _flips(square: int, mine: int, theirs: int) -> int:
    """The discs of ``theirs`` that a disc of ``mine`` on ``square`` flips."""
    flips = 0
    for step, mask in _UP:
        targets = theirs & mask
        run = (square << step) & targets
        if run:
            run |= (run << step) & targets
            run |= (run << step) & targets
            run |= (run << step) & targets
            run |= (run << step) & targets
            run |= (run << step) & targets
            if (run << step) & mine & mask:
                flips |= run
    for step, mask in _DOWN:
        targets = theirs & mask
        run = (square >> step) & targets
        if run:
            run |= (run >> step) & targets
            run |= (run >> step) & targets
            run |= (run >> step) & targets
            run |= (run >> step) & targets
            run |= (run >> step) & targets
            if (run >> step) & mine & mask:
                flips |= run
    return flips


def _bits(board: int) -> Iterator[int]:
    """The indexes of the set bits of ``board``, lowest first."""
    while board:
        low = board & -board
        yield low.bit_length() - 1
        board ^= low


def _square_name(square: int) -> str:
    row, column = divmod(square, SIZE)
    return f"{_LETTERS[column]}{row + 1}"


def _legal_for_turn(state: ReversiState) -> int:
    if state.turn is None:
        return 0
    return _moves(state.discs[state.turn], state.discs[1 - state.turn])


@attrs.frozen
class ReversiState:
    """
    A Reversi position.

    ``discs`` holds one bitboard per seat (see the module docstring for the
    layout); ``turn`` is the seat to move, ``None`` once neither side can
    move; ``passed`` is the seat whose turn the last move skipped because
    it had no legal move, or ``None``.  ``legal`` caches the squares
    ``turn`` may play, as a bitboard, and is worked out when not given.
    States are made by L{Reversi.new_state} and L{Reversi.apply}, which
    keep ``turn`` naming a seat that has a move.
    """

    discs: tuple[int, int]
    turn: int | None
    passed: int | None = None
    legal: int = attrs.field(
        default=attrs.Factory(_legal_for_turn, takes_self=True),
        eq=False,
        repr=False,
    )

    def counts(self) -> tuple[int, int]:
        """How many discs each seat has on the board."""
        return (self.discs[0].bit_count(), self.discs[1].bit_count())

    def seat_at(self, square: int) -> int | None:
        """Return the seat whose disc is on ``square``, or ``None``."""
        bit = 1 << square
        for seat, board in enumerate(self.discs):
            if board & bit:
                return seat
        return None


def _square(name: str) -> int:
    """The bit index of a square named like ``d3``."""
    return SIZE * (int(name[1]) - 1) + _LETTERS.index(name[0])


#: The usual start: O (white) on d4 and e5, X (black) on d5 and e4.
_START = (
    (1 << _square("d5")) | (1 << _square("e4")),
    (1 << _square("d4")) | (1 << _square("e5")),
)


class Reversi(Game[ReversiState, int]):
    """
    Reversi for two players: X (seat 0) plays black and moves first, O
    (seat 1) plays white.

    Moves name a square by column letter ``a``-``h`` and row number
    ``1``-``8`` counted from the top, such as ``d3``; the move values are
    the square indexes 0 (``a1``) to 63 (``h8``).
    """

    name = "reversi"
    title = "Reversi"
    description = (
        "Take turns placing discs on an 8x8 board so that they trap a line of "
        "the other side's discs between the new disc and one of your own; the "
        "trapped discs turn to your colour.  A player with no such move is "
        "skipped; when neither side can move, the most discs wins."
    )
    move_syntax = "a square as column letter and row number, such as d3"
    seat_labels = _MARKS

    def new_state(self, players: int, seed: int | None = None) -> ReversiState:
        if players != 2:
            raise ValueError("Reversi is played by two players")
        return ReversiState(_START, 0)

    def parse_move(self, state: ReversiState, text: str) -> int:
        text = text.strip().lower()
        if text == "pass":
            raise MoveError(
                "bad-move",
                "there is no passing by hand: a player with no move "
                "is skipped automatically",
            )
        if len(text) != 2 or text[0] not in _LETTERS or text[1] not in "12345678":
            raise MoveError(
                "bad-move", "squares are a letter a-h and a number 1-8, like d3"
            )
        return _square(text)

    def legal_moves(self, state: ReversiState) -> Sequence[int]:
        return tuple(_bits(state.legal))

    def apply(self, state: ReversiState, move: int) -> ReversiState:
        seat = state.turn
        if seat is None:
            raise MoveError("game-over", "the game is over")
        if not 0 <= move < _SQUARES:
            raise MoveError("bad-move", "squares run from a1 to h8")
        bit = 1 << move
        if not state.legal & bit:
            if (state.discs[0] | state.discs[1]) & bit:
                problem = "is already taken"
            else:
                problem = "would not flip any discs"
            raise MoveError("illegal-move", f"{_square_name(move)} {problem}")

        mine, theirs = state.discs[seat], state.discs[1 - seat]
        flips = _flips(bit, mine, theirs)
        mine |= bit | flips
        theirs &= ~flips
        discs = (mine, theirs) if seat == 0 else (theirs, mine)

        # The opponent moves next if they can; otherwise the mover goes
        # again if they can; otherwise the game is over.
        legal = _moves(theirs, mine)
        if legal:
            return ReversiState(discs, 1 - seat, None, legal)
        legal = _moves(mine, theirs)
        if legal:
            return ReversiState(discs, seat, 1 - seat, legal)
        return ReversiState(discs, None, None, 0)

    def to_move(self, state: ReversiState) -> int | None:
        return state.turn

    def outcome(self, state: ReversiState) -> Outcome | None:
        if state.turn is not None:
            return None
        first, second = state.counts()
        if first == second:
            return Outcome(None, "draw")
        return Outcome(0 if first > second else 1, "win")

    def format_move(self, move: int) -> str:
        return _square_name(move)

    def render_text(self, state: ReversiState) -> str:
        """
        Draw the board with its coordinates: ``X`` and ``O`` discs, ``.``
        empty squares and ``*`` the squares the player to move may play,
        then the disc counts and any pass.
        """
        lines = ["  " + " ".join(_LETTERS)]
        for row in range(SIZE):
            cells = [_cell_text(state, SIZE * row + column) for column in range(SIZE)]
            lines.append(f"{row + 1} " + " ".join(cells))

        first, second = state.counts()
        lines.append(f"{_MARKS[0]} {first}, {_MARKS[1]} {second}")
        if state.passed is not None:
            mover = _MARKS[1 - state.passed]
            lines.append(f"{_MARKS[state.passed]} has no move: {mover} again")
        return "\n".join(lines)

    def render_json(self, state: ReversiState) -> dict[str, Any]:
        """
        Describe the board: ``cells`` is 8 rows from the top, each 8 marks
        or ``null`` from column a; ``legal`` lists the squares the player
        to move may play; ``passed`` is the mark of a skipped player.
        """
        cells = [
            [_mark(state, SIZE * row + column) for column in range(SIZE)]
            for row in range(SIZE)
        ]
        counts = state.counts()
        return {
            "cells": cells,
            "marks": list(_MARKS),
            "counts": {_MARKS[0]: counts[0], _MARKS[1]: counts[1]},
            "legal": [_square_name(square) for square in _bits(state.legal)],
            "passed": None if state.passed is None else _MARKS[state.passed],
        }


def _mark(state: ReversiState, square: int) -> str | None:
    """The mark of the disc on ``square``, or ``None`` when it is empty."""
    seat = state.seat_at(square)
    return None if seat is None else _MARKS[seat]


def _cell_text(state: ReversiState, square: int) -> str:
    mark = _mark(state, square)
    if mark is not None:
        return mark
    return "*" if state.legal & (1 << square) else "."

"""
Nim's rules: players take turns removing objects from heaps.

A move takes one or more objects from a single heap; whoever takes the
last object of all wins (the "normal play" convention).  Nothing here
imports Twisted: chupacabra's game service calls these methods and does
the networking itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from chupacabra.games import Game, MoveError, Outcome

__all__ = ["START", "Nim", "NimMove", "NimState"]

#: The heaps a match starts with unless the game is built with others.
START = (3, 4, 5)
#: Each seat's label, shown next to the players' names.
_LABELS = ("first", "second")
#: The most digits a heap number or a count may have; longer text is
#: refused before it is turned into a number.
_MAX_DIGITS = 6


@attrs.frozen
class NimMove:
    """Take ``count`` objects from heap ``heap`` (counted from 0)."""

    heap: int
    count: int


@attrs.frozen
class NimState:
    """
    A Nim position: the objects left in each heap and the seat to move.

    ``turn`` keeps naming the seat whose turn it would be even once every
    heap is empty; L{Nim.to_move} answers ``None`` then, and the other
    seat, which took the last object, has won.
    """

    heaps: tuple[int, ...]
    turn: int = 0

    @property
    def left(self) -> int:
        """How many objects are left in all the heaps together."""
        return sum(self.heaps)


def _number(text: str) -> int | None:
    """The positive whole number ``text`` spells in ASCII digits, or None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return None
    value = int(text)
    return value if value > 0 else None


def _no_such_heap(state: NimState) -> MoveError:
    """The error for a heap number that this game does not have."""
    return MoveError("bad-move", f"heaps are numbered 1 to {len(state.heaps)}")


class Nim(Game[NimState, NimMove]):
    """
    Nim for two players; the first seat moves first.

    Moves are written ``heap:count`` with heaps numbered from 1, so
    ``2:3`` takes three objects from the second heap; the move values are
    L{NimMove}s, whose heaps are numbered from 0.
    """

    name = "nim"
    title = "Nim"
    description = (
        "Take turns removing one or more objects from a single heap; "
        "whoever takes the last object wins."
    )
    move_syntax = "heap:count, such as 2:3 to take 3 objects from heap 2"
    seat_labels = _LABELS

    def __init__(self, heaps: Sequence[int] = START) -> None:
        """
        Play with ``heaps`` objects in each heap at the start.

        chupacabra builds the game with no arguments, so it serves the
        usual 3-4-5 start; other starts are for tests and variants.
        """
        if not heaps or any(size < 1 for size in heaps):
            raise ValueError("Nim needs at least one heap, and no empty heaps")
        self.start = tuple(heaps)

    def new_state(self, players: int, seed: int | None = None) -> NimState:
        """Return the starting heaps with the first seat to move."""
        if players != 2:
            raise ValueError("Nim is played by two players")
        return NimState(self.start)

    def parse_move(self, state: NimState, text: str) -> NimMove:
        """
        Read ``heap:count``, such as ``2:3``.

        Raise L{MoveError} ``bad-move`` for text of any other shape, and
        for a heap that this game does not have.
        """
        heap_text, colon, count_text = text.partition(":")
        heap, count = _number(heap_text), _number(count_text)
        if not colon or heap is None or count is None:
            raise MoveError("bad-move", "write a move as heap:count, such as 2:3")
        if heap > len(state.heaps):
            raise _no_such_heap(state)
        return NimMove(heap - 1, count)

    def legal_moves(self, state: NimState) -> Sequence[NimMove]:
        """Every count from 1 to the heap's size, for every heap left."""
        return tuple(
            NimMove(heap, count)
            for heap, size in enumerate(state.heaps)
            for count in range(1, size + 1)
        )

    def apply(self, state: NimState, move: NimMove) -> NimState:
        """
        Return the heaps after ``move``, the other seat to move.

        Raise L{MoveError}: ``game-over`` when every heap is empty,
        ``bad-move`` for a heap this game does not have or a count below
        one, ``illegal-move`` for more objects than the heap holds.
        """
        if state.left == 0:
            raise MoveError("game-over", "the game is over")
        if not 0 <= move.heap < len(state.heaps):
            raise _no_such_heap(state)
        if move.count < 1:
            raise MoveError("bad-move", "take at least one object")

        size = state.heaps[move.heap]
        if move.count > size:
            held = "is empty" if size == 0 else f"holds only {size}"
            raise MoveError("illegal-move", f"heap {move.heap + 1} {held}")

        heaps = list(state.heaps)
        heaps[move.heap] = size - move.count
        return NimState(tuple(heaps), 1 - state.turn)

    def to_move(self, state: NimState) -> int | None:
        """The seat to move, or ``None`` once every heap is empty."""
        return None if state.left == 0 else state.turn

    def outcome(self, state: NimState) -> Outcome | None:
        """Once every heap is empty, a win for the seat that emptied them."""
        if state.left:
            return None
        return Outcome(1 - state.turn, "win")

    def format_move(self, move: NimMove) -> str:
        """Write ``move`` as ``heap:count`` with heaps numbered from 1."""
        return f"{move.heap + 1}:{move.count}"

    def render_text(self, state: NimState) -> str:
        """
        Draw one line per heap: its number, a bar of ``|`` per object and
        how many are left.
        """
        widest = max((*self.start, *state.heaps))
        lines = [
            f"heap {heap}: {'|' * size:<{widest}}  {size}"
            for heap, size in enumerate(state.heaps, start=1)
        ]
        if state.left == 0:
            lines.append("every heap is empty")
        return "\n".join(lines)

    def render_json(self, state: NimState) -> dict[str, Any]:
        """
        Describe the position: ``heaps`` lists the objects left in each
        heap, heap 1 first; ``left`` is their total.
        """
        return {"heaps": list(state.heaps), "left": state.left}

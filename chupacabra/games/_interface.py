"""The interface every game implements: plain rules, no networking."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import attrs

StateT = TypeVar("StateT")
MoveT = TypeVar("MoveT")


class MoveError(Exception):
    """
    A move was refused by the rules.

    ``code`` is a short lowercase word that clients can act on (``bad-move``
    for a move that cannot be read or is out of range, ``illegal-move`` for
    one the position forbids, ``game-over`` once the game has ended);
    ``message`` says what went wrong in words a player understands.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


@attrs.frozen
class Outcome:
    """
    How a game ended.

    ``winner`` is the winning seat, or ``None`` for a draw; ``reason`` is a
    short word such as ``win``, ``draw``, ``forfeit`` or ``time``.
    """

    winner: int | None
    reason: str


class Game(abc.ABC, Generic[StateT, MoveT]):
    """
    The rules of one game, as pure functions over immutable states.

    Seats are numbered from 0 in turn order: seat 0 moves first.  States
    and moves are the game's own values; everything outside the game
    handles them only through these methods.
    """

    #: The name players type, such as ``tictactoe``.
    name: ClassVar[str]
    #: A title for people, such as ``Tic-tac-toe``.
    title: ClassVar[str]
    #: One or two sentences on how the game is played.
    description: ClassVar[str]
    #: How a move is written, such as ``a cell number from 1 to 9``.
    move_syntax: ClassVar[str]
    #: How many players a match seats.
    players: ClassVar[int] = 2
    #: What each seat is called on the board, such as ``("X", "O")``.
    seat_labels: ClassVar[tuple[str, ...]] = ("first", "second")

    @abc.abstractmethod
    def new_state(self, players: int, seed: int | None = None) -> StateT:
        """Return the position a match starts from."""

    @abc.abstractmethod
    def parse_move(self, state: StateT, text: str) -> MoveT:
        """
        Read a move as a player typed it.

        Raise L{MoveError} with code ``bad-move`` for text that is not a
        move of this game; whether the move is legal here is for L{apply}.
        """

    @abc.abstractmethod
    def legal_moves(self, state: StateT) -> Sequence[MoveT]:
        """Return every move the player to move may make."""

    @abc.abstractmethod
    def apply(self, state: StateT, move: MoveT) -> StateT:
        """
        Return the position after ``move``, leaving ``state`` unchanged.

        Raise L{MoveError} when the move is not legal in ``state``.
        """

    @abc.abstractmethod
    def to_move(self, state: StateT) -> int | None:
        """Return the seat whose turn it is, or ``None`` once over."""

    @abc.abstractmethod
    def outcome(self, state: StateT) -> Outcome | None:
        """Return how the game ended, or ``None`` while it goes on."""

    @abc.abstractmethod
    def format_move(self, move: MoveT) -> str:
        """Write ``move`` the way a player would type it."""

    @abc.abstractmethod
    def render_text(self, state: StateT) -> str:
        """Draw the position for a person at a terminal."""

    @abc.abstractmethod
    def render_json(self, state: StateT) -> dict[str, Any]:
        """Describe the position as JSON-ready data for programs."""

    def play(self, state: StateT, text: str) -> tuple[StateT, MoveT]:
        """Parse ``text`` and apply it, returning the new state and move."""
        if self.outcome(state) is not None:
            raise MoveError("game-over", "the game is over")
        move = self.parse_move(state, text)
        return self.apply(state, move), move


def replay(
    game: Game[StateT, MoveT], moves: Sequence[str], players: int = 2
) -> list[StateT]:
    """
    Rebuild a match move by move from its log.

    Returns every position, the starting one first.  A move that does not
    apply raises L{MoveError}, so a corrupt log cannot go unnoticed.
    """
    states = [game.new_state(players)]
    for text in moves:
        state, _ = game.play(states[-1], text)
        states.append(state)
    return states

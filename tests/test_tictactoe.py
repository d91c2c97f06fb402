"""Tic-tac-toe's rules and the game interface they implement."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chupacabra.games import (
    Game,
    MoveError,
    Outcome,
    TicTacToe,
    installed_games,
)
from chupacabra.games.tictactoe import TicTacToeState

GAME = TicTacToe()

#: Every line of three, as 1-based cell numbers in reading order; written
#: out here rather than imported so that the tests check the game's table.
LINES = [
    (1, 2, 3),
    (4, 5, 6),
    (7, 8, 9),
    (1, 4, 7),
    (2, 5, 8),
    (3, 6, 9),
    (1, 5, 9),
    (3, 5, 7),
]

EMPTY_BOARD = " 1 | 2 | 3\n---+---+---\n 4 | 5 | 6\n---+---+---\n 7 | 8 | 9"


def play_cells(*cells: int) -> TicTacToeState:
    """Play 1-based cell numbers in turn from the start."""
    state = GAME.new_state(2)
    for cell in cells:
        state, _ = GAME.play(state, str(cell))
    return state


def has_line(state: TicTacToeState, seat: int) -> bool:
    """Whether ``seat`` holds all three cells of some line."""
    return any(all(state.cells[c - 1] == seat for c in line) for line in LINES)


def off_line_cells(line: tuple[int, ...], count: int) -> tuple[int, ...]:
    """Return ``count`` cells off ``line`` that hold no line among them."""
    free = [c for c in range(1, 10) if c not in line]
    for cells in itertools.combinations(free, count):
        if not any(set(other) <= set(cells) for other in LINES):
            return cells
    raise AssertionError("no such cells")


def interleave(first: tuple[int, ...], second: tuple[int, ...]) -> list[int]:
    """Alternate moves of X (``first``) and O (``second``), X first."""
    moves: list[int] = []
    for x, o in itertools.zip_longest(first, second):
        moves += [m for m in (x, o) if m is not None]
    return moves


# The interface


def test_installed_games_include_tictactoe() -> None:
    """installed_games() serves tic-tac-toe under its name."""
    games = installed_games()
    assert isinstance(games["tictactoe"], TicTacToe)
    assert games["tictactoe"].name == "tictactoe"


def test_installed_games_are_games() -> None:
    """Every installed game is a Game keyed by its own name."""
    for name, game in installed_games().items():
        assert isinstance(game, Game)
        assert game.name == name


def test_game_is_abstract() -> None:
    """A Game that leaves out the rules cannot be instantiated."""

    class Unfinished(Game[Any, Any]):
        name = "unfinished"

    with pytest.raises(TypeError):
        Unfinished()  # type: ignore[abstract]


def test_move_error_carries_code_and_message() -> None:
    """MoveError keeps its code and shows only the message as its text."""
    error = MoveError("bad-move", "cells are numbered 1 to 9")
    assert error.code == "bad-move"
    assert error.message == "cells are numbered 1 to 9"
    assert str(error) == "cells are numbered 1 to 9"


def test_outcome_is_a_frozen_value() -> None:
    """Outcomes compare by value and cannot be changed."""
    assert Outcome(1, "win") == Outcome(1, "win")
    assert Outcome(1, "win") != Outcome(0, "win")
    assert Outcome(None, "draw") != Outcome(None, "time")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Outcome(1, "win").winner = 0  # type: ignore[misc]


def test_description_of_the_game() -> None:
    """Tic-tac-toe seats two players, labelled X then O."""
    assert GAME.players == 2
    assert GAME.seat_labels == ("X", "O")
    assert GAME.title and GAME.description and GAME.move_syntax


# The start


def test_new_state_is_empty_with_x_to_move() -> None:
    """A new game has every cell free, X (seat 0) to move and no outcome."""
    state = GAME.new_state(2)
    assert GAME.to_move(state) == 0
    assert GAME.outcome(state) is None
    assert sorted(GAME.legal_moves(state)) == list(range(9))


@pytest.mark.parametrize("players", [1, 3])
def test_new_state_refuses_other_player_counts(players: int) -> None:
    """Tic-tac-toe cannot start with anything but two players."""
    with pytest.raises(ValueError):
        GAME.new_state(players)


def test_turns_alternate() -> None:
    """X and O take turns, starting with X."""
    state = GAME.new_state(2)
    seats = []
    for cell in (1, 2, 3, 5):
        seats.append(GAME.to_move(state))
        state, _ = GAME.play(state, str(cell))
    assert seats == [0, 1, 0, 1]
    assert GAME.to_move(state) == 0


def test_legal_moves_are_the_free_cells() -> None:
    """Legal moves are exactly the indexes of the empty cells."""
    state = play_cells(5, 1, 9)
    assert sorted(GAME.legal_moves(state)) == [1, 2, 3, 5, 6, 7]


# Reading and writing moves


@pytest.mark.parametrize("cell", range(1, 10))
def test_cells_are_numbered_in_reading_order(cell: int) -> None:
    """Cell n is row (n-1)//3 and column (n-1)%3, counted from the top left."""
    state = play_cells(cell)
    board = GAME.render_text(state).split("\n")[::2]
    row, col = divmod(cell - 1, 3)
    marks = [[part.strip() for part in line.split("|")] for line in board]
    assert marks[row][col] == "X"
    assert GAME.render_json(state)["cells"][cell - 1] == "X"


@pytest.mark.parametrize("cell", range(1, 10))
def test_parse_and_format_round_trip(cell: int) -> None:
    """Each cell number parses to its index and formats back the same."""
    move = GAME.parse_move(GAME.new_state(2), str(cell))
    assert move == cell - 1
    assert GAME.format_move(move) == str(cell)


@pytest.mark.parametrize("text", [" 5 ", "5\t", "\t5"])
def test_parse_move_ignores_surrounding_whitespace(text: str) -> None:
    """Spaces around a cell number do not stop it being read."""
    assert GAME.parse_move(GAME.new_state(2), text) == 4


@pytest.mark.parametrize(
    "text", ["0", "10", "x", "", " ", "-1", "+5", "1.5", "5 6", "\uff15", "\u0665"]
)
def test_parse_move_refuses_non_cells(text: str) -> None:
    """Anything but an ASCII number from 1 to 9 is a bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.parse_move(GAME.new_state(2), text)
    assert caught.value.code == "bad-move"
    assert "1 to 9" in caught.value.message


@pytest.mark.parametrize("move", [-1, 9, 100])
def test_apply_refuses_out_of_range_indexes(move: int) -> None:
    """apply() refuses a move value outside 0-8 with bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.apply(GAME.new_state(2), move)
    assert caught.value.code == "bad-move"


# Applying moves


def test_apply_marks_the_cell_for_the_mover() -> None:
    """apply() puts the mover's seat in the chosen cell and nothing else."""
    state = GAME.apply(GAME.new_state(2), 4)
    assert state.cells == (None,) * 4 + (0,) + (None,) * 4
    state = GAME.apply(state, 0)
    assert state.cells == (1,) + (None,) * 3 + (0,) + (None,) * 4


def test_apply_does_not_mutate_the_input() -> None:
    """apply() returns a new state and leaves the old one as it was."""
    before = play_cells(1, 5)
    cells = before.cells
    after = GAME.apply(before, 8)
    assert before.cells == cells
    assert after is not before
    assert after.cells[8] == 0
    assert before.cells[8] is None


def test_state_is_frozen() -> None:
    """A state's cells cannot be reassigned."""
    state = GAME.new_state(2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        state.cells = (0,) * 9  # type: ignore[misc]


def test_play_returns_the_new_state_and_move() -> None:
    """play() parses the text and applies it in one step."""
    start = GAME.new_state(2)
    state, move = GAME.play(start, "7")
    assert move == 6
    assert state == GAME.apply(start, 6)


def test_occupied_cell_is_illegal() -> None:
    """Playing a taken cell is an illegal-move naming the cell."""
    state = play_cells(5)
    with pytest.raises(MoveError) as caught:
        GAME.play(state, "5")
    assert caught.value.code == "illegal-move"
    assert "5" in caught.value.message


def test_own_occupied_cell_is_illegal() -> None:
    """Playing a cell the mover already holds is also an illegal-move."""
    state = play_cells(5, 1)
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, 4)
    assert caught.value.code == "illegal-move"


# Endings


@pytest.mark.parametrize("line", LINES, ids=str)
def test_x_wins_on_every_line(line: tuple[int, int, int]) -> None:
    """Three X marks on any row, column or diagonal win for seat 0."""
    others = off_line_cells(line, 2)
    state = play_cells(*interleave(line, others))
    assert GAME.outcome(state) == Outcome(0, "win")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()


@pytest.mark.parametrize("line", LINES, ids=str)
def test_o_wins_on_every_line(line: tuple[int, int, int]) -> None:
    """Three O marks on any row, column or diagonal win for seat 1."""
    others = off_line_cells(line, 3)
    state = play_cells(*interleave(others, line))
    assert GAME.outcome(state) == Outcome(1, "win")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()


def test_no_outcome_before_a_line() -> None:
    """Two in a row is not yet a win."""
    state = play_cells(1, 4, 2, 5)
    assert GAME.outcome(state) is None
    assert GAME.to_move(state) == 0


def test_full_board_without_line_is_a_draw() -> None:
    """A full board with no line ends the game drawn."""
    state = play_cells(1, 2, 3, 5, 4, 6, 8, 7, 9)
    assert GAME.outcome(state) == Outcome(None, "draw")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()


def test_win_on_the_last_cell_is_a_win_not_a_draw() -> None:
    """Completing a line with the ninth mark wins rather than draws."""
    state = play_cells(1, 2, 3, 4, 5, 6, 8, 7, 9)
    assert state.filled == 9
    assert GAME.outcome(state) == Outcome(0, "win")


def test_play_after_the_end_is_game_over() -> None:
    """Once won, any further move text is refused with game-over."""
    state = play_cells(1, 4, 2, 5, 3)
    for text in ("9", "1", "x"):
        with pytest.raises(MoveError) as caught:
            GAME.play(state, text)
        assert caught.value.code == "game-over"


def test_apply_after_the_end_is_game_over() -> None:
    """apply() refuses even a free cell once the game is won."""
    won = play_cells(1, 4, 2, 5, 3)
    assert won.cells[8] is None
    with pytest.raises(MoveError) as caught:
        GAME.apply(won, 8)
    assert caught.value.code == "game-over"


def test_apply_on_a_drawn_board_is_game_over() -> None:
    """A drawn game refuses moves as game-over, not as taken cells."""
    drawn = play_cells(1, 2, 3, 5, 4, 6, 8, 7, 9)
    with pytest.raises(MoveError) as caught:
        GAME.apply(drawn, 0)
    assert caught.value.code == "game-over"


# Rendering


def test_render_text_of_empty_board() -> None:
    """An empty board shows the numbers 1 to 9 in a grid."""
    assert GAME.render_text(GAME.new_state(2)) == EMPTY_BOARD


def test_render_text_shows_marks_and_free_numbers() -> None:
    """Taken cells show X or O; free cells keep their numbers."""
    state = play_cells(5, 1, 9)
    assert GAME.render_text(state) == (
        " O | 2 | 3\n---+---+---\n 4 | X | 6\n---+---+---\n 7 | 8 | X"
    )


def test_render_json() -> None:
    """JSON shows each cell as X, O or null and lists the marks."""
    state = play_cells(5, 1, 9)
    assert GAME.render_json(state) == {
        "cells": ["O", None, None, None, "X", None, None, None, "X"],
        "marks": ["X", "O"],
    }


# Properties


@st.composite
def played_games(draw: st.DrawFn, max_moves: int = 9) -> list[TicTacToeState]:
    """Every state of a game of random legal moves, to its end or max_moves."""
    states = [GAME.new_state(2)]
    for _ in range(max_moves):
        legal = GAME.legal_moves(states[-1])
        if not legal:
            break
        move = draw(st.sampled_from(sorted(legal)))
        states.append(GAME.apply(states[-1], move))
    return states


@given(played_games())
def test_random_legal_play_ends_properly(states: list[TicTacToeState]) -> None:
    """Random legal play ends within nine moves with a consistent outcome."""
    for before, after in itertools.pairwise(states):
        assert GAME.outcome(before) is None
        assert after.filled == before.filled + 1
        assert GAME.to_move(before) == before.filled % 2

    final = states[-1]
    outcome = GAME.outcome(final)
    assert outcome is not None, "nine legal moves did not end the game"
    assert len(states) - 1 <= 9
    assert GAME.to_move(final) is None
    assert GAME.legal_moves(final) == ()

    if outcome.winner is None:
        assert outcome.reason == "draw"
        assert final.filled == 9
        assert not has_line(final, 0) and not has_line(final, 1)
    else:
        assert outcome.reason == "win"
        assert has_line(final, outcome.winner)
        assert not has_line(final, 1 - outcome.winner)
        # The winner made the last move.
        assert final.filled % 2 == (outcome.winner + 1) % 2


@given(played_games(), st.integers(min_value=-20, max_value=30))
def test_illegal_moves_are_refused_unchanged(
    states: list[TicTacToeState], move: int
) -> None:
    """Any move not in legal_moves raises MoveError and changes nothing."""
    state = states[-1]
    if move in GAME.legal_moves(state):
        return
    cells = state.cells
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, move)
    assert caught.value.code in {"bad-move", "illegal-move", "game-over"}
    if GAME.outcome(state) is not None:
        assert caught.value.code == "game-over"
    elif 0 <= move <= 8:
        assert caught.value.code == "illegal-move"
    else:
        assert caught.value.code == "bad-move"
    assert state.cells == cells


@given(played_games(max_moves=8), st.text(max_size=5))
def test_unreadable_text_is_refused_unchanged(
    states: list[TicTacToeState], text: str
) -> None:
    """Text that is not a free cell number is refused by play() unchanged."""
    state = states[-1]
    stripped = text.strip()
    if (
        stripped.isascii()
        and stripped.isdigit()
        and int(stripped) - 1 in GAME.legal_moves(state)
    ):
        return
    cells = state.cells
    with pytest.raises(MoveError):
        GAME.play(state, text)
    assert state.cells == cells

"""Connect Four's rules, moves and drawings."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chupacabra.games import Game, MoveError, Outcome
from chupacabra.games.connect4 import ConnectFour, ConnectFourState

GAME = ConnectFour()
COLUMNS, ROWS = 7, 6

#: A whole game that fills the grid without four in a line anywhere, as
#: 1-based column numbers; found once by a search over column patterns.
DRAWN_GAME = "211131114222226333633474454646555565677777"

EMPTY_BOARD = "\n".join([". . . . . . ."] * ROWS + ["1 2 3 4 5 6 7"])


def play(columns: str) -> ConnectFourState:
    """Play 1-based column numbers in turn from the start."""
    state = GAME.new_state(2)
    for column in columns:
        state, _ = GAME.play(state, column)
    return state


def grid(state: ConnectFourState) -> list[list[int | None]]:
    """The seats in each cell, as ``grid[column][row]`` from the bottom left."""
    return [[state.seat_at(c, r) for r in range(ROWS)] for c in range(COLUMNS)]


def lines_of_four(
    state: ConnectFourState, seat: int
) -> set[frozenset[tuple[int, int]]]:
    """
    Every line of four cells that ``seat`` holds, as sets of 1-based
    (column, row) pairs counted from the bottom left; worked out cell by
    cell, independently of the game's bitboards.
    """
    cells = grid(state)
    found = set()
    for column, row in itertools.product(range(COLUMNS), range(ROWS)):
        for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
            line = [(column + dc * k, row + dr * k) for k in range(4)]
            if all(0 <= c < COLUMNS and 0 <= r < ROWS for c, r in line) and all(
                cells[c][r] == seat for c, r in line
            ):
                found.add(frozenset((c + 1, r + 1) for c, r in line))
    return found


# The interface


def test_is_a_game() -> None:
    """Connect Four is a Game for two players labelled X and O."""
    assert isinstance(GAME, Game)
    assert GAME.name == "connect4"
    assert GAME.players == 2
    assert GAME.seat_labels == ("X", "O")
    assert GAME.title and GAME.description and GAME.move_syntax


# The start


def test_new_state_is_empty_with_x_to_move() -> None:
    """A new game has an empty grid, X to move, every column open."""
    state = GAME.new_state(2)
    assert GAME.to_move(state) == 0
    assert GAME.outcome(state) is None
    assert list(GAME.legal_moves(state)) == list(range(COLUMNS))
    assert all(cell is None for column in grid(state) for cell in column)


@pytest.mark.parametrize("players", [1, 3])
def test_new_state_refuses_other_player_counts(players: int) -> None:
    """Connect Four cannot start with anything but two players."""
    with pytest.raises(ValueError):
        GAME.new_state(players)


def test_turns_alternate() -> None:
    """X and O take turns, starting with X."""
    state = GAME.new_state(2)
    seats = []
    for column in "4433":
        seats.append(GAME.to_move(state))
        state, _ = GAME.play(state, column)
    assert seats == [0, 1, 0, 1]
    assert GAME.to_move(state) == 0


# Dropping discs


def test_discs_fall_to_the_lowest_free_cell() -> None:
    """Discs dropped into one column stack up from the bottom in turn."""
    state = play("444")
    assert grid(state)[3] == [0, 1, 0, None, None, None]


def test_discs_in_other_columns_stay_on_the_bottom() -> None:
    """A disc in an empty column lands on the bottom row."""
    state = play("4417")
    assert grid(state)[0] == [0, None, None, None, None, None]
    assert grid(state)[6] == [1, None, None, None, None, None]


def test_full_column_is_illegal() -> None:
    """The seventh disc in a column is an illegal-move naming the column."""
    state = play("222222")
    assert grid(state)[1] == [0, 1, 0, 1, 0, 1]
    assert 1 not in GAME.legal_moves(state)
    assert GAME.outcome(state) is None

    for attempt in (lambda: GAME.apply(state, 1), lambda: GAME.play(state, "2")):
        with pytest.raises(MoveError) as caught:
            attempt()
        assert caught.value.code == "illegal-move"
        assert "column 2" in caught.value.message


def test_legal_moves_are_the_open_columns() -> None:
    """Legal moves list every column with room, in order."""
    state = play("111111777777")
    assert list(GAME.legal_moves(state)) == [1, 2, 3, 4, 5]


# Reading and writing moves


@pytest.mark.parametrize("column", range(1, COLUMNS + 1))
def test_parse_and_format_round_trip(column: int) -> None:
    """Each column number parses to its index and formats back the same."""
    move = GAME.parse_move(GAME.new_state(2), str(column))
    assert move == column - 1
    assert GAME.format_move(move) == str(column)


@pytest.mark.parametrize("text", [" 4 ", "4\t", "\t4"])
def test_parse_move_ignores_surrounding_whitespace(text: str) -> None:
    """Spaces around a column number do not stop it being read."""
    assert GAME.parse_move(GAME.new_state(2), text) == 3


@pytest.mark.parametrize(
    "text", ["0", "8", "10", "x", "", " ", "-1", "+4", "1.5", "3 4", "\uff14", "\u0664"]
)
def test_parse_move_refuses_non_columns(text: str) -> None:
    """Anything but an ASCII number from 1 to 7 is a bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.parse_move(GAME.new_state(2), text)
    assert caught.value.code == "bad-move"
    assert "1 to 7" in caught.value.message


@pytest.mark.parametrize("move", [-1, 7, 100])
def test_apply_refuses_out_of_range_indexes(move: int) -> None:
    """apply() refuses a column index outside 0-6 with bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.apply(GAME.new_state(2), move)
    assert caught.value.code == "bad-move"


# Applying moves


def test_apply_does_not_mutate_the_input() -> None:
    """apply() returns a new state and leaves the old one as it was."""
    before = play("44")
    copy = attrs.evolve(before)
    after = GAME.apply(before, 3)
    assert before == copy
    assert after is not before
    assert grid(before)[3] == [0, 1, None, None, None, None]
    assert grid(after)[3] == [0, 1, 0, None, None, None]


def test_state_is_frozen() -> None:
    """A state's fields cannot be reassigned."""
    state = GAME.new_state(2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        state.plies = 3  # type: ignore[misc]


def test_play_returns_the_new_state_and_move() -> None:
    """play() parses the text and applies it in one step."""
    start = GAME.new_state(2)
    state, move = GAME.play(start, "5")
    assert move == 4
    assert state == GAME.apply(start, 4)


# Endings

#: Games ending in a win: the columns played, the winner and the winning
#: line as 1-based (column, row) cells counted from the bottom left.
WINS = [
    ("1122334", 0, {(1, 1), (2, 1), (3, 1), (4, 1)}),
    ("1212121", 0, {(1, 1), (1, 2), (1, 3), (1, 4)}),
    ("12234334644", 0, {(1, 1), (2, 2), (3, 3), (4, 4)}),
    ("76654554244", 0, {(7, 1), (6, 2), (5, 3), (4, 4)}),
    ("71726354", 1, {(1, 1), (2, 1), (3, 1), (4, 1)}),
    ("12123212", 1, {(2, 1), (2, 2), (2, 3), (2, 4)}),
    ("123345445755", 1, {(2, 1), (3, 2), (4, 3), (5, 4)}),
    ("765543443133", 1, {(6, 1), (5, 2), (4, 3), (3, 4)}),
]


@pytest.mark.parametrize(
    ("columns", "winner", "line"),
    WINS,
    ids=[
        f"{'XO'[w]}-{kind}"
        for w, kind in itertools.product((0, 1), ("across", "up", "rising", "falling"))
    ],
)
def test_four_in_a_line_wins(
    columns: str, winner: int, line: set[tuple[int, int]]
) -> None:
    """Four discs across, up or on either diagonal win on the move that makes them."""
    before = play(columns[:-1])
    assert GAME.outcome(before) is None
    assert GAME.to_move(before) == winner

    state = play(columns)
    assert GAME.outcome(state) == Outcome(winner, "win")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()
    assert lines_of_four(state, winner) == {frozenset(line)}


def test_lines_do_not_wrap_between_columns() -> None:
    """Two discs atop one column and two at the bottom of the next are no line."""
    state = play("212111171")
    cells = grid(state)
    assert cells[0][4:] == [0, 0]
    assert cells[1][:2] == [0, 0]
    assert GAME.outcome(state) is None


def test_full_grid_without_a_line_is_a_draw() -> None:
    """Filling all 42 cells with no four in a line ends the game drawn."""
    before = play(DRAWN_GAME[:-1])
    assert GAME.outcome(before) is None
    assert list(GAME.legal_moves(before)) == [6]

    state = play(DRAWN_GAME)
    assert GAME.outcome(state) == Outcome(None, "draw")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()
    assert not lines_of_four(state, 0) and not lines_of_four(state, 1)


def test_play_after_a_win_is_game_over() -> None:
    """Once won, any further move is refused with game-over."""
    state = play("1212121")
    for text in ("3", "1", "x"):
        with pytest.raises(MoveError) as caught:
            GAME.play(state, text)
        assert caught.value.code == "game-over"
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, 2)
    assert caught.value.code == "game-over"


def test_apply_on_a_drawn_grid_is_game_over() -> None:
    """A drawn game refuses moves as game-over, not as full columns."""
    with pytest.raises(MoveError) as caught:
        GAME.apply(play(DRAWN_GAME), 0)
    assert caught.value.code == "game-over"


# Rendering


def test_render_text_of_empty_grid() -> None:
    """An empty grid shows six rows of dots over the column numbers."""
    assert GAME.render_text(GAME.new_state(2)) == EMPTY_BOARD


def test_render_text_shows_discs_from_the_bottom() -> None:
    """Discs show as X and O, stacked from the bottom row up."""
    state = play("4435")
    assert GAME.render_text(state) == "\n".join(
        [". . . . . . ."] * 4
        + [
            ". . . O . . .",
            ". . X X O . .",
            "1 2 3 4 5 6 7",
        ]
    )


def test_render_json() -> None:
    """JSON gives the size, the rows from the top and the marks."""
    data = GAME.render_json(play("4435"))
    assert data["columns"] == 7
    assert data["rows"] == 6
    assert data["marks"] == ["X", "O"]
    assert len(data["cells"]) == 6
    assert all(len(row) == 7 for row in data["cells"])
    assert data["cells"][:4] == [[None] * 7] * 4
    assert data["cells"][4] == [None, None, None, "O", None, None, None]
    assert data["cells"][5] == [None, None, "X", "X", "O", None, None]


# Properties


@st.composite
def played_games(draw: st.DrawFn, max_moves: int = 42) -> list[ConnectFourState]:
    """Every state of a game of random legal moves, to its end or max_moves."""
    states = [GAME.new_state(2)]
    for _ in range(max_moves):
        legal = GAME.legal_moves(states[-1])
        if not legal:
            break
        move = draw(st.sampled_from(legal))
        states.append(GAME.apply(states[-1], move))
    return states


@given(played_games())
def test_random_legal_play_ends_properly(states: list[ConnectFourState]) -> None:
    """Random legal play ends within 42 moves with an outcome that fits the grid."""
    grids = [grid(state) for state in states]
    for i, (before, after) in enumerate(itertools.pairwise(states)):
        assert GAME.outcome(before) is None
        seat = GAME.to_move(before)
        assert seat == before.plies % 2
        assert after.plies == before.plies + 1
        # Exactly one new disc, the mover's, resting on the one below.
        changed = [
            (c, r)
            for c, r in itertools.product(range(COLUMNS), range(ROWS))
            if grids[i][c][r] != grids[i + 1][c][r]
        ]
        assert len(changed) == 1
        column, row = changed[0]
        assert grids[i][column][row] is None
        assert grids[i + 1][column][row] == seat
        assert row == 0 or grids[i][column][row - 1] is not None

    # Discs never leave, so no line before the last move means none earlier:
    # the game stopped at the first line.
    if len(states) > 1:
        assert not lines_of_four(states[-2], 0)
        assert not lines_of_four(states[-2], 1)

    final = states[-1]
    outcome = GAME.outcome(final)
    assert outcome is not None, "42 legal moves did not end the game"
    assert GAME.to_move(final) is None
    assert GAME.legal_moves(final) == ()
    if outcome.winner is None:
        assert outcome.reason == "draw"
        assert final.plies == COLUMNS * ROWS
        assert not lines_of_four(final, 0) and not lines_of_four(final, 1)
    else:
        assert outcome.reason == "win"
        assert lines_of_four(final, outcome.winner)
        assert not lines_of_four(final, 1 - outcome.winner)
        assert final.plies % 2 == (outcome.winner + 1) % 2


@given(played_games(), st.integers(min_value=-10, max_value=20))
def test_illegal_moves_are_refused_unchanged(
    states: list[ConnectFourState], move: int
) -> None:
    """Any move not in legal_moves raises MoveError and changes nothing."""
    state = states[-1]
    if move in GAME.legal_moves(state):
        return
    copy = attrs.evolve(state)
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, move)
    if GAME.outcome(state) is not None:
        assert caught.value.code == "game-over"
    elif 0 <= move < COLUMNS:
        assert caught.value.code == "illegal-move"
    else:
        assert caught.value.code == "bad-move"
    assert state == copy


@given(played_games(max_moves=41), st.text(max_size=4))
def test_unreadable_text_is_refused_unchanged(
    states: list[ConnectFourState], text: str
) -> None:
    """Text that is not an open column's number is refused by play() unchanged."""
    state = states[-1]
    stripped = text.strip()
    if (
        stripped.isascii()
        and stripped.isdigit()
        and int(stripped) - 1 in GAME.legal_moves(state)
    ):
        return
    copy = attrs.evolve(state)
    with pytest.raises(MoveError):
        GAME.play(state, text)
    assert state == copy

"""Reversi's rules, moves, passes and drawings."""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chupacabra.games import Game, MoveError, Outcome
from chupacabra.games.reversi import Reversi, ReversiState

GAME = Reversi()
SIZE = 8

#: The eight directions as (column, row) steps, rows counted downwards.
DIRECTIONS = {
    "east": (1, 0),
    "west": (-1, 0),
    "south": (0, 1),
    "north": (0, -1),
    "south-east": (1, 1),
    "south-west": (-1, 1),
    "north-east": (1, -1),
    "north-west": (-1, -1),
}

OPENING_TEXT = """\
  a b c d e f g h
1 . . . . . . . .
2 . . . . . . . .
3 . . . * . . . .
4 . . * O X . . .
5 . . . X O * . .
6 . . . . * . . .
7 . . . . . . . .
8 . . . . . . . .
X 2, O 2"""


def square(name: str) -> int:
    """The move value of a square written like ``d3``."""
    return SIZE * (int(name[1]) - 1) + "abcdefgh".index(name[0])


def squares(*names: str) -> set[int]:
    return {square(name) for name in names}


def position(picture: str, turn: int) -> ReversiState:
    """
    A state drawn as eight rows of ``X``, ``O`` and ``.`` from the top,
    with ``turn`` to move; the picture must leave ``turn`` a legal move.
    """
    rows = [line.strip() for line in picture.strip().splitlines()]
    assert len(rows) == SIZE and all(len(row) == SIZE for row in rows)
    discs = [0, 0]
    for index, mark in enumerate("".join(rows)):
        if mark != ".":
            discs["XO".index(mark)] |= 1 << index
    state = ReversiState((discs[0], discs[1]), turn)
    assert GAME.legal_moves(state), "the player to move must have a move"
    return state


def board(state: ReversiState) -> list[list[int | None]]:
    """The seat on each square as ``board[row][column]`` from the top left."""
    return [[state.seat_at(SIZE * r + c) for c in range(SIZE)] for r in range(SIZE)]


def play(*names: str) -> ReversiState:
    """Play squares in turn from the start."""
    state = GAME.new_state(2)
    for name in names:
        state, _ = GAME.play(state, name)
    return state


# A rules reference worked out square by square, independent of the game's
# bitboards, for the property tests to check the game against.


def reference_flips(
    cells: list[list[int | None]], seat: int, column: int, row: int
) -> set[tuple[int, int]]:
    """The (column, row) squares a disc of ``seat`` placed here would flip."""
    if cells[row][column] is not None:
        return set()
    flips: set[tuple[int, int]] = set()
    for dc, dr in DIRECTIONS.values():
        run = []
        c, r = column + dc, row + dr
        while 0 <= c < SIZE and 0 <= r < SIZE and cells[r][c] == 1 - seat:
            run.append((c, r))
            c, r = c + dc, r + dr
        if run and 0 <= c < SIZE and 0 <= r < SIZE and cells[r][c] == seat:
            flips.update(run)
    return flips


def reference_moves(cells: list[list[int | None]], seat: int) -> set[int]:
    """Every square where ``seat`` may place a disc, as move values."""
    return {
        SIZE * r + c
        for r, c in itertools.product(range(SIZE), range(SIZE))
        if reference_flips(cells, seat, c, r)
    }


# The interface


def test_is_a_game() -> None:
    """Reversi is a Game for two players labelled X and O."""
    assert isinstance(GAME, Game)
    assert GAME.name == "reversi"
    assert GAME.players == 2
    assert GAME.seat_labels == ("X", "O")
    assert GAME.title and GAME.description and GAME.move_syntax


# The start


def test_opening_position() -> None:
    """O holds d4 and e5, X holds d5 and e4, and X moves first."""
    state = GAME.new_state(2)
    cells = board(state)
    assert cells[3][3] == 1 and cells[4][4] == 1
    assert cells[4][3] == 0 and cells[3][4] == 0
    assert sum(cell is not None for row in cells for cell in row) == 4
    assert GAME.to_move(state) == 0
    assert GAME.outcome(state) is None
    assert state.passed is None
    assert state.counts() == (2, 2)


def test_opening_moves() -> None:
    """X's four first moves are d3, c4, f5 and e6."""
    state = GAME.new_state(2)
    assert set(GAME.legal_moves(state)) == squares("d3", "c4", "f5", "e6")


def test_replies_to_d3() -> None:
    """After X plays d3, flipping d4, O may answer c3, e3 or c5."""
    state = play("d3")
    cells = board(state)
    assert cells[3][3] == 0
    assert state.counts() == (4, 1)
    assert GAME.to_move(state) == 1
    assert set(GAME.legal_moves(state)) == squares("c3", "e3", "c5")


@pytest.mark.parametrize("players", [1, 3])
def test_new_state_refuses_other_player_counts(players: int) -> None:
    """Reversi cannot start with anything but two players."""
    with pytest.raises(ValueError):
        GAME.new_state(players)


# Reading and writing moves


def test_parse_and_format_round_trip() -> None:
    """Every square's name parses to its index and formats back the same."""
    for index in range(SIZE * SIZE):
        name = GAME.format_move(index)
        assert name == "abcdefgh"[index % SIZE] + str(index // SIZE + 1)
        assert GAME.parse_move(GAME.new_state(2), name) == index


@pytest.mark.parametrize("text", ["d3", "D3", " d3 ", "\td3"])
def test_parse_move_ignores_case_and_whitespace(text: str) -> None:
    """Squares are read whatever their case and surrounding spaces."""
    assert GAME.parse_move(GAME.new_state(2), text) == square("d3")


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "d",
        "3",
        "3d",
        "d0",
        "d9",
        "i1",
        "d33",
        "d 3",
        "dd",
        "\uff44\uff13",
        "4",
    ],
)
def test_parse_move_refuses_non_squares(text: str) -> None:
    """Anything but a letter a-h and a digit 1-8 is a bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.parse_move(GAME.new_state(2), text)
    assert caught.value.code == "bad-move"
    assert "d3" in caught.value.message


@pytest.mark.parametrize("text", ["pass", "PASS", " Pass "])
def test_pass_cannot_be_typed(text: str) -> None:
    """Typing pass is a bad-move that explains passes are automatic."""
    with pytest.raises(MoveError) as caught:
        GAME.parse_move(GAME.new_state(2), text)
    assert caught.value.code == "bad-move"
    assert "automatically" in caught.value.message


@pytest.mark.parametrize("move", [-1, 64, 1000])
def test_apply_refuses_out_of_range_indexes(move: int) -> None:
    """apply() refuses a square index outside 0-63 with bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.apply(GAME.new_state(2), move)
    assert caught.value.code == "bad-move"


# Legality


def test_taken_square_is_illegal() -> None:
    """Playing on a disc is an illegal-move naming the square."""
    with pytest.raises(MoveError) as caught:
        GAME.play(GAME.new_state(2), "d4")
    assert caught.value.code == "illegal-move"
    assert "d4" in caught.value.message
    assert "taken" in caught.value.message


def test_move_that_flips_nothing_is_illegal() -> None:
    """An empty square that outflanks nothing is an illegal-move."""
    with pytest.raises(MoveError) as caught:
        GAME.play(GAME.new_state(2), "a1")
    assert caught.value.code == "illegal-move"
    assert "a1" in caught.value.message
    assert "flip" in caught.value.message


@pytest.mark.parametrize(
    ("picture", "move"),
    [
        # The run of O ends on an empty square.
        (".OO.....\n" + "........\n" * 6 + "....XO..", "a1"),
        # The run of O runs into the board's edge.
        ("OOO.....\n" + "........\n" * 6 + "....XO..", "d1"),
        # A disc of X beyond a gap does not count.
        (".O.X....\n" + "........\n" * 6 + "XO......", "a1"),
    ],
    ids=["open-end", "edge", "gap"],
)
def test_runs_without_a_disc_at_the_far_end_do_not_count(
    picture: str, move: str
) -> None:
    """Only a run of O closed by an X disc makes an X move legal."""
    state = position(picture, 0)
    assert square(move) not in GAME.legal_moves(state)
    with pytest.raises(MoveError) as caught:
        GAME.play(state, move)
    assert caught.value.code == "illegal-move"


# Flipping


@pytest.mark.parametrize(("dc", "dr"), DIRECTIONS.values(), ids=DIRECTIONS.keys())
def test_flips_in_each_direction(dc: int, dr: int) -> None:
    """
    A disc on d4 flips two O discs closed by an X disc in one direction,
    and no lone O disc that no X disc closes in the other seven.
    """
    cells: list[list[str]] = [["."] * SIZE for _ in range(SIZE)]
    cells[3 + dr][3 + dc] = cells[3 + 2 * dr][3 + 2 * dc] = "O"
    cells[3 + 3 * dr][3 + 3 * dc] = "X"
    for odc, odr in DIRECTIONS.values():
        if (odc, odr) != (dc, dr):
            cells[3 + odr][3 + odc] = "O"
    state = position("\n".join("".join(row) for row in cells), 0)
    before = board(state)

    after = board(GAME.apply(state, square("d4")))
    changed = {
        (c, r)
        for r, c in itertools.product(range(SIZE), range(SIZE))
        if before[r][c] != after[r][c]
    }
    assert changed == {(3, 3), (3 + dc, 3 + dr), (3 + 2 * dc, 3 + 2 * dr)}
    assert all(after[r][c] == 0 for c, r in changed)


def test_flips_in_several_directions_at_once() -> None:
    """One disc flips every closed run around it, and only those."""
    state = position(
        """
        X..X..X.
        .O.O.O..
        ..OOO...
        XOO.OOOX
        ..OOO...
        .O.O.O..
        X..O..X.
        ...O....
        """,
        0,
    )
    after = GAME.apply(state, square("d4"))
    # Closed runs: north, north-west, north-east, west, east, south-west and
    # south-east.  The run south reaches the edge and stays O.
    flipped = "d3 d2 c3 b2 e3 f2 c4 b4 e4 f4 g4 c5 b6 e5 f6".split()
    assert [after.seat_at(square(name)) for name in flipped] == [0] * 15
    kept = "d5 d6 d7 d8".split()
    assert [after.seat_at(square(name)) for name in kept] == [1] * 4
    assert after.counts() == (state.counts()[0] + 16, state.counts()[1] - 15)


def test_longest_run_flips() -> None:
    """A run of six O discs across the whole board flips in one move."""
    state = position("XOOOOOO.\n" + "........\n" * 7, 0)
    after = GAME.apply(state, square("h1"))
    assert board(after)[0] == [0] * SIZE


# Applying moves


def test_apply_does_not_mutate_the_input() -> None:
    """apply() returns a new state and leaves the old one as it was."""
    before = play("d3", "c3")
    copy = attrs.evolve(before)
    cells = board(before)
    after = GAME.apply(before, square("b3"))
    assert before == copy
    assert board(before) == cells
    assert after != before
    assert set(GAME.legal_moves(before)) == set(GAME.legal_moves(copy))


def test_state_is_frozen() -> None:
    """A state's fields cannot be reassigned."""
    state = GAME.new_state(2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        state.turn = 1  # type: ignore[misc]


def test_play_returns_the_new_state_and_move() -> None:
    """play() parses the text and applies it in one step."""
    start = GAME.new_state(2)
    state, move = GAME.play(start, "f5")
    assert move == square("f5")
    assert state == GAME.apply(start, move)


# Passing and the end

#: X to move; a1 flips b1 and leaves O with g7 alone and no move, while X
#: can still take g7 from f6 or g6.
PASS_PICTURE = """
.OX.....
........
........
........
........
........
......O.
......XX
"""


def test_forced_pass_gives_the_turn_back() -> None:
    """When O has no move after X's, X moves again and the pass is recorded."""
    state = GAME.apply(position(PASS_PICTURE, 0), square("a1"))
    assert GAME.outcome(state) is None
    assert GAME.to_move(state) == 0
    assert state.passed == 1
    assert set(GAME.legal_moves(state)) == squares("f6", "g6")
    assert "O has no move: X again" in GAME.render_text(state)
    assert GAME.render_json(state)["passed"] == "O"


def test_the_player_who_passed_cannot_move() -> None:
    """After a forced pass, the skipped player's moves are out of turn: O has none."""
    state = GAME.apply(position(PASS_PICTURE, 0), square("a1"))
    cells = board(state)
    assert reference_moves(cells, 1) == set()
    assert reference_moves(cells, 0) == squares("f6", "g6")


def test_wiping_out_the_other_side_ends_the_game() -> None:
    """Flipping the last O disc ends the game: neither side can move."""
    state = GAME.apply(position(PASS_PICTURE, 0), square("a1"))
    state = GAME.apply(state, square("g6"))
    assert state.counts() == (7, 0)
    assert GAME.outcome(state) == Outcome(0, "win")
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()
    assert state.passed is None


@pytest.mark.parametrize(
    ("last_row", "outcome"),
    [("......OO", Outcome(0, "win")), (".....OOO", Outcome(None, "draw"))],
    ids=["win", "draw"],
)
def test_game_ends_when_neither_side_can_move(last_row: str, outcome: Outcome) -> None:
    """With empty squares left but no move for either side, most discs wins."""
    state = position("XO......\n" + "........\n" * 6 + last_row, 0)
    state = GAME.apply(state, square("c1"))
    assert reference_moves(board(state), 0) == set()
    assert reference_moves(board(state), 1) == set()
    assert GAME.outcome(state) == outcome
    assert GAME.to_move(state) is None
    assert GAME.legal_moves(state) == ()


def test_full_board_ends_the_game() -> None:
    """Filling the last square ends the game, won on disc count by O."""
    state = position(".OXOOOOO\n" + "OOOOOOOO\n" * 7, 0)
    assert list(GAME.legal_moves(state)) == [square("a1")]
    state = GAME.apply(state, square("a1"))
    assert state.counts() == (3, 61)
    assert GAME.outcome(state) == Outcome(1, "win")
    assert GAME.to_move(state) is None


def test_moves_after_the_end_are_game_over() -> None:
    """Once over, any move is refused with game-over."""
    state = GAME.apply(position("XO......\n" + "........\n" * 7, 0), square("c1"))
    assert GAME.outcome(state) is not None
    for text in ("d1", "a1", "zz", "pass"):
        with pytest.raises(MoveError) as caught:
            GAME.play(state, text)
        assert caught.value.code == "game-over"
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, square("d1"))
    assert caught.value.code == "game-over"


# Rendering


def test_render_text_of_the_opening() -> None:
    """The opening shows coordinates, discs, legal moves as * and the counts."""
    assert GAME.render_text(GAME.new_state(2)) == OPENING_TEXT


def test_render_text_after_a_move() -> None:
    """After d3 the board shows O's replies and the new counts."""
    lines = GAME.render_text(play("d3")).splitlines()
    assert lines[3:6] == [
        "3 . . * X * . . .",
        "4 . . . X X . . .",
        "5 . . * X O . . .",
    ]
    assert lines[-1] == "X 4, O 1"


def test_render_text_at_the_end_marks_no_moves() -> None:
    """A finished game shows no legal-move marks."""
    state = GAME.apply(position("XO......\n" + "........\n" * 7, 0), square("c1"))
    assert "*" not in GAME.render_text(state)


def test_render_json() -> None:
    """JSON gives eight rows from the top, the marks, counts, moves and pass."""
    data = GAME.render_json(GAME.new_state(2))
    assert data["marks"] == ["X", "O"]
    assert data["counts"] == {"X": 2, "O": 2}
    assert data["legal"] == ["d3", "c4", "f5", "e6"]
    assert data["passed"] is None
    assert len(data["cells"]) == 8
    assert all(len(row) == 8 for row in data["cells"])
    assert data["cells"][3] == [None, None, None, "O", "X", None, None, None]
    assert data["cells"][4] == [None, None, None, "X", "O", None, None, None]
    assert all(cell is None for row in data["cells"][:3] for cell in row)


# Properties


@st.composite
def played_games(draw: st.DrawFn, max_moves: int = 60) -> list[ReversiState]:
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
def test_random_legal_play_follows_the_rules(states: list[ReversiState]) -> None:
    """
    Random legal play matches the square-by-square reference at every move
    (moves, flips, passes) and ends within 60 moves on disc count.
    """
    boards = [board(state) for state in states]
    for i, (before, after) in enumerate(itertools.pairwise(states)):
        seat = GAME.to_move(before)
        assert seat is not None
        cells, next_cells = boards[i], boards[i + 1]
        legal = reference_moves(cells, seat)
        assert set(GAME.legal_moves(before)) == legal

        (move,) = (s for s in legal if next_cells[s // SIZE][s % SIZE] is not None)
        flips = reference_flips(cells, seat, move % SIZE, move // SIZE)
        expected = [row[:] for row in cells]
        expected[move // SIZE][move % SIZE] = seat
        for c, r in flips:
            expected[r][c] = seat
        assert next_cells == expected

        other = 1 - seat
        if reference_moves(expected, other):
            assert (GAME.to_move(after), after.passed) == (other, None)
        elif reference_moves(expected, seat):
            assert (GAME.to_move(after), after.passed) == (seat, other)
        else:
            assert (GAME.to_move(after), after.passed) == (None, None)

    final = states[-1]
    outcome = GAME.outcome(final)
    assert outcome is not None, "60 legal moves did not end the game"
    assert GAME.legal_moves(final) == ()
    assert sum(final.counts()) == 4 + len(states) - 1
    first, second = final.counts()
    if first == second:
        assert outcome == Outcome(None, "draw")
    else:
        assert outcome == Outcome(0 if first > second else 1, "win")


@given(played_games(), st.integers(min_value=-5, max_value=70))
def test_illegal_moves_are_refused_unchanged(
    states: list[ReversiState], move: int
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
    elif 0 <= move < SIZE * SIZE:
        assert caught.value.code == "illegal-move"
    else:
        assert caught.value.code == "bad-move"
    assert state == copy
    assert state.legal == copy.legal


@given(played_games(max_moves=30), st.text(max_size=4))
def test_unreadable_text_is_refused_unchanged(
    states: list[ReversiState], text: str
) -> None:
    """Text that is not a legal square is refused by play() unchanged."""
    state = states[-1]
    legal = {GAME.format_move(m) for m in GAME.legal_moves(state)}
    if text.strip().lower() in legal:
        return
    copy = attrs.evolve(state)
    with pytest.raises(MoveError):
        GAME.play(state, text)
    assert state == copy

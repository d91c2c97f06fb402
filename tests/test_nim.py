"""
Nim's rules, from the example game package in examples/nim.

The package is tested from its source tree here; test_game_plugins.py
installs it and plays it over the network.
"""

from __future__ import annotations

import functools
import itertools
import math
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nim_example import START, Nim, NimMove, NimState

from chupacabra.games import Game, MoveError, Outcome

GAME = Nim()

EMPTY_HEAPS_TEXT = (
    "heap 1:        0\nheap 2:        0\nheap 3:        0\nevery heap is empty"
)


def play(*moves: str, game: Nim = GAME) -> NimState:
    """Play moves written as players type them, from the start."""
    state = game.new_state(2)
    for text in moves:
        state, _ = game.play(state, text)
    return state


def refused(state: NimState, text: str) -> MoveError:
    """The MoveError that playing ``text`` in ``state`` raises."""
    with pytest.raises(MoveError) as caught:
        GAME.play(state, text)
    return caught.value


# The interface


def test_is_a_game_for_two() -> None:
    """Nim is a Game named nim for two seats, with a title and move syntax."""
    assert isinstance(GAME, Game)
    assert GAME.name == "nim"
    assert GAME.title == "Nim"
    assert GAME.players == 2
    assert GAME.seat_labels == ("first", "second")
    assert "2:3" in GAME.move_syntax
    assert GAME.description


def test_new_state_is_three_four_five_with_the_first_seat_to_move() -> None:
    """A match starts from heaps of 3, 4 and 5 with seat 0 to move."""
    state = GAME.new_state(2)
    assert START == (3, 4, 5)
    assert state.heaps == (3, 4, 5)
    assert GAME.to_move(state) == 0
    assert GAME.outcome(state) is None


def test_new_state_ignores_the_seed() -> None:
    """Nim has no chance: every seed gives the same start."""
    assert GAME.new_state(2, seed=7) == GAME.new_state(2, seed=None)


@pytest.mark.parametrize("players", [1, 3])
def test_new_state_refuses_other_player_counts(players: int) -> None:
    """Nim cannot start with anything but two players."""
    with pytest.raises(ValueError):
        GAME.new_state(players)


def test_other_starts() -> None:
    """A Nim built with other heaps starts from them."""
    assert Nim((1, 1)).new_state(2).heaps == (1, 1)
    assert Nim([7]).new_state(2).heaps == (7,)


@pytest.mark.parametrize("heaps", [(), (0,), (3, 0, 5), (2, -1)])
def test_starts_without_objects_everywhere_are_refused(
    heaps: tuple[int, ...],
) -> None:
    """A start with no heaps, or with an empty heap, is a ValueError."""
    with pytest.raises(ValueError):
        Nim(heaps)


# Taking objects


def test_a_move_takes_from_one_heap_and_passes_the_turn() -> None:
    """2:3 leaves one object in heap 2 and the second seat to move."""
    state = play("2:3")
    assert state.heaps == (3, 1, 5)
    assert GAME.to_move(state) == 1


def test_turns_alternate() -> None:
    """The seats take turns, starting with seat 0."""
    state = GAME.new_state(2)
    seats = []
    for text in ("1:1", "2:1", "3:1", "1:1"):
        seats.append(GAME.to_move(state))
        state, _ = GAME.play(state, text)
    assert seats == [0, 1, 0, 1]
    assert state.heaps == (1, 3, 4)


def test_legal_moves_are_every_count_from_every_heap() -> None:
    """Every count from one to the whole heap, for each heap, is legal."""
    moves = GAME.legal_moves(play("1:3", "3:2"))
    assert list(moves) == [
        NimMove(1, 1),
        NimMove(1, 2),
        NimMove(1, 3),
        NimMove(1, 4),
        NimMove(2, 1),
        NimMove(2, 2),
        NimMove(2, 3),
    ]


def test_a_whole_heap_may_be_taken() -> None:
    """Taking every object of a heap empties it, and the game goes on."""
    state = play("3:5")
    assert state.heaps == (3, 4, 0)
    assert GAME.outcome(state) is None


def test_apply_does_not_mutate_the_input() -> None:
    """apply returns a new state and leaves the one it was given alone."""
    before = play("1:1")
    after = GAME.apply(before, NimMove(0, 2))
    assert before.heaps == (2, 4, 5)
    assert GAME.to_move(before) == 1
    assert after.heaps == (0, 4, 5)


def test_states_and_moves_are_frozen() -> None:
    """States and moves cannot be changed in place."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        GAME.new_state(2).turn = 1  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        NimMove(0, 1).count = 2  # type: ignore[misc]


def test_play_returns_the_new_state_and_the_move() -> None:
    """play() parses and applies, returning both results."""
    state, move = GAME.play(GAME.new_state(2), "3:4")
    assert move == NimMove(2, 4)
    assert state == GAME.apply(GAME.new_state(2), move)


def test_taking_more_than_a_heap_holds_is_illegal() -> None:
    """More objects than the heap holds is an illegal-move saying so."""
    error = refused(GAME.new_state(2), "1:4")
    assert error.code == "illegal-move"
    assert error.message == "heap 1 holds only 3"


def test_taking_from_an_empty_heap_is_illegal() -> None:
    """An emptied heap offers nothing: illegal-move saying it is empty."""
    error = refused(play("2:4"), "2:1")
    assert error.code == "illegal-move"
    assert error.message == "heap 2 is empty"


@pytest.mark.parametrize(
    "move", [NimMove(-1, 1), NimMove(3, 1), NimMove(0, 0), NimMove(1, -2)]
)
def test_apply_refuses_moves_no_position_allows(move: NimMove) -> None:
    """A heap out of range or a count below one is a bad-move."""
    with pytest.raises(MoveError) as caught:
        GAME.apply(GAME.new_state(2), move)
    assert caught.value.code == "bad-move"


# Reading and writing moves


@pytest.mark.parametrize(
    ("text", "move"),
    [("1:1", NimMove(0, 1)), ("2:3", NimMove(1, 3)), ("3:5", NimMove(2, 5))],
)
def test_parse_and_format_round_trip(text: str, move: NimMove) -> None:
    """heap:count reads as a 0-based heap and is written back the same."""
    assert GAME.parse_move(GAME.new_state(2), text) == move
    assert GAME.format_move(move) == text


@pytest.mark.parametrize("text", [" 2:3", "2:3 ", "2 : 3", "\t2:3"])
def test_parse_move_ignores_surrounding_whitespace(text: str) -> None:
    """Spaces around the numbers do not matter."""
    assert GAME.parse_move(GAME.new_state(2), text) == NimMove(1, 3)


@pytest.mark.parametrize(
    "text",
    ["", "2", "23", "2:", ":3", "2-3", "a:b", "2:3:1", "0:1", "2:0", "-1:2",
     "2:-1", "+2:3", "2.0:3", "\uff12:3", "2:1234567", "4:1", "9:1"],
)  # fmt: skip
def test_parse_move_refuses_other_text(text: str) -> None:
    """Anything but heap:count with an existing heap is a bad-move."""
    error = refused(GAME.new_state(2), text)
    assert error.code == "bad-move"
    assert error.message


def test_bad_move_messages_show_how_to_write_a_move() -> None:
    """Unreadable text is told the syntax; a missing heap, the heaps there are."""
    assert refused(GAME.new_state(2), "take 3").message == (
        "write a move as heap:count, such as 2:3"
    )
    assert refused(GAME.new_state(2), "4:1").message == "heaps are numbered 1 to 3"


# The end


def test_taking_the_last_object_wins() -> None:
    """The seat that empties the last heap wins, and nobody moves after."""
    state = play("1:3", "2:4", "3:5")
    assert GAME.outcome(state) == Outcome(0, "win")
    assert GAME.to_move(state) is None
    assert list(GAME.legal_moves(state)) == []


def test_the_second_seat_can_win() -> None:
    """When the second seat takes the last object, the second seat wins."""
    state = play("1:1", "1:2", "2:4", "3:5")
    assert GAME.outcome(state) == Outcome(1, "win")


def test_no_outcome_while_objects_are_left() -> None:
    """With even one object left the game goes on."""
    state = play("1:3", "2:4", "3:4")
    assert state.heaps == (0, 0, 1)
    assert GAME.outcome(state) is None
    assert GAME.to_move(state) == 1
    assert list(GAME.legal_moves(state)) == [NimMove(2, 1)]


def test_moves_after_the_end_are_game_over() -> None:
    """Once every heap is empty, play and apply both answer game-over."""
    state = play("1:3", "2:4", "3:5")
    assert refused(state, "1:1").code == "game-over"
    with pytest.raises(MoveError) as caught:
        GAME.apply(state, NimMove(0, 1))
    assert caught.value.code == "game-over"


@functools.cache
def mover_wins(state: NimState) -> bool:
    """Whether the seat whose turn it is can force a win, searching the interface."""
    outcome = GAME.outcome(state)
    if outcome is not None:
        return outcome.winner == state.turn
    return any(
        not mover_wins(GAME.apply(state, move)) for move in GAME.legal_moves(state)
    )


def test_the_mover_wins_exactly_when_the_heaps_xor_to_non_zero() -> None:
    """
    Bouton's theorem holds for every position reachable from 3-4-5: the
    player to move can force a win exactly when the sizes' XOR is not 0.
    """
    for heaps in itertools.product(range(4), range(5), range(6)):
        for turn in (0, 1):
            state = NimState(heaps, turn)
            nim_sum = heaps[0] ^ heaps[1] ^ heaps[2]
            assert mover_wins(state) == (nim_sum != 0), heaps


# Drawings


def test_render_text_of_the_start() -> None:
    """Each heap is a bar of its objects followed by how many there are."""
    assert GAME.render_text(GAME.new_state(2)) == (
        "heap 1: |||    3\nheap 2: ||||   4\nheap 3: |||||  5"
    )


def test_render_text_keeps_its_columns_as_heaps_shrink() -> None:
    """Emptied heaps keep the counts lined up, and the end is said in words."""
    assert GAME.render_text(play("3:4")) == (
        "heap 1: |||    3\nheap 2: ||||   4\nheap 3: |      1"
    )
    assert GAME.render_text(play("1:3", "2:4", "3:5")) == EMPTY_HEAPS_TEXT


def test_render_json() -> None:
    """The JSON rendering lists the heaps, heap 1 first, and their total."""
    assert GAME.render_json(GAME.new_state(2)) == {"heaps": [3, 4, 5], "left": 12}
    assert GAME.render_json(play("2:3")) == {"heaps": [3, 1, 5], "left": 9}


# Counting games (perft)


def perft(game: Nim, state: NimState, depth: int) -> int:
    """How many move sequences of exactly ``depth`` plies there are."""
    if depth == 0:
        return 1
    if game.outcome(state) is not None:
        return 0
    return sum(
        perft(game, game.apply(state, move), depth - 1)
        for move in game.legal_moves(state)
    )


def counted_perft(heaps: tuple[int, ...], depth: int) -> int:
    """
    perft worked out by counting instead of playing.

    ``j`` moves in a heap of ``h`` objects, which each take at least one
    and together no more than ``h``, can be chosen in C(h, j) ways; the
    moves in different heaps interleave in a multinomial number of ways;
    and a game cannot end before its last move, since the end leaves
    nothing to take.
    """
    total = 0
    for split in itertools.product(*(range(size + 1) for size in heaps)):
        if sum(split) != depth:
            continue
        ways = math.factorial(depth)
        for size, moves in zip(heaps, split, strict=True):
            ways = ways // math.factorial(moves) * math.comb(size, moves)
        total += ways
    return total


@pytest.mark.parametrize(
    ("heaps", "depths"), [((3, 4, 5), range(1, 6)), ((1, 2, 3), range(1, 7))]
)
def test_perft_matches_the_count(heaps: tuple[int, ...], depths: range) -> None:
    """perft walked through the interface equals the combinatorial count."""
    game = Nim(heaps)
    for depth in depths:
        assert perft(game, game.new_state(2), depth) == counted_perft(heaps, depth)


def test_perft_of_a_single_heap_is_a_binomial() -> None:
    """From one heap of n, perft(d) is C(n, d); 2**(n-1) games in all."""
    game = Nim((6,))
    counts = [perft(game, game.new_state(2), depth) for depth in range(1, 8)]
    assert counts == [math.comb(6, depth) for depth in range(1, 8)]


# Properties

#: Which position of a played game a property looks at (past the end: the last).
PLIES = st.integers(min_value=0, max_value=30)


@st.composite
def played_games(draw: st.DrawFn, max_moves: int = 30) -> tuple[Nim, list[NimState]]:
    """A start of one to four heaps and a random legal game from it."""
    heaps = draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))
    game = Nim(heaps)
    states = [game.new_state(2)]
    for _ in range(max_moves):
        legal = game.legal_moves(states[-1])
        if not legal:
            break
        states.append(game.apply(states[-1], draw(st.sampled_from(legal))))
    return game, states


@given(played_games())
def test_random_legal_play_ends_with_a_win_for_the_last_mover(
    played: tuple[Nim, list[NimState]],
) -> None:
    """Random legal play takes objects, alternates, and ends won by the last mover."""
    game, states = played
    for before, after in itertools.pairwise(states):
        assert game.outcome(before) is None
        assert game.to_move(before) == before.turn
        assert after.turn == 1 - before.turn
        taken = [old - new for old, new in zip(before.heaps, after.heaps, strict=True)]
        assert all(count >= 0 for count in taken)
        assert sum(count > 0 for count in taken) == 1

    final = states[-1]
    assert len(states) - 1 <= sum(states[0].heaps)
    assert final.left == 0, "30 moves did not empty at most 28 objects"
    assert game.outcome(final) == Outcome(game.to_move(states[-2]), "win")
    assert game.to_move(final) is None
    assert list(game.legal_moves(final)) == []


@given(played_games(), PLIES, st.integers(-2, 5), st.integers(-2, 9))
def test_illegal_moves_are_refused_unchanged(
    played: tuple[Nim, list[NimState]], ply: int, heap: int, count: int
) -> None:
    """A move not in legal_moves raises the right MoveError and changes nothing."""
    game, states = played
    state = states[min(ply, len(states) - 1)]
    move = NimMove(heap, count)
    if move in game.legal_moves(state):
        return
    copy = NimState(tuple(state.heaps), state.turn)

    with pytest.raises(MoveError) as caught:
        game.apply(state, move)
    if game.outcome(state) is not None:
        assert caught.value.code == "game-over"
    elif 0 <= heap < len(state.heaps) and count >= 1:
        assert caught.value.code == "illegal-move"
    else:
        assert caught.value.code == "bad-move"
    assert state == copy


@given(played_games(), PLIES, st.text(max_size=6))
def test_unreadable_text_is_refused_unchanged(
    played: tuple[Nim, list[NimState]], ply: int, text: str
) -> None:
    """Text that is not a legal heap:count is refused by play() unchanged."""
    game, states = played
    state = states[min(ply, len(states) - 1)]
    legal = {game.format_move(move) for move in game.legal_moves(state)}
    # Spaces and leading zeros are allowed around and in the numbers.
    found = re.fullmatch(r"0*(\d+):0*(\d+)", "".join(text.split()), re.ASCII)
    if found and f"{found[1]}:{found[2]}" in legal:
        return
    copy = NimState(tuple(state.heaps), state.turn)

    with pytest.raises(MoveError):
        game.play(state, text)
    assert state == copy


@given(played_games())
def test_every_legal_move_reads_back_from_its_text(
    played: tuple[Nim, list[NimState]],
) -> None:
    """format_move writes each legal move so that parse_move reads it back."""
    game, states = played
    for state in states:
        for move in game.legal_moves(state):
            assert game.parse_move(state, game.format_move(move)) == move

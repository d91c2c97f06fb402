"""
Game-tree counts (perft) checked against numbers published elsewhere.

perft(d) is the number of move sequences of exactly ``d`` plies from the
start, where a finished game is a leaf that is not expanded: it counts
towards perft(d) only when it ends on ply ``d``.  Every count goes through
the public L{Game} interface (``legal_moves``, ``apply``, ``outcome``), so
it checks the rules as the server sees them.  The depths are chosen so
that each test runs in a few seconds at most; deeper Reversi counts run
only when the environment sets ``CHUPACABRA_DEEP_PERFT=1``.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from chupacabra.games import Game
from chupacabra.games.connect4 import ConnectFour
from chupacabra.games.reversi import Reversi, ReversiState
from chupacabra.games.tictactoe import TicTacToe, TicTacToeState


def perft(
    game: Game[Any, Any],
    state: Any,
    depth: int,
    pass_is_ply: Callable[[Any], bool] | None = None,
) -> list[int]:
    """
    Return [perft(1), ..., perft(depth)] from ``state`` in one walk.

    The walk visits every path move by move and does not expand finished
    games.  On the last ply it counts the legal moves instead of playing
    them, which gives the same number.  ``pass_is_ply`` says of a state
    whether the move that made it skipped the next player; such a pass then
    counts as a ply of its own, as in the usual Reversi tables.
    """
    counts = [0] * (depth + 1)

    def walk(state: Any, ply: int) -> None:
        moves = game.legal_moves(state)
        if ply + 1 == depth:
            counts[depth] += len(moves)
            return
        for move in moves:
            child = game.apply(state, move)
            reached = ply + 1
            counts[reached] += 1
            if game.outcome(child) is not None:
                continue
            if pass_is_ply is not None and pass_is_ply(child):
                reached += 1
                counts[reached] += 1
                if reached == depth:
                    continue
            walk(child, reached)

    if game.outcome(state) is None and depth > 0:
        walk(state, 0)
    return counts[1:]


# Tic-tac-toe

TICTACTOE = TicTacToe()

#: Complete games by the ply they end on, from Henry Bottomley, "How many
#: Tic-Tac-Toe (noughts and crosses) games are possible?",
#: http://www.se16.info/hgb/tictactoe.htm: 1440 on move 5, 5328 on move 6,
#: 47952 on move 7, 72576 on move 8 and 127872 on move 9, 255168 in all
#: (also OEIS A061526).
GAMES_ENDING_ON = {5: 1440, 6: 5328, 7: 47952, 8: 72576, 9: 127872}
ALL_GAMES = 255168

#: Complete games by result, from http://nishioka.com/javascript/tic-tac-toe.html
#: (X wins 131184, O wins 77904, ties 46080).
GAMES_WON_BY = {0: 131184, 1: 77904, None: 46080}

#: perft(1) to perft(9), derived from the endings above: with no game over
#: before ply 5, perft(d) = 9!/(9-d)!, and from then on each unfinished
#: position at ply d has 9 - d moves, so
#: perft(d + 1) = (perft(d) - games ending on d) * (9 - d).
TICTACTOE_PERFT = [9, 72, 504, 3024, 15120, 54720, 148176, 200448, 127872]


@functools.cache
def tictactoe_games(state: TicTacToeState) -> tuple[tuple[int, ...], Counter[Any]]:
    """
    Count the game tree below ``state``: the number of positions at each
    ply below it (index 0 is ``state`` itself) and the finished games by
    (plies played below it, winner).

    Counts are remembered per position, which is sound because a
    tic-tac-toe state holds all that decides its future: it adds up exactly
    what walking every path would, in a small fraction of the time.
    """
    outcome = TICTACTOE.outcome(state)
    if outcome is not None:
        return (1,), Counter({(0, outcome.winner): 1})
    levels = [1] + [0] * 9
    endings: Counter[Any] = Counter()
    for move in TICTACTOE.legal_moves(state):
        below, ended = tictactoe_games(TICTACTOE.apply(state, move))
        for ply, count in enumerate(below):
            levels[ply + 1] += count
        for (ply, winner), count in ended.items():
            endings[ply + 1, winner] += count
    while levels[-1] == 0:
        levels.pop()
    return tuple(levels), endings


def test_tictactoe_per_depth_numbers_follow_from_the_published_endings() -> None:
    """The perft table used below is what the published endings imply."""
    derived = []
    positions = 1
    for ply in range(1, 10):
        positions *= 10 - ply
        derived.append(positions)
        positions -= GAMES_ENDING_ON.get(ply, 0)
    assert derived == TICTACTOE_PERFT
    assert sum(GAMES_ENDING_ON.values()) == ALL_GAMES == sum(GAMES_WON_BY.values())


def test_tictactoe_full_tree() -> None:
    """
    The whole tic-tac-toe tree has 255168 games, ending on each ply and won
    by each side as published, and the per-depth perft counts they imply.
    """
    levels, endings = tictactoe_games(TICTACTOE.new_state(2))
    assert list(levels[1:]) == TICTACTOE_PERFT
    assert sum(endings.values()) == ALL_GAMES

    by_ply: Counter[int] = Counter()
    by_winner: Counter[int | None] = Counter()
    for (ply, winner), count in endings.items():
        by_ply[ply] += count
        by_winner[winner] += count
    assert dict(by_ply) == GAMES_ENDING_ON
    assert dict(by_winner) == GAMES_WON_BY


def test_tictactoe_perft_path_by_path() -> None:
    """Walking each path without remembering positions gives the same counts."""
    assert perft(TICTACTOE, TICTACTOE.new_state(2), 6) == TICTACTOE_PERFT[:6]


# Connect Four

CONNECT_FOUR = ConnectFour()

#: perft(1) to perft(8) for 7x6 Connect Four from the empty grid, as
#: listed with perft(9) = 39394572 and beyond in the perft test of
#: ultrasuperpingu/kudchuet, games/connect4/src/game.rs.  Wins first
#: happen on ply 7, so perft(8) is the first count they prune.
CONNECT_FOUR_PERFT = [7, 49, 343, 2401, 16807, 117649, 823536, 5673234]

#: Distinct positions after 0 to 7 plies, from OEIS A212693 ("Number of
#: legal 7 X 6 Connect-Four positions after n plies", John Tromp, from
#: Edelkamp and Kissmann's counts).
CONNECT_FOUR_POSITIONS = [1, 7, 49, 238, 1120, 4263, 16422, 54859]


def test_connect_four_perft() -> None:
    """Connect Four's perft to depth 8 matches the published table."""
    counts = perft(CONNECT_FOUR, CONNECT_FOUR.new_state(2), len(CONNECT_FOUR_PERFT))
    assert counts == CONNECT_FOUR_PERFT


def test_connect_four_distinct_positions() -> None:
    """
    Playing every move from every distinct position, ply by ply, reaches as
    many distinct positions as OEIS A212693 lists; states are compared as
    values, so transpositions merge.
    """
    level = {CONNECT_FOUR.new_state(2)}
    sizes = [len(level)]
    while len(sizes) < len(CONNECT_FOUR_POSITIONS):
        level = {
            CONNECT_FOUR.apply(state, move)
            for state in level
            for move in CONNECT_FOUR.legal_moves(state)
        }
        sizes.append(len(level))
    assert sizes == CONNECT_FOUR_POSITIONS


# Reversi

REVERSI = Reversi()

#: perft(1) to perft(12) for 8x8 Reversi from the standard start, from Aart
#: Bik, "Perft for Reversi" (http://www.aartbik.com/MISC/reversi.html and
#: https://aartbik.blogspot.com/2009/02/perft-for-reversi.html, February
#: 2009).  Bik counts a pass as a ply and counts a finished game as one
#: leaf at every depth below its end, where the end itself takes a pass
#: ply.  Passes first occur at depth 9 and finished games at depth 10.
BIK_REVERSI_PERFT = [
    4,
    12,
    56,
    244,
    1396,
    8200,
    55092,
    390216,
    3005288,
    24571284,
    212258800,
    1939886636,
]

#: Bik's table splits depth 11 into 212258572 full-depth leaves and 228
#: "higher" ones: the 228 games that are over after 9 plies (the shortest
#: games there are, all won by wiping out one side).  Under the rule here,
#: that finished games are not expanded, those 228 end on ply 9 and do not
#: reach ply 10, so perft(10) is Bik's count less 228.
GAMES_OVER_AFTER_9 = 228


def reversi_passed(state: ReversiState) -> bool:
    """Whether the move that made ``state`` skipped the other player."""
    return state.passed is not None


def test_reversi_perft() -> None:
    """
    Reversi's perft to depth 8 matches Bik's table; no pass or finished
    game occurs this shallow, so the conventions do not yet differ.
    """
    counts = perft(REVERSI, REVERSI.new_state(2), 8, reversi_passed)
    assert counts == BIK_REVERSI_PERFT[:8]


def reversi_endings(state: ReversiState, depth: int) -> int:
    """How many games are over within ``depth`` plies of ``state``."""
    if REVERSI.outcome(state) is not None:
        return 1
    if depth == 0:
        return 0
    return sum(
        reversi_endings(REVERSI.apply(state, move), depth - 1)
        for move in REVERSI.legal_moves(state)
    )


@pytest.mark.skipif(
    os.environ.get("CHUPACABRA_DEEP_PERFT") != "1",
    reason="takes about a minute; set CHUPACABRA_DEEP_PERFT=1 to run",
)
def test_reversi_deep_perft_with_passes() -> None:
    """
    Counting automatic passes as plies, perft to depth 10 matches Bik's
    table, less the games already over after 9 plies at depth 10.
    """
    counts = perft(REVERSI, REVERSI.new_state(2), 10, reversi_passed)
    assert counts[:9] == BIK_REVERSI_PERFT[:9]
    assert counts[9] == BIK_REVERSI_PERFT[9] - GAMES_OVER_AFTER_9
    assert reversi_endings(REVERSI.new_state(2), 9) == GAMES_OVER_AFTER_9

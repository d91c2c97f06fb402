"""Installed games are found through entry points, and bad ones are named."""

from __future__ import annotations

from typing import Any

import pytest

import chupacabra.games as registry
from chupacabra.games import TicTacToe


class _Point:
    """An entry point that loads whatever it was given."""

    def __init__(self, name: str, loaded: Any) -> None:
        self.name = name
        self.value = f"somewhere:{name}"
        self._loaded = loaded

    def load(self) -> Any:
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


def _with_points(monkeypatch: pytest.MonkeyPatch, *points: _Point) -> None:
    monkeypatch.setattr(registry, "entry_points", lambda group: list(points))


class _Shouty(TicTacToe):
    name = "TicTac"  # type: ignore[misc]


class _Impostor(TicTacToe):
    pass


def test_the_games_shipped_are_always_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without any entry points the three built-in games are served."""
    _with_points(monkeypatch)
    assert sorted(registry.installed_games()) == ["connect4", "reversi", "tictactoe"]


def test_an_entry_point_for_a_built_in_game_is_the_same_game(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """chupacabra's own entry points name the games it ships; no clash."""
    _with_points(monkeypatch, _Point("tictactoe", TicTacToe))
    assert isinstance(registry.installed_games()["tictactoe"], TicTacToe)


@pytest.mark.parametrize(
    ("loaded", "complaint"),
    [
        (ImportError("No module named 'gone'"), "failed to load: No module named"),
        (_Shouty, "must be lowercase letters"),
        (_Impostor, "the name tictactoe is taken by TicTacToe"),
    ],
)
def test_a_bad_game_is_refused_by_its_entry_point(
    monkeypatch: pytest.MonkeyPatch, loaded: Any, complaint: str
) -> None:
    """A game that cannot load, cannot be typed, or clashes names its entry point."""
    _with_points(monkeypatch, _Point("broken", loaded))
    with pytest.raises(ValueError) as caught:
        registry.installed_games()
    assert "entry point broken = somewhere:broken" in str(caught.value)
    assert complaint in str(caught.value)

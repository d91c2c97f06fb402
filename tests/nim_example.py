"""
The nim example game (examples/nim), imported from its source tree.

It is loaded by file location rather than by putting examples/nim on
``sys.path``: that folder may hold a ``chupacabra_nim.egg-info`` left by an
install from it, which would make ``installed_games()`` find nim in the
tests' own process.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "nim"


def _load() -> ModuleType:
    """The ``chupacabra_nim`` package from ``EXAMPLE``, imported once."""
    package = EXAMPLE / "chupacabra_nim"
    loaded = sys.modules.get("chupacabra_nim")
    if loaded is not None and Path(loaded.__file__ or "").parent == package:
        return loaded

    spec = importlib.util.spec_from_file_location(
        "chupacabra_nim",
        package / "__init__.py",
        submodule_search_locations=[str(package)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chupacabra_nim"] = module
    spec.loader.exec_module(module)
    return module


_nim = _load()

START = _nim.START
Nim = _nim.Nim
NimMove = _nim.NimMove
NimState = _nim.NimState

"""
The load harness still works: smoke-sized runs of benchmarks/load.py.

They start the installed twistd plugins, as the end-to-end tests do, and
check that the harness finishes cleanly with a well-formed report. They
assert nothing about speed: that is what the harness is for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "benchmarks" / "load.py"
QUICK = ["--duration", "1.5", "--warmup", "0.5", "--workers", "1", "--quiet"]
PERCENTILES = {"count", "p50", "p90", "p99", "max"}


def _run(tmp_path: Path, *args: str) -> dict[str, Any]:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(LOAD), *args, *QUICK, "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "moves/s" in result.stdout
    value: dict[str, Any] = json.loads(report.read_text())
    return value


def _check_clean(run: dict[str, Any]) -> None:
    assert run["error_count"] == 0, run["errors"]
    assert run["outstanding"] == 0
    assert run["log_problems"] == {}
    for phase in run["phases"]:
        assert set(phase["reply_ms"]) == PERCENTILES
        assert set(phase["push_ms"]) == PERCENTILES
        assert phase["cpu_us_per_move"]


def test_help() -> None:
    """load.py --help describes the harness and exits at once."""
    result = subprocess.run(
        [sys.executable, str(LOAD), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "--scenario" in result.stdout


@pytest.mark.parametrize("mode", ["one", "two"])
def test_matches_and_ceiling(tmp_path: Path, mode: str) -> None:
    """A few matches and the ceiling run with no errors and a full report."""
    report = _run(tmp_path, "--scenario", "matches", "--matches", "3", "--mode", mode)

    runs = {run["label"]: run for run in report["runs"]}
    assert set(runs) == {"ceiling-3", f"matches-3-{mode}"}
    for run in runs.values():
        _check_clean(run)
        assert run["phases"][0]["moves"] > 0
    product = runs[f"matches-3-{mode}"]
    assert product["ceiling_rate"] == runs["ceiling-3"]["phases"][0]["rate"]
    assert product["phases"][0]["push_ms"]["count"] > 0
    assert set(product["rss_kb"]) >= ({"server"} if mode == "one" else {"game"})
    assert report["targets"]


def test_other_scenarios(tmp_path: Path) -> None:
    """Every other scenario, tiny, completes cleanly and reports its figures."""
    report = _run(
        tmp_path,
        *("--scenario", "pair", "--scenario", "idle", "--scenario", "logins"),
        *("--scenario", "logins-during", "--scenario", "seeks"),
        *("--mode", "one", "--idle-players", "6", "--during-matches", "2"),
        *("--login-rate", "4", "--login-connections", "2", "--bcrypt-rounds", "4"),
        *("--seekers", "6", "--seek-rounds", "2", "--round-gap", "0.5"),
    )

    runs = {run["scenario"]: run for run in report["runs"]}
    # The report also holds the bare-Twisted ceiling measured alongside.
    assert set(runs) - {"ceiling"} == {
        "pair",
        "idle",
        "logins",
        "logins-during",
        "seeks",
    }
    for run in runs.values():
        assert run["error_count"] == 0, (run["label"], run["errors"])
        assert run["outstanding"] == 0
        assert run["log_problems"] == {}
    assert runs["pair"]["phases"][0]["moves"] > 0
    assert runs["idle"]["memory"]["server"]["kb_per_player"] is not None
    assert runs["logins"]["phases"][0]["logins"] > 0
    during = runs["logins-during"]["phases"]
    assert [p["name"] for p in during] == ["without-logins", "with-logins"]
    assert during[1]["logins"] > 0
    seeks = runs["seeks"]["seeks"]
    assert seeks["seeks"] == 12
    assert seeks["matched"] == seeks["seeks"]
    assert seeks["odd_matches"] == 0
    assert {t["target"] for t in report["targets"]}

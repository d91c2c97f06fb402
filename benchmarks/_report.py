"""
Figures for the load harness: percentiles, CPU per move, targets, the table.

Everything here works on plain data (worker results, /proc samples), so
the report can be rebuilt from its JSON.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

#: Server processes whose cost is charged to the product (or the ceiling).
SERVERS = ("server", "gateway", "game", "relay", "back")


def percentiles(seconds: list[float]) -> dict[str, Any]:
    """Count, p50, p90, p99 and max of durations in seconds, in milliseconds."""
    if not seconds:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        index = max(0, math.ceil(p / 100 * len(ordered)) - 1)
        return round(ordered[index] * 1000, 3)

    return {
        "count": len(ordered),
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "max": round(ordered[-1] * 1000, 3),
    }


def run_result(
    label: str,
    specs: list[dict[str, Any]],
    workers: list[dict[str, Any]],
    samples: dict[str, Any],
    procs: dict[str, Any],
) -> dict[str, Any]:
    """Merge what the workers saw with what /proc said, phase by phase."""
    sends: dict[tuple[str, int], tuple[float, int]] = {}
    for worker in workers:
        for match, ply, sent, phase in worker["sends"]:
            sends[(match, ply)] = (sent, phase)
    pushes: dict[int, list[float]] = defaultdict(list)
    for worker in workers:
        for match, ply, received in worker["receipts"]:
            found = sends.get((match, ply))
            if found is not None:
                pushes[found[1]].append(received - found[0])

    errors: Counter[str] = Counter()
    for worker in workers:
        errors.update(worker["errors"])
    phases = []
    for i, spec in enumerate(specs):
        seen = [worker["phases"][i] for worker in workers]
        seconds = spec["end"] - spec["start"]
        moves = sum(p["moves"] for p in seen)
        logins = sum(p["logins"] for p in seen)
        phase: dict[str, Any] = {
            "name": spec["name"],
            "seconds": round(seconds, 3),
            "moves": moves,
            "rate": round(moves / seconds, 1),
            "reply_ms": percentiles([x for p in seen for x in p["move_latencies"]]),
            "push_ms": percentiles(pushes[i]),
            "logins": logins,
            "logins_per_s": round(logins / seconds, 2),
            "login_ms": percentiles([x for p in seen for x in p["login_latencies"]]),
        }
        if spec.get("login_rate"):
            phase["login_rate_per_worker"] = spec["login_rate"]
        phase.update(_costs(samples.get(f"start{i}"), samples.get(f"end{i}"), moves))
        phases.append(phase)

    last = samples.get(f"end{len(specs) - 1}")
    return {
        "label": label,
        "phases": phases,
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "outstanding": sum(w["outstanding"] for w in workers),
        "capped": any(w["capped"] for w in workers),
        "rss_kb": {} if last is None else dict(last.rss),
        "pids": {name: proc.pid for name, proc in procs.items()},
        "log_problems": {
            name: proc.problems()[:20]
            for name, proc in procs.items()
            if proc.problems()
        },
        "seek_records": [r for w in workers for r in w["seek_records"]],
    }


def failed_run(label: str, why: str, info: dict[str, Any]) -> dict[str, Any]:
    """A run that could not finish: what it was, and why."""
    return {
        "label": label,
        **info,
        "failed": why,
        "phases": [],
        "errors": {},
        "error_count": 0,
        "outstanding": 0,
        "rss_kb": {},
        "log_problems": {},
    }


def _costs(start: Any, end: Any, moves: int) -> dict[str, Any]:
    if start is None or end is None:
        return {}
    seconds = end.at - start.at
    cpu = {name: end.cpu[name] - start.cpu[name] for name in start.cpu}
    system = {name: end.system[name] - start.system[name] for name in start.cpu}
    machine = end.busy - start.busy
    ours = sum(cpu.values())
    return {
        "cpu_seconds": {name: round(v, 3) for name, v in cpu.items()},
        "cpu_percent": {name: round(100 * v / seconds, 1) for name, v in cpu.items()},
        "kernel_share_percent": {
            name: round(100 * system[name] / v, 1) if v else None
            for name, v in cpu.items()
        },
        "cpu_us_per_move": {
            name: round(v * 1e6 / moves, 1) if moves else None
            for name, v in cpu.items()
        },
        "machine_busy_percent": round(100 * machine / seconds, 1),
        "others_busy_percent": round(100 * max(0.0, machine - ours) / seconds, 1),
    }


def idle_memory(before: Any, after: Any, players: int) -> dict[str, Any]:
    """Each server process's resident memory per idle player."""
    return {
        name: {
            "before_kb": before.rss[name],
            "after_kb": after.rss[name],
            "kb_per_player": round((after.rss[name] - before.rss[name]) / players, 2)
            if players
            else None,
        }
        for name in before.rss
    }


def seek_result(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether every seeker was matched, and how long the matching took."""
    by_match: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if "match" in record:
            by_match[(record["round"], record["match"])].append(record)
    latencies = []
    odd = 0
    for pair in by_match.values():
        second = [r for r in pair if r.get("status") == "matched"]
        if len(pair) != 2 or len(second) != 1:
            odd += 1
            continue
        told = max(r["told"] for r in pair)
        latencies.append(told - second[0]["sent"])
    return {
        "seeks": len(records),
        "matched": sum(1 for r in records if "match" in r),
        "matches": len(by_match),
        "odd_matches": odd,
        "second_seek_to_both_told_ms": percentiles(latencies),
    }


def _digest(folder: Path) -> str:
    """A digest of the Python sources under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def software() -> dict[str, Any]:
    """Which chupacabra the servers run, and whether it is this checkout's."""
    where = subprocess.run(
        [sys.executable, "-c", "import chupacabra; print(chupacabra.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    installed = Path(where).parent
    checkout = Path(__file__).resolve().parent.parent / "chupacabra"
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=checkout.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    found = {"installed": str(installed), "installed_digest": _digest(installed)}
    if checkout.is_dir():
        found["checkout_head"] = head or None
        found["checkout_digest"] = _digest(checkout)
        found["installed_is_checkout"] = (
            found["installed_digest"] == found["checkout_digest"]
        )
    return found


def machine(open_files: int) -> dict[str, Any]:
    import twisted

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "twisted": twisted.__version__,
        "open_files_limit": open_files,
        "load_before": list(os.getloadavg()),
        "software": software(),
    }


# Profiles


def profiles(folder: Path) -> dict[str, Any]:
    """The heaviest functions in each py-spy raw profile in ``folder``."""
    found = {}
    for path in sorted(folder.glob("*.txt")):
        if path.name.endswith("-summary.txt"):
            continue
        summary = profile_summary(path)
        found[path.stem] = summary
        lines = [f"{path.stem}: {summary['samples']} samples"]
        for title in ("self", "inclusive"):
            lines.append(f"\n{title}:")
            for name, share in summary[title]:
                lines.append(f"  {share:5.1f}%  {name}")
        (folder / f"{path.stem}-summary.txt").write_text("\n".join(lines) + "\n")
    return found


def _frame(text: str) -> str:
    """``function (path/file.py:123)`` without the line number and long path."""
    name, _, where = text.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else where
    return f"{name} ({short})"


def profile_summary(path: Path, top: int = 30) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    share = 100 / total if total else 0
    return {
        "samples": total,
        "self": [(name, round(n * share, 1)) for name, n in own.most_common(top)],
        "inclusive": [
            (name, round(n * share, 1)) for name, n in inclusive.most_common(top)
        ],
    }


# Targets


def _target(name: str, value: Any, met: bool | None, note: str) -> dict[str, Any]:
    verdict = "n/a" if met is None else ("met" if met else "NOT met")
    return {"target": name, "value": value, "verdict": verdict, "note": note}


FAILED_TARGETS = {
    "matches": ">= 50% of the ceiling at 1,000 matches",
    "half-load": "move p99 <= 10 ms at half the saturating load",
    "pair": "a single idle pair: move reply p99 < 1 ms",
    "idle": "10,000 idle players cost the gateway <= 10 KB each",
    "logins-during": "move p99 with 20 logins/s <= 1.2 x without",
    "logins": "logins >= 26/s at bcrypt cost >= 10",
    "seeks": "200 simultaneous seeks all matched, p50 < 5 ms",
}


def targets(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target the runs say something about, met or not."""
    found = []
    for run in runs:
        kind, mode = run.get("scenario"), run.get("mode")
        phases = run["phases"]
        clean = run["error_count"] == 0
        if run.get("failed"):
            if kind in FAILED_TARGETS:
                found.append(
                    _target(
                        FAILED_TARGETS[kind],
                        "the run failed",
                        False,
                        f"{run['label']}: {run['failed'][:200]}",
                    )
                )
            continue
        if kind == "matches" and run.get("ceiling_rate"):
            share = 100 * phases[0]["rate"] / run["ceiling_rate"]
            at_scale = run["matches"] >= 1000
            found.append(
                _target(
                    ">= 50% of the ceiling at 1,000 matches",
                    f"{share:.0f}% ({phases[0]['rate']:.0f} of "
                    f"{run['ceiling_rate']:.0f}/s)",
                    share >= 50 if at_scale else None,
                    f"{run['matches']} matches, mode {mode}",
                )
            )
        elif kind == "half-load":
            p99 = phases[0]["reply_ms"]["p99"]
            found.append(
                _target(
                    "move p99 <= 10 ms at half the saturating load",
                    f"{p99} ms at {phases[0]['rate']:.0f} moves/s",
                    p99 is not None and p99 <= 10 and clean,
                    f"{run['matches']} matches, mode {mode}",
                )
            )
        elif kind == "pair":
            p99 = phases[0]["reply_ms"]["p99"]
            found.append(
                _target(
                    "a single idle pair: move reply p99 < 1 ms",
                    f"{p99} ms",
                    p99 is not None and p99 < 1 and clean,
                    f"mode {mode}",
                )
            )
        elif kind == "idle":
            proc = "gateway" if mode == "two" else "server"
            per = run["memory"][proc]["kb_per_player"]
            at_scale = run["players"] >= 10_000
            found.append(
                _target(
                    "10,000 idle players cost the gateway <= 10 KB each",
                    f"{per} KiB/player ({proc})",
                    (per <= 10 and clean) if at_scale and mode == "two" else None,
                    f"{run['players']} players, mode {mode}"
                    + ("" if mode == "two" else " (gateway and game service)"),
                )
            )
        elif kind == "logins-during":
            without = phases[0]["reply_ms"]["p99"]
            with_ = phases[1]["reply_ms"]["p99"]
            ratio = with_ / without if without and with_ else None
            found.append(
                _target(
                    "move p99 with 20 logins/s <= 1.2 x without",
                    f"{with_} vs {without} ms"
                    + ("" if ratio is None else f" (x{ratio:.2f})"),
                    None if ratio is None else ratio <= 1.2 and clean,
                    f"{run['matches']} matches, {run['login_rate']} logins/s "
                    f"({phases[1]['logins_per_s']} done), bcrypt "
                    f"{run['bcrypt_rounds']}, mode {mode}",
                )
            )
        elif kind == "logins":
            rate = phases[0]["logins_per_s"]
            found.append(
                _target(
                    "logins >= 26/s at bcrypt cost >= 10",
                    f"{rate}/s",
                    (rate >= 26 and clean) if run["bcrypt_rounds"] >= 10 else None,
                    f"bcrypt {run['bcrypt_rounds']}, mode {mode}",
                )
            )
        elif kind == "seeks":
            seeks = run["seeks"]
            p50 = seeks["second_seek_to_both_told_ms"]["p50"]
            everyone = seeks["matched"] == seeks["seeks"] and seeks["odd_matches"] == 0
            found.append(
                _target(
                    "200 simultaneous seeks all matched, p50 < 5 ms",
                    f"{seeks['matched']}/{seeks['seeks']} matched, p50 {p50} ms",
                    (everyone and clean and p50 is not None and p50 < 5)
                    if run["seekers"] >= 200
                    else None,
                    f"{run['seekers']} seekers, mode {mode}",
                )
            )
    return found


# The table


def _ms(stats: dict[str, Any]) -> str:
    if not stats["count"]:
        return "-"
    return "/".join(_num(stats[k]) for k in ("p50", "p90", "p99", "max"))


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def _per_proc(values: dict[str, Any], scale: float = 1.0, unit: str = "") -> str:
    parts = [
        f"{name} {v * scale:.0f}{unit}"
        for name, v in values.items()
        if name in SERVERS and v is not None
    ]
    return ", ".join(parts) or "-"


def _rows(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))
        )
    return [line.rstrip() for line in lines]


def table(report: dict[str, Any]) -> str:
    """The report as text: one table of runs, then the targets."""
    lines = []
    rows = []
    for run in report["runs"]:
        if run.get("failed"):
            rows.append([run["label"], "FAILED", *["-"] * 7])
        for phase in run["phases"]:
            ceiling = run.get("ceiling_rate")
            share = f"{100 * phase['rate'] / ceiling:.0f}%" if ceiling else "-"
            loadgen = sum(
                v
                for k, v in phase.get("cpu_percent", {}).items()
                if k.startswith("load")
            )
            others = phase.get("others_busy_percent", 0)
            rows.append(
                [
                    run["label"]
                    + ("" if len(run["phases"]) == 1 else f"/{phase['name']}"),
                    f"{phase['rate']:.0f}",
                    share,
                    _ms(phase["reply_ms"]),
                    _ms(phase["push_ms"]),
                    _per_proc(phase.get("cpu_us_per_move", {})),
                    _per_proc(phase.get("cpu_percent", {}), unit="%")
                    + f"; gen {loadgen:.0f}%; others {others:.0f}%",
                    _per_proc(run["rss_kb"], 1 / 1024),
                    str(run["error_count"]),
                ]
            )
    lines += _rows(
        [
            "run",
            "moves/s",
            "%ceil",
            "reply ms p50/p90/p99/max",
            "push ms p50/p90/p99/max",
            "CPU us/move",
            "CPU use",
            "RSS MiB",
            "errors",
        ],
        rows,
    )

    extras = []
    for run in report["runs"]:
        if run.get("scenario") == "idle" and "memory" in run:
            for name, memory in run["memory"].items():
                extras.append(
                    f"{run['label']}: {run['players']} idle players: {name} "
                    f"{memory['before_kb'] / 1024:.0f} -> "
                    f"{memory['after_kb'] / 1024:.0f} MiB, "
                    f"{memory['kb_per_player']} KiB per player"
                )
        if run.get("scenario") in ("logins", "logins-during"):
            for phase in run["phases"]:
                if phase["logins"]:
                    extras.append(
                        f"{run['label']}/{phase['name']}: {phase['logins_per_s']} "
                        f"logins/s at bcrypt {run['bcrypt_rounds']}, login ms "
                        f"{_ms(phase['login_ms'])}"
                    )
        if run.get("scenario") == "seeks" and "seeks" in run:
            seeks = run["seeks"]
            extras.append(
                f"{run['label']}: {seeks['matched']}/{seeks['seeks']} seeks matched "
                f"in {seeks['matches']} matches; second seek to both told ms "
                f"{_ms(seeks['second_seek_to_both_told_ms'])}"
            )
        if run.get("failed"):
            extras.append(f"{run['label']}: FAILED: {run['failed'][:300]}")
        elif run["error_count"] or run["outstanding"] or run["log_problems"]:
            extras.append(
                f"{run['label']}: errors {run['errors']}, unanswered "
                f"{run['outstanding']}, log problems {run['log_problems']}"
            )
    if extras:
        lines += ["", *extras]
    if report.get("targets"):
        lines += ["", "targets:"]
        for t in report["targets"]:
            lines.append(
                f"  [{t['verdict']}] {t['target']}: {t['value']} ({t['note']})"
            )
    machine = report["machine"]
    soft = machine["software"]
    lines += [
        "",
        f"machine: {machine['cpus']} CPUs, Python {machine['python']}, Twisted "
        f"{machine['twisted']}, load {machine['load_before'][0]:.2f} before and "
        f"{machine.get('load_after', [0])[0]:.2f} after",
        f"server code: {soft['installed']} ({soft['installed_digest']}"
        + (
            f"; checkout {soft['checkout_head']}, "
            + ("same code" if soft.get("installed_is_checkout") else "DIFFERENT code")
            if "checkout_digest" in soft
            else ""
        )
        + ")",
    ]
    return "\n".join(lines)

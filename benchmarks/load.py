"""
Load harness for chupacabra: real servers, simulated players, a report.

Each scenario starts the installed server on free loopback ports with a
fresh data folder (``--mode one``: ``twistd -n chupacabra``; ``two``: the
game service and the gateway as two processes), drives it from
``--workers`` load-generator processes whose players register, log in,
seek tic-tac-toe and play random legal moves in JSON mode, then stops
everything it started.  Every run is bounded by ``--duration`` and by
counts (``--max-moves`` and the scenario's sizes).

Scenarios (``--scenario``, repeatable, or ``all``):

- ``matches``: ``--matches`` concurrent matches (a list, such as
  100,1000,5000), each player moving as soon as it may; with the ceiling
  (``ceiling.py``) run at the same concurrency, and with ``--half-load``
  a second run paced at half the rate just measured.
- ``pair``: a single match paced at ``--pair-rate`` moves a second.
- ``idle``: ``--idle-players`` logged-in players doing nothing (memory
  per player), with one pair playing slowly among them.
- ``logins-during``: ``--during-matches`` matches, first alone, then with
  ``--login-rate`` new connections logging in each second.
- ``logins``: ``--login-connections`` connections logging in and out as
  fast as the server lets them, at ``--bcrypt-rounds``.
- ``seeks``: ``--seekers`` logged-in players asking for a match at the
  same instant, ``--seek-rounds`` times.

It prints a progress line while it runs, then a table; ``--json FILE``
writes the whole report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _loadgen
import _report
from _servers import (
    Proc,
    Sample,
    check_all,
    raise_open_files,
    start_ceiling,
    start_product,
    stop_all,
)

SCENARIOS = ["matches", "pair", "idle", "logins-during", "logins", "seeks"]
#: bcrypt cost for accounts whose hashing is not what is being measured.
CHEAP_ROUNDS = 4
#: Seconds allowed past the plan's end for workers to report.
REPORT_GRACE = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="load.py",
        description=__doc__.split("\n\n")[0].strip(),
        epilog="Scenarios: " + ", ".join(SCENARIOS) + " (or all).",
    )
    add = parser.add_argument
    add(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        help="what to run (repeatable; default: matches)",
    )
    add(
        "--mode",
        choices=["one", "two", "both"],
        default="both",
        help="one process, two processes, or both in turn (default: both)",
    )
    add(
        "--matches",
        default="100",
        help="concurrent matches for the matches scenario, comma-separated",
    )
    add(
        "--duration",
        type=float,
        default=10.0,
        help="seconds measured in each phase (default: 10)",
    )
    add(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before each phase is measured (default: 2)",
    )
    add(
        "--max-moves",
        type=int,
        default=2_000_000,
        help="moves at most in one run, over all workers",
    )
    add("--workers", type=int, default=2, help="load-generator processes (default: 2)")
    add(
        "--move-rate",
        type=float,
        default=None,
        help="pace the matches scenario at this many moves/s in total",
    )
    add(
        "--half-load",
        action="store_true",
        help="after each matches run, run again at half its moves/s",
    )
    add("--no-ceiling", action="store_true", help="skip the ceiling runs")
    add(
        "--pair-rate",
        type=float,
        default=20.0,
        help="moves/s of the single pair (pair and idle scenarios)",
    )
    add("--idle-players", type=int, default=10_000)
    add("--during-matches", type=int, default=1000)
    add(
        "--during-move-rate",
        type=float,
        default=None,
        help="pace logins-during's matches at this many moves/s in total",
    )
    add(
        "--login-rate",
        type=float,
        default=20.0,
        help="logins/s during logins-during (default: 20)",
    )
    add("--login-connections", type=int, default=8)
    add(
        "--bcrypt-rounds",
        type=int,
        default=10,
        help="bcrypt cost in the login scenarios (default: 10)",
    )
    add("--seekers", type=int, default=200)
    add("--seek-rounds", type=int, default=5)
    add(
        "--round-gap",
        type=float,
        default=2.0,
        help="seconds between seek rounds (default: 2)",
    )
    add(
        "--setup-timeout",
        type=float,
        default=900.0,
        help="seconds the players' set-up may take (default: 900)",
    )
    add("--json", metavar="FILE", help="write the report as JSON here")
    add(
        "--profile",
        metavar="DIR",
        help="sample the server processes with py-spy during each phase",
    )
    add(
        "--workdir",
        metavar="DIR",
        help="keep server data and logs here (default: a temporary folder)",
    )
    add("--quiet", action="store_true", help="no progress lines")
    add("--seed", type=int, default=1)
    args = parser.parse_args(argv)  # fmt: skip
    args.scenario = args.scenario or ["matches"]
    if "all" in args.scenario:
        args.scenario = list(SCENARIOS)
    args.modes = ["one", "two"] if args.mode == "both" else [args.mode]
    try:
        args.match_counts = [int(n) for n in args.matches.split(",") if n.strip()]
    except ValueError:
        parser.error("--matches takes whole numbers separated by commas")
    if args.workers < 1 or args.duration <= 0 or args.max_moves < 1:
        parser.error("--workers, --duration and --max-moves must be positive")
    if not 4 <= args.bcrypt_rounds <= 31:
        parser.error("--bcrypt-rounds must be from 4 to 31")
    return args


class Progress:
    """One line of progress at a time on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def show(self, text: str, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self.last < (1.0 if self.tty else 5.0):
            return
        self.last = now
        if self.tty:
            sys.stderr.write("\r\033[K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


class LoadGen:
    """The load-generator processes of one run, and talking to them."""

    def __init__(
        self,
        kind: str,
        port: int,
        names: list[str],
        args: argparse.Namespace,
        **config: Any,
    ) -> None:
        self.args = args
        context = multiprocessing.get_context("spawn")
        self.outbox = context.Queue()
        workers = max(1, min(args.workers, len(names) or 1))
        self.inboxes = [context.Queue() for _ in range(workers)]
        self.procs = []
        # The ceiling's players come in pairs that take turns: keep them whole.
        step = 2 if kind == "ceiling" else 1
        chunks = [names[j : j + step] for j in range(0, len(names), step)]
        for i in range(workers):
            worker_config = {
                "kind": kind,
                "port": port,
                "worker": i,
                "names": [name for chunk in chunks[i::workers] for name in chunk],
                "seed": args.seed,
                "setup_timeout": args.setup_timeout,
                **config,
            }
            for key, value in config.items():
                if key.endswith("_per_worker"):
                    worker_config[key[: -len("_per_worker")]] = value[i]
            self.procs.append(
                context.Process(
                    target=_loadgen.worker_main,
                    args=(worker_config, self.outbox, self.inboxes[i]),
                    daemon=True,
                )
            )

    @property
    def pids(self) -> dict[str, int]:
        return {f"loadgen{i}": p.pid for i, p in enumerate(self.procs) if p.pid}

    def start(
        self, progress: Progress, label: str, watch: Any = lambda: None
    ) -> dict[str, Any]:
        """Start the workers and wait for their players to be set up."""
        started = time.monotonic()
        for proc in self.procs:
            proc.start()
        ready: dict[int, Any] = {}
        deadline = started + self.args.setup_timeout + 30
        while len(ready) < len(self.procs):
            kind, index, body = self._receive(deadline, watch)
            if kind == "failed":
                raise RuntimeError(f"load generator {index}: {body}")
            if kind == "ready":
                ready[index] = body
            progress.show(
                f"[{label}] setting up: {len(ready)}/{len(self.procs)} workers ready, "
                f"{time.monotonic() - started:.0f}s"
            )
        errors: Counter[str] = Counter()
        for body in ready.values():
            errors.update(body["errors"])
        return {"seconds": time.monotonic() - started, "errors": dict(errors)}

    def _receive(self, deadline: float, watch: Any) -> tuple[str, int, Any]:
        while True:
            watch()
            for proc in self.procs:
                if proc.exitcode not in (None, 0):
                    raise RuntimeError(f"a load generator died ({proc.exitcode})")
            try:
                message: tuple[str, int, Any] = self.outbox.get(timeout=0.5)
                return message
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("the load generators stopped answering")

    def go(self, plan: dict[str, Any]) -> None:
        for inbox in self.inboxes:
            inbox.put(("go", plan))

    def collect(
        self,
        plan: dict[str, Any],
        on_time: list[tuple[float, Any]],
        progress: Progress,
        label: str,
        watch: Any = lambda: None,
    ) -> list[dict[str, Any]]:
        """Run ``on_time`` calls at their instants, show progress, gather results."""
        pending = sorted(on_time, key=lambda item: item[0])
        counters: dict[int, dict[str, Any]] = {}
        done: dict[int, Any] = {}
        deadline = plan["end"] + _loadgen.DRAIN_SECONDS + REPORT_GRACE
        watched = 0.0
        while len(done) < len(self.procs):
            now = time.monotonic()
            if now - watched > 1.0:
                watch()
                watched = now
            while pending and pending[0][0] <= now:
                pending.pop(0)[1]()
            wait = min(0.25, pending[0][0] - now) if pending else 0.25
            try:
                kind, index, body = self.outbox.get(timeout=max(0.01, wait))
            except queue.Empty:
                if now > deadline:
                    raise TimeoutError("the load generators did not report")
                continue
            if kind == "failed":
                raise RuntimeError(f"load generator {index}: {body}")
            if kind == "progress":
                counters[index] = body
                total = Counter[str]()
                for c in counters.values():
                    total.update({k: v for k, v in c.items() if isinstance(v, int)})
                elapsed = now - plan["go"]
                rate = total["moves"] / elapsed if elapsed > 0 else 0.0
                progress.show(
                    f"[{label}] {elapsed:5.1f}s moves {total['moves']} "
                    f"({rate:.0f}/s) logins {total['logins']} "
                    f"matches {total['matches']} errors {total['errors']}"
                )
            elif kind == "done":
                done[index] = body
        while pending:
            pending.pop(0)[1]()
        progress.done()
        return [done[i] for i in sorted(done)]

    def close(self, force: bool = False) -> None:
        """Let idle workers close their connections and exit; or end them."""
        for inbox in self.inboxes:
            inbox.put(("exit", None))
        for proc in self.procs:
            proc.join(0.1 if force else 10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


class Run:
    """One server set-up (or the ceiling) under one load generator."""

    def __init__(
        self, args: argparse.Namespace, label: str, folder: Path, progress: Progress
    ) -> None:
        self.args = args
        self.label = label
        self.folder = folder
        self.progress = progress
        self.procs: dict[str, Proc] = {}
        self.port = 0
        self.loadgen: LoadGen | None = None
        self.profiles: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self._watched = 0.0

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        self.stop(force=kind is not None)

    def product(self, mode: str, rounds: int) -> None:
        self.procs, self.port = start_product(mode, self.folder, rounds)

    def ceiling(self) -> None:
        self.procs, self.port = start_ceiling(self.folder)

    def stop(self, force: bool = False) -> None:
        for _, spy, _ in self.profiles:
            if spy.poll() is None:
                spy.kill()
                spy.wait(5)
        if self.loadgen is not None:
            self.loadgen.close(force)
            self.loadgen = None
        stop_all(self.procs)

    def players(self, kind: str, names: list[str], **config: Any) -> dict[str, Any]:
        self.loadgen = LoadGen(kind, self.port, names, self.args, **config)
        return self.loadgen.start(self.progress, self.label, self.watch)

    def watch(self) -> None:
        """Stop the run if a server died or logged a failure."""
        now = time.monotonic()
        if now - self._watched > 1.0:
            self._watched = now
            check_all(self.procs)

    def pids(self) -> dict[str, int]:
        pids = {name: proc.pid for name, proc in self.procs.items()}
        assert self.loadgen is not None
        return {**pids, **self.loadgen.pids}

    def measure(self, phases: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        """Run the phases (name, and login_rate if any) back to back."""
        assert self.loadgen is not None
        args = self.args
        go = time.monotonic() + 0.5
        specs, at = [], go
        for phase in phases:
            start = at + args.warmup
            specs.append({**phase, "start": start, "end": start + args.duration})
            at = start + args.duration
        plan: dict[str, Any] = {"go": go, "phases": specs, "end": at, **extra}
        samples: dict[str, Sample] = {}
        pids = self.pids()

        def sample(key: str) -> Any:
            return lambda: samples.__setitem__(key, Sample(pids))

        on_time: list[tuple[float, Any]] = []
        for i, spec in enumerate(specs):
            on_time.append((spec["start"], sample(f"start{i}")))
            on_time.append((spec["end"], sample(f"end{i}")))
            if args.profile:
                on_time.append((spec["start"], self._profile_later(spec)))
        self.loadgen.go(plan)
        results = self.loadgen.collect(
            plan, on_time, self.progress, self.label, self.watch
        )
        self._wait_profiles()
        return _report.run_result(self.label, specs, results, samples, self.procs)

    def _profile_later(self, spec: dict[str, Any]) -> Any:
        def start() -> None:
            folder = Path(self.args.profile)
            folder.mkdir(parents=True, exist_ok=True)
            for name, proc in self.procs.items():
                out = folder / f"{self.label}-{spec['name']}-{name}.txt"
                spy = subprocess.Popen(
                    [
                        *_py_spy(),
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--duration",
                        str(max(1, int(self.args.duration))),
                        "--rate",
                        "100",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                self.profiles.append((name, spy, out))

        return start

    def _wait_profiles(self) -> None:
        for _, spy, _ in self.profiles:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(5)


@contextlib.contextmanager
def guarded(runs: list[dict[str, Any]], label: str, **info: Any) -> Iterator[None]:
    """Record a run that failed, with why, and go on to the next one."""
    try:
        yield
    except (RuntimeError, TimeoutError) as e:
        print(f"[{label}] FAILED: {e}", file=sys.stderr)
        runs.append(_report.failed_run(label, str(e), info))


def _py_spy() -> list[str]:
    script = Path(sys.executable).parent / "py-spy"
    found = str(script) if script.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return [found]


def _names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


def _split(total: float | None, workers: int) -> float | None:
    return None if total is None else total / workers


# Scenarios


def scenario_matches(args: argparse.Namespace, root: Path, progress: Progress) -> list:
    runs = []
    for count in args.match_counts:
        ceiling = None
        if not args.no_ceiling:
            label = f"ceiling-{count}"
            with (
                guarded(runs, label, scenario="ceiling", mode="relay", matches=count),
                Run(args, label, root / label, progress) as run,
            ):
                run.ceiling()
                run.players(
                    "ceiling",
                    _names("c", 2 * count),
                    max_moves=args.max_moves // args.workers,
                )
                ceiling = run.measure([{"name": "ceiling"}])
                ceiling.update(scenario="ceiling", mode="relay", matches=count)
                runs.append(ceiling)
                if args.half_load:
                    # The bare relay's latency at half its own saturating
                    # rate: what this machine allows at such a load.
                    paced = _half_load(run, ceiling, f"ceiling-half-{count}")
                    paced.update(scenario="ceiling", mode="relay", matches=count)
                    runs.append(paced)
        for mode in args.modes:
            label = f"matches-{count}-{mode}"
            with (
                guarded(runs, label, scenario="matches", mode=mode, matches=count),
                Run(args, label, root / label, progress) as run,
            ):
                run.product(mode, CHEAP_ROUNDS)
                setup = run.players(
                    "matches",
                    _names("p", 2 * count),
                    max_moves=args.max_moves // args.workers,
                    move_rate=_split(args.move_rate, args.workers),
                )
                result = run.measure([{"name": "closed-loop"}])
                result.update(scenario="matches", mode=mode, matches=count, setup=setup)
                result["ceiling_rate"] = ceiling and ceiling["phases"][0]["rate"]
                runs.append(result)
                if args.half_load:
                    paced = _half_load(run, result, f"half-load-{count}-{mode}")
                    paced.update(scenario="half-load", mode=mode, matches=count)
                    runs.append(paced)
    return runs


def _half_load(run: Run, saturated: dict[str, Any], label: str) -> dict[str, Any]:
    """Measure ``run`` again, paced at half the rate of ``saturated``."""
    half = saturated["phases"][0]["rate"] / 2
    paced = run.measure(
        [{"name": "half-load"}],
        move_rate=half / len(run.loadgen.procs),  # type: ignore[union-attr]
    )
    paced.update(target_rate=half, label=label)
    return paced


def scenario_pair(args: argparse.Namespace, root: Path, progress: Progress) -> list:
    runs = []
    if not args.no_ceiling:
        label = "ceiling-pair"
        with (
            guarded(runs, label, scenario="ceiling", mode="relay", matches=1),
            Run(args, label, root / label, progress) as run,
        ):
            run.ceiling()
            saved, args.workers = args.workers, 1
            try:
                run.players("ceiling", ["c0", "c1"], move_rate=args.pair_rate)
            finally:
                args.workers = saved
            result = run.measure([{"name": "ceiling"}])
            result.update(scenario="ceiling", mode="relay", matches=1)
            runs.append(result)
    for mode in args.modes:
        label = f"pair-{mode}"
        with (
            guarded(runs, label, scenario="pair", mode=mode),
            Run(args, label, root / label, progress) as run,
        ):
            run.product(mode, CHEAP_ROUNDS)
            saved, args.workers = args.workers, 1
            try:
                run.players("matches", ["alice", "bob"], move_rate=args.pair_rate)
            finally:
                args.workers = saved
            result = run.measure([{"name": "pair"}])
            result.update(scenario="pair", mode=mode, matches=1)
            runs.append(result)
    return runs


def scenario_idle(args: argparse.Namespace, root: Path, progress: Progress) -> list:
    runs = []
    for mode in args.modes:
        label = f"idle-{mode}"
        with (
            guarded(runs, label, scenario="idle", mode=mode, players=args.idle_players),
            Run(args, label, root / label, progress) as run,
        ):
            run.product(mode, CHEAP_ROUNDS)
            before = Sample({n: p.pid for n, p in run.procs.items()})
            workers = min(args.workers, max(1, args.idle_players))
            setup = run.players(
                "idle",
                _names("i", args.idle_players),
                pair_rate_per_worker=[args.pair_rate] + [None] * (workers - 1),
            )
            time.sleep(1.0)
            after = Sample({n: p.pid for n, p in run.procs.items()})
            result = run.measure([{"name": "idle"}])
            result.update(scenario="idle", mode=mode, players=args.idle_players)
            result["setup"] = setup
            result["memory"] = _report.idle_memory(before, after, args.idle_players)
            runs.append(result)
    return runs


def scenario_logins(args: argparse.Namespace, root: Path, progress: Progress) -> list:
    runs = []
    for mode in args.modes:
        label = f"logins-{mode}"
        info = {"bcrypt_rounds": args.bcrypt_rounds}
        with (
            guarded(runs, label, scenario="logins", mode=mode, **info),
            Run(args, label, root / label, progress) as run,
        ):
            run.product(mode, args.bcrypt_rounds)
            run.players(
                "logins",
                _names("l", args.login_connections),
                login=False,
                setup_concurrency=4,
            )
            result = run.measure([{"name": "logins"}])
            result.update(
                scenario="logins", mode=mode, bcrypt_rounds=args.bcrypt_rounds
            )
            runs.append(result)
    return runs


def scenario_logins_during(
    args: argparse.Namespace, root: Path, progress: Progress
) -> list:
    runs = []
    count = args.during_matches
    names = _names("d", 2 * count)
    for mode in args.modes:
        label = f"logins-during-{mode}"
        folder = root / label
        info = {"matches": count, "login_rate": args.login_rate}
        with guarded(runs, label, scenario="logins-during", mode=mode, **info):
            _logins_during(args, label, folder, progress, mode, names, runs)
    return runs


def _logins_during(
    args: argparse.Namespace,
    label: str,
    folder: Path,
    progress: Progress,
    mode: str,
    names: list[str],
    runs: list[dict[str, Any]],
) -> None:
    count = len(names) // 2
    # The players' hashes are made cheaply first; the logins measured
    # are of accounts registered afterwards at the real cost.
    with Run(args, label + "-register", folder, progress) as run:
        run.product(mode, CHEAP_ROUNDS)
        run.players("register", names, login=True)
    with Run(args, label, folder, progress) as run:
        run.product(mode, args.bcrypt_rounds)
        streamers = max(1, math.ceil(args.login_rate * 2))
        workers = min(args.workers, len(names))
        setup = run.players(
            "matches",
            names,
            register=False,
            max_moves=args.max_moves // workers,
            move_rate=_split(args.during_move_rate, workers),
            stream_names_per_worker=[
                _names(f"s{i}x", math.ceil(streamers / workers)) for i in range(workers)
            ],
        )
        rate = args.login_rate / workers
        result = run.measure(
            [
                {"name": "without-logins"},
                {"name": "with-logins", "login_rate": rate},
            ]
        )
        result.update(
            scenario="logins-during",
            mode=mode,
            matches=count,
            login_rate=args.login_rate,
            bcrypt_rounds=args.bcrypt_rounds,
            setup=setup,
        )
        runs.append(result)


def scenario_seeks(args: argparse.Namespace, root: Path, progress: Progress) -> list:
    runs = []
    for mode in args.modes:
        label = f"seeks-{mode}"
        with (
            guarded(runs, label, scenario="seeks", mode=mode, seekers=args.seekers),
            Run(args, label, root / label, progress) as run,
        ):
            run.product(mode, CHEAP_ROUNDS)
            run.players("seeks", _names("k", args.seekers))
            saved = args.duration
            args.duration = args.seek_rounds * args.round_gap + 1.0
            go_in = 0.5 + args.warmup
            try:
                start = time.monotonic() + go_in + 0.5
                rounds = [start + i * args.round_gap for i in range(args.seek_rounds)]
                result = run.measure(
                    [{"name": "seeks"}], rounds=rounds, round_gap=args.round_gap
                )
            finally:
                args.duration = saved
            result.update(scenario="seeks", mode=mode, seekers=args.seekers)
            result["seeks"] = _report.seek_result(result.pop("seek_records"))
            runs.append(result)
    return runs


RUNNERS = {
    "matches": scenario_matches,
    "pair": scenario_pair,
    "idle": scenario_idle,
    "logins-during": scenario_logins_during,
    "logins": scenario_logins,
    "seeks": scenario_seeks,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        _py_spy()  # fail now, not in the middle of a run
    limit = raise_open_files()
    progress = Progress(args.quiet)
    report: dict[str, Any] = {
        "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": _report.machine(limit),
        "runs": [],
    }
    workdir = Path(args.workdir) if args.workdir else None
    scratch = None
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="chupacabra-load-")
        workdir = Path(scratch)
    workdir.mkdir(parents=True, exist_ok=True)
    failed = None
    try:
        for scenario in args.scenario:
            report["runs"] += RUNNERS[scenario](args, workdir, progress)
    except (RuntimeError, TimeoutError, KeyboardInterrupt) as e:
        failed = str(e) or type(e).__name__
        report["failed"] = failed
    finally:
        report["machine"]["load_after"] = list(os.getloadavg())
        if args.profile:
            report["profiles"] = _report.profiles(Path(args.profile))
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report["targets"] = _report.targets(report["runs"])
    print(_report.table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if failed:
        print(f"load.py: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""
Server processes for the load harness, and what /proc says about them.

The product runs as the installed twistd plugins (``chupacabra`` alone, or
``chupacabra-game`` and ``chupacabra-gateway``) on free loopback ports
with a fresh data folder; the ceiling runs as ``ceiling.py``'s two halves.
Every process is started here and ended here, by its own PID.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import ceiling

HOST = "127.0.0.1"
#: Seconds a server may take to start and link up.
START_TIMEOUT = 60.0
#: Seconds a server may take to exit after SIGTERM.
STOP_TIMEOUT = 15.0
#: At most this much of a log is read for each check.
WATCH_BYTES = 1 << 20
#: Timeouts long enough never to fire during a run.
QUIET_TIMEOUT = "86400"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_open_files() -> int:
    """Raise this process's soft open-files limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def twistd() -> list[str]:
    """How to run the twistd of the Python running the harness."""
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CHUPACABRA_SECRET", None)
    return env


class Proc:
    """One server process, its output in a log file."""

    def __init__(self, name: str, command: list[str], folder: Path) -> None:
        self.name = name
        self.command = command
        self.log_path = folder / f"{name}.log"
        self._log: IO[bytes] | None = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_environment(),
            start_new_session=True,
        )
        self.pid = self.process.pid
        self._checked = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it hangs; the exit status."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def check(self) -> None:
        """Raise if the process died or logged a traceback since the last check."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
        size = self.log_path.stat().st_size
        start = max(self._checked, size - WATCH_BYTES)
        if size <= start:
            return
        with open(self.log_path, "rb") as f:
            f.seek(start)
            text = f.read(size - start).decode("utf-8", "replace")
        self._checked = size
        for line in text.splitlines():
            if _is_failure(line):
                raise RuntimeError(
                    f"{self.name} logged a failure: {_failure(text)} "
                    f"(log: {self.log_path})"
                )

    def problems(self) -> list[str]:
        """Tracebacks, unhandled errors and error-level lines in the log."""
        return [line for line in self.log().splitlines() if _is_failure(line)]


def _is_failure(line: str) -> bool:
    """Whether a log line shows a failure (not a debug note quoting one)."""
    return (
        "Traceback (most recent call last)" in line
        or "Unhandled Error" in line
        or "#error]" in line
        or "#critical]" in line
    )


def _failure(text: str) -> str:
    """The most telling line of a logged failure: its exception, if shown."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("twisted.", "builtins.", "chupacabra.")) and ":" in line:
            return line[:300]
    return (lines[-1] if lines else "?")[:300]


def check_all(procs: dict[str, Proc]) -> None:
    for proc in procs.values():
        proc.check()


def start_product(
    mode: str, folder: Path, bcrypt_rounds: int, extra: list[str] | None = None
) -> tuple[dict[str, Proc], int]:
    """Start the product in ``mode`` (one or two processes); its line port."""
    extra = extra or []
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    line, http = free_port(), free_port()
    common = ["--data", str(data)]
    front = [
        f"--line=tcp:{line}:interface={HOST}",
        f"--http=tcp:{http}:interface={HOST}",
        f"--bcrypt-rounds={bcrypt_rounds}",
        f"--idle-timeout={QUIET_TIMEOUT}",
    ]
    back = [f"--turn-timeout={QUIET_TIMEOUT}", "--games=tictactoe"]
    procs: dict[str, Proc] = {}
    base = [*twistd(), "-n", "--pidfile="]
    try:
        if mode == "one":
            command = [*base, "chupacabra", *common, *front, *back, *extra]
            procs["server"] = Proc("server", command, folder)
        else:
            pb = free_port()
            command = [
                *base,
                "chupacabra-game",
                *common,
                f"--pb=tcp:{pb}:interface={HOST}",
                *back,
            ]
            procs["game"] = Proc("game", command, folder)
            _wait_port(procs["game"], pb)
            command = [
                *base,
                "chupacabra-gateway",
                *common,
                *front,
                f"--game-service=tcp:{HOST}:{pb}",
                *extra,
            ]
            procs["gateway"] = Proc("gateway", command, folder)
        _wait_ready(procs, line, _product_ready)
    except BaseException:
        stop_all(procs)
        raise
    return procs, line


def start_ceiling(folder: Path) -> tuple[dict[str, Proc], int]:
    """Start the ceiling's relay and back end; the relay's line port."""
    folder.mkdir(parents=True, exist_ok=True)
    back, line = free_port(), free_port()
    procs: dict[str, Proc] = {}
    try:
        procs["back"] = Proc("back", ceiling.command("back", back), folder)
        _wait_port(procs["back"], back)
        procs["relay"] = Proc("relay", ceiling.command("relay", line, back), folder)
        _wait_ready(procs, line, _ceiling_ready)
    except BaseException:
        stop_all(procs)
        raise
    return procs, line


def stop_all(procs: dict[str, Proc]) -> dict[str, int | None]:
    """Stop every process, the last started first."""
    return {name: procs[name].stop() for name in reversed(list(procs))}


def _wait_port(proc: Proc, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited before listening:\n{proc.log()}")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} is not listening on {port}")
        time.sleep(0.05)


def _wait_ready(procs: dict[str, Proc], port: int, probe: Any) -> None:
    """Wait until the line port answers ``probe`` as a ready server would."""
    deadline = time.monotonic() + START_TIMEOUT
    last = list(procs.values())[-1]
    _wait_port(last, port)
    while True:
        for proc in procs.values():
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.log()}")
        try:
            if probe(port):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server on {port} never became ready")
        time.sleep(0.1)


def _lines(sock: socket.socket, count: int) -> list[str]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").splitlines()


def _product_ready(port: int) -> bool:
    """The gateway answers and a game service offering tic-tac-toe is linked."""
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(b"JSON\r\nGAMES\r\n")
        lines = [line for line in _lines(sock, 3) if line.startswith("{")]
    if len(lines) < 2:
        return False
    reply = json.loads(lines[1])
    names = [g["name"] for g in reply.get("result", {}).get("games", [])]
    return bool(reply.get("ok")) and "tictactoe" in names


def _ceiling_ready(port: int) -> bool:
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(b"ping\r\n")
        lines = _lines(sock, 1)
    return bool(lines) and lines[0] == ceiling.REPLY


# What /proc tells


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process and all its threads."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy() -> tuple[float, float]:
    """Seconds of busy and total CPU time of the whole machine so far."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values[:8])
    idle = values[3] + values[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class Sample:
    """CPU and memory of some processes, and the machine, at one instant."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.at = time.monotonic()
        times = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.cpu = {name: user + system for name, (user, system) in times.items()}
        self.system = {name: system for name, (_, system) in times.items()}
        self.rss = {name: rss_kb(pid) for name, pid in pids.items()}
        self.busy, self.total = machine_busy()

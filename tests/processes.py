"""Real twistd processes and blocking line clients for the end-to-end tests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: How long a process may take to start listening.
START_TIMEOUT = 30.0
#: How long a client waits for a line it expects.
READ_TIMEOUT = 10.0
#: How long a process may take to exit after SIGTERM.
STOP_TIMEOUT = 15.0

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listen_on(port: int) -> str:
    """The server endpoint string for ``port`` on loopback only."""
    return f"tcp:{port}:interface={HOST}"


def connect_to(port: int) -> str:
    """The client endpoint string for ``port`` on loopback."""
    return f"tcp:{HOST}:{port}"


def twistd_command() -> list[str]:
    """How to run the twistd of the Python running the tests."""
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def environment() -> dict[str, str]:
    """The environment for child processes, without a shared-secret override."""
    env = dict(os.environ)
    env.pop("CHUPACABRA_SECRET", None)
    return env


def run_twistd(
    args: list[str], cwd: Path, timeout: float = START_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run twistd to completion, for commands that should exit by themselves."""
    return subprocess.run(
        [*twistd_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=environment(),
    )


class Server:
    """One twistd process in the foreground, its output in a log file."""

    def __init__(
        self,
        plugin: str,
        args: list[str],
        log_path: Path,
        cwd: Path,
        tidy_log: bool = True,
    ) -> None:
        self.plugin = plugin
        self.args = args
        self.log_path = log_path
        self.cwd = cwd
        #: Whether the log must hold no tracebacks when the test ends.
        self.tidy_log = tidy_log
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False
        self._log_file: IO[bytes] | None = None

    def start(self) -> Server:
        self._log_file = open(self.log_path, "ab")
        command = [*twistd_command(), "-n", "--pidfile=", self.plugin, *self.args]
        self.process = subprocess.Popen(
            command,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
        return self

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> None:
        """Poll ``port`` until it accepts, failing early if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.plugin} exited with {self.process.returncode} "
                    f"before listening on {port}:\n{self.log()}"
                )
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.plugin} not listening on {port} after {timeout} s:\n"
                    f"{self.log()}"
                )
            time.sleep(0.05)

    def wait_for_log(self, *texts: str, timeout: float = START_TIMEOUT) -> str:
        """Poll the log until it holds one of ``texts``; return that text."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            for text in texts:
                if text in log:
                    return text
            if time.monotonic() > deadline:
                raise AssertionError(f"none of {texts} in {self.plugin}'s log:\n{log}")
            time.sleep(0.05)

    def kill(self) -> None:
        """End the process at once with SIGKILL and wait for it to go."""
        if self.process is not None and self.process.poll() is None:
            self.killed = True
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> int | None:
        """
        End the process with SIGTERM, or SIGKILL if it hangs; its exit status.

        twistd ends itself with the signal it got, so a clean stop is
        ``-SIGTERM`` (or 0), as L{subprocess} reports it.
        """
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return None if process is None else process.returncode

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


class Want:
    """A test for a line, described readably in failure messages."""

    def __init__(self, description: str, test: Callable[[str], Any]) -> None:
        self.description = description
        self.test = test

    def __call__(self, line: str) -> bool:
        return bool(self.test(line))

    def __repr__(self) -> str:
        return self.description


def exactly(text: str) -> Want:
    return Want(f"exactly {text!r}", lambda line: line == text)


def starting(text: str) -> Want:
    return Want(f"starting {text!r}", lambda line: line.startswith(text))


def matching(pattern: str) -> Want:
    """A line matching the regular expression ``pattern`` in full."""
    compiled = re.compile(pattern)
    return Want(f"matching {pattern!r}", lambda line: compiled.fullmatch(line))


def json_object(description: str, test: Callable[[dict[str, Any]], Any]) -> Want:
    """A line holding a JSON object that passes ``test``."""

    def check(line: str) -> bool:
        try:
            value = json.loads(line)
        except ValueError:
            return False
        return isinstance(value, dict) and bool(test(value))

    return Want(description, check)


REPLY = Want("an OK or ERR reply", lambda line: line.startswith(("OK", "ERR")))
JSON_REPLY = json_object("a JSON reply", lambda value: "ok" in value)


def _want(test: str | Want) -> Want:
    return starting(test) if isinstance(test, str) else test


class LineClient:
    """
    A blocking client for the line protocol.

    It keeps every line received; L{expect} reads forward from a cursor,
    skipping lines it does not want, while L{seen} searches every line
    received so far, for updates whose order is not fixed.
    """

    def __init__(self, port: int, name: str, ending: bytes = b"\n") -> None:
        self.name = name
        self.ending = ending
        self.sock = socket.create_connection((HOST, port), timeout=READ_TIMEOUT)
        self.lines: list[str] = []
        self.cursor = 0
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    # Sending

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, line: str) -> None:
        self.send_raw(line.encode("utf-8") + self.ending)

    # Receiving

    def _receive(self, deadline: float, wanted: str) -> bool:
        """
        Wait until ``deadline`` for more bytes, splitting off whole lines.

        Return False if the server closed the connection instead.
        """
        try:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = self.sock.recv(65536)
        except TimeoutError:
            problem = f"timed out waiting for {wanted}"
            raise AssertionError(self._report(problem)) from None
        if not data:
            return False

        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        for raw in complete:
            self.lines.append(raw.rstrip(b"\r").decode("utf-8", "replace"))
        return True

    def _more(self, deadline: float, wanted: str) -> None:
        if not self._receive(deadline, wanted):
            raise AssertionError(
                self._report(f"connection closed while waiting for {wanted}")
            )

    def _report(self, problem: str) -> str:
        tail = "\n".join(self.lines[-40:])
        return (
            f"{self.name}: {problem}; last lines:\n{tail}\n"
            f"not yet a line: {self._buffer!r}"
        )

    def read_bytes(self, count: int, timeout: float = READ_TIMEOUT) -> bytes:
        """The next ``count`` bytes not yet split into lines."""
        deadline = time.monotonic() + timeout
        while len(self._buffer) < count:
            self._more(deadline, f"{count} bytes")
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def next_line(self, timeout: float = READ_TIMEOUT) -> str:
        """The line just after the cursor, whatever it is."""
        deadline = time.monotonic() + timeout
        while self.cursor >= len(self.lines):
            self._more(deadline, "a line")
        self.cursor += 1
        return self.lines[self.cursor - 1]

    def expect(self, test: str | Want, timeout: float = READ_TIMEOUT) -> str:
        """
        The first line after the cursor passing ``test``, moving past it.

        A string ``test`` asks for a line starting with it.
        """
        want = _want(test)
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.cursor, len(self.lines)):
                if want(self.lines[i]):
                    self.cursor = i + 1
                    return self.lines[i]
            self.cursor = len(self.lines)
            self._more(deadline, f"a line {want!r}")

    def seen(self, test: str | Want, timeout: float = READ_TIMEOUT) -> str:
        """A line passing ``test`` among every line received, cursor unmoved."""
        want = _want(test)
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for line in self.lines[checked:]:
                if want(line):
                    return line
            checked = len(self.lines)
            self._more(deadline, f"a line {want!r}")

    def expect_json(self, test: Want = JSON_REPLY) -> dict[str, Any]:
        """The first JSON object after the cursor passing ``test``, decoded."""
        value: dict[str, Any] = json.loads(self.expect(test))
        return value

    def expect_event(self, kind: str) -> dict[str, Any]:
        """The next pushed JSON event of ``kind``, decoded."""
        return self.expect_json(
            json_object(f"a JSON {kind} event", lambda v: v.get("event") == kind)
        )

    def expect_closed(self, timeout: float = READ_TIMEOUT) -> None:
        """Read until the server closes the connection."""
        deadline = time.monotonic() + timeout
        try:
            while self._receive(deadline, "the connection to close"):
                pass
        except ConnectionResetError:
            pass

    # Conversations

    def ask(self, line: str) -> str:
        """Send a command and return its text reply line (OK or ERR)."""
        self.send(line)
        return self.expect(REPLY)

"""A throwaway PostgreSQL server for the tests, started from the local binaries."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: Set by .ci/run: without PostgreSQL the tests fail instead of skipping.
REQUIRED = os.environ.get("CHUPACABRA_REQUIRE_POSTGRES") == "1"


def _binaries() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"PostgreSQL is required here: {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Run a private PostgreSQL cluster on a free loopback port; yield its URL."""
    bindir = _binaries()
    if bindir is None:
        unavailable("pg_ctl not found (apt-get install postgresql)")
        return
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no postgres user")
            return
        run_as = ["runuser", "-u", "postgres", "--"]

    folder = tempfile.mkdtemp(prefix="chupacabra-pg-")
    if run_as:
        shutil.chown(folder, "postgres")
    data = os.path.join(folder, "data")
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    subprocess.run(
        [*run_as, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
         "-E", "UTF8", "--no-sync"],
        check=True, timeout=120, **quiet,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*run_as, f"{bindir}/pg_ctl", "-D", data, "-o", options, "-w", "-t", "60",
         "-l", os.path.join(folder, "log"), "start"],
        check=True, timeout=120, **quiet,
    )  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
            timeout=60, **quiet,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Create an empty database on the server and return its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name

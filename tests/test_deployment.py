"""The container deployment files hold together (no Docker engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("CHUPACABRA_REQUIRE_POSTGRES") == "1"


def _compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        if REQUIRED:
            pytest.fail(
                "docker-compose is required here (apt-get install docker-compose)"
            )
        pytest.skip("docker-compose is not installed")
    clean = {k: v for k, v in os.environ.items() if k not in env and "SECRET" not in k}
    return subprocess.run(
        [tool, "-f", str(ROOT / "docker-compose.yml"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _services(config: str) -> dict[str, str]:
    """Split ``docker-compose config`` output into each service's text."""
    blocks: dict[str, list[str]] = {}
    current = None
    in_services = False
    for line in config.splitlines():
        if not line.startswith(" "):
            in_services = line.startswith("services:")
            current = None
            continue
        if in_services and line.startswith("  ") and not line.startswith("   "):
            current = line.strip().rstrip(":")
            blocks[current] = []
        elif current is not None:
            blocks[current].append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def test_compose_file_is_valid_and_keeps_pb_internal() -> None:
    """docker-compose validates the file; only the gateway publishes ports."""
    result = _compose(
        {"CHUPACABRA_SECRET": "s3cret", "POSTGRES_PASSWORD": "pw"}, "config"
    )
    assert result.returncode == 0, result.stderr
    services = _services(result.stdout)
    assert set(services) == {"db", "game", "gateway"}
    assert "ports:" not in services["game"]
    assert "ports:" not in services["db"]
    assert "published: 7653" in services["gateway"]
    assert "published: 7655" in services["gateway"]
    assert "--game-service=tcp:game:7654" in services["gateway"]
    for name in ("game", "gateway"):
        assert "restart: unless-stopped" in services[name]
        assert "postgresql://chupacabra:pw@db:5432/chupacabra" in services[name]
        assert "CHUPACABRA_SECRET: s3cret" in services[name]


def test_compose_refuses_to_run_without_a_secret() -> None:
    """Without CHUPACABRA_SECRET, docker-compose stops with a clear message."""
    result = _compose({"POSTGRES_PASSWORD": "pw"}, "config")
    assert result.returncode != 0
    assert "set CHUPACABRA_SECRET" in result.stderr


def test_image_runs_twistd_in_the_foreground_without_a_pid_file() -> None:
    """The image's entry point keeps twistd in the foreground with no pid file."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["twistd", "-n", "--pidfile="]' in dockerfile
    assert "'.[postgresql]'" in dockerfile

"""docker/: the compose file parses, has the cluster's services, and every command it runs is a
real command of the `taskgraph` and `ray` CLIs (docker itself cannot run here)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from taskgraph.cli.app import app

DOCKER = Path(__file__).resolve().parents[2] / "docker"
RAY = Path(sys.executable).with_name("ray")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_services_make_a_cluster(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "ray-head", "ray-worker", "dashboard", "migrate"} <= set(services)
    storage = services["dashboard"]["environment"]["TASKGRAPH_STORAGE"]
    assert storage.startswith("postgresql+psycopg://") and "@postgres:5432/" in storage
    worker = services["ray-worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    # a CUDA build of torch, from the builder's own index (no registry host in the repository)
    assert worker["build"]["args"]["TORCH_INDEX_URL"] == "${TORCH_CUDA_INDEX_URL:-}"
    for name in ("postgres", "ray-head", "dashboard"):
        for port in services[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)  # nothing exposed beyond the host


def test_taskgraph_commands_exist(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    found = 0
    for name, service in compose["services"].items():
        if "command" not in service:
            continue
        argv = command_of(service)
        if argv[0] != "taskgraph":
            continue
        found += 1
        # Each option the service passes must be accepted: parse it with --help appended.
        result = runner.invoke(app, [*argv[1:], "--help"])
        assert result.exit_code == 0, (name, result.output)
        for option in (a.split("=")[0] for a in argv if a.startswith("--")):
            assert option in result.output, (name, option)
    assert found >= 2


def test_ray_commands_use_real_options(compose: dict[str, Any]) -> None:
    help_text = subprocess.run(
        [str(RAY), "start", "--help"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    for name in ("ray-head", "ray-worker"):
        argv = command_of(compose["services"][name])
        assert argv[:2] == ["ray", "start"], name
        for option in (a.split("=")[0] for a in argv[2:]):
            assert re.search(rf"^\s+{re.escape(option)}\b", help_text, re.MULTILINE), (name, option)


def test_dockerfile_copies_what_exists_and_installs_the_package() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    root = DOCKER.parent
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (root / source).exists(), source
    assert 'pip install ".[all]"' in text
    assert "TORCH_INDEX_URL" in text and "ARG TORCH_VERSION" in text


def test_the_compose_file_advertises_no_address_taskgraph_refuses(compose: dict[str, Any]) -> None:
    # `--address ray://...` is refused (Tune would run the searcher on the cluster, without the
    # driver's database), so neither a comment nor a published port may offer it.
    assert "ray://" not in (DOCKER / "compose.yaml").read_text()
    ports = [p.split(":")[-1] for p in compose["services"]["ray-head"].get("ports", [])]
    assert ports == ["8265"]  # the job server `taskgraph study submit --address` talks to

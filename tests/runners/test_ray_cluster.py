"""A real two-node Ray cluster on this machine, PostgreSQL and optuna-dashboard: `taskgraph study
submit` runs a study across both nodes, every record lands in PostgreSQL, `study status` follows
it and the dashboard serves it.

Two `ray start` processes (a head and a second node, each with its own raylet, one CPU and a
resource of its own, all on free ports, in a temporary directory of their own) make the
cluster.  The job's driver is the `taskgraph` command on the head's PATH, as on a cluster
image; here it is a wrapper that registers the ray runner with the fake evaluator
(:func:`taskgraph.testing.fake_evaluator_factory`), so a trial costs 1.5 s, not a training
run.  Everything started here is stopped by its own pid (never `ray stop`, which would stop
every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from taskgraph.storage import open_repository
from taskgraph.testing import audit_study, known_objective, unavailable

if TYPE_CHECKING:
    from taskgraph.storage.testing import PostgresServer

pytestmark = [pytest.mark.cluster, pytest.mark.ray, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUDGET = 6

# The job's `taskgraph`: the real command line, with the fake evaluator in the Ray workers.
WRAPPER = """\
#!{python}
import sys

from taskgraph.registry import RUNNERS
from taskgraph.runners.builtin import RayRunner
from taskgraph.testing import fake_evaluator_factory

RUNNERS.unregister("ray")
RUNNERS.register("ray", RayRunner(evaluator_factory=fake_evaluator_factory))

from taskgraph.cli.app import main

sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Cluster:
    job_server: str  # http://127.0.0.1:PORT (dashboard and job server)
    gcs: str  # 127.0.0.1:PORT (what `ray.init(address=...)` and a second node join)
    env: dict[str, str]  # what the head and its jobs run with
    node_ids: dict[str, str]  # the node's own resource ("head_node"/"second_node") -> node id


def _node_args() -> list[str]:
    # Every port free and explicit: two nodes of one machine must not collide, and the
    # defaults (52365 for the agent, 10001 for Ray client) may be held by another Ray here.
    return [
        "--num-cpus=1",
        "--object-store-memory=80000000",
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        "--disable-usage-stats",
        "--block",  # stopped by SIGTERM to this process, which stops what it started
    ]


def _processes_under(root: str) -> list[int]:
    # Ray's processes started here name their temp dir on their command line, and so does the
    # job's driver (the wrapper lives there): find what is left of ours, and only ours.
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in cmdline:
            pids.append(int(entry.name))
    return pids


def _stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Start a Ray head and a second node (`ray start --block`); stop both by pid."""
    try:
        import aiohttp  # noqa: F401 - the job server needs ray[default]
    except ImportError:
        unavailable("ray[default] is not installed: no Ray job server")
    # Short path: Ray's socket paths must stay under 108 bytes.
    root = tempfile.mkdtemp(prefix="tgcluster", dir="/tmp")
    wrapper_dir = Path(root) / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "taskgraph"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("TASKGRAPH_STORAGE", "RAY_ADDRESS")}
    env.update(
        PATH=os.pathsep.join([str(wrapper_dir), str(BIN), env.get("PATH", "")]),
        # The workers on both nodes import this checkout (taskgraph.testing), as the driver does.
        PYTHONPATH=os.pathsep.join(
            dict.fromkeys(p for p in [str(REPO), *env.get("PYTHONPATH", "").split(os.pathsep)] if p)
        ),
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
    )
    gcs_port, dashboard_port = free_port(), free_port()
    job_server = f"http://127.0.0.1:{dashboard_port}"
    processes: list[subprocess.Popen[bytes]] = []
    logs = {name: Path(root) / f"{name}.log" for name in ("head", "second")}

    def tails() -> str:
        return "\n".join(
            f"--- {name}:\n{log.read_text(errors='replace')[-2000:]}"
            for name, log in logs.items()
            if log.exists()
        )

    try:
        with logs["head"].open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "ray"),
                        "start",
                        "--head",
                        f"--temp-dir={root}",
                        "--node-ip-address=127.0.0.1",
                        f"--port={gcs_port}",
                        f"--ray-client-server-port={free_port()}",
                        "--include-dashboard=true",
                        "--dashboard-host=127.0.0.1",
                        f"--dashboard-port={dashboard_port}",
                        '--resources={"head_node": 1}',
                        *_node_args(),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 120
        # The second node joins as soon as the head's GCS listens (not after its dashboard).
        while True:
            try:
                socket.create_connection(("127.0.0.1", gcs_port), timeout=2).close()
                break
            except OSError:
                if processes[0].poll() is not None or time.monotonic() > deadline:
                    unavailable(f"the Ray head did not start:\n{tails()}")
                time.sleep(0.3)
        with logs["second"].open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        str(BIN / "ray"),
                        "start",
                        f"--address=127.0.0.1:{gcs_port}",
                        "--node-ip-address=127.0.0.1",
                        '--resources={"second_node": 1}',
                        *_node_args(),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        node_ids: dict[str, str] = {}
        while len(node_ids) < 2:
            if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
                unavailable(f"the two Ray nodes did not start (found {node_ids}):\n{tails()}")
            try:
                nodes = get_json(f"{job_server}/api/v0/nodes?detail=1")["data"]["result"]["result"]
            except (OSError, KeyError, ValueError):
                time.sleep(0.5)
                continue
            node_ids = {
                name: node["node_id"]
                for node in nodes
                if node["state"] == "ALIVE"
                for name in ("head_node", "second_node")
                if name in node.get("resources_total", {})
            }
            time.sleep(0.5)
        yield Cluster(
            job_server=job_server, gcs=f"127.0.0.1:{gcs_port}", env=env, node_ids=node_ids
        )
    finally:
        for process in reversed(processes):  # the second node first, then the head
            _stop(process)
        for pid in _processes_under(root):  # anything a stopped node left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [str(BIN / "taskgraph"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"taskgraph {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_submitted_study_runs_on_both_nodes_into_postgres_and_the_dashboard(
    cluster: Cluster, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    if not (BIN / "optuna-dashboard").exists():
        unavailable("optuna-dashboard is not installed (the `dashboard` extra)")
    storage = postgres_server.create_database("cluster")
    spec = tmp_path / "cluster.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            name: cluster
            target: synth_target
            candidates: [synth_related, synth_conflict, synth_unrelated]
            encoder: {{name: tiny-bert, max_length: 32}}
            budget: {{trials: {BUDGET}}}
            sampler: {{name: random, seed: 0}}
            runner:
              name: ray
              max_concurrent_trials: 2
              resources: {{cpu: 1}}
              experiment_dir: {tmp_path / "tune"}
            """
        )
    )
    env = cluster.env
    out = run_cli(
        [
            "study",
            "submit",
            str(spec),
            "--address",
            cluster.job_server,
            "--cluster-address",
            cluster.gcs,
            "--storage",
            storage,
        ],
        env,
    )
    assert "submitted study 'cluster' as Ray job " in out
    job_id = out.split("as Ray job ", 1)[1].split(";", 1)[0].strip()

    dashboard_port = free_port()
    dashboard = subprocess.Popen(
        [
            str(BIN / "optuna-dashboard"),
            storage,
            "--host",
            "127.0.0.1",
            "--port",
            str(dashboard_port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # `study status` follows the job from the database while it runs.
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 300  # a bound, not the expected time (about 20 s)
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen.append(
                json.loads(
                    run_cli(["study", "status", "cluster", "--storage", storage, "--json"], env)
                )
            )
            if seen[-1]["n_done"] >= BUDGET:
                break
            job = get_json(f"{cluster.job_server}/api/jobs/{job_id}")
            if job.get("status") in ("FAILED", "STOPPED"):
                logs = get_json(f"{cluster.job_server}/api/jobs/{job_id}/logs").get("logs", "")
                pytest.fail(f"the Ray job {job_id} {job['status']}:\n{logs[-4000:]}")
        if seen[-1]["n_done"] != BUDGET:
            logs = get_json(f"{cluster.job_server}/api/jobs/{job_id}/logs").get("logs", "")
            pytest.fail(f"the study did not finish: {seen[-1]}\njob log:\n{logs[-4000:]}")
        assert seen[-1]["n_complete"] == BUDGET and seen[-1]["n_running"] == 0, seen[-1]
        done_counts = [s["n_done"] for s in seen]
        assert done_counts == sorted(done_counts)
        assert any(s["n_running"] > 0 or 0 < s["n_done"] < BUDGET for s in seen), seen

        while job.get("status") not in ("SUCCEEDED", "FAILED", "STOPPED"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
            job = get_json(f"{cluster.job_server}/api/jobs/{job_id}")
        assert job["status"] == "SUCCEEDED", job

        # Every record is in PostgreSQL, each with the Ray node that trained it: both nodes.
        with open_repository(storage) as repo:
            runs = sorted(repo.runs(study="cluster"), key=lambda r: r.trial_number)
        assert {r.trial_number for r in runs} <= set(range(BUDGET))
        # every trial recorded once (or repeating a recorded configuration), nothing twice
        audit = audit_study("cluster", storage, seeds=1)
        assert (audit.counted, audit.lost, audit.duplicated) == (BUDGET, 0, 0), audit
        assert all(r.status == "complete" for r in runs)
        for run in runs:
            assert run.objective == pytest.approx(known_objective(run.trial_config()))
        nodes = Counter(str(r.host).rsplit("ray-node:", 1)[-1] for r in runs)
        assert set(nodes) == set(cluster.node_ids.values()), (nodes, cluster.node_ids)

        # optuna-dashboard serves the study and its trials.
        base = f"http://127.0.0.1:{dashboard_port}"
        while True:
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                if dashboard.poll() is not None or time.monotonic() > deadline:
                    stderr = dashboard.stderr.read().decode() if dashboard.stderr else ""
                    unavailable(f"optuna-dashboard did not start: {stderr[-2000:]}")
                time.sleep(0.3)
        (study,) = [s for s in studies if s["study_name"] == "cluster"]
        detail = get_json(f"{base}/api/studies/{study['study_id']}", timeout=30)
        assert len(detail["trials"]) == BUDGET
        assert {t["state"] for t in detail["trials"]} == {"Complete"}
    finally:
        _stop(dashboard, timeout=10)

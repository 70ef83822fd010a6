"""The ray runner's refusals before a study is written: addresses that are no Ray GCS, trial
resources no node can hold; and what a run prints and records when Ray reports trouble."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError
from taskgraph.spec import spec_from_dict

runner = CliRunner()

SPEC = """\
name: addresses
target: synth_target
candidates: [synth_related]
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _run_refused(tmp_path: Path, *args: str) -> str:
    """Return the one error line of `study run` refusing ``args``; nothing may be written."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    db = tmp_path / "r.db"
    code, _, err = invoke("study", "run", str(spec), "--storage", f"sqlite:///{db}", *args)
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code != 0 and len(errors) == 1, err
    assert not db.exists()
    return errors[0]


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:  # accepts, reads, never answers (as a web or client port would not)
        self.request.recv(1024)
        time.sleep(30)


@pytest.fixture
def not_a_gcs() -> Iterator[int]:
    """Return the port of a TCP server that is no Ray GCS (all interfaces: Ray resolves
    127.0.0.1 to this machine's address)."""
    server = socketserver.ThreadingTCPServer(("0.0.0.0", 0), _Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_port_that_is_not_a_ray_gcs_is_one_line_within_seconds(
    tmp_path: Path, not_a_gcs: int
) -> None:
    started = time.monotonic()
    error = _run_refused(tmp_path, "--address", f"127.0.0.1:{not_a_gcs}")
    assert time.monotonic() - started < 60
    assert error.startswith(f"error: --address (runner.address) 127.0.0.1:{not_a_gcs}: ")
    assert "not a Ray cluster's GCS address" in error


def test_ray_client_and_other_schemes_are_refused_before_anything(tmp_path: Path) -> None:
    error = _run_refused(tmp_path, "--address", "ray://127.0.0.1:10001")
    assert "Ray Client (ray://) is not supported" in error and "study submit" in error
    error = _run_refused(tmp_path, "--address", "http://127.0.0.1:6390")
    assert "got a http:// address" in error
    from taskgraph.runners.ray.address import check_ray_address

    with pytest.raises(ConfigError, match=r"^runner\.address ray://h:10001: Ray Client"):
        check_ray_address("ray://h:10001", flag="runner.address")


def test_an_address_without_a_host_is_one_line_without_rays_traceback(tmp_path: Path) -> None:
    error = _run_refused(tmp_path, "--address", ":6390")
    assert error.endswith(":6390: expected host:port, got no host")


def test_submit_names_the_address_given_and_the_job_server(tmp_path: Path) -> None:
    from taskgraph.runners.ray.address import check_job_server_address

    with pytest.raises(ConfigError, match=r"127\.0\.0\.1:6390: study submit needs the Ray job "):
        check_job_server_address("127.0.0.1:6390")


def test_a_trial_wanting_more_cpus_than_the_local_ray_is_refused_at_validate(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    code, _, err = invoke(
        "study", "validate", str(spec), "--set", "runner={name: ray, resources: {cpu: 4}}"
    )
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "runner.resources.cpu: 4 CPUs per trial, but the local Ray has 2" in err
    code, _, err = invoke(
        "study", "validate", str(spec),
        "--set", "runner={name: ray, num_cpus: 4, resources: {cpu: 4}}",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = invoke(  # a cluster's nodes are compared once connected
        "study", "validate", str(spec),
        "--set", "runner={name: ray, address: auto, resources: {cpu: 4}}",
    )  # fmt: skip
    assert code == 0, err


def test_a_trial_wanting_a_gpu_on_a_machine_without_one_is_refused_before_the_study(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from taskgraph.runners import builtin

    spec = spec_from_dict({
        "name": "gpu", "target": "tgt", "candidates": ["good"],
        "runner": {"name": "ray", "resources": {"gpu": 1}},
    })  # fmt: skip
    monkeypatch.setattr(builtin, "local_gpu_count", lambda: 0)
    with pytest.raises(ConfigError, match=r"^runner\.resources\.gpu: 1 GPUs per trial, but"):
        builtin.RAY.build_evaluator(spec)
    monkeypatch.setattr(builtin, "local_gpu_count", lambda: 1)
    builtin.RAY.build_evaluator(spec)


def test_a_trial_wanting_a_gpu_is_left_to_a_clusters_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cluster's address, this machine's GPUs do not count: its nodes run the trials."""
    from taskgraph.runners import builtin
    from taskgraph.runners.ray import address

    spec = spec_from_dict({
        "name": "gpu", "target": "tgt", "candidates": ["good"],
        "runner": {
            "name": "ray", "address": "head:6379", "resources": {"gpu": 1},
            "experiment_dir": str(tmp_path / "tune"),
        },
    })  # fmt: skip
    monkeypatch.setattr(builtin, "local_gpu_count", lambda: 0)
    checked: list[str] = []
    monkeypatch.setattr(address, "check_ray_address", lambda address, flag: checked.append(address))
    assert builtin.RAY.build_evaluator(spec) is None
    assert checked == ["head:6379"]


def test_a_cluster_whose_nodes_cannot_hold_a_trial_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ray

    from taskgraph.runners.ray import runner as ray_runner

    nodes = [
        {"Alive": True, "Resources": {"CPU": 8.0}},
        {"Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}},
        {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}},
    ]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    wanted = SimpleNamespace(resources=SimpleNamespace(cpu=8, gpu=2))
    ray_runner._check_cluster_resources(wanted, address="head:6379")  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "warning: runner.resources.gpu 2: no node of the Ray cluster at head:6379 has more "
        "than 1 GPU; its trials wait until an autoscaler adds such a node\n"
    )


def test_ray_messages_go_to_stderr_while_the_runner_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ray._private import worker as ray_worker

    from taskgraph.runners.ray.runner import ray_messages_to_stderr

    message = {"lines": ["A worker died or was killed"], "pid": "raylet", "is_err": False}
    with ray_messages_to_stderr():
        ray_worker.print_to_stdstream(dict(message), ignore_prefix=False)
    out, err = capsys.readouterr()
    assert out == "" and "A worker died or was killed" in err
    ray_worker.print_to_stdstream(dict(message), ignore_prefix=False)  # restored after
    assert "A worker died" in capsys.readouterr().out


def _closed_address() -> tuple[socket.socket, str]:
    """Return a bound, never listening socket (keep it open) and its 127.0.0.1:PORT."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"127.0.0.1:{sock.getsockname()[1]}"


def test_address_local_starts_the_same_local_ray_as_no_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`local` went through the cluster branch: `ray.init(address="local")` without num_cpus
    (a Ray of every core) and with a dashboard, then a check of the cluster's nodes."""
    import ray

    from taskgraph.runners.ray import runner as ray_runner
    from taskgraph.runners.ray.address import check_ray_address
    from taskgraph.spec.models import RayRunnerSpec

    check_ray_address("local", flag="runner.address")  # no cluster to look for
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "nodes", lambda: pytest.fail("no cluster to compare with"))
    for address in (None, "local"):
        this = SimpleNamespace(runner=RayRunnerSpec(address=address, num_cpus=3))
        ray_runner.RayTuneRunner._start_ray(this)  # type: ignore[arg-type]
    assert calls[0] == calls[1]
    assert calls[1]["address"] == "local" and calls[1]["num_cpus"] == 3
    assert calls[1]["include_dashboard"] is False
    from taskgraph.runners.ray.address import cluster_address

    assert cluster_address("local") is None and cluster_address(None) is None
    assert cluster_address("auto") == "auto"


def test_address_local_gets_the_local_rays_cpu_check(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    code, _, err = invoke(
        "study", "validate", str(spec),
        "--set", "runner={name: ray, address: local, resources: {cpu: 4}}",
    )  # fmt: skip
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "runner.resources.cpu: 4 CPUs per trial, but the local Ray has 2" in err


def test_resume_from_a_dead_stored_address_with_address_local(tmp_path: Path) -> None:
    """The address stored with the study (by `study submit` or `study run --address`) could
    not be left once its cluster was gone: `--address local` is the way, and the error says so."""
    from taskgraph.testing import run_fake_study

    sock, address = _closed_address()
    with sock:
        url = run_fake_study(
            {"name": "gone", "target": "synth_target", "candidates": ["synth_related"],
             "runner": {"name": "ray", "address": address, "resources": {"cpu": 4}},
             "budget": {"trials": 1}},
            f"sqlite:///{tmp_path / 'gone.db'}",
        )  # fmt: skip
        for runner_args in ((), ("--runner", "ray")):
            code, _, err = invoke("study", "resume", "gone", "--storage", url, *runner_args)
            assert code == 1 and err.count("\n") == 1, err
            assert err.startswith(f"error: runner.address stored with study 'gone' {address}: ")
            assert err.rstrip().endswith(
                "give another --address, `--address local` for a Ray of this machine, or run "
                "with --runner local"
            ), err
        # `--address local` replaces the stored address with the local Ray and its checks
        # (here: 4 CPUs per trial do not fit its 2), before anything runs.
        code, _, err = invoke(
            "study", "resume", "gone", "--storage", url, "--address", "local", "--trials", "2"
        )
    assert code == 2 and err.count("\n") == 1, err
    assert "runner.resources.cpu: 4 CPUs per trial, but the local Ray has 2" in err


def test_num_cpus_with_a_cluster_address_is_a_warning(tmp_path: Path) -> None:
    """`runner.num_cpus` sizes only the local Ray taskgraph starts: with an address it was
    silently ignored."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    code, _, err = invoke(
        "study", "validate", str(spec), "--set", "runner={name: ray, address: auto, num_cpus: 1}"
    )
    assert code == 0, err
    (line,) = err.splitlines()
    assert line.startswith("warning: ") and "runner.num_cpus 1 is ignored" in line
    assert "runner.address auto" in line
    for local in ("", "address: local, "):  # the local Ray: num_cpus is its size
        code, _, err = invoke(
            "study", "validate", str(spec), "--set", f"runner={{name: ray, {local}num_cpus: 1}}"
        )
        assert code == 0 and err == "", err
    sock, address = _closed_address()
    with sock:  # once per command, before the address's own error
        spec_run = tmp_path / "run"
        spec_run.mkdir()
        run_spec = spec_run / "spec.yaml"
        run_spec.write_text(SPEC, encoding="utf-8")
        code, _, err = invoke(
            "study", "run", str(run_spec), "--storage", f"sqlite:///{spec_run / 'r.db'}",
            "--address", address, "--set", "runner.num_cpus=1",
        )  # fmt: skip
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2, err
    assert lines[0].startswith("warning: ") and f"runner.address {address}" in lines[0]
    assert lines[1].startswith(f"error: --address (runner.address) {address}: no Ray cluster")
    assert not (spec_run / "r.db").exists()


def test_submit_to_a_job_server_that_refuses_is_the_environment_not_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection was a ConfigError (exit 2, the input); it is exit 1, as the
    address check's own refusal is; no study is written."""
    from taskgraph.errors import TaskgraphError
    from taskgraph.runners.ray import address as ray_address
    from taskgraph.runners.ray.address import ClusterUnavailableError
    from taskgraph.runners.ray.submit import submit_study

    spec = spec_from_dict({
        "name": "refused", "target": "synth_target", "candidates": ["synth_related"],
        "runner": {"name": "ray"},
    })  # fmt: skip
    url = f"sqlite:///{tmp_path / 's.db'}"
    # The port closes between the address check and the client (the head just went away).
    monkeypatch.setattr(ray_address, "check_job_server_address", lambda address: None)
    sock, address = _closed_address()
    with sock, pytest.raises(TaskgraphError) as raised:
        submit_study(spec, storage_url=url, address=f"http://{address}")
    assert isinstance(raised.value, ClusterUnavailableError), raised.value
    assert not isinstance(raised.value, ConfigError)
    assert str(raised.value).startswith(
        f"--address http://{address}: no Ray job server answers there ("
    )
    assert not (tmp_path / "s.db").exists()


def test_local_in_any_case_and_spacing_is_no_cluster() -> None:
    from taskgraph.runners.ray.address import check_ray_address, cluster_address

    for written in ("local", " LOCAL ", "Local"):
        assert cluster_address(written) is None
        check_ray_address(written)  # nothing to check: taskgraph's own Ray
    assert cluster_address("head:6379") == "head:6379"


def test_an_address_without_a_port_is_refused(tmp_path: Path) -> None:
    from taskgraph.runners.ray.address import split_host_port

    assert split_host_port("http://head:8265") == ("head", 8265)
    assert split_host_port("head:6379") == ("head", 6379)
    for address in ("http://head", "head"):
        with pytest.raises(ValueError, match=f"^expected host:port, got '{address}'$"):
            split_host_port(address)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    db = tmp_path / "s.db"
    code, _, err = invoke(
        "study", "submit", str(spec), "--address", "http://head", "--storage", f"sqlite:///{db}"
    )
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(errors) == 1, err
    assert errors[0].endswith("http://head: expected host:port, got 'http://head'")
    assert not db.exists()


def test_an_https_job_server_address_is_accepted(not_a_gcs: int) -> None:
    from taskgraph.runners.ray.address import check_job_server_address

    check_job_server_address(f"https://127.0.0.1:{not_a_gcs}")
    check_job_server_address(f"HTTP://127.0.0.1:{not_a_gcs}")
    with pytest.raises(ConfigError, match="study submit needs the Ray job server"):
        check_job_server_address(f"tcp://127.0.0.1:{not_a_gcs}")


def test_a_gcs_that_refuses_the_probe_for_its_token_is_a_gcs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Ray GCS with token authentication answers the probe UNAUTHENTICATED (or
    PERMISSION_DENIED): a GCS all the same; a gRPC server without the method is not one."""
    import grpc

    from taskgraph.runners.ray.address import _gcs_refusal

    class Refusal(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode) -> None:
            self._code = code

        def code(self) -> grpc.StatusCode:
            return self._code

    answer: list[grpc.StatusCode] = []

    def call(request: bytes, timeout: float) -> bytes:
        raise Refusal(answer[-1])

    closed: list[str] = []
    channel = SimpleNamespace(
        unary_unary=lambda method, **kwargs: call, close=lambda: closed.append("closed")
    )
    monkeypatch.setattr(grpc, "insecure_channel", lambda target: channel)
    for code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        answer.append(code)
        assert _gcs_refusal("head:6379") is None
    answer.append(grpc.StatusCode.UNIMPLEMENTED)
    assert _gcs_refusal("head:6379") == "a gRPC server answers, but not Ray's GCS"
    answer.append(grpc.StatusCode.DEADLINE_EXCEEDED)
    assert _gcs_refusal("head:6379") == "no Ray GCS answered within 5 s"
    assert closed == ["closed"] * 4


def test_address_auto_with_no_cluster_is_the_environment_not_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray._private import services

    from taskgraph.runners.ray.address import ClusterUnavailableError, check_ray_address

    def no_cluster(address: str) -> str:
        raise ConnectionError("Could not find any running Ray instance.\nmore lines")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address_or_die", no_cluster)
    with pytest.raises(ClusterUnavailableError) as raised:
        check_ray_address("auto")
    assert not isinstance(raised.value, ConfigError)
    assert str(raised.value) == "--address auto: Could not find any running Ray instance."
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    db = tmp_path / "r.db"
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", f"sqlite:///{db}", "--address", "auto"
    )
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 1 and len(errors) == 1, err
    assert errors[0].endswith("auto: Could not find any running Ray instance.")
    assert not db.exists()

    def unreadable(address: str) -> str:
        raise ValueError("Malformed address\nmore lines")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address_or_die", unreadable)
    with pytest.raises(ConfigError, match=r"^--address head:x: Malformed address$"):
        check_ray_address("head:x")

"""``taskgraph study``: bad values from the command line, trust_remote_code, failed studies."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app

runner = CliRunner()

SPEC = """\
name: inputs
target: synth_target
candidates: [synth_related]
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str = SPEC) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_set_errors_name_the_option_not_a_line_of_the_file(tmp_path: Path) -> None:
    spec = write(tmp_path)
    code, _, err = invoke("study", "validate", str(spec), "--set", "search.max_steps=1.0e+300")
    assert code == 2
    assert err == "error: --set search.max_steps: expected an integer, got 1e+300\n"
    code, _, err = invoke("study", "validate", str(spec), "--set", "search={batch_size: 0}")
    assert code == 2
    assert err.startswith("error: --set search: search.batch_size: must be >= 1")


def test_wall_time_and_trials_errors_name_the_option(tmp_path: Path) -> None:
    spec = write(tmp_path)
    db = tmp_path / "t.db"
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", f"sqlite:///{db}", "--wall-time", "nan"
    )
    assert code == 2
    assert err.startswith("error: --wall-time: expected a duration")
    assert str(spec) not in err
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", f"sqlite:///{db}", "--wall-time", "-5"
    )
    assert code == 2 and err.startswith("error: --wall-time: ")
    code, _, err = invoke(
        "study", "run", str(spec), "--storage", f"sqlite:///{db}", "--trials", "1000000000"
    )
    assert code == 2 and err.startswith("error: --trials: ")
    assert not db.exists()


def test_trust_remote_code_needs_the_command_line_flag(tmp_path: Path) -> None:
    # MiniLM: its options go to from_pretrained, which takes trust_remote_code (tiny-bert's
    # are BertConfig fields, and validate refuses the option there as every trial would).
    spec = write(tmp_path, SPEC + "encoder: {name: minilm, options: {trust_remote_code: true}}\n")
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2
    assert err.startswith(f"error: {spec}: encoder.options.trust_remote_code: ")
    assert "--trust-remote-code" in err
    code, out, err = invoke("study", "validate", str(spec), "--trust-remote-code")
    assert code == 0 and out.startswith("valid"), err


def test_alias_bomb_is_one_error_line(tmp_path: Path) -> None:
    levels = ['a0: &a0 ["${HOME}", "${HOME}", "${HOME}", "${HOME}", "${HOME}"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    spec = write(tmp_path, SPEC + "encoder:\n  options:\n" + "".join(f"    {x}\n" for x in levels))
    assert len(spec.read_bytes()) < 1000
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2
    assert err.count("\n") == 1 and "aliases" in err


def test_a_study_whose_every_trial_failed_exits_non_zero(tmp_path: Path) -> None:
    # The table's only row for this target is a task set the study never asks (every
    # candidate has a row, so validate passes; the search proposes single auxiliaries), so
    # the tabular runner fails every trial; with 2 trials and max_failures 5 the study ends
    # on its budget, and exited 0 before.
    table = tmp_path / "t.csv"
    table.write_text(
        "target,task_set,split,value,higher_is_better\na,a+b+c,val,0.5,1\n", encoding="utf-8"
    )
    spec = write(
        tmp_path,
        "name: all_fail\ntarget: a\ncandidates: [b, c]\nsampler: {name: random, seed: 0}\n"
        f"runner: {{name: tabular, table: {table}}}\nbudget: {{trials: 2, max_failures: 5}}\n"
        "search: {auxiliaries: {max_size: 1}}\n",
    )
    db = tmp_path / "t.db"
    code, out, err = invoke("study", "run", str(spec), "--storage", f"sqlite:///{db}", "-q")
    assert code == 1, (out, err)
    assert "2 failed" in out
    assert "every trial of study 'all_fail' failed" in err


def test_set_runner_takes_the_shorthand_and_refuses_other_values_in_one_line(
    tmp_path: Path,
) -> None:
    spec = write(tmp_path)
    code, out, err = invoke("study", "validate", str(spec), "--set", "runner=ray")
    assert code == 0, err  # a traceback before: the name was read as a mapping
    assert "runner ray" in out
    code, _, err = invoke("study", "validate", str(spec), "--set", "runner=7")
    assert code == 2
    assert err == "error: --set runner: must be a runner name or a mapping, got int\n"


def test_an_empty_runner_address_from_the_file_or_set_is_one_line_and_no_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--address ""` was refused already; the same value from the file or from --set
    # silently started a local Ray.
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "r.db"
    plain = tmp_path / "plain.yaml"
    plain.write_text(SPEC, encoding="utf-8")
    in_file = write(tmp_path, SPEC + 'runner: {name: ray, address: ""}\n')
    run = ["--storage", f"sqlite:///{db}", "--quiet"]
    for args, message in (
        (["validate", str(in_file)], f"error: {in_file}:4: runner.address: is empty"),
        (["run", str(in_file), *run], f"error: {in_file}:4: runner.address: is empty"),
        (["validate", str(in_file), "--set", "runner.address=' '"],
         "error: --set runner.address: is empty"),
        (["run", str(in_file), "--set", 'runner.address=""', *run],
         "error: --set runner.address: is empty"),
        (["run", str(plain), "--set", "runner={name: ray, address: ''}", *run],
         "error: --set runner: runner.address: is empty"),
    ):  # fmt: skip
        code, out, err = invoke("study", *args)
        assert code == 2 and out == "" and err.startswith(message), (args, err)
        assert err.count("\n") == 1 and "give a Ray cluster address" in err
        assert not db.exists()


def test_a_ray_address_where_nothing_answers_is_one_line_and_no_study(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        db = tmp_path / "r.db"
        for command, address in (
            ("run", f"127.0.0.1:{port}"),
            ("run", f"ray://127.0.0.1:{port}"),
            ("submit", f"http://127.0.0.1:{port}"),
        ):
            code, _, err = invoke(
                "study", command, str(write(tmp_path)), "--storage", f"sqlite:///{db}",
                "--address", address,
            )  # fmt: skip
            errors = [line for line in err.splitlines() if not line.startswith("warning:")]
            client = address.startswith("ray://")
            # ray:// is a wrong address (exit 2); a cluster not running is the environment (1)
            assert code == (2 if client else 1) and len(errors) == 1, err
            assert errors[0].startswith("error: --address") and address in errors[0]
            expected = (
                "Ray Client (ray://) is not supported" if client else "no Ray cluster answers there"
            )
            assert expected in errors[0], errors[0]
            assert not db.exists()
    code, _, err = invoke("study", "run", str(write(tmp_path)), "--storage", f"sqlite:///{db}",
                          "--address", "not-an-address", "--quiet")  # fmt: skip
    assert code == 2 and err.strip().endswith(
        "not-an-address: Invalid address format: not-an-address"
    )
    assert not db.exists()


def test_a_bad_storage_url_names_where_it_came_from_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write(tmp_path, SPEC + 'storage: "foo://"\n')
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2 and err.startswith(
        f"error: {spec}: storage: storage URL 'foo://' has unsupported"
    )
    plain = write(tmp_path)
    unsupported = "storage URL 'bogus://' has unsupported database 'bogus'"
    for args, env, message in (
        (["--storage", ""], None, "error: --storage is empty: give a database URL"),
        (["--storage", "sqlite://"], None, "error: --storage: storage URL 'sqlite://' is an in-memory"),
        (["--storage", "sqlite://demo.db"], None, "error: --storage: storage URL 'sqlite://demo.db' "
         "is an in-memory SQLite database, which the study's connections cannot share: did you "
         "mean 'sqlite:///demo.db' (three slashes)?"),
        (["--storage", "sqlite:///x.db?mode=ro"], None, "error: --storage: storage URL "
         "'sqlite:///x.db?mode=ro' has query parameters (mode)"),
        ([], "bogus://", f"error: TASKGRAPH_STORAGE: {unsupported}"),
    ):  # fmt: skip
        if env is None:
            monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
        else:
            monkeypatch.setenv("TASKGRAPH_STORAGE", env)
        monkeypatch.chdir(tmp_path)
        code, out, err = invoke("study", "run", str(plain), "--quiet", *args)
        assert code != 0 and out == "" and err.startswith(message), err
        assert err.count("\n") == 1
        assert not list(tmp_path.glob("*.db")), list(tmp_path.iterdir())


def test_resume_blames_a_dead_stored_ray_address_on_the_study_not_on_address(
    tmp_path: Path,
) -> None:
    # The cluster the study ran on is gone: the error named `--address (runner.address)`,
    # which the user never gave.
    import socket

    import optuna

    from taskgraph.testing import run_fake_study

    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        url = run_fake_study(
            {"name": "gone", "target": "synth_target", "candidates": ["synth_related"],
             "runner": {"name": "ray", "address": address}, "budget": {"trials": 1}},
            f"sqlite:///{tmp_path / 'gone.db'}",
        )  # fmt: skip
        code, out, err = invoke("study", "resume", "gone", "--storage", url, "--trials", "2")
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith(
            f"error: runner.address stored with study 'gone' {address}: no Ray cluster answers"
        ), err
        assert (
            "give another --address, `--address local` for a Ray of this machine, or run with "
            "--runner local"
        ) in err
        # An address given now is blamed on --address, as on `study run`.
        code, _, err = invoke(
            "study", "resume", "gone", "--storage", url, "--address", address, "--trials", "2"
        )
        assert code == 1 and err.startswith(f"error: --address (runner.address) {address}: "), err
    study = optuna.load_study(study_name="gone", storage=url)
    assert len(study.trials) == 1

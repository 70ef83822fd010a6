"""``taskgraph study ...``: validate, errors, status/list/show on a study made by the engine."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.engine import StudyEngine
from taskgraph.spec import spec_from_dict
from taskgraph.testing import load_fakes

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
STUDY_COMMANDS = ["validate", "run", "resume", "submit", "status", "list", "show", "screen"]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_fake_study(tmp_path_factory: pytest.TempPathFactory, trials: int) -> str:
    """Run study `fake` (a fake evaluator; candidate `boom` fails) for ``trials`` trials in a
    new SQLite database and return its URL."""
    fakes = load_fakes()
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fake.db'}"
    spec = spec_from_dict(
        {
            "name": "fake",
            "target": "tgt",
            "candidates": ["good", "bad", "meh", "boom"],
            "search": {"sharing": ["hard", "soft"]},
            "sampler": {"name": "random", "seed": 1},
            "budget": {"trials": trials},
        }
    )
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=fakes.FakeEvaluator(fail_with=["boom"]),
        sharing_spaces=fakes.SHARING_SPACES,
    )
    engine.run()
    engine.close()
    return url


@pytest.fixture(scope="module")
def fake_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of a database holding study `fake` (6 trials, one failure, by a fake)."""
    return run_fake_study(tmp_path_factory, trials=6)


def test_every_study_command_has_help() -> None:
    code, out, _ = invoke("study", "--help")
    assert code == 0
    for command in STUDY_COMMANDS:
        assert command in out
        code, text, _ = invoke("study", command, "--help")
        assert code == 0 and len(text.strip().splitlines()) > 3, command
        assert "--storage" in text or command == "validate", command
    code, text, _ = invoke("dashboard", "--help")
    assert code == 0 and "--storage" in text and "--port" in text


def test_validate_every_shipped_spec() -> None:
    specs = sorted((REPO / "searchspaces").glob("*.yaml"))
    assert {p.name for p in specs} >= {
        "demo.yaml",
        "tr_ner_aux.yaml",
        "bioner_aux.yaml",
        "cs_ner_dep.yaml",
    }
    for path in specs:
        code, out, err = invoke("study", "validate", str(path), "--json")
        assert code == 0, (path, err)
        data = json.loads(out)
        assert data["valid"] is True and data["parameters"], path


def test_tr_ner_aux_searches_every_sharing_architecture() -> None:
    from taskgraph.models.sharing import SHARING_ARCHITECTURES

    code, out, _ = invoke(
        "study", "validate", str(REPO / "searchspaces" / "tr_ner_aux.yaml"), "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert set(data["sharing"]) >= {
        "hard",
        "hierarchical",
        "soft",
        "cross_stitch",
        "label_embedding",
    }
    assert set(data["sharing"]) <= set(SHARING_ARCHITECTURES.names())


def test_validate_reports_one_line_with_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: synth_target\ncandidates: [synth_related]\nsampler: cmaes\n")
    code, _, err = invoke("study", "validate", str(bad))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert err.startswith(
        f"error: {bad}: sampler.name: unknown sampler 'cmaes'; allowed: bandit, gp, graph, random, tpe"
    )
    bad.write_text("name: x\ntarget: synth_target\ncandidates: [synth_nope]\n")
    code, _, err = invoke("study", "validate", str(bad))
    assert code == 2 and "candidates[0]: unknown" in err and "synth_nope" in err


def test_validate_json_answers_on_stdout_when_the_spec_is_refused(tmp_path: Path) -> None:
    """A script that reads `--json` gets ``"valid": false`` and the error, not an empty stdout;
    the one error line and the exit status are those of every refused spec."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntarget: synth_target\ncandidates: [synth_related]\nsampler: cmaes\n")
    code, out, err = invoke("study", "validate", str(bad), "--json")
    assert code == 2
    answer = json.loads(out)
    assert answer == {"valid": False, "file": str(bad), "error": err.strip()[len("error: ") :]}
    assert "unknown sampler 'cmaes'" in answer["error"]
    assert err.strip().count("\n") == 0


def test_validate_json_answers_on_stdout_when_the_spec_file_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the system refuses to read (exit 1: the environment's, not the spec's fault) is
    answered on stdout too, not only the file errors the spec reader words itself."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")

    def refuse(self: Path) -> bytes:  # tests run as root here: chmod would not stop a read
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, out, err = invoke("study", "validate", str(spec), "--json")
    assert code == 1
    assert json.loads(out) == {
        "valid": False,
        "file": str(spec),
        "error": f"{spec}: permission denied",
    }
    assert err.strip() == f"error: {spec}: permission denied"


def test_run_refuses_a_bad_spec_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntarget: synth_target\ncandidates: [synth_related]\nbudget: {trials: 0}\n"
    )
    db = tmp_path / "t.db"
    code, _, err = invoke("study", "run", str(bad), "--storage", f"sqlite:///{db}")
    assert code == 2 and "budget.trials" in err
    assert not db.exists()


def test_show_json_has_the_promised_fields(fake_study: str) -> None:
    code, out, err = invoke("study", "show", "fake", "--storage", fake_study, "--json")
    assert code == 0, err
    report: dict[str, Any] = json.loads(out)
    for key in ("name", "n_complete", "n_failed", "n_pruned", "baseline", "best", "gains"):
        assert key in report
    assert report["name"] == "fake" and report["n_done"] == 6
    assert report["n_complete"] + report["n_failed"] + report["n_pruned"] == 6
    assert report["baseline"]["task_set"] == ["tgt"]
    assert report["baseline"]["score"] == pytest.approx(0.5)
    best = report["best"]
    assert set(best) >= {"task_set", "configuration", "score", "measured_absolute_gain"}
    assert best["score"] == max(g["value"] for g in report["gains"])
    assert best["measured_absolute_gain"] == pytest.approx(best["score"] - 0.5)
    assert best["measured_relative_gain"] == pytest.approx((best["score"] - 0.5) / 0.5)
    assert "tgt" in best["task_set"] and best["configuration"]["target"] == "tgt"
    assert all(f["reason"] == "fake failure: loss is NaN" for f in report["failures"])
    # --top applies with --json too (it was ignored); without it every trial is listed
    assert len(report["gains"]) > 2
    code, out, _ = invoke("study", "show", "fake", "--storage", fake_study, "--json", "--top", "2")
    assert code == 0 and len(json.loads(out)["gains"]) == 2
    import taskgraph

    assert taskgraph.study_summary("fake", storage=fake_study) == report  # the same default


def test_status_list_and_table_output(fake_study: str) -> None:
    code, out, _ = invoke("study", "status", "fake", "--storage", fake_study, "--json")
    assert code == 0 and json.loads(out)["n_done"] == 6 and json.loads(out)["budget"] == 6
    status = json.loads(out)
    code, out, _ = invoke("study", "list", "--storage", fake_study, "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["fake"] and rows[0]["target"] == "tgt"
    assert status == rows[0]  # one study, the same fields from either command
    code, out, _ = invoke("study", "show", "fake", "--storage", fake_study)
    assert code == 0 and "baseline (target alone" in out and "best (trial" in out
    assert "measured gain +0." in out and "% of the baseline)" in out


def test_unknown_study_and_missing_database(fake_study: str, tmp_path: Path) -> None:
    code, _, err = invoke("study", "show", "nope", "--storage", fake_study)
    assert code == 2 and "no study 'nope'" in err and "known studies: fake" in err
    code, _, err = invoke("study", "status", "x", "--storage", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "no records database" in err
    assert not (tmp_path / "none.db").exists()


def test_storage_precedence_option_over_env(
    fake_study: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TASKGRAPH_STORAGE", fake_study)
    code, out, _ = invoke("study", "status", "fake", "--json")
    assert code == 0 and json.loads(out)["name"] == "fake"
    code, _, err = invoke(
        "study", "status", "fake", "--storage", f"sqlite:///{tmp_path / 'other.db'}"
    )
    assert code == 2 and "other.db" in err


def test_resume_checks_the_stored_spec(fake_study: str) -> None:
    code, _, err = invoke("study", "resume", "fake", "--storage", fake_study, "--json")
    # The fake's tasks are not in the catalog, so the study cannot be trained again here:
    # resume checks the stored spec like `run` does and says which task is unknown.
    assert code == 2 and "unknown task" in err


def test_submit_creates_the_study_and_sends_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.runners import ray as ray_runner

    sent: dict[str, Any] = {}

    class Client:
        def submit_job(self, **kwargs: Any) -> str:
            sent.update(kwargs)
            return "job-1"

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = spec_from_dict(
        {
            "name": "sub",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": "tiny-bert",
            "runner": {"name": "ray", "address": "auto"},
        }
    )
    inside = "postgresql+psycopg://u:secret@postgres:5432/tg"
    job = ray_runner.submit_study(
        spec,
        storage_url=url,
        address="http://head:8265",
        cluster_storage_url=inside,
        client=Client(),
    )
    assert job == "job-1"
    assert sent["entrypoint"] == "taskgraph study resume sub --runner ray --address auto --quiet"
    assert "secret" not in sent["entrypoint"]  # the password travels in the job's environment
    assert sent["runtime_env"]["env_vars"]["TASKGRAPH_STORAGE"] == inside
    # The entrypoint is a valid command of this CLI.
    code, _, err = invoke(*sent["entrypoint"].split()[1:], "--help")
    assert code == 0, err
    code, out, _ = invoke("study", "status", "sub", "--storage", url, "--json")
    status = json.loads(out)
    assert code == 0 and status["n_waiting"] == 1 and status["n_done"] == 0  # the baseline, queued


@pytest.mark.parametrize("runner_line", ["", "runner: {name: tabular, table: t.csv}\n"])
def test_validate_refuses_two_rows_of_one_configuration(tmp_path: Path, runner_line: str) -> None:
    # Their runs cannot be told apart: a results table showed the first "not run".
    (tmp_path / "t.csv").write_text(
        "target,task_set,split,value,higher_is_better\n"
        + "".join(
            f"synth_target,{s},val,{v},1\n"
            for s, v in (
                ("synth_target", 0.5),
                ("synth_target+synth_related", 0.6),
                ("synth_target+synth_unrelated", 0.4),
            )
        )
    )
    rows = (
        "rows:\n  - {name: alone}\n  - {name: one, auxiliaries: [synth_related]}\n"
        "  - {name: other, auxiliaries: [synth_unrelated]}\n"
    )
    spec = tmp_path / "rows.yaml"
    head = "name: x\ntarget: synth_target\ncandidates: [synth_related, synth_unrelated]\n"
    spec.write_text(f"{head}budget: {{trials: 4}}\n{runner_line}{rows}")
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 0, err
    again = "  - {name: two, auxiliaries: [synth_related]}\n"
    spec.write_text(f"{head}budget: {{trials: 4}}\n{runner_line}{rows}{again}")
    code, _, err = invoke("study", "validate", str(spec))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        f"error: {spec}: rows[3] (two) trains the same configuration as rows[1] (one); "
    )

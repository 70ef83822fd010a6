"""``taskgraph study screen``: one joint run that ranks every candidate, stored with the study.

Drives the real command on a tiny study (tiny-bert, synthetic tasks, a few steps).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.storage import SCREEN_MODE, open_repository

runner = CliRunner()

TINY = """\
name: {name}
target: synth_target
candidates: [synth_related, synth_conflict, synth_unrelated]
encoder: {{name: tiny-bert, max_length: 16}}
search:
  auxiliaries: {{max_size: 1}}
  sharing: [hard]
  max_steps: 4
  batch_size: 4
  mixing: {{max_examples: {{"*": 16}}}}
training:
  eval_every: 2
  hyperparameters: {{max_eval_examples: 8}}
budget: {{trials: 2}}
sampler: {{name: graph, seed: 0}}
{runner}"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def spec_file(tmp_path: Path, *, name: str = "tiny", runner_block: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(name=name, runner=runner_block))
    return path


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Any]]:
    """Screen the tiny study once (6 steps, 3 probes); return (spec, url, its JSON report)."""
    root = tmp_path_factory.mktemp("screen")
    spec = spec_file(root)
    url = f"sqlite:///{root / 'screen.db'}"
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--steps", "6",
                            "--probes", "3", "--json")  # fmt: skip
    assert code == 0, err
    return spec, url, json.loads(out)


def test_the_screen_is_stored_with_the_study_and_reported_as_json(
    screened: tuple[Path, str, dict[str, Any]],
) -> None:
    spec, url, report = screened
    assert set(report) >= {"study", "target", "screen", "candidates", "cost", "n_candidates"}
    assert (report["study"], report["target"], report["screen"]) == ("tiny", "synth_target", -1)
    names = [c["candidate"] for c in report["candidates"]]
    assert sorted(names) == ["synth_conflict", "synth_related", "synth_unrelated"]
    effects = [c["effect"] for c in report["candidates"]]
    assert effects == sorted(effects, reverse=True)
    assert [c["rank"] for c in report["candidates"]] == [1, 2, 3]
    assert all(c["stderr"] is not None and c["stderr"] >= 0 for c in report["candidates"])
    cost = report["cost"]
    assert cost["steps"] == 6 and cost["probes"] == 3 and cost["seconds"] > 0
    assert cost["trial_seconds"] is None  # no trial has run yet
    with open_repository(url) as repo:
        [screen] = repo.screens("tiny")
        run = repo.run(screen.run_id)
        assert run.transfer_mode == SCREEN_MODE and run.scores == {}
        assert set(screen.matrix.tasks) == {"synth_target", *names}
        column = screen.matrix.tasks.index("synth_target")
        # Only the target's loss was measured: the other columns are NaN.
        assert all(math.isfinite(row[column]) for i, row in enumerate(screen.matrix.values)
                   if screen.matrix.tasks[i] != "synth_target")  # fmt: skip
        assert all(math.isnan(v) for row in screen.matrix.values
                   for j, v in enumerate(row) if j != column)  # fmt: skip
    # The study exists (its baseline queued) and has spent none of its budget.
    code, out, err = invoke("study", "status", "tiny", "--storage", url, "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["n_done"] == 0 and status["n_waiting"] == 1
    # --show prints the stored screen again, without training; the table names every candidate.
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--show", "--json")
    assert code == 0, err
    assert json.loads(out)["candidates"] == report["candidates"]
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--show")
    assert code == 0, err
    assert all(name in out for name in names) and "cost:" in out and "3 probes" in out
    # --screen picks a stored screen by number (-1 the first); one the study lacks is named.
    code, out, err = invoke(
        "study", "screen", str(spec), "--storage", url, "--show", "--screen", "-1", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["screen"] == -1
    code, _, err = invoke(
        "study", "screen", str(spec), "--storage", url, "--show", "--screen", "-9"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--screen", "-1")
    assert code == 2 and "give it with --show" in err


def test_study_run_starts_from_the_screened_ranking(
    screened: tuple[Path, str, dict[str, Any]],
) -> None:
    spec, url, report = screened
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "-q", "--json")
    assert code == 0, err
    with open_repository(url) as repo:
        runs = {r.trial_number: r for r in repo.runs(study="tiny")}
    best = report["candidates"][0]["candidate"]
    assert runs[0].task_set == ("synth_target",)
    assert runs[1].task_set == tuple(sorted(("synth_target", best)))
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--show", "--json")
    cost = json.loads(out)["cost"]
    assert cost["trial_seconds"] > 0 and cost["trials_equivalent"] > 0


def test_the_screen_runs_and_stores_exactly_the_probes_asked(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, name="gapped")
    url = f"sqlite:///{tmp_path / 'gapped.db'}"
    # 5 steps, 3 probes: no fixed gap gives 3 (every 2 steps runs 2, every step 5).
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--steps", "5",
                            "--probes", "3", "--quiet")  # fmt: skip
    assert code == 0, err
    assert "5 steps, 3 probes" in out and "asked" not in out
    with open_repository(url) as repo:
        [screen] = repo.screens("gapped")
    assert screen.matrix.n_probes == screen.details["probes"] == 3
    assert screen.details["probes_asked"] == 3
    assert screen.details["lookahead_steps"] == [2, 4, 5]


def test_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    code, _, err = invoke("study", "screen", str(tmp_path / "missing.yaml"), "--storage", url)
    assert code != 0 and "missing.yaml" in err
    spec = spec_file(tmp_path, name="unscreened")
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--show")
    assert code != 0 and "no records database" in err and len(err.strip().splitlines()) == 1
    open_repository(url).close()  # an empty database
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--show")
    assert code != 0 and "no study 'unscreened'" in err and len(err.strip().splitlines()) == 1
    table = tmp_path / "table.csv"
    table.write_text("target,task_set,split,value,higher_is_better\n"
                     "synth_target,synth_target,val,0.5,1\n"
                     + "".join(f"synth_target,synth_target+{c},val,0.5,1\n"
                               for c in ("synth_related", "synth_conflict", "synth_unrelated")))  # fmt: skip
    tabular = spec_file(
        tmp_path, name="tab", runner_block=f"runner: {{name: tabular, table: {table}}}\n"
    )
    code, _, err = invoke("study", "screen", str(tabular), "--storage", url)
    assert code != 0 and "a screen trains a model" in err
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--steps", "2",
                          "--probes", "5")  # fmt: skip
    assert code != 0 and "`--probes` (5) must not exceed `--steps` (2)" in err
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--show", "--steps", "5",
                          "--full-matrix")  # fmt: skip
    assert code != 0 and err.strip() == (
        "error: `--show` prints the stored screen and trains nothing: --steps, --full-matrix "
        "would not be used; drop them, or drop --show to run a screen"
    )


def test_the_default_probes_fit_a_short_screen_and_given_counts_are_named(tmp_path: Path) -> None:
    # max_steps 1 under step_budget target: a screen of 2 steps, too few for 20 probes.
    spec = spec_file(tmp_path, name="short")
    spec.write_text(spec.read_text().replace("max_steps: 4", "max_steps: 1"))
    url = f"sqlite:///{tmp_path / 'short.db'}"
    # The default no longer hides a missing data directory.
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--data",
                          str(tmp_path / "nonexistent"))  # fmt: skip
    assert code != 0 and "--data" in err and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--probes", "3")
    assert code != 0 and err.strip() == "error: `--probes` (3) must not exceed the steps (2)"
    code, _, err = invoke("study", "screen", str(spec), "--storage", url, "--steps", "20",
                          "--probes", "20")  # fmt: skip
    assert code != 0 and err.strip().startswith(
        "error: `--probes` (20) must be below `--steps` (20): the warmup starts"
    )
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--json")
    assert code == 0, err
    cost = json.loads(out)["cost"]
    assert (cost["steps"], cost["probes"], cost["probes_asked"]) == (2, 2, 2)


def test_a_full_matrix_screen_reports_every_pair(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, name="full")
    url = f"sqlite:///{tmp_path / 'full.db'}"
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--steps", "2",
                            "--probes", "1", "--full-matrix", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    tasks = {"synth_target", "synth_related", "synth_conflict", "synth_unrelated"}
    assert report["full_matrix"] is True
    matrix = report["matrix"]
    assert set(matrix) == tasks and all(set(row) == tasks for row in matrix.values())
    assert all(math.isfinite(cell["effect"]) for row in matrix.values() for cell in row.values())
    for c in report["candidates"]:  # the ranking is the matrix's target column
        assert matrix[c["candidate"]]["synth_target"]["effect"] == c["effect"]
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--show", "--json")
    assert code == 0 and json.loads(out)["matrix"] == matrix, err
    code, out, err = invoke("study", "screen", str(spec), "--storage", url, "--show")
    assert code == 0, err
    assert "full matrix" in out and "step on" in out
    effect = matrix["synth_related"]["synth_conflict"]["effect"]
    assert f"{effect:+.4f}" in out  # a candidate-to-candidate affinity
    # One probe, counted in the singular.
    assert "over 1 probe," in out and "2 steps, 1 probe;" in out and "1 probes" not in out


def test_a_screen_of_an_existing_study_keeps_its_stored_budget_and_spec(tmp_path: Path) -> None:
    # The screen opens the study with its spec file, whose budget may differ from the one the
    # study ran with: it spends no trial, so it must not change what `study resume` runs.
    spec = spec_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    code, _, err = invoke("study", "run", str(spec), "--storage", url, "--set", "budget.trials=1")
    assert code == 0, err

    def stored() -> tuple[Any, Any]:
        code, out, err = invoke("study", "status", "tiny", "--storage", url, "--json")
        assert code == 0, err
        code, spec_out, err = invoke("study", "show", "tiny", "--spec", "--storage", url)
        assert code == 0, err
        return json.loads(out)["budget"], spec_out

    before = stored()
    assert before[0] == 1
    code, _, err = invoke(
        "study", "screen", str(spec), "--storage", url, "--steps", "4", "--probes", "1"
    )
    assert code == 0, err
    assert stored() == before

"""A benchmark study through the `tabular` runner: the CLI searches a published-style table with
TPE and with the graph-guided sampler, and records every looked-up trial."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import ModuleType

import optuna
import pytest

from taskgraph.affinity.gains import compute_gains
from taskgraph.search.progress import REPEATS_ATTR
from taskgraph.storage import open_repository

CANDIDATES = ["b", "c", "d", "e"]
EFFECT = {"b": 0.10, "c": -0.05, "d": 0.02, "e": -0.20}


def write_table(path: Path, *, loss: bool = False) -> dict[frozenset[str], float]:
    """Write every subset's score for target `a` (additive effects) and return the val scores.

    ``loss``: the table is lower-is-better, each helpful effect lowering the value."""
    values: dict[frozenset[str], float] = {}
    lines = ["target,task_set,split,value,higher_is_better"]
    sign, higher = (-1, 0) if loss else (1, 1)
    for size in range(len(CANDIDATES) + 1):
        for subset in itertools.combinations(CANDIDATES, size):
            score = 0.5 + sign * sum(EFFECT[t] for t in subset)
            values[frozenset(subset)] = score
            key = "+".join(["a", *subset])
            lines.append(f"a,{key},val,{score:.4f},{higher}")
            lines.append(f"a,{key},test,{score - 0.01:.4f},{higher}")
    path.write_text("\n".join(lines) + "\n")
    return values


@pytest.mark.parametrize("sampler", ["tpe", "graph"])
def test_tabular_benchmark_study(tmp_path: Path, cli: ModuleType, sampler: str) -> None:
    values = write_table(tmp_path / "table.csv")
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        "name: bench\ntarget: a\ncandidates: [b, c, d, e]\n"
        "objective: {metric: score, split: dev, direction: maximize}\n"
        f"sampler: {{name: {sampler}, seed: 0}}\n"
        "budget: {trials: 10}\n"
        "runner: {name: tabular, table: table.csv, split: val}\n"
    )
    storage = f"sqlite:///{tmp_path / 'bench.db'}"
    cli.taskgraph("study", "run", str(spec), "--storage", storage, "--quiet")
    report = cli.show("bench", storage)
    assert report["n_done"] == 10 and report["n_failed"] == 0
    assert report["baseline"]["score"] == pytest.approx(0.5)
    for row in report["gains"]:
        assert row["value"] == pytest.approx(values[frozenset(row["auxiliaries"])], abs=1e-4)
        assert row["measured_absolute_gain"] == pytest.approx(row["value"] - 0.5, abs=1e-9)
    best = report["best"]
    assert best["score"] == max(r["value"] for r in report["gains"])
    with open_repository(storage) as repo:
        runs = repo.runs(study="bench")
    # Every trial is recorded once, except one that repeats an earlier trial's task set (the
    # same lookup): it is told that trial's value and not recorded again.
    trials = optuna.load_study(study_name="bench", storage=storage).trials
    repeats = {t.number for t in trials if REPEATS_ATTR in t.user_attrs}
    assert sorted(r.trial_number for r in runs) == sorted(set(range(10)) - repeats)
    assert len({r.task_set for r in runs}) == len(runs)
    assert all(r.scores["a"]["test"]["score"] is not None for r in runs)


def test_a_loss_table_is_recorded_as_a_loss_and_its_gains_keep_their_sign(
    tmp_path: Path, cli: ModuleType
) -> None:
    write_table(tmp_path / "table.csv", loss=True)
    spec = tmp_path / "bench.yaml"
    text = (
        "name: bench\ntarget: a\ncandidates: [b, c, d, e]\n"
        "objective: {split: dev, direction: minimize}\n"
        "sampler: {name: random, seed: 0}\nbudget: {trials: 16}\n"
        "runner: {name: tabular, table: table.csv, split: val}\n"
    )
    spec.write_text(text)
    storage = f"sqlite:///{tmp_path / 'bench.db'}"
    cli.taskgraph("study", "run", str(spec), "--storage", storage, "--quiet")
    with open_repository(storage) as repo:
        records = repo.score_records(target="a", split="dev")
    assert {r.metric for r in records} == {"loss"} and not any(r.higher_is_better for r in records)
    gains = compute_gains(records).gains
    assert gains
    for gain in gains:  # a helpful auxiliary lowers the loss: a positive gain
        effect = sum(EFFECT[t] for t in gain.auxiliaries)
        assert gain.mean == pytest.approx(effect / 0.5, abs=1e-3)


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("{direction: maximize}",
         "table.csv are lower-is-better; write `direction: minimize`"),
        ("{metric: score, direction: minimize}",
         "objective.metric: 'score' reads as higher-is-better, but a's rows in "),
    ],
)  # fmt: skip
def test_an_objective_against_the_tables_direction_is_refused_before_the_study(
    tmp_path: Path, cli: ModuleType, objective: str, message: str
) -> None:
    write_table(tmp_path / "table.csv", loss=True)
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        f"name: bench\ntarget: a\ncandidates: [b, c]\nobjective: {objective}\n"
        "runner: {name: tabular, table: table.csv, split: val}\n"
    )
    storage = f"sqlite:///{tmp_path / 'bench.db'}"
    result = cli.taskgraph("study", "run", str(spec), "--storage", storage, check=False)
    # Refused while the spec is loaded, so the error names the spec file.
    assert result.returncode != 0 and result.stderr.startswith(f"error: {spec}: ")
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bench.db").exists()


@pytest.mark.parametrize(
    ("runner", "objective", "message"),
    [
        ("{name: tabular, table: table.csv, split: dev}", "{direction: minimize}",
         "runner.split: 'dev' is not a split of "),
        ("{name: tabular, table: table.csv, split: val}", "{direction: maximize}",
         "table.csv are lower-is-better; write `direction: minimize`"),
        # The reader's own errors were passed on without the field (and exited 1).
        ("{name: tabular, table: nope.csv, split: val}", "{direction: minimize}",
         "runner.table: table file does not exist: "),
        ("{name: tabular, table: bad.csv, split: val}", "{direction: minimize}",
         "runner.table: "),
    ],
)  # fmt: skip
def test_study_validate_checks_the_table_runner(
    tmp_path: Path, cli: ModuleType, runner: str, objective: str, message: str
) -> None:
    # `validate` is where a spec's mistakes are meant to show up, not the first `run`.
    write_table(tmp_path / "table.csv", loss=True)
    (tmp_path / "bad.csv").write_text("target,task_set\na,a\n")  # columns missing
    spec = tmp_path / "bench.yaml"
    spec.write_text(
        f"name: bench\ntarget: a\ncandidates: [b, c]\nobjective: {objective}\nrunner: {runner}\n"
    )
    result = cli.taskgraph("study", "validate", str(spec), check=False)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "its splits: val, test" in result.stderr or "split" not in message

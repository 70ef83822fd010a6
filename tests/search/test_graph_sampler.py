"""The graph-guided sampler: valid subsets under constraints, delegation, prior records, efficiency."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from taskgraph.affinity.longtable import LongRow, LongTable, write_long_csv
from taskgraph.affinity.records import ScoreRecord
from taskgraph.cli.bench import trials_to_best
from taskgraph.errors import ConfigError
from taskgraph.search.graph_sampler import GraphGuidedSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
SOURCES = ("s1", "s2", "s3", "s4", "s5")


def additive_table(seed: int = 0) -> LongTable:
    """Return a table for target t over every subset of SOURCES: gain = mean effect + pair bonus."""
    rng = np.random.default_rng(seed)
    effect = dict(zip(SOURCES, rng.normal(0, 0.05, len(SOURCES)), strict=True))
    rows = [LongRow("t", frozenset({"t"}), "val", 1.0, True)]
    for size in range(1, len(SOURCES) + 1):
        for combo in itertools.combinations(SOURCES, size):
            gain = float(np.mean([effect[s] for s in combo])) + (
                0.03 if {"s1", "s2"} <= set(combo) else 0.0
            )
            rows.append(LongRow("t", frozenset({"t", *combo}), "val", 1.0 + gain, True))
    return LongTable(rows=rows, source="synthetic")


def ask_subset(study: optuna.Study, candidates: list[str]) -> tuple[optuna.Trial, frozenset[str]]:
    trial = study.ask()
    chosen = frozenset(
        t for t in candidates if trial.suggest_categorical(f"aux/{t}", [False, True])
    )
    return trial, chosen


def test_proposals_respect_size_include_and_exclude() -> None:
    candidates = ["a", "b", "c", "d", "e", "x", "y"]
    sampler = GraphGuidedSampler(target="t", candidates=candidates, include=["x"], exclude=["y"],
                                 min_size=2, max_size=3, seed=0)  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=sampler)
    free = ["a", "b", "c", "d", "e"]
    rng = np.random.default_rng(0)
    effect = {t: rng.normal() for t in free}
    seen = []
    for _ in range(14):
        trial, chosen = ask_subset(study, free)
        assert set(trial.params) == {f"aux/{t}" for t in free}  # no flag for include/exclude tasks
        assert 1 <= len(chosen) <= 2  # plus "x": 2..3 tasks
        seen.append(chosen)
        study.tell(trial, sum(effect[t] for t in chosen))
    assert [len(s) for s in seen[:5]] == [1] * 5  # start-up: each free candidate alone
    assert len(set(seen)) == len(seen)  # a deterministic table is never asked twice
    with pytest.raises(ConfigError, match="no subset fits"):
        GraphGuidedSampler(target="t", candidates=["a"], min_size=3)


class _RecordingSampler(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=0)
        self.names: list[str] = []

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        self.names.append(name)
        return super().sample_independent(study, trial, name, distribution)


def test_other_parameters_go_to_the_inner_sampler() -> None:
    inner = _RecordingSampler()
    sampler = GraphGuidedSampler(
        target="t", candidates=["a", "b"], independent_sampler=inner, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    for _ in range(4):
        trial, _ = ask_subset(study, ["a", "b"])
        trial.suggest_float("lr", 1e-5, 1e-3, log=True)
        study.tell(trial, 0.5)
    assert inner.names == ["lr"] * 4


def test_prior_records_of_an_earlier_study_find_the_best_set_at_once() -> None:
    table = additive_table()
    earlier = table.to_records(family="earlier-study")
    hits = []
    for seed in range(5):
        sampler = GraphGuidedSampler(
            target="t", candidates=list(SOURCES), prior_records=lambda: earlier, seed=seed
        )
        hits.append(trials_to_best(table, "t", sampler, max_trials=64))
    # Trial 1 is this study's baseline; the informed model proposes the best set right after.
    assert statistics.median(hits) <= 3


def test_finds_the_best_set_faster_than_random_on_average() -> None:
    table = additive_table(seed=1)
    graph, random = [], []
    for seed in range(6):
        graph.append(
            trials_to_best(
                table, "t", GraphGuidedSampler(target="t", candidates=list(SOURCES), seed=seed)
            )
        )
        random.append(trials_to_best(table, "t", optuna.samplers.RandomSampler(seed=seed)))
    assert np.mean(graph) < np.mean(random)
    assert max(graph) <= 32  # never re-asks a set: at most every subset once


def test_study_records_use_the_baseline_trial_and_stored_subsets() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=["a", "b"], include=["b"], seed=0)
    study = optuna.create_study(sampler=sampler)
    for subset, value in (([], 0.5), (["b"], 0.6)):
        trial = study.ask()
        trial.set_user_attr("auxiliaries", subset)
        study.tell(trial, value)
    records, evaluated = sampler._study_records(study)
    values = {"+".join(sorted(r.task_set)): r.value for r in records}
    # The baseline trial stays a single-task record although "b" is always included.
    assert values == {"t": 0.5, "b+t": 0.6}
    assert all(isinstance(r, ScoreRecord) and r.task == "t" for r in records)
    assert evaluated == {frozenset()}  # only the free part of sets that hold the include tasks


def test_a_spec_with_sampler_graph_runs_on_the_tabular_runner(tmp_path: Path) -> None:
    from taskgraph.app.studies import run_spec as run_study
    from taskgraph.spec import spec_from_dict
    from taskgraph.storage import open_repository

    table_path = tmp_path / "synthetic.csv"
    write_long_csv(additive_table(), table_path)
    spec = spec_from_dict({
        "name": "graph-on-table", "target": "t", "candidates": list(SOURCES),
        "objective": {"metric": "score", "split": "dev", "direction": "maximize"},
        "runner": {"name": "tabular", "table": str(table_path), "split": "val"},
        "sampler": {"name": "graph", "seed": 0}, "budget": {"trials": 10},
    })  # fmt: skip
    url = f"sqlite:///{tmp_path / 'records.db'}"
    run_study(spec, storage_url=url)
    with open_repository(url) as repo:
        sets = [r.task_set for r in repo.score_records(target="t", split="dev")]
    assert len(sets) == 10 and len(set(sets)) == 10  # ten different subsets, baseline included
    assert frozenset({"t"}) in sets

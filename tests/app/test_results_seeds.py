"""A seed run twice counts once (its latest run) in the cells, the seed count and the Δ."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
from scipy.stats import t

from taskgraph.app.results.build import build_table
from taskgraph.storage import open_repository
from taskgraph.testing import complete_result
from taskgraph.trial import Cost, TrialConfig

SPEC = {
    "name": "s",
    "target": "ner",
    "objective": {"metric": "f1"},
    "candidates": ["pos"],
    "seeds": 2,
}


def test_a_repeated_seed_is_one_seed_everywhere(tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with open_repository(url) as repo:
        repo.ensure_study("s", spec=SPEC, target="ner")
        # (auxiliaries, seed, test f1); pos seed 0 ran twice, the later run is the record.
        runs = [((), 0, 0.50), ((), 1, 0.52), (("pos",), 0, 0.58), (("pos",), 0, 0.60)]
        runs.append((("pos",), 1, 0.61))
        for number, (auxiliaries, seed, value) in enumerate(runs):
            config = TrialConfig(target="ner", auxiliaries=auxiliaries, seed=seed)
            result = complete_result(config, value, split="test")
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
        table = build_table("s", repo.study_specs()["s"], repo.runs(study="s"))
    pos = table.rows[1]
    assert pos.name == "pos" and len(pos.runs) == 3
    cell = pos.cell("test", "f1", task="ner")
    assert cell.values == (0.60, 0.61)  # the later run of seed 0, then seed 1
    paired = table.paired(pos)
    assert cell.n == paired.n == len(pos.complete) == 2
    assert paired.differences == (0.60 - 0.50, 0.61 - 0.52)
    data = table.to_dict()["rows"][1]
    assert data["seeds"] == [0, 1] and data["cells"]["f1"]["values"] == [0.60, 0.61]
    lines = table.to_markdown().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    row = next(line for line in lines if line.startswith("| pos "))
    assert [cell.strip() for cell in row.strip("|").split("|")][header.index("seeds")] == "2"


def test_means_and_intervals_over_seeds_as_the_user_reads_them(tmp_path):
    """Seconds per run, the long CSV's value and the JSON's interval and paired standard
    error, each computed here by hand from the seeds' numbers."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    alone = {0: (0.50, 10.0), 1: (0.52, 20.0), 2: (0.60, 60.0)}  # seed: (test f1, seconds)
    pos = {0: 0.58, 1: 0.61, 2: 0.66}
    with open_repository(url) as repo:
        repo.ensure_study("s", spec={**SPEC, "seeds": 3}, target="ner")
        number = 0
        for seed, (value, seconds) in alone.items():
            config = TrialConfig(target="ner", seed=seed)
            result = replace(complete_result(config, value, split="test"), cost=Cost(seconds))
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
            number += 1
        for seed, value in pos.items():
            config = TrialConfig(target="ner", auxiliaries=("pos",), seed=seed)
            result = complete_result(config, value, split="test")
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
            number += 1
        table = build_table("s", repo.study_specs()["s"], repo.runs(study="s"), split="test")
    reference = table.rows[0]
    assert reference.name != "pos" and table.rows[1].name == "pos"
    # the mean of 10, 20 and 60 seconds (the median would be 20)
    assert reference.seconds == (30.0, 90.0)
    data = table.to_dict()["rows"]
    assert data[0]["seconds_per_run"] == 30.0 and data[0]["seconds_total"] == 90.0
    # the long CSV's value is the mean over the seeds (the median would be 0.52)
    values = [v for v, _ in alone.values()]
    long = {r.task_set: r.value for r in table.long_rows() if r.split == "test"}
    assert long[frozenset({"ner"})] == pytest.approx(0.54)
    # the JSON's half-width is the whole 95 % t-interval half-width: t(0.975, n-1) * sd / sqrt(n)
    half_width = float(t.ppf(0.975, 2)) * statistics.stdev(values) / math.sqrt(3)
    cell = data[0]["cells"]["f1"]
    assert cell["mean"] == pytest.approx(0.54)
    assert cell["half_width"] == pytest.approx(half_width)
    # the paired difference's standard error is the differences' sd / sqrt(n)
    differences = [pos[s] - alone[s][0] for s in range(3)]
    paired = data[1]["paired_difference"]
    assert paired["differences"] == pytest.approx(differences)
    assert paired["mean"] == pytest.approx(statistics.fmean(differences))
    assert paired["se"] == pytest.approx(statistics.stdev(differences) / math.sqrt(3))

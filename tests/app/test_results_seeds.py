"""A seed run twice counts once (its latest run) in the cells, the seed count and the Δ."""

from __future__ import annotations

from taskgraph.app.results import build_table
from taskgraph.storage import open_repository
from taskgraph.testing import complete_result
from taskgraph.trial import TrialConfig

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

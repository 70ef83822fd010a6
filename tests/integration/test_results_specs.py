"""`searchspaces/results/`: every spec validates and runs each of its rows on the real data.

A tiny random encoder and a few steps (the `--set` overrides below) keep each study to about a
minute on 2 CPUs; the specs' own settings are the CPU scale of docs/results/README.md.  The
results table then finds one run per row, so the specs cannot rot unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.app.results.build import results_table
from taskgraph.spec import load_spec
from taskgraph.storage import open_repository

pytestmark = pytest.mark.slow

RESULTS = Path(__file__).resolve().parents[2] / "searchspaces" / "results"
TINY = [
    "--set",
    "encoder={name: tiny-bert, max_length: 64}",
    "--set",
    "search.max_steps=2",
    "--set",
    "search.mixing.max_examples=16",
    "--set",
    "training.eval_every=1",
    "--set",
    "seeds=1",
]
# The BioASQ spec's own trainer settings, with smaller caps: `source_tasks` makes SQuAD the
# only source of its sequential rows.
HYPER = {
    "bioasq_factoid": "{max_eval_examples: 16, source_tasks: [squad2], source_max_steps: 2}",
}
# (spec, metrics of its table): the columns docs/results/README.md asks for
SPECS = [
    ("tr_ner_dep", "f1_PER,f1_LOC,f1_ORG,f1"),
    ("cs_ner_dep", "f1_P,f1_G,f1_I,f1"),
    ("bioasq_factoid", "strict_accuracy,lenient_accuracy,mrr"),
]


@pytest.mark.parametrize(("stem", "metrics"), SPECS, ids=[s for s, _ in SPECS])
def test_results_spec_runs_every_row(
    stem: str, metrics: str, data_dir: Path, tmp_path: Path, cli: ModuleType
) -> None:
    path = RESULTS / f"{stem}.yaml"
    spec = load_spec(path)
    assert len(spec.seeds) >= 3 and spec.budget.trials == len(spec.rows)
    storage = f"sqlite:///{tmp_path / 'results.db'}"
    hyper = HYPER.get(stem, "{max_eval_examples: 16}")
    cli.taskgraph(
        "study", "run", str(path), "--storage", storage, "--data", str(data_dir), "--quiet",
        *TINY, "--set", f"training.hyperparameters={hyper}",
    )  # fmt: skip
    table = results_table(spec.name, storage=storage, metrics=metrics.split(","))
    assert [row.name for row in table.rows] == [row.name for row in spec.rows]
    for row in table.rows:
        assert len(row.complete) == 1, row.name
        for metric in table.metrics:
            assert row.cell("test", metric, task=spec.target).n == 1, (row.name, metric)
    assert not table.notes or all("has the task set of" in n for n in table.notes)
    printed = cli.taskgraph(
        "records", "table", spec.name, "--storage", storage, "--metrics", metrics
    )
    assert printed.stdout.count("\n|") == len(spec.rows) + 1
    if stem == "bioasq_factoid":
        with open_repository(storage) as repo:
            runs = {r.trial_number: r for r in repo.runs(study=spec.name)}
        # plus_ner: 2 SQuAD steps, then the target's 2 steps with the NER sets' on top
        plus_ner = runs[2]
        assert plus_ner.transfer_mode == "sequential" and plus_ner.target_steps == 2
        assert plus_ner.total_steps is not None and plus_ner.total_steps > 2 + 2
        assert {"bc2gm", "bc5cdr", "squad2"} <= set(plus_ner.scores)

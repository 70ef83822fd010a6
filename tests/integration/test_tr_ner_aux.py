"""`searchspaces/tr_ner_aux.yaml` on the real data with a small budget: it trains, and every
trial's records (scores, dataset fingerprints) are stored."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.storage import open_repository

pytestmark = pytest.mark.slow

# Tiny subsampling so two trials take seconds; the spec's own settings are the CPU study's.
TINY = [
    "--set",
    "encoder={name: tiny-bert, max_length: 64}",
    "--set",
    "search.max_steps=6",
    "--set",
    "search.mixing.max_examples={tr_ner_tur2003: 48, '*': 32}",
    "--set",
    "training.eval_every=3",
    "--set",
    "training.hyperparameters={max_eval_examples: 40}",
]


def test_tr_ner_aux_runs_on_real_data_and_stores_records(
    data_dir: Path, tmp_path: Path, cli: ModuleType
) -> None:
    storage = f"sqlite:///{tmp_path / 'tr.db'}"
    cli.taskgraph(
        "study",
        "run",
        "searchspaces/tr_ner_aux.yaml",
        "--storage",
        storage,
        "--trials",
        "2",
        "--data",
        str(data_dir),
        "--quiet",
        *TINY,
    )
    report = cli.show("tr_ner_aux", storage)
    assert report["n_done"] == 2
    assert report["baseline"]["task_set"] == ["tr_ner_tur2003"]
    with open_repository(storage) as repo:
        runs = repo.runs(study="tr_ner_aux")
    assert sorted(r.trial_number for r in runs) == [0, 1]
    catalog = {
        "tr_ner_tur2003",
        "ud_tr_imst_upos",
        "ud_tr_imst_deps",
        "wikiann_en_ner",
        "cs_cnec2_ner",
    }
    for run in runs:
        assert run.status in ("complete", "pruned"), run.failure_reason
        assert set(run.task_set) <= catalog and "tr_ner_tur2003" in run.task_set
        assert 0.0 <= run.scores["tr_ner_tur2003"]["dev"]["f1"] <= 1.0
        assert set(run.task_fingerprints) == set(run.task_set)
        assert all(len(f) == 64 for f in run.task_fingerprints.values())  # sha256 of the files
        assert run.config["mixing"]["max_examples"]["tr_ner_tur2003"] == 48

"""One short real run: MiniLM on Turkish NER with UPOS and dependency parsing (joint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.training import train_trial
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus

TASKS = ("tr_ner_tur2003", "ud_tr_imst_upos", "ud_tr_imst_deps")


@pytest.mark.slow
def test_minilm_trains_jointly_on_turkish_ner_upos_and_parsing(data_dir: Path) -> None:
    config = TrialConfig(
        target="tr_ner_tur2003",
        auxiliaries=TASKS[1:],
        encoder="minilm",
        max_steps=12,
        step_budget="total",  # 12 steps in all keep this MiniLM run short
        batch_size=8,
        learning_rate=1e-4,
        max_length=64,
        eval_every=12,
        mixing=MixingConfig(scheme="uniform", max_examples=dict.fromkeys(TASKS, 96)),
        hyperparameters={"max_eval_examples": 32, "log_every": 4},
    )
    result = train_trial(config, data_dir=data_dir, device="cpu")
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    ner = result.scores["tr_ner_tur2003"]["dev"]
    upos = result.scores["ud_tr_imst_upos"]["dev"]
    deps = result.scores["ud_tr_imst_deps"]["dev"]
    assert {"f1", "precision", "recall", "f1_PER"} <= set(ner)
    assert 0.0 <= ner["f1"] <= 1.0
    # Twelve steps already beat chance among 17 UPOS tags, and heads beat 1 / sentence length.
    assert upos["accuracy"] > 1 / 17
    assert 0.0 < deps["las"] <= deps["uas"] <= 1.0
    assert result.objective == ner["f1"]
    assert result.cost.tokens > result.cost.examples >= 12 * 8 - 8

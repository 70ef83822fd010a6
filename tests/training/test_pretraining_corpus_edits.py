"""A pretraining stage whose corpus is edited while it is read, or whose cache is full.

The stage's weights are cached under the corpus' fingerprint; one taken before the read and
kept although the files changed during it would hold weights trained on the new (or a mixed)
text under the old version, served again once the files were restored.  The read is refused
instead: the trial fails as a data error and nothing is cached.  A cache that cannot take
the stage's weights (a full disk) only costs the next trial the stage again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.errors import DataFormatError
from taskgraph.tasks import define_task
from taskgraph.tasks.synthetic import synthetic_family
from taskgraph.testing import tiny_trial_config
from taskgraph.training import pretraining_corpus, train_trial
from taskgraph.training.pretraining_corpus import corpus_texts
from taskgraph.trial import PretrainingConfig, TrialStatus

TEXT = "".join(f"sentence number {i} of the corpus\tpos\n" for i in range(12))


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TASKGRAPH_PRETRAIN_CACHE", raising=False)


def _corpus_task(path: Path) -> Any:
    path.write_text(TEXT, encoding="utf-8")
    return define_task(
        "corpus_rows",
        format="tsv",
        type="sentence_classification",
        label_field="label",
        files={"train": str(path)},
        reader_options={"text_column": 0, "label_column": 1},
    )


def _edit_while_read(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    real = pretraining_corpus._iter_texts_of

    def texts(task: Any, data_dir: Any) -> Iterator[str]:
        path.write_text(TEXT + "one more sentence\tneg\n", encoding="utf-8")
        return real(task, data_dir)

    monkeypatch.setattr(pretraining_corpus, "_iter_texts_of", texts)


def test_a_corpus_task_edited_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _corpus_task(tmp_path / "rows.tsv")
    stage = PretrainingConfig(scheme="random", steps=2, batch_size=4, corpus=("corpus_rows",))
    config = tiny_trial_config(pretraining=stage)
    extra = {"corpus_rows": task}
    texts, fingerprint = corpus_texts(config, tasks=extra)
    assert len(texts) == 12
    real = pretraining_corpus._iter_texts_of
    _edit_while_read(monkeypatch, tmp_path / "rows.tsv")
    with pytest.raises(DataFormatError, match=r"pretraining.corpus\[0\] \(task 'corpus_rows'\)"):
        corpus_texts(config, tasks=extra)
    monkeypatch.setattr(pretraining_corpus, "_iter_texts_of", real)
    (tmp_path / "rows.tsv").write_text(TEXT, encoding="utf-8")  # back to the first version
    assert corpus_texts(config, tasks=extra) == (texts, fingerprint)


def test_a_trial_whose_corpus_is_edited_while_read_fails_as_a_data_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _corpus_task(tmp_path / "rows.tsv")
    tasks = {
        **synthetic_family(target_train=8, aux_train=8, eval_size=8).tasks,
        "corpus_rows": task,
    }
    stage = PretrainingConfig(
        scheme="random", steps=2, batch_size=4, learning_rate=9e-4, corpus=("corpus_rows",)
    )
    _edit_while_read(monkeypatch, tmp_path / "rows.tsv")
    result = train_trial(tiny_trial_config(pretraining=stage), tasks=tasks)
    assert result.status is TrialStatus.FAILED
    assert (result.failure_reason or "").startswith(
        "data error: pretraining.corpus[0] (task 'corpus_rows'): expected one version"
    )
    assert not (tmp_path / "cache" / "pretrained").exists() or not any(
        (tmp_path / "cache" / "pretrained").iterdir()
    )


def test_a_full_disk_while_the_stage_is_cached_costs_only_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch.save reports a full disk as a RuntimeError of its zip writer, not an OSError:
    # it failed the trial after the stage had run, and left the cut-off copy on disk.
    real_save = torch.save

    def full_disk(obj: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        Path(target).write_bytes(b"PK\x03\x04 cut off")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(torch, "save", full_disk)
    stage = PretrainingConfig(scheme="random", steps=2, batch_size=4, learning_rate=1.1e-3)
    tasks = synthetic_family(target_train=8, aux_train=8, eval_size=8).tasks
    result = train_trial(tiny_trial_config(pretraining=stage), tasks=tasks)
    monkeypatch.setattr(torch, "save", real_save)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    assert result.pretraining is not None and result.pretraining["cached"] is False
    cached = tmp_path / "cache" / "pretrained"
    assert not cached.exists() or list(cached.iterdir()) == []

"""Evaluation glue: model outputs to the metric's prediction shapes (a scripted fake model)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest
import torch

from taskgraph.models import HeadOutput, ParsePrediction
from taskgraph.tasks.features import encode_parsing, encode_qa, encode_tagging
from taskgraph.tasks.types import (
    Answer,
    ParsedSentence,
    QAExample,
    SplitSource,
    TaggedSentence,
    TaskDef,
    TaskType,
)
from taskgraph.training import EvalSet, TaskTensors, evaluate_split, predict_split


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def _task(kind: TaskType, metrics: tuple[str, ...]) -> TaskDef:
    return TaskDef(
        name="t",
        type=kind,
        format="x",
        dataset="x",
        splits={"dev": SplitSource("x")},
        label_field="x",
        metrics=metrics,
    )


class Scripted(torch.nn.Module):
    """Returns fixed outputs: ``predict`` gives ``decoded``; ``forward`` gives ``logits(batch)``."""

    def __init__(self, decoded: list[Any] | None = None, logits: Any = None) -> None:
        super().__init__()
        self.decoded, self.logits = decoded, logits
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def predict(self, task: str, batch: dict[str, torch.Tensor]) -> list[Any]:
        assert self.decoded is not None
        return self.decoded[: len(batch["input_ids"])]

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> HeadOutput:
        return HeadOutput(loss=None, logits=self.logits(batch))


def _evalset(task: TaskDef, examples: list[Any], encoded: Any, labels: list[str] | None) -> EvalSet:
    return EvalSet(
        task=task,
        split="dev",
        examples=examples,
        encoded=encoded,
        tensors=TaskTensors.from_encoded(encoded, pad_token_id=0),
        labels=labels,
    )


def _run(model: Any, data: EvalSet) -> list[Any]:
    return predict_split(
        model, data, batch_size=4, device=torch.device("cpu"), autocast=nullcontext
    )


def test_tagging_words_cut_off_get_the_fallback_tag(tok) -> None:  # type: ignore[no-untyped-def]
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul"), ("B-LOC", "O", "B-LOC"))
    labels = ["B-LOC", "O"]
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "O": 1}, max_length=6)
    data = _evalset(_task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, labels)
    # the model saw two words and tagged both B-LOC; the third (cut off) becomes O
    assert _run(Scripted(decoded=[[0, 0]]), data) == [("B-LOC", "B-LOC", "O")]
    scores = evaluate_split(
        Scripted(decoded=[[0, 0]]),
        data,
        batch_size=4,
        device=torch.device("cpu"),
        autocast=nullcontext,
    )
    assert scores["accuracy"] == pytest.approx(1 / 3)  # gold B-LOC O B-LOC


def test_parsing_words_cut_off_attach_to_the_predicted_root(tok) -> None:  # type: ignore[no-untyped-def]
    sentence = ParsedSentence(
        ("Merhaba", "dünya", "güzel"), (0, 1, 2), ("root", "obj", "amod"), ("X", "X", "X")
    )
    labels = ["amod", "dep", "obj", "root"]
    encoded = encode_parsing(
        [sentence], tok, deprel_to_id={r: i for i, r in enumerate(labels)}, max_length=6
    )
    data = _evalset(_task(TaskType.DEPENDENCY_PARSING, ("las", "uas")), [sentence], encoded, labels)
    decoded = [ParsePrediction(heads=[0, 1], deprels=[3, 2])]
    assert _run(Scripted(decoded=decoded), data) == [([0, 1, 1], ["root", "obj", "dep"])]


def test_qa_logits_become_ranked_answers(tok) -> None:  # type: ignore[no-untyped-def]
    context = "The cat sat on the mat. Then it slept in the warm sun all day long."
    answerable = QAExample(
        id="a",
        question="Where did the cat sit?",
        context=context,
        answers=(Answer("the mat", context.index("the mat")),),
    )
    impossible = QAExample(id="b", question="Who?", context=context, answers=(), is_impossible=True)
    encoded = encode_qa(
        [answerable, impossible], tok, max_length=24, doc_stride=4, max_query_length=12
    )
    data = _evalset(
        _task(TaskType.EXTRACTIVE_QA, ("f1", "exact")), [answerable, impossible], encoded, None
    )

    def logits(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        start = torch.full(batch["input_ids"].shape, -5.0)
        end = torch.full(batch["input_ids"].shape, -5.0)
        for row, ids in enumerate(batch["input_ids"].tolist()):
            tokens = tok.convert_ids_to_tokens(ids)
            if tokens[1:3] == ["where", "did"]:
                # mark "the mat" wherever the window holds it; null stays low
                for i in range(len(tokens) - 1):
                    if tokens[i : i + 2] == ["the", "mat"]:
                        start[row, i], end[row, i + 1] = 6.0, 6.0
            else:
                start[row, 0], end[row, 0] = 9.0, 9.0  # "no answer" for the other question
        return start, end

    predictions = _run(Scripted(logits=logits), data)
    assert predictions[0][0] == "the mat" and predictions[1][0] == ""
    scores = evaluate_split(
        Scripted(logits=logits),
        data,
        batch_size=4,
        device=torch.device("cpu"),
        autocast=nullcontext,
    )
    assert scores["exact"] == 1.0


def test_a_masked_lm_task_is_scored_by_its_perplexity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A user masked-LM task trains and evaluates (its head's logits are the masked positions')."""
    import math
    import random

    from taskgraph.tasks.synthetic import synthetic_family
    from taskgraph.tasks.user import define_task
    from taskgraph.training import train_trial
    from taskgraph.trial import Objective, TrialConfig, TrialStatus

    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    rng = random.Random(0)
    for split, n in (("train", 24), ("dev", 12)):
        lines = (" ".join(rng.choices(words, k=rng.randint(8, 16))) for _ in range(n))
        (tmp_path / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    tasks = dict(synthetic_family(target_train=8, aux_train=24, eval_size=12).tasks)
    tasks["words"] = define_task(
        "words", format="tsv", type="masked_lm", label_field="text", path=str(tmp_path),
        reader_options={"text_column": 0},
    )  # fmt: skip
    config = TrialConfig(
        target="words",
        auxiliaries=("synth_related",),
        encoder="tiny-bert",
        encoder_options={"hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128},
        max_steps=4,
        batch_size=8,
        eval_every=2,
        max_length=32,
        step_budget="total",
        objective=Objective(direction="minimize"),  # perplexity is lower-is-better
    )
    result = train_trial(config, tasks=tasks)
    assert result.status is TrialStatus.COMPLETE, result.failure_reason
    scores = result.scores["words"]["dev"]
    # 4 steps leave the tied vocabulary projection near uniform: the loss is about ln(V)
    assert abs(scores["loss"] - math.log(30522)) < 1.0
    assert scores["perplexity"] == pytest.approx(math.exp(scores["loss"]))


def test_a_squad2_task_may_answer_nothing_on_a_subset_without_unanswerable_questions(
    tok, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Whether "" is an answer is the task's (SQuAD 2.0 has unanswerable questions), not the
    evaluation subset's: a capped dev subset holding only answerable questions used to forbid
    the answer the model was trained to give."""
    import json

    from taskgraph.tasks import define_task, has_unanswerable
    from taskgraph.training.options import TrainingOptions
    from taskgraph.training.task_data import build_task_data
    from taskgraph.trial import TrialConfig

    context = "The cat sat on the mat."

    def squad(qas: list[dict[str, Any]]) -> dict[str, Any]:
        return {"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}

    answerable = {
        "id": "a", "question": "Where did the cat sit?",
        "answers": [{"text": "the mat", "answer_start": context.index("the mat")}],
    }  # fmt: skip
    impossible = {"id": "b", "question": "Who?", "answers": [], "is_impossible": True}
    (tmp_path / "train.json").write_text(json.dumps(squad([answerable, impossible])))
    (tmp_path / "dev.json").write_text(json.dumps(squad([{**answerable, "id": "c"}])))
    task = define_task(
        "qa_user", format="squad", type="extractive_qa", label_field="answers",
        files={"train": str(tmp_path / "train.json"), "dev": str(tmp_path / "dev.json")},
    )  # fmt: skip
    assert has_unanswerable(task)
    config = TrialConfig(target="qa_user", encoder="minilm", max_length=32)
    data = build_task_data(
        config, {"qa_user": task}, tok, data_dir=None, options=TrainingOptions()
    )["qa_user"].evals["dev"]
    assert data.allow_null is True  # from the train split: dev has no unanswerable question

    def logits(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        start = torch.full(batch["input_ids"].shape, -5.0)
        end = torch.full(batch["input_ids"].shape, -5.0)
        start[:, 0], end[:, 0] = 9.0, 9.0  # the model says "no answer"
        return start, end

    assert _run(Scripted(logits=logits), data)[0][0] == ""
    data.allow_null = None  # judged by the subset alone, as before: "" is never an answer
    assert "" not in _run(Scripted(logits=logits), data)[0]


def test_only_qa_tasks_with_unanswerable_questions_may_answer_nothing() -> None:
    from taskgraph.tasks import get_task, has_unanswerable

    assert has_unanswerable(get_task("squad2"))
    assert not has_unanswerable(get_task("bioasq_factoid"))
    assert not has_unanswerable(get_task("tr_ner_tur2003"))

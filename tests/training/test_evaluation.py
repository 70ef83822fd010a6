"""Evaluation glue: model outputs to the metric's prediction shapes (a scripted fake model):
cut-off words, ranked answers, masked-LM perplexity, the model's mode and autograd while
evaluating, BioASQ snippets merged by question."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.models import HeadOutput, ParsePrediction
from taskgraph.tasks.features import (
    encode_classification,
    encode_masked_lm,
    encode_parsing,
    encode_qa,
    encode_tagging,
)
from taskgraph.tasks.types import (
    Answer,
    ParsedSentence,
    QAExample,
    SplitSource,
    TaggedSentence,
    TaskDef,
    TaskType,
    TextExample,
)
from taskgraph.training import EvalSet, TaskTensors, evaluate_split, predict_split


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    from taskgraph.models.encoders import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def _task(kind: TaskType, metrics: tuple[str, ...], **options: Any) -> TaskDef:
    return TaskDef(
        name="t",
        type=kind,
        format="x",
        dataset="x",
        splits={"dev": SplitSource("x")},
        label_field="x",
        metrics=metrics,
        reader_options=options,
    )


class Scripted(torch.nn.Module):
    """A model whose outputs are given: ``predict`` returns ``decoded`` row by row, ``forward``
    returns ``output(batch)`` (or a ``HeadOutput`` of ``logits(batch)``); both record the mode
    and autograd state they ran under."""

    def __init__(
        self, decoded: list[Any] | None = None, logits: Any = None, output: Any = None
    ) -> None:
        super().__init__()
        self.decoded, self.logits, self.output = decoded, logits, output
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[bool, bool]] = []

    def predict(self, task: str, batch: dict[str, torch.Tensor]) -> list[Any]:
        self.seen.append((self.training, torch.is_grad_enabled()))
        assert self.decoded is not None
        return self.decoded[: len(batch["input_ids"])]

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> HeadOutput:
        self.seen.append((self.training, torch.is_grad_enabled()))
        if self.output is not None:
            return self.output(batch)
        return HeadOutput(loss=None, logits=self.logits(batch))


def _evalset(
    task: TaskDef,
    examples: list[Any],
    encoded: Any,
    labels: list[str] | None,
    mlm: dict[str, int] | None = None,
) -> EvalSet:
    return EvalSet(
        task=task,
        split="dev",
        examples=examples,
        encoded=encoded,
        tensors=TaskTensors.from_encoded(encoded, pad_token_id=0, mlm=mlm),
        labels=labels,
    )


def _run(model: Any, data: EvalSet, batch_size: int = 4) -> list[Any]:
    return predict_split(
        model, data, batch_size=batch_size, device=torch.device("cpu"), autocast=nullcontext
    )


def _score(model: Any, data: EvalSet) -> dict[str, float]:
    return evaluate_split(
        model, data, batch_size=4, device=torch.device("cpu"), autocast=nullcontext
    )


def test_tagging_words_cut_off_get_the_fallback_tag(tok: Any) -> None:
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul"), ("B-LOC", "O", "B-LOC"))
    labels = ["B-LOC", "O"]
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "O": 1}, max_length=6)
    data = _evalset(_task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, labels)
    # the model saw two words and tagged both B-LOC; the third (cut off) becomes O
    assert _run(Scripted(decoded=[[0, 0]]), data) == [("B-LOC", "B-LOC", "O")]
    scores = _score(Scripted(decoded=[[0, 0]]), data)
    assert scores["accuracy"] == pytest.approx(1 / 3)  # gold B-LOC O B-LOC


def test_parsing_words_cut_off_attach_to_the_predicted_root(tok: Any) -> None:
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


def test_qa_logits_become_ranked_answers(tok: Any) -> None:
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
    scores = _score(Scripted(logits=logits), data)
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
    tok: Any, tmp_path: Path
) -> None:
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


# --------------------------------------------- found untested by the mutation audit (stop 47)
def test_a_tag_set_without_O_pads_cut_off_words_with_its_first_tag(tok: Any) -> None:
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul"), ("B-LOC", "I-LOC", "B-LOC"))
    labels = ["B-LOC", "I-LOC"]
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "I-LOC": 1}, max_length=6)
    data = _evalset(_task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, labels)
    assert _run(Scripted(decoded=[[1, 1]]), data) == [("I-LOC", "I-LOC", "B-LOC")]


def test_tags_beyond_the_sentence_are_dropped(tok: Any) -> None:
    """A head that returns padded rows still gives one tag per word of the sentence."""
    sentence = TaggedSentence(("Merhaba", "dünya"), ("B-LOC", "O"))
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "O": 1}, max_length=16)
    data = _evalset(
        _task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, ["B-LOC", "O"]
    )
    assert _run(Scripted(decoded=[[0, 1, 1, 1]]), data) == [("B-LOC", "O")]


def test_cut_off_words_attach_to_the_root_when_no_word_was_predicted_root(tok: Any) -> None:
    sentence = ParsedSentence(
        ("Merhaba", "dünya", "güzel"), (0, 1, 2), ("root", "obj", "amod"), ("X", "X", "X")
    )
    labels = ["amod", "dep", "obj", "root"]
    encoded = encode_parsing(
        [sentence], tok, deprel_to_id={r: i for i, r in enumerate(labels)}, max_length=6
    )
    data = _evalset(_task(TaskType.DEPENDENCY_PARSING, ("las", "uas")), [sentence], encoded, labels)
    decoded = [ParsePrediction(heads=[2, 1], deprels=[2, 2])]
    assert _run(Scripted(decoded=decoded), data) == [([2, 1, 0], ["obj", "obj", "dep"])]


@pytest.mark.parametrize("training", [True, False])
def test_evaluation_runs_in_eval_mode_without_autograd_and_restores_the_mode(
    tok: Any, training: bool
) -> None:
    """Dropout off and no autograd graph while evaluating; the caller's mode afterwards."""
    sentence = TaggedSentence(("Merhaba", "dünya"), ("B-LOC", "O"))
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "O": 1}, max_length=16)
    data = _evalset(
        _task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, ["B-LOC", "O"]
    )
    model = Scripted(decoded=[[0, 1]])
    model.train(training)
    _run(model, data)
    assert model.seen == [(False, False)]
    assert model.training is training


def test_classification_predicts_the_highest_scoring_label(tok: Any) -> None:
    examples = [
        TextExample("a much longer sentence than the others here", label="neg"),
        TextExample("short", label="pos"),
        TextExample("a medium sentence", label="neu"),
    ]
    labels = ["neg", "neu", "pos"]
    encoded = encode_classification(
        examples, tok, label_to_id={x: i for i, x in enumerate(labels)}, max_length=32
    )
    data = _evalset(
        _task(TaskType.SENTENCE_CLASSIFICATION, ("accuracy",)), examples, encoded, labels
    )
    # the class each sentence gets is keyed by its length, so rows batched out of order
    # still meet their own scores
    by_length = {10: 0, 3: 2, 5: 1}

    def output(batch: dict[str, torch.Tensor]) -> HeadOutput:
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        logits = torch.full((len(lengths), 3), -1.0)
        for row, length in enumerate(lengths):
            logits[row, by_length[length]] = 2.0
            logits[row, (by_length[length] + 1) % 3] = -3.0
        return HeadOutput(loss=None, logits=logits)

    assert [len(f["input_ids"]) for f in encoded.features] == [10, 3, 5]
    assert _run(Scripted(output=output), data, batch_size=2) == ["neg", "pos", "neu"]


def test_masked_lm_scores_do_not_depend_on_the_eval_batch_size(tok: Any) -> None:
    """The masks are fixed by the split alone, so one set of weights has one perplexity."""
    examples = [TextExample(f"sentence {i} of the split goes on{' and on' * i}") for i in range(6)]
    encoded = encode_masked_lm(examples, tok, max_length=32)
    mlm = {"mask_token_id": int(tok.mask_token_id), "vocab_size": len(tok)}
    data = _evalset(_task(TaskType.MASKED_LM, ("perplexity",)), examples, encoded, None, mlm)

    def output(batch: dict[str, torch.Tensor]) -> HeadOutput:
        # the "loss" of a row is the sum of its masked positions: it changes with the masks
        scored = batch["labels"] != -100
        positions = torch.arange(batch["labels"].shape[1]).expand_as(scored)
        loss_sum = (positions * scored).sum(dim=1).float()
        extra = {"loss_sum": loss_sum, "count": scored.sum(dim=1)}
        return HeadOutput(loss=None, logits=torch.zeros(1), extra=extra)

    by_batch_size = [_run(Scripted(output=output), data, batch_size=b) for b in (1, 2, 4)]
    assert by_batch_size[0] == by_batch_size[1] == by_batch_size[2]
    assert sum(count for _, count in by_batch_size[0]) > 0


def test_bioasq_snippets_of_one_question_are_merged_by_their_scores(tok: Any) -> None:
    """A question's best span over all its snippets is its first answer, not the first
    snippet's best span."""
    first = "The gene BRCA1 is studied here."
    second = "The protein TP53 causes the disease."
    # BioASQ gives every snippet its question's answers, found in the snippet or not
    examples = [
        QAExample(id="q1_0", question="Which one?", context=first, group="q1",
                  answers=(Answer("TP53", 0),)),
        QAExample(id="q1_1", question="Which one?", context=second, group="q1",
                  answers=(Answer("TP53", second.index("TP53")),)),
    ]  # fmt: skip
    encoded = encode_qa(examples, tok, max_length=32, doc_stride=8, max_query_length=8)
    task = _task(
        TaskType.EXTRACTIVE_QA, ("strict_accuracy", "lenient_accuracy", "mrr"), group_by="id_prefix"
    )
    data = _evalset(task, examples, encoded, None)
    data.allow_null = False
    scores = {"brca1": 1.0, "tp53": 5.0}

    def output(batch: dict[str, torch.Tensor]) -> HeadOutput:
        start = torch.full(batch["input_ids"].shape, -9.0)
        end = torch.full(batch["input_ids"].shape, -9.0)
        for row, ids in enumerate(batch["input_ids"].tolist()):
            tokens = tok.convert_ids_to_tokens(ids)
            for name, score in scores.items():
                pieces = tok.tokenize(name)
                for i in range(len(tokens) - len(pieces) + 1):
                    if tokens[i : i + len(pieces)] == pieces:
                        start[row, i] = end[row, i + len(pieces) - 1] = score
        return HeadOutput(loss=None, logits=(start, end))

    predictions = _run(Scripted(output=output), data)
    assert predictions[0][0][0] == "BRCA1" and predictions[1][0][0] == "TP53"
    assert all(isinstance(answer, tuple) for answers in predictions for answer in answers)
    metrics = _score(Scripted(output=output), data)
    assert metrics["strict_accuracy"] == 1.0 and metrics["mrr"] == 1.0

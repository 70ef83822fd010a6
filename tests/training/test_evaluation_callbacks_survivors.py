"""Evaluation and callback behaviour the mutation audit found untested: fallbacks, model mode
and autograd during evaluation, argmax decoding, fixed masked-LM masks, BioASQ merging, the
callback handler's merge, the trainer state's round trip and the progress bar."""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
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
from taskgraph.testing import tiny_trial_config
from taskgraph.training import (
    CallbackHandler,
    EvalSet,
    TaskTensors,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    evaluate_split,
    predict_split,
)
from taskgraph.training.callbacks import ProgressCallback
from taskgraph.trial import TrialConfig


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


def _predict(model: Any, data: EvalSet, batch_size: int = 4) -> list[Any]:
    return predict_split(
        model, data, batch_size=batch_size, device=torch.device("cpu"), autocast=nullcontext
    )


class Scripted(torch.nn.Module):
    """A model whose outputs are given: ``predict`` returns ``decoded`` row by row, ``forward``
    returns ``output(batch)``; both record the mode and autograd state they ran under."""

    def __init__(self, decoded: list[Any] | None = None, output: Any = None) -> None:
        super().__init__()
        self.decoded, self.output = decoded, output
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[bool, bool]] = []

    def predict(self, task: str, batch: dict[str, torch.Tensor]) -> list[Any]:
        self.seen.append((self.training, torch.is_grad_enabled()))
        assert self.decoded is not None
        return self.decoded[: len(batch["input_ids"])]

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> HeadOutput:
        self.seen.append((self.training, torch.is_grad_enabled()))
        return self.output(batch)


# ------------------------------------------------------------------------------ evaluation
def test_a_tag_set_without_O_pads_cut_off_words_with_its_first_tag(tok: Any) -> None:
    sentence = TaggedSentence(("Merhaba", "dünya", "İstanbul"), ("B-LOC", "I-LOC", "B-LOC"))
    labels = ["B-LOC", "I-LOC"]
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "I-LOC": 1}, max_length=6)
    data = _evalset(_task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, labels)
    assert _predict(Scripted(decoded=[[1, 1]]), data) == [("I-LOC", "I-LOC", "B-LOC")]


def test_tags_beyond_the_sentence_are_dropped(tok: Any) -> None:
    """A head that returns padded rows still gives one tag per word of the sentence."""
    sentence = TaggedSentence(("Merhaba", "dünya"), ("B-LOC", "O"))
    encoded = encode_tagging([sentence], tok, label_to_id={"B-LOC": 0, "O": 1}, max_length=16)
    data = _evalset(
        _task(TaskType.TOKEN_TAGGING, ("accuracy",)), [sentence], encoded, ["B-LOC", "O"]
    )
    assert _predict(Scripted(decoded=[[0, 1, 1, 1]]), data) == [("B-LOC", "O")]


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
    assert _predict(Scripted(decoded=decoded), data) == [([2, 1, 0], ["obj", "obj", "dep"])]


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
    _predict(model, data)
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
    assert _predict(Scripted(output=output), data, batch_size=2) == ["neg", "pos", "neu"]


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

    by_batch_size = [_predict(Scripted(output=output), data, batch_size=b) for b in (1, 2, 4)]
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

    predictions = _predict(Scripted(output=output), data)
    assert predictions[0][0][0] == "BRCA1" and predictions[1][0][0] == "TP53"
    assert all(isinstance(answer, tuple) for answers in predictions for answer in answers)
    model: Any = Scripted(output=output)
    metrics = evaluate_split(
        model,
        data,
        batch_size=4,
        device=torch.device("cpu"),
        autocast=nullcontext,
    )
    assert metrics["strict_accuracy"] == 1.0 and metrics["mrr"] == 1.0


# ------------------------------------------------------------------------------- callbacks
class Recording(TrainerCallback):
    """Records the controls it is handed and returns ``answer``."""

    def __init__(self, name: str, log: list[tuple[str, TrainerControl]], answer: Any) -> None:
        self.name, self.log, self.answer = name, log, answer

    def on_evaluate(
        self,
        args: TrialConfig,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, dict[str, dict[str, float]]] | None = None,
        **kwargs: Any,
    ) -> TrainerControl | None:
        self.log.append((self.name, control))
        return self.answer


def test_the_handler_runs_callbacks_in_order_handing_each_the_last_returned_control() -> None:
    log: list[tuple[str, TrainerControl]] = []
    stop = TrainerControl(should_stop=True)
    handler = CallbackHandler(
        callbacks=[Recording("first", log, stop), Recording("second", log, None)]
    )
    start = TrainerControl()
    result = handler.call("on_evaluate", tiny_trial_config(), TrainerState(), start)
    assert log == [("first", start), ("second", stop)]
    assert log[1][1] is stop and result is stop


def test_the_handler_refuses_what_is_not_a_callback() -> None:
    with pytest.raises(TypeError, match="callbacks must be TrainerCallback instances, got dict"):
        CallbackHandler(callbacks=[TrainerCallback(), {}])  # type: ignore[list-item]


def test_the_trainer_state_survives_its_json_round_trip() -> None:
    state = TrainerState(
        global_step=7, max_steps=12, target_step=5, epoch=2.5, phase="target", examples=56,
        tokens=901, total_steps=19, target_steps=11, objective_history=[(4, 0.25), (8, 0.5)],
        best_objective=0.5, best_step=8, evaluations_without_improvement=1,
        log_history=[{"step": 5.0, "loss": 1.5, "learning_rate": 0.001}],
    )  # fmt: skip
    again = TrainerState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state


# --------------------------------------------------------------------------- progress bar
def _phase(args: TrialConfig, bar: ProgressCallback, state: TrainerState, to: int) -> None:
    bar.on_train_begin(args, state, TrainerControl())
    while state.global_step < to:
        state.global_step += 1
        state.total_steps += 1
        bar.on_step_end(args, state, TrainerControl())


def test_the_progress_bar_shows_each_phase_of_a_sequential_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = tiny_trial_config(auxiliaries=("synth_related",))
    bar = ProgressCallback()
    bar.on_step_end(args, TrainerState(), TrainerControl())  # before any phase: nothing to do
    state = TrainerState(phase="source", max_steps=6, global_step=2, total_steps=2)
    _phase(args, bar, state, to=5)  # resumed at step 2 of 6, stopped early at 5
    _phase(args, bar, TrainerState(phase="target", max_steps=4, total_steps=5), to=4)
    bar.on_train_end(args, state, TrainerControl())
    shown = re.findall(r"^(training .*?\)) .* (\d+/\d+) steps", capsys.readouterr().out, re.M)
    assert shown == [
        ("training synth_related+synth_target (source)", "5/6"),
        ("training synth_related+synth_target (target)", "4/4"),
    ]


def test_a_resumed_run_with_no_step_left_shows_a_full_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, bar = tiny_trial_config(), ProgressCallback()
    bar.on_train_begin(args, TrainerState(max_steps=8, global_step=8), TrainerControl())
    bar.on_train_end(args, TrainerState(), TrainerControl())
    assert "8/8 steps" in capsys.readouterr().out


def test_task_names_are_shown_as_they_are_in_the_progress_bar(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args, bar = tiny_trial_config(target="t{0}[b]x[/b]"), ProgressCallback()
    _phase(args, bar, TrainerState(max_steps=2), to=2)
    bar.on_train_end(args, TrainerState(), TrainerControl())
    assert "training t{0}[b]x[/b] (joint)" in capsys.readouterr().out

"""`check_spec` refuses, before a study is written, what used to fail each trial at run time:
a ``freeze_layers`` with a sharing architecture that cannot freeze, head options for a task
not in the study, and head options the task's head does not take."""

from __future__ import annotations

from typing import Any

import pytest

from taskgraph.models.frozen import FREEZE_ARCHITECTURES as FREEZE_SHARING
from taskgraph.models.heads.factory import HEAD_CLASSES
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict
from taskgraph.tasks.types import TaskType
from taskgraph.testing import spec_check_error as _error


def _spec(
    *,
    sharing: Any = ("hard",),
    hyperparameters: dict[str, Any] | None = None,
    target: str = "tr_ner_tur2003",
    candidates: tuple[str, ...] = ("ud_tr_imst_deps",),
) -> Any:
    return spec_from_dict(
        {
            "name": "s",
            "target": target,
            "candidates": list(candidates),
            "encoder": {"name": "tiny-bert", "max_length": 16},  # 2 layers
            "search": {"sharing": list(sharing)},
            "training": {"hyperparameters": hyperparameters or {}},
        }
    )


@pytest.mark.parametrize("sharing", ["soft", "cross_stitch", "hierarchical", "mmoe"])
def test_freeze_layers_with_an_architecture_that_cannot_freeze_is_refused(sharing: str) -> None:
    message = _error(_spec(sharing=[sharing], hyperparameters={"freeze_layers": 1}))
    assert message.startswith("spec: training.hyperparameters.freeze_layers: freeze_layers 1 ")
    assert f"not {sharing!r}" in message and "hard, label_embedding" in message


def test_freeze_layers_searched_with_a_supported_and_an_unsupported_architecture_is_refused() -> (
    None
):
    # A trial drawing soft would fail: the spec is refused, naming soft, not narrowed in silence.
    spec = spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": ["synth_related"],
            "encoder": {"name": "tiny-bert", "max_length": 16},
            "search": {
                "sharing": ["hard", "soft"],
                "hyperparameters": {"freeze_layers": [0, 1]},
            },
        }
    )
    message = _error(spec)
    assert message.startswith("spec: search.hyperparameters.freeze_layers: freeze_layers 1 ")
    assert "not 'soft'" in message and "remove soft from search.sharing" in message


def test_freeze_layers_is_accepted_where_the_build_implements_it() -> None:
    check_spec(_spec(sharing=FREEZE_SHARING, hyperparameters={"freeze_layers": 2}))
    # 0 freezes nothing, so any architecture runs it
    check_spec(_spec(sharing=["soft", "mmoe"], hyperparameters={"freeze_layers": 0}))


def test_the_supported_architectures_are_the_builds_own() -> None:
    # One source of truth: the message lists what taskgraph.models.frozen accepts.
    assert set(FREEZE_SHARING) == {"hard", "label_embedding"}


def test_head_options_for_a_task_not_in_the_study_are_refused() -> None:
    # A misspelt task name used to be dropped by each trial: CRF silently off.
    message = _error(_spec(hyperparameters={"head_options": {"wnut17": {"crf": True}}}))
    assert message == (
        "spec: training.hyperparameters.head_options.wnut17: not a task of the study, so its "
        "head options would be ignored; the study's tasks: tr_ner_tur2003, ud_tr_imst_deps"
    )


@pytest.mark.parametrize(
    ("options", "wanted"),
    [
        (
            {"ud_tr_imst_deps": {"crf": True}},
            "spec: training.hyperparameters.head_options.ud_tr_imst_deps: task "
            "'ud_tr_imst_deps': unknown dependency_parsing head option(s) crf; allowed: "
            "arc_size, label_size, mlp_dropout",
        ),
        (
            {"tr_ner_tur2003": {"crff": True}},
            "spec: training.hyperparameters.head_options.tr_ner_tur2003: task "
            "'tr_ner_tur2003': unknown token_tagging head option(s) crff; allowed: crf, dropout",
        ),
    ],
)
def test_head_options_the_tasks_head_does_not_take_are_refused(
    options: dict[str, Any], wanted: str
) -> None:
    assert _error(_spec(hyperparameters={"head_options": options})) == wanted


def test_head_options_the_heads_take_are_accepted() -> None:
    options = {"tr_ner_tur2003": {"crf": True}, "ud_tr_imst_deps": {"arc_size": 64}}
    check_spec(_spec(hyperparameters={"head_options": options}))


def test_every_task_type_has_a_head_class() -> None:
    assert set(HEAD_CLASSES) == set(TaskType)


@pytest.mark.parametrize(
    ("sources", "said"),
    [
        (["wikiann_en_ner"], "'wikiann_en_ner' is not a candidate of the study"),
        (["tr_ner_tur2003"], "'tr_ner_tur2003' is the target"),
        ("ud_tr_imst_deps", "expected a list of candidate task names, got 'ud_tr_imst_deps'"),
    ],
)
def test_source_tasks_naming_no_candidate_are_refused(sources: Any, said: str) -> None:
    # Every sequential trial without another source failed at the model build, after the
    # baseline had trained.
    message = _error(_spec(hyperparameters={"source_tasks": sources}))
    assert message.startswith("spec: training.hyperparameters.source_tasks: "), message
    assert said in message


def test_source_tasks_among_the_candidates_are_accepted() -> None:
    check_spec(_spec(hyperparameters={"source_tasks": ["ud_tr_imst_deps"]}))

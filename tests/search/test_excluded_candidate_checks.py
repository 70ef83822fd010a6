"""Spec checks that name tasks a trial can draw: a candidate in ``search.auxiliaries.exclude``
is never among a trial's auxiliaries, so a setting that relies on it is refused, and a setting
that would leave it out is not."""

from __future__ import annotations

from taskgraph.search.checks import check_spec
from taskgraph.testing import spec_check_error, synthetic_spec


def test_source_tasks_naming_an_excluded_candidate_is_refused() -> None:
    # Accepted before: every sequential trial with an auxiliary then failed at the model build
    # ("`source_tasks` (synth_conflict) names none of the trial's auxiliaries").
    spec = synthetic_spec(
        search={"transfer_mode": "sequential", "auxiliaries": {"exclude": ["synth_conflict"]}},
        training={"hyperparameters": {"source_tasks": ["synth_conflict"]}},
    )
    assert spec_check_error(spec) == (
        "spec: training.hyperparameters.source_tasks: 'synth_conflict' is excluded from the "
        "search (search.auxiliaries.exclude), as is every name of the list, so no sequential "
        "trial could train it first; the candidates: synth_related"
    )


def test_an_excluded_name_beside_a_drawable_one_passes() -> None:
    # The list acts as its drawable names: trials that draw synth_related train it first.
    spec = synthetic_spec(
        search={"transfer_mode": "sequential", "auxiliaries": {"exclude": ["synth_conflict"]}},
        training={"hyperparameters": {"source_tasks": ["synth_related", "synth_conflict"]}},
    )
    check_spec(spec, trains=False)


def test_source_tasks_naming_a_drawable_candidate_passes() -> None:
    spec = synthetic_spec(
        search={"transfer_mode": "sequential", "auxiliaries": {"exclude": ["synth_conflict"]}},
        training={"hyperparameters": {"source_tasks": ["synth_related"]}},
    )
    check_spec(spec, trains=False)


def test_a_zero_weight_that_covers_only_excluded_candidates_passes() -> None:
    # Refused before, as if it kept synth_conflict from being trained: it is never drawn anyway.
    spec = synthetic_spec(
        search={
            "auxiliaries": {"exclude": ["synth_conflict"]},
            "mixing": {"weights": {"synth_related": 1.0, "*": 0}},
        }
    )
    check_spec(spec, trains=False)
    named = synthetic_spec(
        search={
            "auxiliaries": {"exclude": ["synth_conflict"]},
            "mixing": {"weights": {"synth_conflict": 0}},
        }
    )
    check_spec(named, trains=False)


def test_a_zero_weight_of_a_drawable_candidate_is_still_refused() -> None:
    spec = synthetic_spec(
        search={
            "auxiliaries": {"exclude": ["synth_conflict"]},
            "mixing": {"weights": {"*": 0}},
        }
    )
    message = spec_check_error(spec)
    assert message.startswith(
        "spec: search.mixing.weights.*: a weight of 0, which never draws a batch of synth_related:"
    ), message

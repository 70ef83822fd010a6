"""A trial interrupted by its driver is no proposal of its set: its retry is.

The engine fails an interrupted trial with ``taskgraph:interrupted`` and enqueues its retry with
the same parameters (the proposal attribute copied).  Both used to count toward the graph
sampler's ``max_repeats``: with 4 valid sets, ``max_repeats`` 2 and 8 trials, one interruption
stopped the study "exhausted" at 7 trials, the interrupted set measured once.
"""

from __future__ import annotations

from collections import Counter
from types import ModuleType

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from taskgraph.search.bandit_sampler import BanditSampler
from taskgraph.search.engine import StudyEngine
from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.heartbeat import RetryStaleTrial, quiet_optuna
from taskgraph.search.progress import (
    FAILURE_ATTR,
    INTERRUPTED_ATTR,
    INTERRUPTED_BY_ATTR,
    retried_numbers,
    trial_state,
)
from taskgraph.search.report import study_report
from taskgraph.search.space import SUBSET_ATTR
from taskgraph.search.subset_sampler import PROPOSAL_ATTR, SubsetSampler
from taskgraph.spec import spec_from_dict

optuna.logging.set_verbosity(optuna.logging.WARNING)
CANDIDATES = ["a", "b"]  # four valid sets: {}, {a}, {b}, {a, b}


def ask(study: optuna.Study) -> tuple[optuna.Trial, frozenset[str]]:
    trial = study.ask()
    chosen = frozenset(
        t for t in CANDIDATES if trial.suggest_categorical(f"aux/{t}", [False, True])
    )
    return trial, chosen


def interrupt(study: optuna.Study, trial: optuna.Trial, *, max_retry: int = 3) -> FrozenTrial:
    """What ``StudyEngine.interrupt`` does: mark, fail, enqueue the retry (same parameters)."""
    with quiet_optuna():
        trial.set_user_attr(INTERRUPTED_ATTR, True)
        frozen = study.tell(trial, state=TrialState.FAIL)
        RetryStaleTrial(max_retry=max_retry)(study, frozen)
    return frozen


def value(chosen: frozenset[str]) -> float:
    return 0.5 + 0.1 * ("a" in chosen) - 0.05 * ("b" in chosen)


def run_with_one_interruption(sampler: SubsetSampler, budget: int) -> optuna.Study:
    """Run ``budget`` counted trials like the local engine (stop when exhausted); the second
    trial is interrupted once and retried."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    interrupted = False
    while sum(t.state == TrialState.COMPLETE for t in study.trials) < budget:
        exhausted = getattr(sampler, "exhausted", None)
        if exhausted is not None and exhausted(study):
            break
        trial, chosen = ask(study)
        if trial.number == 1 and not interrupted:
            interrupted = True
            interrupt(study, trial)
            continue
        study.tell(trial, value(chosen))
    return study


def measured(study: optuna.Study) -> Counter[frozenset[str]]:
    return Counter(
        frozenset(n[len("aux/") :] for n, v in t.params.items() if v is True)
        for t in study.trials
        if t.state == TrialState.COMPLETE
    )


def test_an_interrupted_trial_does_not_count_toward_max_repeats() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=CANDIDATES, max_repeats=2, seed=0)
    study = run_with_one_interruption(sampler, budget=8)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 1
    retry = study.trials[2]
    assert retry.system_attrs["failed_trial"] == 1
    assert retry.params == study.trials[1].params
    assert retry.system_attrs[PROPOSAL_ATTR] == study.trials[1].system_attrs[PROPOSAL_ATTR]
    # Every set measured twice, the interrupted one too; the study ran its whole budget.
    counts = measured(study)
    assert len(counts) == 4 and set(counts.values()) == {2}, counts
    _, proposed = sampler._study_records(study)
    assert set(proposed.values()) == {2}, proposed
    assert sampler.exhausted(study)


def test_an_interrupted_set_is_not_exhausted_while_its_retry_waits() -> None:
    sampler = GraphGuidedSampler(target="t", candidates=CANDIDATES, max_repeats=1, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(3):
        trial, chosen = ask(study)
        study.tell(trial, value(chosen))
    trial, last = ask(study)
    interrupt(study, trial)
    # Three sets measured, the fourth waits for its retry: nothing is exhausted.
    assert not sampler.exhausted(study)
    retry, chosen = ask(study)
    assert retry.number == 4 and chosen == last
    # The running retry counts (its proposal is copied), once.
    _, proposed = sampler._study_records(study)
    assert proposed[last] == 1
    study.tell(retry, value(chosen))
    assert sampler.exhausted(study)


def test_an_interrupted_set_without_a_retry_is_proposed_again_before_any_repeat() -> None:
    # No retry left: the set was never measured, so it is the next proposal, not a repeat.
    sampler = GraphGuidedSampler(target="t", candidates=CANDIDATES, max_repeats=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trial, chosen = ask(study)
    study.tell(trial, value(chosen))
    trial, lost = ask(study)
    interrupt(study, trial, max_retry=0)
    assert not [t for t in study.trials if t.state == TrialState.WAITING]
    seen = []
    for _ in range(3):
        trial, chosen = ask(study)
        seen.append(chosen)
        study.tell(trial, value(chosen))
    assert seen[0] == lost
    assert measured(study) == Counter({s: 1 for s in measured(study)}) and len(measured(study)) == 4


def test_the_bandit_does_not_count_an_interrupted_set_as_seen() -> None:
    sampler = BanditSampler(target="t", candidates=CANDIDATES, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trial, chosen = ask(study)
    study.tell(trial, value(chosen))
    trial, lost = ask(study)
    interrupt(study, trial, max_retry=0)
    _, evaluated = sampler.posterior(study)
    assert lost not in evaluated and len(evaluated) == 1
    # Two more trials cover every set before any repeat, the interrupted one included.
    for _ in range(3):
        trial, chosen = ask(study)
        study.tell(trial, value(chosen))
    counts = measured(study)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts


def test_the_bandit_counts_an_interrupted_set_once_its_retry_runs() -> None:
    sampler = BanditSampler(target="t", candidates=CANDIDATES, seed=0)
    study = run_with_one_interruption(sampler, budget=4)
    counts = measured(study)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts
    _, evaluated = sampler.posterior(study)
    assert len(evaluated) == 4


def test_only_interruptions_are_left_out_of_the_counts() -> None:
    from taskgraph.search.subset_sampler import counted_trials, is_interrupted

    study = optuna.create_study(direction="maximize")
    with quiet_optuna():
        own, _ = ask(study)  # a failure of its own, as the engine records it
        own.set_user_attr(FAILURE_ATTR, "loss is NaN")
        study.tell(own, state=TrialState.FAIL)
        plain, _ = ask(study)  # a plain Optuna failure: no mark at all
        study.tell(plain, state=TrialState.FAIL)
        marked, _ = ask(study)  # killed driver: the heartbeat marks it, then fails it
        marked.set_user_attr(INTERRUPTED_ATTR, True)
        marked.set_user_attr(INTERRUPTED_BY_ATTR, "its driver stopped beating")
        study.tell(marked, state=TrialState.FAIL)
        stored, _ = ask(study)  # killed after its failure was stored: retried, so interrupted
        stored.set_user_attr(FAILURE_ATTR, "loss is NaN")
        frozen = study.tell(stored, state=TrialState.FAIL)
        RetryStaleTrial(max_retry=3)(study, frozen)
    trials = study.get_trials()
    retried = retried_numbers(trials)
    flags = [is_interrupted(t, retried=retried) for t in trials]
    assert flags == [False, False, True, True, False]
    # The engine's reading agrees for the trials it writes (a plain failure it never writes).
    assert [trial_state(t, retried=retried) for t in trials[:4]] == [
        "failed", "interrupted", "interrupted", "interrupted"
    ]  # fmt: skip
    assert [t.number for t in counted_trials(trials)] == [0, 1]  # the retry waits: not yet


def test_the_engine_runs_the_whole_budget_after_an_interruption(
    storage_url: str, fakes: ModuleType
) -> None:
    """The auditor's case through the engine: graph sampler, max_repeats 2, four valid sets,
    budget 8, one trial interrupted (Ctrl-C) and resumed: 8 counted trials, two per set."""
    spec = spec_from_dict({
        "name": "fake", "target": "tgt", "candidates": ["good", "bad"],
        "search": {"sharing": ["hard"]},
        "sampler": {"name": "graph", "seed": 0, "options": {"max_repeats": 2}},
        "budget": {"trials": 8, "max_failures": 10},
        "seeds": 1,
        "recovery": {"heartbeat_interval": 1, "grace_period": 2},
    })  # fmt: skip

    def engine(evaluator: object) -> StudyEngine:
        return StudyEngine(spec=spec, storage_url=storage_url, evaluator=evaluator,
                           sharing_spaces=fakes.SHARING_SPACES)  # fmt: skip

    first = engine(fakes.FakeEvaluator(interrupt_on=3))
    with pytest.raises(KeyboardInterrupt):
        first.run()
    first.close()
    second = engine(fakes.FakeEvaluator())
    summary = second.run()
    trials = second.require_study().get_trials()
    report = study_report(second.require_study())
    second.close()
    assert summary.reason == "budget", (summary.reason, summary.detail)
    assert summary.progress.n_done == 8 and summary.progress.n_interrupted == 1
    retried = retried_numbers(trials)
    states = [trial_state(t, retried=retried) for t in trials]
    sets = Counter(
        frozenset(t.user_attrs[SUBSET_ATTR]) for t, s in zip(trials, states, strict=True)
        if s == "complete"
    )  # fmt: skip
    assert len(sets) == 4 and set(sets.values()) == {2}, sets
    # The report lists only the failures that count (none here), not the interruption, and
    # counts every trial it holds: the counted ones and the interrupted one.
    interrupted = [t.number for t, s in zip(trials, states, strict=True) if s == "interrupted"]
    assert len(interrupted) == 1
    assert len(report["failures"]) == report["n_failed"] == states.count("failed")
    assert interrupted[0] not in [f["trial"] for f in report["failures"]]
    assert report["n_interrupted"] == 1
    assert report["n_trials"] == len(trials) == report["n_done"] + report["n_interrupted"]

"""An auxiliary trained jointly on a selected share of its data is not its full-data baseline.

Example-level data selection (``data_selection.keep < 1``) trains every auxiliary of a run on
the share of its data chosen for the run's target, in joint mode (the default) as in a
sequential source phase.  Its score then belongs to a family of its own
(``<family>/selected:…``, ``storage.writes.task_family``): set against the task's single-task
baseline on all of its data, a gain would compare F1 on selected data with F1 on all data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.affinity.gains import compute_gains
from taskgraph.app.affinity import load_records
from taskgraph.storage import open_repository
from taskgraph.storage.writes import task_family
from taskgraph.trial import Cost, DataSelectionConfig, TrialConfig, TrialResult, TrialStatus

FEATURES = ("jsd", "types")


def _selection(keep: float, weight: float = 0.5) -> DataSelectionConfig:
    return DataSelectionConfig(features=FEATURES, weights={"jsd": weight, "types": 0.0}, keep=keep)


def _joint(keep: float, weight: float = 0.5) -> TrialConfig:
    return TrialConfig(
        target="ncbi_disease",
        auxiliaries=("bc5cdr_chem", "bc5cdr_disease"),
        data_selection=_selection(keep, weight),
        max_steps=4,
    )


def _alone(task: str) -> TrialConfig:
    # A single-task run of the same family (same feature set): nothing of it is selected.
    return TrialConfig(target=task, data_selection=_selection(0.3, -1.0), max_steps=4)


def test_a_joint_auxiliary_on_selected_data_gets_a_selected_family() -> None:
    config = _joint(0.32)
    plain = _alone("bc5cdr_chem").family_key()
    family = task_family(config, "bc5cdr_chem")
    assert family.startswith(plain + "/selected:")
    assert family != plain
    # Each selection (weights, keep) is its own family; the other auxiliary is selected too.
    assert family != task_family(_joint(0.69), "bc5cdr_chem")
    assert family != task_family(_joint(0.32, weight=-0.5), "bc5cdr_chem")
    assert task_family(config, "bc5cdr_disease").startswith(
        _alone("bc5cdr_disease").family_key() + "/selected:"
    )
    # The target's data are never selected, and all data kept is the task trained on all.
    assert task_family(config, "ncbi_disease") == config.family_key()
    assert task_family(_joint(1.0), "bc5cdr_chem") == plain
    # A single-task run with a selection configured selects nothing either.
    alone = _alone("bc5cdr_chem")
    assert task_family(alone, "bc5cdr_chem") == plain


def _add(repo, number: int, config: TrialConfig, scores: dict[str, float]) -> None:
    result = TrialResult(
        status=TrialStatus.COMPLETE,
        scores={task: {"dev": {"f1": value}} for task, value in scores.items()},
        objective=scores[config.target],
        cost=Cost(seconds=1.0),
    )
    repo.add_run_result(study="s", trial_number=number, config=config, result=result)


def test_a_selected_auxiliarys_score_is_never_set_against_its_full_data_baseline(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, _alone("bc5cdr_chem"), {"bc5cdr_chem": 0.40})  # all 80 examples
        _add(repo, 1, _alone("ncbi_disease"), {"ncbi_disease": 0.30})
        _add(repo, 2, _joint(0.32), {"ncbi_disease": 0.33, "bc5cdr_chem": 0.10,
                                     "bc5cdr_disease": 0.2})  # fmt: skip
        _add(repo, 3, _joint(0.86), {"ncbi_disease": 0.36, "bc5cdr_chem": 0.50,
                                     "bc5cdr_disease": 0.2})  # fmt: skip
    records = load_records(storage=url, metric="f1")
    chem = {r.run_id: r.family for r in records if r.task == "bc5cdr_chem"}
    baseline = _alone("bc5cdr_chem").family_key()
    assert chem[1] == baseline
    assert chem[3].startswith(baseline + "/selected:")
    assert chem[4].startswith(baseline + "/selected:") and chem[4] != chem[3]
    table = compute_gains(records)
    # No gain for bc5cdr_chem: its selected scores have no baseline trained on the same share.
    assert [g for g in table.gains if g.target == "bc5cdr_chem"] == []
    # The target's gains are measured as before, against its own single-task baseline.
    (gain,) = [g for g in table.gains if g.target == "ncbi_disease"]
    assert gain.mean == pytest.approx(((0.33 - 0.30) / 0.30 + (0.36 - 0.30) / 0.30) / 2)


def test_the_same_selection_for_another_target_is_another_family() -> None:
    # The share of an auxiliary's data is chosen for the run's target: the same weights and
    # keep picked for another target select other examples.
    def run(target: str) -> TrialConfig:
        return TrialConfig(
            target=target,
            auxiliaries=("bc5cdr_chem",),
            data_selection=_selection(0.5),
            max_steps=4,
        )

    ncbi = task_family(run("ncbi_disease"), "bc5cdr_chem")
    disease = task_family(run("bc5cdr_disease"), "bc5cdr_chem")
    plain = _alone("bc5cdr_chem").family_key()
    assert ncbi.startswith(plain + "/selected:") and disease.startswith(plain + "/selected:")
    assert ncbi != disease

"""A measured gain whose runs and single-task baseline were trained with other settings says so.

The model family (``TrialConfig.family_key``) keys a baseline by encoder, input length, the
target's cap, data selection and pretraining; a study that searches the learning rate or the
sharing architecture samples the baseline's own, so its gains hold that change besides the
transfer.  ``ScoreRecord.settings`` carries each run's ``TrialConfig.alone_settings``, and
``GainTable.mixed_settings``, ``affinity top`` and ``study show`` name the differences.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from taskgraph.affinity.gains import compute_gains
from taskgraph.affinity.records import ScoreRecord
from taskgraph.app.affinity import load_records, recommendation_report
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, TrialConfig, TrialResult, TrialStatus, setting_differences


def _add(repo, number: int, aux: tuple[str, ...], f1: float, **settings) -> None:
    config = TrialConfig(target="ner", auxiliaries=aux, **settings)
    scores = {"ner": {"dev": {"f1": f1}}} | {t: {"dev": {"f1": 0.9}} for t in aux}
    result = TrialResult(
        status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
    )
    repo.add_run_result(study="s", trial_number=number, config=config, result=result)


def test_alone_settings_name_what_changes_a_task_trained_alone() -> None:
    base = TrialConfig(target="ner", learning_rate=1e-4)
    # Soft sharing and cross-stitch of one task are the plain model; so is hard sharing.
    for sharing in ("soft", "cross_stitch"):
        other = TrialConfig(target="ner", learning_rate=1e-4, sharing=sharing,
                            sharing_params={"top_k_layers": 2})  # fmt: skip
        assert setting_differences(base.alone_settings(), other.alone_settings()) == []
    hierarchical = TrialConfig(target="ner", learning_rate=1e-4, sharing="hierarchical",
                               sharing_params={"tagging_layer": 1})  # fmt: skip
    assert setting_differences(base.alone_settings(), hierarchical.alone_settings()) == [
        "sharing",
        "sharing_params",
    ]
    # PCGrad of one task is the plain sum; uncertainty weighting scales the one loss.
    pcgrad = TrialConfig(target="ner", learning_rate=1e-4, loss_weighting="pcgrad")
    assert setting_differences(base.alone_settings(), pcgrad.alone_settings()) == []
    uncertainty = TrialConfig(target="ner", learning_rate=1e-4, loss_weighting="uncertainty")
    assert setting_differences(base.alone_settings(), uncertainty.alone_settings()) == [
        "loss_weighting"
    ]
    faster = TrialConfig(target="ner", learning_rate=3e-4)
    assert setting_differences(base.alone_settings(), faster.alone_settings()) == ["learning_rate"]
    # Another task's head options and multi-task bookkeeping do not change ner alone; its own
    # head options and the warmup do.
    quiet = TrialConfig(
        target="ner",
        auxiliaries=("pos",),
        learning_rate=1e-4,
        hyperparameters={"head_options": {"pos": {"crf": True}}, "lookahead_lr": 0.1},
    )
    assert setting_differences(base.alone_settings(), quiet.alone_settings()) == []
    crf = TrialConfig(target="ner", learning_rate=1e-4,
                      hyperparameters={"head_options": {"ner": {"crf": True}}})  # fmt: skip
    warm = TrialConfig(target="ner", learning_rate=1e-4, hyperparameters={"warmup_ratio": 0.3})
    assert setting_differences(base.alone_settings(), crf.alone_settings()) == [
        "hyperparameters.head_options"
    ]
    assert setting_differences(base.alone_settings(), warm.alone_settings()) == [
        "hyperparameters.warmup_ratio"
    ]
    # The auxiliary's view of a run: its own head options count.
    assert quiet.alone_settings("pos")["hyperparameters.head_options"] == {"crf": True}


def test_gains_name_settings_their_baseline_was_trained_without(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, learning_rate=1e-4)
        _add(repo, 1, ("pos",), 0.60, learning_rate=1e-4)
        _add(repo, 2, ("chunk",), 0.70, learning_rate=1e-3)
        _add(repo, 3, ("tags",), 0.55, learning_rate=1e-4, sharing="mmoe",
             sharing_params={"num_experts": 4})  # fmt: skip
    records = load_records(storage=url, metric="f1")
    assert all(r.settings for r in records)
    table = compute_gains(records)
    mixed = {"+".join(sorted(aux)): names for _, task, aux, names in table.mixed_settings}
    assert mixed == {"chunk": ("learning_rate",), "tags": ("sharing", "sharing_params")}
    report = recommendation_report("ner", storage=url, metric="f1", method="pairwise")
    note = next(n for n in report.notes if "other settings" in n)
    assert note.startswith(
        "2 of the 3 measured gains of 'ner' (auxiliary sets chunk, tags) compare runs with a "
        "single-task baseline trained with other settings (learning_rate, sharing, "
        "sharing_params; the study searched them"
    )
    assert note.endswith(
        "so each of these gains mixes the effect of those settings with the transfer; to "
        "measure the transfer alone, fix those settings in the spec (or train 'ner' alone "
        "with each value)"
    )


def test_records_without_settings_or_with_equal_ones_are_not_flagged() -> None:
    same = (("learning_rate", "0.0001"),)
    records = [
        ScoreRecord("t", frozenset({"t"}), 0.5, settings=same),
        ScoreRecord("t", frozenset({"t", "u"}), 0.6, settings=same),
        ScoreRecord("t", frozenset({"t", "v"}), 0.7),  # a published table's row
    ]
    table = compute_gains(records)
    assert [g.mean for g in table.gains] == [pytest.approx(0.2), pytest.approx(0.4)]
    assert table.mixed_settings == []


def test_the_graph_says_once_which_targets_gains_hold_other_settings(tmp_path: Path) -> None:
    from taskgraph.app.affinity import graph_report

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        for number, (target, aux, f1, rate) in enumerate(
            [
                ("ner", (), 0.5, 1e-4),
                ("ner", ("pos",), 0.6, 1e-3),
                ("pos", (), 0.8, 1e-4),
                ("pos", ("ner",), 0.85, 1e-3),
                ("chunk", (), 0.7, 1e-4),
                ("chunk", ("pos",), 0.75, 1e-4),
            ]
        ):
            config = TrialConfig(target=target, auxiliaries=aux, learning_rate=rate)
            scores = {target: {"dev": {"f1": f1}}}
            result = TrialResult(
                status=TrialStatus.COMPLETE, scores=scores, objective=f1, cost=Cost(seconds=1.0)
            )
            repo.add_run_result(study="s", trial_number=number, config=config, result=result)
    report = graph_report(storage=url, metric="f1", method="pairwise")
    notes = [n for n in report.notes if "other settings" in n]
    assert len(notes) == 1, report.notes
    assert notes[0].startswith(
        "both measured gains of 2 targets ('ner', 'pos') compare runs with their target's "
        "single-task baseline trained with other settings (learning_rate; the studies searched"
    )
    assert "`affinity top --target NAME` lists them" in notes[0]


def test_a_source_scored_alone_is_a_baseline_only_when_trained_as_one() -> None:
    from taskgraph.storage.writes import task_family
    from taskgraph.trial import DataSelectionConfig

    def sequential(keep: float, **hyper) -> TrialConfig:
        selection = DataSelectionConfig(features=("jsd",), weights={"jsd": 1.0}, keep=keep)
        return TrialConfig(target="ner", auxiliaries=("pos",), transfer_mode="sequential",
                           data_selection=selection, max_steps=4,
                           hyperparameters=hyper)  # fmt: skip

    # pos trained alone in the same family: its real baseline
    alone = TrialConfig(
        target="pos",
        max_steps=4,
        data_selection=DataSelectionConfig(features=("jsd",), weights={"jsd": 0.5}, keep=0.3),
    )
    # The source phase trained pos on 20 % of its data, chosen for ner: not pos's baseline.
    selected = task_family(sequential(0.2), "pos", within=("pos",))
    assert selected.startswith(alone.family_key() + "/selected:")
    assert selected != task_family(sequential(0.4), "pos", within=("pos",))
    # All of its data kept: the source phase is pos trained alone.
    assert task_family(sequential(1.0), "pos", within=("pos",)) == alone.family_key()
    # The source phase's own steps are the source's step setting.
    longer = sequential(1.0, source_max_steps=30)
    assert longer.alone_settings("pos")["max_steps"] == 30
    assert longer.alone_settings("ner")["max_steps"] == 4
    assert setting_differences(longer.alone_settings("pos"), alone.alone_settings()) == [
        "max_steps"
    ]


def test_a_set_is_measured_against_the_baselines_trained_as_it_was() -> None:
    slow, fast, faster = ((("learning_rate", rate),) for rate in ("0.0001", "0.001", "0.003"))
    records = [
        ScoreRecord("t", frozenset({"t"}), 0.5, settings=slow),
        ScoreRecord("t", frozenset({"t"}), 0.6, settings=fast),
        ScoreRecord("t", frozenset({"t", "u"}), 0.66, settings=fast),
        ScoreRecord("t", frozenset({"t", "v"}), 0.66, settings=faster),
    ]
    table = compute_gains(records)
    gains = {"+".join(sorted(g.auxiliaries)): g.mean for g in table.gains}
    # u against the baseline of its own learning rate (0.6), not the pooled 0.55
    assert gains["u"] == pytest.approx(0.1)
    # v has no baseline of its learning rate: the pooled one, and the note
    assert gains["v"] == pytest.approx(0.2)
    assert [(sorted(aux), names) for *_, aux, names in table.mixed_settings] == [
        (["v"], ("learning_rate",))
    ]


def test_a_set_run_with_two_settings_is_measured_against_each_ones_baseline() -> None:
    slow, fast = ((("learning_rate", rate),) for rate in ("0.0001", "0.001"))
    records = [
        ScoreRecord("t", frozenset({"t"}), 0.5, settings=slow),
        ScoreRecord("t", frozenset({"t"}), 0.8, settings=fast),
        ScoreRecord("t", frozenset({"t", "u"}), 0.55, settings=slow),  # +10 % of 0.5
        ScoreRecord("t", frozenset({"t", "u"}), 0.96, settings=fast),  # +20 % of 0.8
    ]
    table = compute_gains(records)
    (gain,) = table.gains
    assert gain.mean == pytest.approx(0.15)  # the mean of +10 % and +20 %, like with like
    assert gain.n_records == 2 and table.mixed_settings == []
    # The pooled baseline (0.65) would have given (0.755 - 0.65) / 0.65 = +16.2 %.
    absolute = compute_gains(records, kind="absolute").gains[0]
    assert absolute.mean == pytest.approx((0.05 + 0.16) / 2)


def test_a_set_with_records_of_unknown_settings_is_measured_against_the_pooled_baseline() -> None:
    # One of the set's records carries no settings (a published table): the per-setting
    # baselines cannot cover it, so the whole set is compared with the pooled baseline.
    slow, fast = ((("learning_rate", rate),) for rate in ("0.0001", "0.001"))
    records = [
        ScoreRecord("t", frozenset({"t"}), 0.5, settings=slow),
        ScoreRecord("t", frozenset({"t"}), 0.8, settings=fast),
        ScoreRecord("t", frozenset({"t", "u"}), 0.55, settings=slow),
        ScoreRecord("t", frozenset({"t", "u"}), 0.9, seed=1),
    ]
    table = compute_gains(records, kind="absolute")
    (gain,) = table.gains
    # (0.55 + 0.9) / 2 against (0.5 + 0.8) / 2, not 0.55 against the slow baseline's 0.5
    assert gain.n_records == 2 and gain.mean == pytest.approx(0.725 - 0.65)
    assert [(sorted(aux), names) for *_, aux, names in table.mixed_settings] == [
        (["u"], ("learning_rate",))
    ]


def test_a_zero_baseline_of_one_setting_falls_back_to_the_pooled_baseline() -> None:
    # The slow learning rate's baseline scored 0: a gain relative to it is undefined, so the
    # set is measured against the pooled (non-zero) baseline, and the note says so.
    slow, fast = ((("learning_rate", rate),) for rate in ("0.0001", "0.001"))
    records = [
        ScoreRecord("t", frozenset({"t"}), 0.0, settings=slow),
        ScoreRecord("t", frozenset({"t"}), 0.0, settings=slow, seed=1),
        ScoreRecord("t", frozenset({"t"}), 0.8, settings=fast),
        ScoreRecord("t", frozenset({"t", "u"}), 0.1, settings=slow),
        ScoreRecord("t", frozenset({"t", "u"}), 0.96, settings=fast),
    ]
    table = compute_gains(records)
    (gain,) = table.gains
    # pooled: the set's 0.53 against the seed means 0.4 (seed 0) and 0.0 (seed 1): 0.2
    assert math.isfinite(gain.mean) and gain.mean == pytest.approx((0.53 - 0.2) / 0.2)
    assert table.zero_baselines == [] and len(table.mixed_settings) == 1
    # An absolute gain needs no division: each setting against its own baseline.
    absolute_table = compute_gains(records, kind="absolute")
    (absolute,) = absolute_table.gains
    assert absolute.mean == pytest.approx((0.1 + 0.16) / 2)
    assert absolute_table.mixed_settings == []
    # A negative baseline of one setting (a Matthews correlation) is no zero one.
    records = [
        ScoreRecord("t", frozenset({"t"}), -0.5, settings=slow),
        ScoreRecord("t", frozenset({"t"}), 0.8, settings=fast),
        ScoreRecord("t", frozenset({"t", "u"}), -0.4, settings=slow),  # +20 % of |-0.5|
        ScoreRecord("t", frozenset({"t", "u"}), 0.96, settings=fast),  # +20 % of 0.8
    ]
    (negative,) = compute_gains(records).gains
    assert negative.mean == pytest.approx(0.2)


def test_the_json_graph_carries_measured_absolute_gains_and_the_notes(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from taskgraph.cli.app import app

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50, learning_rate=1e-4)
        _add(repo, 1, ("pos",), 0.60, learning_rate=1e-3)
    out = tmp_path / "g.json"
    result = CliRunner().invoke(
        app,
        ["affinity", "graph", "--format", "json", "-o", str(out), "--storage", url,
         "--metric", "f1", "--method", "pairwise"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    (edge,) = [e for e in data["edges"] if e["source"] == "pos" and e["target"] == "ner"]
    assert edge["measured_relative_gain"] == pytest.approx(0.2)
    assert edge["measured_absolute_gain"] == pytest.approx(0.1)
    assert any("other settings (learning_rate" in note for note in data["graph"]["notes"])


def test_a_sources_phase_steps_are_read_back_from_the_database(tmp_path: Path) -> None:
    # The stored model configuration has no task set: without the run's target and set put
    # back, the source read the target's 4 steps, and its 30-step score joined pos's baseline.
    url = f"sqlite:///{tmp_path / 'r.db'}"

    def add(repo, number: int, config: TrialConfig, scores) -> None:
        result = TrialResult(
            status=TrialStatus.COMPLETE, scores=scores, objective=0.5, cost=Cost(seconds=1.0)
        )
        repo.add_run_result(study="s", trial_number=number, config=config, result=result)

    with open_repository(url) as repo:
        add(repo, 0, TrialConfig(target="pos", max_steps=4), {"pos": {"dev": {"f1": 0.5}}})
        sequential = TrialConfig(target="ner", auxiliaries=("pos",), transfer_mode="sequential",
                                 max_steps=4, hyperparameters={"source_max_steps": 30})  # fmt: skip
        add(repo, 1, sequential, {"ner": {"dev": {"f1": 0.6}}, "pos": {"dev": {"f1": 0.9}}})
        joint = TrialConfig(target="pos", auxiliaries=("ner",), max_steps=4)
        add(repo, 2, joint, {"pos": {"dev": {"f1": 0.6}}, "ner": {"dev": {"f1": 0.1}}})
    records = [r for r in load_records(storage=url, metric="f1") if r.task == "pos"]
    steps = {r.run_id: dict(r.settings)["max_steps"] for r in records}
    assert steps == {1: "4", 2: "30", 3: "4"}
    table = compute_gains(load_records(storage=url, metric="f1"))
    (gain,) = [g for g in table.gains if g.target == "pos"]
    assert gain.mean == pytest.approx(0.2)  # against the 4-step baseline alone
    assert table.mixed_settings == []


def test_sources_trained_together_on_selected_data_are_not_the_full_data_task() -> None:
    from taskgraph.storage.writes import task_family
    from taskgraph.trial import DataSelectionConfig

    selection = DataSelectionConfig(features=("jsd",), weights={"jsd": 1.0}, keep=0.2)
    config = TrialConfig(target="ner", auxiliaries=("chunk", "pos"), transfer_mode="sequential",
                         data_selection=selection)  # fmt: skip
    for task in ("chunk", "pos"):
        assert "/selected:" in task_family(config, task, within=("chunk", "pos"))


def test_a_stored_configuration_that_cannot_be_read_back_has_unknown_settings(
    tmp_path: Path,
) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with open_repository(url) as repo:
        _add(repo, 0, (), 0.50)
        _add(repo, 1, ("pos",), 0.60)
    with sqlite3.connect(tmp_path / "r.db") as connection:  # a row written by another program
        connection.execute(
            "update tg_model_configs set config = json_set(config, '$.hyperparameters', null)"
        )
    records = load_records(storage=url, metric="f1")
    assert [r.settings for r in records if r.task == "ner"] == [(), ()]
    assert [g.mean for g in compute_gains(records).gains] == [pytest.approx(0.2)]

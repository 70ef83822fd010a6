"""An encoder directory whose weights were replaced under the same path is another model.

A model family named the encoder by its name or path only, so the runs of weights saved over
the old ones pooled with the old weights' runs: a gain set a trial of one model against a
baseline of another, and a study resumed on the new weights trained no baseline of them.  A
configuration now carries the directory's version (``TrialConfig.encoder_version``, a sha256
of its files), the family keys on it, a resumed study trains a baseline of the new weights,
a process loads the new weights instead of serving the old from memory, and a trial whose
directory changed after it was configured fails instead of training other weights than its
family names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.encoder_files import encoder_version
from taskgraph.errors import ConfigError
from taskgraph.search.engine import StudyEngine
from taskgraph.search.progress import CONFIG_ATTR
from taskgraph.search.space import BASELINE_ROLE, ROLE_ATTR
from taskgraph.spec import StudySpec, spec_from_dict
from taskgraph.storage import open_repository
from taskgraph.testing import SHARING_SPACES, FakeEvaluator
from taskgraph.trial import MixingConfig, TrialConfig, TrialStatus

runner = CliRunner()


def _directory(path: Path, weights: bytes = b"weights, first version") -> Path:
    """Return an encoder directory as the spec checks and the search read it (a fake runner
    never loads the weights)."""
    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "bert", "max_position_embeddings": 512, "num_hidden_layers": 2}
    (path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (path / "model.safetensors").write_bytes(weights)
    return path


# -- the version itself ------------------------------------------------------------------------


def test_the_version_follows_the_files_that_make_the_model(tmp_path: Path) -> None:
    encoder = _directory(tmp_path / "enc")
    first = encoder_version(str(encoder))
    assert first is not None and len(first) == 64
    assert encoder_version(str(encoder)) == first
    # a model card, a licence and hidden files are no part of the model
    (encoder / "README.md").write_text("a model card", encoding="utf-8")
    (encoder / "LICENSE").write_text("MIT", encoding="utf-8")
    (encoder / ".cache").mkdir()
    (encoder / ".cache" / "x.lock").write_text("", encoding="utf-8")
    assert encoder_version(str(encoder)) == first
    (encoder / "model.safetensors").write_bytes(b"weights, second version")
    second = encoder_version(str(encoder))
    assert second not in (None, first)
    (encoder / "model.safetensors").write_bytes(b"weights, first version")
    assert encoder_version(str(encoder)) == first
    # a file's name counts; a subfolder (a Trainer's checkpoint-*, runs) is not read by the loader
    (encoder / "checkpoint-500").mkdir()
    (encoder / "checkpoint-500" / "model.safetensors").write_bytes(b"a checkpoint")
    assert encoder_version(str(encoder)) == first
    (encoder / "model.safetensors").rename(encoder / "pytorch_model.bin")
    assert encoder_version(str(encoder)) not in (None, first, second)


def test_a_file_that_cannot_be_read_is_one_error(tmp_path: Path) -> None:
    encoder = _directory(tmp_path / "enc")
    (encoder / "vocab.txt").symlink_to("/proc/self/mem")  # a regular file whose read fails
    with pytest.raises(ConfigError, match=r"encoder '.*enc': cannot read '.*vocab.txt': "):
        encoder_version(str(encoder))


def test_builtin_encoders_and_missing_paths_have_no_version(tmp_path: Path) -> None:
    assert encoder_version("minilm") is None
    assert encoder_version("tiny-bert") is None
    assert encoder_version(str(tmp_path / "nowhere")) is None


def test_the_version_is_part_of_the_family_and_absent_when_unset() -> None:
    plain = TrialConfig(target="t", auxiliaries=("a",), encoder="/models/enc")
    assert "encoder_version" not in plain.to_dict()  # hashes of older configurations kept
    first = TrialConfig(target="t", auxiliaries=("a",), encoder="/models/enc", encoder_version="1")
    second = TrialConfig(target="t", auxiliaries=("a",), encoder="/models/enc", encoder_version="2")
    assert first.to_dict()["encoder_version"] == "1"
    assert TrialConfig.from_dict(first.to_dict()) == first
    assert len({plain.family_key(), first.family_key(), second.family_key()}) == 3
    assert len({plain.model_config_hash(), first.model_config_hash()}) == 2


# -- a study ------------------------------------------------------------------------------------


def _spec(trials: int, encoder: Path, baselines: str = "per_family") -> StudySpec:
    return spec_from_dict(
        {
            "name": "ev",
            "target": "tgt",
            "encoder": {"name": str(encoder)},
            "objective": {"metric": "accuracy"},
            "candidates": ["good", "meh"],
            "search": {"auxiliaries": {"min_size": 1}},
            "sampler": {"name": "random", "seed": 0},
            "pruner": "none",
            "seeds": 1,
            "budget": {"trials": trials, "max_failures": 5, "baselines": baselines},
        }
    )


def _run(url: str, spec: StudySpec) -> None:
    engine = StudyEngine(
        spec=spec,
        storage_url=url,
        evaluator=FakeEvaluator(),
        sharing_spaces=SHARING_SPACES,
        source_fingerprints={"tgt": "t1", "good": "g1", "meh": "m1"},
    )
    try:
        engine.run()
    finally:
        engine.close()


def _versions(url: str) -> dict[int, tuple[str | None, bool]]:
    """Return trial number -> (its configuration's encoder version, whether it is a baseline)."""
    study = optuna.load_study(study_name="ev", storage=url)
    return {
        t.number: (
            TrialConfig.from_dict(t.user_attrs[CONFIG_ATTR]).encoder_version,
            t.user_attrs.get(ROLE_ATTR) == BASELINE_ROLE,
        )
        for t in study.trials
    }


def test_a_study_resumed_on_replaced_weights_trains_a_baseline_of_them(tmp_path: Path) -> None:
    encoder = _directory(tmp_path / "enc")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    _run(url, _spec(3, encoder))
    old = encoder_version(str(encoder))
    (encoder / "model.safetensors").write_bytes(b"a newer checkpoint saved over the old one")
    new = encoder_version(str(encoder))
    _run(url, _spec(6, encoder))

    versions = _versions(url)
    assert [versions[n] for n in range(3)] == [(old, True), (old, False), (old, False)]
    # the resumed run's first trial is a baseline of the new weights, then trials of them
    assert [versions[n] for n in range(3, 6)] == [(new, True), (new, False), (new, False)]
    with open_repository(url) as repository:
        families = {run.trial_number: run.family for run in repository.runs(study="ev")}
    # (a trial that repeats a set of its weights is not written again)
    old_families = {family for number, family in families.items() if number < 3}
    new_families = {family for number, family in families.items() if number >= 3}
    assert len(old_families) == len(new_families) == 1
    assert old_families != new_families

    shown = runner.invoke(app, ["study", "show", "ev", "--storage", url, "--json"])
    assert shown.exit_code == 0, shown.output
    rows = {row["trial"]: row for row in json.loads(shown.stdout)["gains"]}
    for number in (1, 2):
        assert rows[number]["baseline_trial"] == 0, rows[number]
    for number in (4, 5):
        assert rows[number]["baseline_trial"] == 3, rows[number]
        assert rows[number]["no_baseline_because"] is None

    # resumed again on the same files: no other baseline
    _run(url, _spec(8, encoder))
    assert [n for n, (_, base) in _versions(url).items() if base] == [0, 3]


def test_a_study_begun_before_versions_were_recorded_gets_a_baseline_of_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.search.space as space

    encoder = _directory(tmp_path / "enc")
    url = f"sqlite:///{tmp_path / 'records.db'}"
    with monkeypatch.context() as before:  # a taskgraph that recorded no version
        before.setattr(space, "encoder_version", lambda name: None)
        _run(url, _spec(3, encoder, "one"))
    _run(url, _spec(6, encoder, "one"))
    versions = _versions(url)
    now = encoder_version(str(encoder))
    assert [versions[n] for n in range(3)] == [(None, True), (None, False), (None, False)]
    assert [versions[n] for n in range(3, 6)] == [(now, True), (now, False), (now, False)]
    shown = runner.invoke(app, ["study", "show", "ev", "--storage", url, "--json"])
    rows = {row["trial"]: row for row in json.loads(shown.stdout)["gains"]}
    assert [rows[n]["baseline_trial"] for n in (4, 5)] == [3, 3]


# -- loading and training -----------------------------------------------------------------------


def _saved_tiny_encoder(path: Path, seed: int) -> Path:
    """Save a tiny random BERT (its weights drawn with ``seed``) as a model directory."""
    from taskgraph.models.encoders import load_encoder

    bundle = load_encoder("tiny-bert", options={"seed": seed})
    bundle.model.save_pretrained(str(path))
    bundle.tokenizer.save_pretrained(str(path))
    return path


def _first_weight(name: str) -> torch.Tensor:
    from taskgraph.models.encoders import load_encoder

    model = load_encoder(name).model
    return next(model.parameters()).detach().clone()


def test_a_process_loads_weights_saved_over_the_old_ones(tmp_path: Path) -> None:
    encoder = _saved_tiny_encoder(tmp_path / "enc", seed=1)
    before = _first_weight(str(encoder))
    assert torch.equal(_first_weight(str(encoder)), before)
    _saved_tiny_encoder(tmp_path / "other", seed=2)
    (tmp_path / "other" / "model.safetensors").replace(encoder / "model.safetensors")
    after = _first_weight(str(encoder))
    assert not torch.equal(after, before)


def _trial(encoder: Path, version: str | None) -> TrialConfig:
    return TrialConfig(
        target="synth_target",
        auxiliaries=("synth_related",),
        encoder=str(encoder),
        encoder_version=version,
        max_steps=2,
        batch_size=4,
        max_length=16,
        mixing=MixingConfig(max_examples={"synth_target": 16, "synth_related": 16}),
    )


def test_a_trial_whose_encoder_changed_after_it_was_configured_fails(tmp_path: Path) -> None:
    from taskgraph.training import train_trial

    encoder = _saved_tiny_encoder(tmp_path / "enc", seed=1)
    stale = "0" * 64
    result = train_trial(_trial(encoder, stale))
    assert result.status is TrialStatus.FAILED
    reason = result.failure_reason or ""
    assert reason.startswith("encoder error:"), reason
    assert str(encoder) in reason and "version 000000000000" in reason
    assert f"here version {encoder_version(str(encoder))[:12]}" in reason  # type: ignore[index]


def test_a_trial_whose_encoder_changed_while_it_loaded_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import taskgraph.training.run as run

    encoder = _saved_tiny_encoder(tmp_path / "enc", seed=1)
    built = run.build_trainer

    def replaced_meanwhile(*args: Any, **kwargs: Any) -> Any:
        trainer = built(*args, **kwargs)
        (encoder / "model.safetensors").write_bytes(b"replaced while the trial loaded it")
        return trainer

    monkeypatch.setattr(run, "build_trainer", replaced_meanwhile)
    result = run.train_trial(_trial(encoder, encoder_version(str(encoder))))
    assert result.status is TrialStatus.FAILED
    assert (result.failure_reason or "").startswith("encoder error:"), result.failure_reason


def test_a_trial_on_unchanged_files_trains(tmp_path: Path) -> None:
    from taskgraph.training import train_trial

    encoder = _saved_tiny_encoder(tmp_path / "enc", seed=1)
    result = train_trial(_trial(encoder, encoder_version(str(encoder))))
    assert result.status is TrialStatus.COMPLETE, result.failure_reason

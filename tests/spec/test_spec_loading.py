"""Study spec: YAML loading, shorthand, ${ENV} expansion and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import (
    Domain,
    RayRunnerSpec,
    StudySpec,
    load_spec,
    parse_duration,
    spec_from_dict,
)

MINIMAL = """\
name: s1
target: synth_a
candidates: [synth_b, synth_c]
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, **overrides: object) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text), overrides=overrides or None)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))
    assert spec.name == "s1"
    assert spec.candidate_names == ["synth_b", "synth_c"]
    assert spec.runner.name == "local"
    assert spec.sampler.name == "tpe"
    assert spec.pruner.name == "none"
    assert spec.seeds == (0,)
    assert list(spec.search.sharing) == ["hard"]


def test_shorthands_expand(tmp_path: Path) -> None:
    text = MINIMAL + (
        "sampler: random\npruner: median\nrunner: ray\nencoder: tiny-bert\nseeds: 3\n"
        "budget: {trials: 4, wall_time: 10m}\n"
        "search:\n  sharing: [hard, soft]\n  batch_size: [8, 16]\n"
        "  learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.sampler.name == "random" and spec.pruner.name == "median"
    assert spec.runner.name == "ray" and spec.encoder.name == "tiny-bert"
    assert spec.seeds == (0, 1, 2)
    assert spec.budget.wall_time == 600.0
    assert spec.search.sharing == {"hard": {}, "soft": {}}
    assert spec.search.batch_size.kind == "choice"
    assert spec.search.learning_rate.kind == "float" and spec.search.learning_rate.log


def test_domain_kinds_and_round_trip() -> None:
    assert Domain.model_validate(3).kind == "fixed"
    assert Domain.model_validate({"low": 1, "high": 4}).kind == "int"
    assert Domain.model_validate({"low": 1, "high": 4, "type": "float"}).kind == "float"
    assert Domain.model_validate([1]).is_fixed
    for raw in (0.5, [1, 2], {"low": 0.1, "high": 1.0, "log": True}, None):
        domain = Domain.model_validate(raw)
        assert Domain.model_validate(domain.model_dump()) == domain


def test_dump_round_trips_through_validation(tmp_path: Path) -> None:
    text = MINIMAL + "search:\n  sharing: {soft: {lambda: {low: 1.0e-4, high: 1.0, log: true}}}\n"
    spec = load_spec(write(tmp_path, text))
    again = spec_from_dict(spec.model_dump(mode="json"))
    assert again == spec
    assert again.search_hash() == spec.search_hash()


def test_search_hash_ignores_budget_and_runner(tmp_path: Path) -> None:
    base = load_spec(write(tmp_path, MINIMAL))
    other = load_spec(write(tmp_path, MINIMAL), overrides={"budget.trials": 99, "runner": "ray"})
    changed = load_spec(write(tmp_path, MINIMAL), overrides={"search.batch_size": 8})
    assert base.search_hash() == other.search_hash()
    assert base.search_hash() != changed.search_hash()


def test_env_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_DB", "sqlite:///x.db")
    monkeypatch.delenv("TG_TEST_UNSET", raising=False)
    text = MINIMAL + "storage: ${TG_TEST_DB}\ndescription: ${TG_TEST_UNSET:-fallback}\n"
    spec = load_spec(write(tmp_path, text))
    assert spec.storage == f"sqlite:///{(tmp_path / 'x.db').resolve()}"  # beside the spec
    assert spec.description == "fallback"
    message = error_of(tmp_path, MINIMAL + "storage: ${TG_TEST_UNSET}\n")
    assert "TG_TEST_UNSET" in message and "spec.yaml" in message


def test_relative_paths_resolve_against_spec_folder(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace(
            "candidates: [synth_b, synth_c]",
            "candidates:\n  - synth_b\n  - {name: mine, format: iob, type: token_tagging, "
            "label_field: ner, files: {train: data/train.iob}}",
        )
        + "runner: {name: tabular, table: tables/t.csv}\n"
    )
    spec = load_spec(write(tmp_path, text))
    inline = spec.inline_tasks()[0]
    assert inline.files == {"train": str(tmp_path / "data" / "train.iob")}
    assert spec.runner.name == "tabular"
    assert spec.runner.table == str(tmp_path / "tables" / "t.csv")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "search:\n  batch_sise: 8\n",
            ["spec.yaml:5", "search.batch_sise", "allowed:", "batch_size"],
        ),
        ("runner: {name: ray, adress: x}\n", ["runner.adress", "address", "max_concurrent_trials"]),
        ("runner: slurm\n", ["runner", "'slurm'", "local, ray, tabular"]),
        ("pruner: hyperband\n", ["pruner.name", "asha, successive_halving, median, none"]),
        ("seeds: 0\n", ["seeds", ">= 1"]),
        ("budget: {wall_time: 3 weeks}\n", ["budget.wall_time", "'10m'"]),
        ("search:\n  mixing: {scheme: {low: 3}}\n", ["search.mixing.scheme", "low and high"]),
        (
            "search:\n  transfer_mode: [joint, parallel]\n",
            ["search.transfer_mode", "joint, sequential"],
        ),
        ("search:\n  auxiliaries: {include: [zz]}\n", ["not candidates: zz"]),
        (
            "search:\n  auxiliaries: {min_size: 3, max_size: 1}\n",
            ["min_size (3) must be <= max_size (1)"],
        ),
        ("search:\n  learning_rate: {low: 0, high: 1, log: true}\n", ["learning_rate", "low > 0"]),
        ("name: 'bad name!'\n", ["name", "letters, digits"]),
        ("recovery: {heartbeat_interval: 5, grace_period: 5}\n", ["grace_period (5) must exceed"]),
    ],
)
def test_errors_name_file_field_and_allowed_values(
    tmp_path: Path, extra: str, expected: list[str]
) -> None:
    text = MINIMAL + extra if not extra.startswith("name:") else extra + MINIMAL.split("\n", 1)[1]
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "spec.yaml"))
    for part in expected:
        assert part in message, (part, message)


def test_inline_task_errors_point_inside_the_task(tmp_path: Path) -> None:
    text = (
        "name: s\ntarget: t\ncandidates:\n  - a\n"
        "  - {name: x, format: iob, type: ner, label_field: ner, files: {train: f}}\n"
    )
    message = error_of(tmp_path, text)
    assert "candidates[1].type" in message and "token_tagging" in message
    message = error_of(
        tmp_path, text.replace("type: ner", "type: token_tagging").replace("files", "filez")
    )
    assert "candidates[1].filez" in message and "files" in message


def test_target_cannot_be_candidate(tmp_path: Path) -> None:
    assert "also a candidate" in error_of(tmp_path, MINIMAL.replace("synth_c", "synth_a"))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")
    message = error_of(tmp_path, "name: [unclosed\n")
    assert "not valid YAML" in message
    assert "expected a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_override_applies_before_validation(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "runner: local\n"), overrides={"runner.name": "ray"})
    assert spec.runner.name == "ray"
    message = error_of(tmp_path, MINIMAL, **{"budget.trials": 0})
    assert "budget.trials" in message


@pytest.mark.parametrize("address", ['""', "'   '"])
def test_an_empty_ray_address_is_refused_not_read_as_a_local_ray(
    tmp_path: Path, address: str
) -> None:
    text = MINIMAL + f"runner:\n  name: ray\n  address: {address}\n"
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'spec.yaml'}:6: runner.address: is empty"), message
    assert "give a Ray cluster address" in message
    message = error_of(tmp_path, MINIMAL + "runner: ray\n", **{"runner.address": ""})
    assert message.startswith("--set runner.address: is empty"), message
    # Left out, or null, it still means a local Ray.
    runner = load_spec(write(tmp_path, MINIMAL + "runner: {name: ray, address: null}\n")).runner
    assert isinstance(runner, RayRunnerSpec) and runner.address is None


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90.0
    assert parse_duration("2h") == 7200.0
    assert parse_duration(12) == 12.0
    assert parse_duration(None) is None
    with pytest.raises(ValueError, match="duration"):
        parse_duration("soon")


def test_model_forbids_extra_keys_everywhere() -> None:
    for model in StudySpec.model_fields.values():
        annotation = model.annotation
        config = getattr(annotation, "model_config", None)
        if config is not None:
            assert config.get("extra") == "forbid", annotation


def test_pretraining_corpus_files_are_relative_to_the_spec_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "study"
    (folder / "texts").mkdir(parents=True)
    (folder / "texts" / "abstracts.txt").write_text("one line\nanother line\n", encoding="utf-8")
    text = MINIMAL + (
        "search:\n  pretraining: {scheme: [none, random], corpus: [synth_b, texts/abstracts.txt]}\n"
    )
    monkeypatch.chdir(tmp_path)  # not the spec's folder: the relative path must not be cwd's
    spec = load_spec(write(folder, text))
    corpus = spec.search.pretraining.corpus
    assert corpus[0] == "synth_b"  # a task name stays a name
    assert corpus[1] == str((folder / "texts" / "abstracts.txt").resolve())

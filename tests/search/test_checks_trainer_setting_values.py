"""`check_spec` refuses a trainer setting of the wrong type or out of its range (fixed under
``training.hyperparameters`` or searched under ``search.hyperparameters``) before a study is
created: `doc_stride: abc` used to pass `study validate`, and every trial of `study run`
then failed (with two tracebacks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.search.checks import check_spec
from taskgraph.spec import spec_from_dict
from taskgraph.testing import spec_check_error as _error

BAD_FIXED = [
    ("doc_stride", "abc", "must be an integer >= 1, got 'abc'"),
    ("doc_stride", -5, "must be an integer >= 1, got -5"),
    ("doc_stride", 0, "must be an integer >= 1, got 0"),
    ("doc_stride", 64.5, "must be an integer >= 1, got 64.5"),
    ("doc_stride", True, "must be an integer >= 1, got True"),
    ("warmup_ratio", 5, "must be a number in [0, 1), got 5"),
    ("warmup_ratio", "0.1", "must be a number in [0, 1), got '0.1'"),
    ("max_eval_examples", 0, "must be an integer >= 1 or null, got 0"),
    ("log_every", None, "must be an integer >= 1, got None"),
    ("weight_decay", -0.1, "must be a number >= 0, got -0.1"),
    ("grad_clip", "none", "must be a number >= 0 or null, got 'none'"),
    ("lookahead_lr", 0, "must be a number > 0 or null, got 0"),
    ("tasks_per_step", 0, "must be an integer >= 1 or null, got 0"),
    ("group_by_length", "yes", "must be true or false, got 'yes'"),
    ("source_epochs", False, "must be a number > 0 or null, got False"),
]


def _spec(
    *,
    fixed: dict[str, Any] | None = None,
    searched: dict[str, Any] | None = None,
    candidates: tuple[str, ...] = ("synth_related",),
    max_length: int = 16,
) -> Any:
    return spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": list(candidates),
            "encoder": {"name": "tiny-bert", "max_length": max_length},
            "search": {"hyperparameters": searched or {}},
            "training": {"hyperparameters": fixed or {}},
        }
    )


@pytest.mark.parametrize(("key", "value", "said"), BAD_FIXED)
def test_a_fixed_setting_of_the_wrong_type_or_range_is_refused(
    key: str, value: Any, said: str
) -> None:
    assert _error(_spec(fixed={key: value})) == (f"spec: training.hyperparameters.{key}: {said}")


@pytest.mark.parametrize(
    ("key", "domain", "said"),
    [
        ("doc_stride", [64, "abc"], "must be an integer >= 1, got 'abc'"),
        ("doc_stride", {"low": 0, "high": 64}, "must be an integer >= 1, got 0"),
        (
            "doc_stride",
            {"low": 32.0, "high": 64.0},
            "must be an integer >= 1, got the float range {'low': 32.0, 'high': 64.0}",
        ),
        ("warmup_ratio", {"low": 0.0, "high": 1.0}, "must be a number in [0, 1), got 1.0"),
        ("max_eval_examples", [None, 0], "must be an integer >= 1 or null, got 0"),
    ],
)
def test_a_searched_setting_with_a_bad_choice_or_range_is_refused(
    key: str, domain: Any, said: str
) -> None:
    assert _error(_spec(searched={key: domain})) == f"spec: search.hyperparameters.{key}: {said}"


def test_a_searched_setting_replaces_the_fixed_one() -> None:
    # The trial reads the searched value, so a bad fixed one it overrides is never used ...
    check_spec(_spec(fixed={"doc_stride": "abc"}, searched={"doc_stride": [32, 64]}))
    # ... and a bad searched one is refused under its own path.
    message = _error(_spec(fixed={"doc_stride": 64}, searched={"doc_stride": [32, -1]}))
    assert message.startswith("spec: search.hyperparameters.doc_stride: ")


@pytest.mark.parametrize(
    "fixed",
    [
        {"doc_stride": 1, "warmup_ratio": 0, "max_eval_examples": None},
        {"warmup_ratio": 0.99, "weight_decay": 0, "grad_clip": None, "lookahead_lr": 1.0e-3},
        {"grad_clip": 0, "log_every": 1, "checkpoint_every": None, "eval_batch_size": 1},
        {"group_by_length": False, "source_epochs": 0.5, "source_max_steps": 3},
        {"tasks_per_step": 1, "max_eval_examples": 60, "doc_stride": 128},
        {"log_every": 2.0, "checkpoint_every": 100.0},  # YAML's 2.0: ran before, still runs
    ],
)
def test_settings_in_range_are_accepted(fixed: dict[str, Any]) -> None:
    check_spec(_spec(fixed=fixed))


def test_searched_settings_in_range_are_accepted() -> None:
    check_spec(
        _spec(
            searched={
                "doc_stride": {"low": 16, "high": 64, "step": 16},
                "warmup_ratio": {"low": 0.0, "high": 0.3},
                "max_eval_examples": [None, 50],
            }
        )
    )


#: a study with an extractive QA task (squad2) among its candidates, windows of 128 tokens
QA = ("synth_related", "squad2")
QA_LIMIT = "must be < 64 (encoder.max_length 128 // 2) for the extractive QA task 'squad2'"


@pytest.mark.parametrize(
    ("fixed", "searched", "where", "got"),
    [
        ({"doc_stride": 200}, None, "training", 200),  # was trained with 63, in silence
        ({"doc_stride": 64}, None, "training", 64),  # the first value that crosses
        (None, {"doc_stride": {"low": 16, "high": 96, "step": 16}}, "search", 96),
        (None, {"doc_stride": [32, 100]}, "search", 100),
        ({"doc_stride": 32}, {"doc_stride": [32, 64]}, "search", 64),
    ],
)
def test_a_doc_stride_the_qa_windows_cannot_take_is_refused(
    fixed: dict[str, Any] | None, searched: dict[str, Any] | None, where: str, got: int
) -> None:
    spec = _spec(fixed=fixed, searched=searched, candidates=QA, max_length=128)
    assert _error(spec) == (
        f"spec: {where}.hyperparameters.doc_stride: {QA_LIMIT}, got {got}; QA windows of "
        "128 tokens must overlap by less than half"
    )


@pytest.mark.parametrize(
    ("fixed", "searched", "candidates"),
    [
        ({"doc_stride": 200}, None, ("synth_related",)),  # no QA task: the stride is unused
        (None, {"doc_stride": [64, 200]}, ("synth_related",)),
        ({"doc_stride": 63}, None, QA),  # the largest the windows take
        (None, {"doc_stride": {"low": 16, "high": 63}}, QA),
        ({"doc_stride": 200}, {"doc_stride": [32, 63]}, QA),  # the searched one is used
        (None, None, QA),  # the default 128 is clamped to the windows
    ],
)
def test_a_doc_stride_below_half_the_window_or_without_qa_is_accepted(
    fixed: dict[str, Any] | None, searched: dict[str, Any] | None, candidates: tuple[str, ...]
) -> None:
    check_spec(_spec(fixed=fixed, searched=searched, candidates=candidates, max_length=128))


def test_an_excluded_qa_candidate_never_windows_so_its_stride_is_not_checked() -> None:
    """A candidate in `search.auxiliaries.exclude` is never trained: the study has no QA task."""
    spec = spec_from_dict(
        {
            "name": "s",
            "target": "synth_target",
            "candidates": list(QA),
            "encoder": {"name": "tiny-bert", "max_length": 128},
            "search": {"auxiliaries": {"exclude": ["squad2"]}},
            "training": {"hyperparameters": {"doc_stride": 200}},
        }
    )
    check_spec(spec)


def test_a_stored_study_with_a_too_large_doc_stride_warns_and_resumes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_spec(_spec(fixed={"doc_stride": 77}, candidates=QA, max_length=128), stored=True)
    assert capsys.readouterr().err.splitlines() == [
        f"warning: spec: training.hyperparameters.doc_stride: {QA_LIMIT}, got 77; QA windows "
        "of 128 tokens must overlap by less than half"
    ]


def _write(tmp_path: Path, key: str, value: Any, *, candidates: str = "synth_related") -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: bad_setting\n"
        "target: synth_target\n"
        f"candidates: [{candidates}]\n"
        "encoder: {name: tiny-bert, max_length: 16}\n"
        "search: {max_steps: 2, batch_size: 4}\n"
        f"training: {{hyperparameters: {{{key}: {value}}}}}\n"
        "budget: {trials: 1}\n"
        "runner: local\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("doc_stride", "abc", "must be an integer >= 1, got 'abc'"),
        ("doc_stride", "-5", "must be an integer >= 1, got -5"),
        ("doc_stride", "0", "must be an integer >= 1, got 0"),
        ("warmup_ratio", "5", "must be a number in [0, 1), got 5"),
        ("max_eval_examples", "0", "must be an integer >= 1 or null, got 0"),
    ],
)
def test_study_validate_and_run_refuse_in_one_line_and_write_nothing(
    tmp_path: Path, key: str, value: str, said: str
) -> None:
    path = _write(tmp_path, key, value)
    wanted = f"error: {path}: training.hyperparameters.{key}: {said}"
    result = CliRunner().invoke(app, ["study", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [wanted]
    assert "valid" not in result.stdout

    database = tmp_path / "study.db"
    result = CliRunner().invoke(
        app, ["study", "run", str(path), "--storage", f"sqlite:///{database}", "-q"]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [wanted]
    assert "Traceback" not in result.output
    assert not database.exists()  # no study created, no trial failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_study_validate_and_run_refuse_a_doc_stride_the_qa_windows_cannot_take(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "doc_stride", "8", candidates="synth_related, squad2")
    wanted = (
        f"error: {path}: training.hyperparameters.doc_stride: must be < 8 (encoder.max_length "
        "16 // 2) for the extractive QA task 'squad2', got 8; QA windows of 16 tokens must "
        "overlap by less than half"
    )
    for command in (["study", "validate"], ["study", "run"]):
        database = tmp_path / "study.db"
        extra = ["--storage", f"sqlite:///{database}", "-q"] if command[1] == "run" else []
        result = CliRunner().invoke(app, [*command, str(path), *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [wanted]
        assert "Traceback" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]

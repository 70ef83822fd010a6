"""``benchmarks/masking_bench.py``: the learning rates and the ``--json`` file are checked when
the arguments are parsed (one line, exit 2), and the summary is printed before the file is
written, so a file that cannot be written loses no result."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from taskgraph.errors import ConfigError
from taskgraph.trial import TrialStatus


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pretrain-lr", "-1"], "argument --pretrain-lr: must be a finite number > 0, got -1"),
        (["--pretrain-lr", "0"], "argument --pretrain-lr: must be a finite number > 0, got 0"),
        (["--pretrain-lr", "nan"], "argument --pretrain-lr: must be a finite number > 0, got nan"),
        (["--learning-rate", "inf"],
         "argument --learning-rate: must be a finite number > 0, got inf"),
        (["--learning-rate", "abc"], "argument --learning-rate: expected a number, got 'abc'"),
        (["--json", "/nonexistent_dir/x.json"],
         "argument --json: no directory /nonexistent_dir for /nonexistent_dir/x.json"),
    ],
)  # fmt: skip
def test_bad_rates_and_json_folders_stop_at_parsing(
    benchmark_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    with pytest.raises(SystemExit) as stopped:
        benchmark_script("masking_bench.py").parse_args(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def fake_trial(removed: Path | None) -> Callable[..., Any]:
    def train_trial(config: Any, **_: Any) -> Any:
        if removed is not None and removed.exists():
            shutil.rmtree(removed)  # the --json folder goes away while the benchmark runs
        return SimpleNamespace(
            status=TrialStatus.COMPLETE,
            failure_reason=None,
            pretraining={"seconds": 1.0, "tokens": 10, "curve": [[0, 0.1], [6, 0.2]]},
            score=lambda *_: 0.5 + 0.01 * config.seed,
        )

    return train_trial


ARGV = ["--quick", "--schemes", "random,adaptive"]


def test_the_summary_comes_before_the_json_file(
    benchmark_script: Callable[[str], ModuleType],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    module = benchmark_script("masking_bench.py")
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(module, "train_trial", fake_trial(folder))
    with pytest.raises(ConfigError) as caught:  # run_script: one `error:` line, exit 2
        module.main([*ARGV, "--json", str(folder / "r.json")])
    assert str(caught.value).startswith(f"--json: cannot write {folder / 'r.json'}: ")
    out = capsys.readouterr().out
    assert "random_score: 0.5050" in out and "adaptive_score: 0.5050" in out

    monkeypatch.setattr(module, "train_trial", fake_trial(None))
    folder.mkdir()
    args = module.parse_args(["--pretrain-lr", "3e-4", "--learning-rate", "2e-5"])
    assert (args.pretrain_lr, args.learning_rate) == (3e-4, 2e-5)
    module.main([*ARGV, "--json", str(folder / "r.json")])
    assert "adaptive_seconds: 1.0" in capsys.readouterr().out
    assert len(json.loads((folder / "r.json").read_text())["runs"]) == 4

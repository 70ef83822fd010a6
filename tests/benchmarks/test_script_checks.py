"""The benchmark scripts check their arguments before any work, and say so in one line.

Parse-time checks only (no training, no Ray): each test runs a script's parser, or one of its
small functions, in this process.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from taskgraph.cli.scripts import DATA_DEFAULT, DATA_HELP

Load = Callable[[str], ModuleType]


BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _load(load: Load, script: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Return ``script`` as a module; its folder on ``sys.path``, as when it runs (``faults``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return load(script)


#: Scripts whose parsing is a function apart (their ``main`` would train or start Ray).
PARSE_ARGS = {
    "data_selection_bench.py",
    "freeze_scores.py",
    "masking_bench.py",
    "orchestration_overhead.py",
    "real_data_joint.py",
    "trainer_throughput.py",
}


def _run(module: ModuleType, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> SystemExit:
    """Run the script's parser (``parse_args`` or ``main``) on ``argv``; return its exit."""
    script = Path(str(module.__file__)).name
    entry = module.parse_args if script in PARSE_ARGS else module.main
    with pytest.raises(SystemExit) as stopped:
        if inspect.signature(entry).parameters:
            entry(argv)
        else:  # a main() that reads sys.argv
            monkeypatch.setattr(sys, "argv", [module.__file__, *argv])
            entry()
    return stopped.value


def _refused(
    load: Load,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    argv: list[str],
) -> str:
    """Return the stderr of a refused ``argv``, checked to be exit 2 and one ``error:`` line."""
    stopped = _run(_load(load, script, monkeypatch), argv, monkeypatch)
    captured = capsys.readouterr()
    assert stopped.code == 2, (stopped.code, captured.err)
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert not captured.out  # nothing printed, nothing run
    return lines[0]


# -- 1, 2, 3, 4, 5, 6, 9: bounded types and early checks ------------------------------------


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        # 1: the --json folder is checked at parse time, not after the run
        ("orchestration_overhead.py", ["--json", "/proc/nope/x.json"],
         "error: argument --json: no directory /proc/nope for /proc/nope/x.json"),
        # 2: real_data_joint's sizes, threads and --json
        ("real_data_joint.py", ["--json", "/proc/nope/x.json"],
         "error: argument --json: no directory /proc/nope"),
        ("real_data_joint.py", ["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        ("real_data_joint.py", ["--max-examples", "-1"],
         "argument --max-examples: must be >= 1, got -1"),
        ("real_data_joint.py", ["--eval-examples", "0"],
         "argument --eval-examples: must be >= 1, got 0"),
        ("real_data_joint.py", ["--max-length", "4"], "argument --max-length: must be >= 8, got 4"),
        ("real_data_joint.py", ["--threads", "-1"], "argument --threads: must be >= 1, got -1"),
        ("real_data_joint.py", ["--threads", "0"], "argument --threads: must be >= 1, got 0"),
        # 3: trainer_throughput's threads and data directory
        ("trainer_throughput.py", ["--threads", "-1"], "argument --threads: must be >= 1, got -1"),
        ("trainer_throughput.py", ["--threads", "0"], "argument --threads: must be >= 1, got 0"),
        ("trainer_throughput.py", ["--data", "/nonexistent/data"],
         "argument --data: no directory /nonexistent/data"),
        # 4: data_selection_bench's settings that failed trials or a spec minutes later
        ("data_selection_bench.py", ["--threads", "0", "--quick"],
         "argument --threads: must be >= 1, got 0"),
        ("data_selection_bench.py", ["--startup", "-1"], "argument --startup: must be >= 0, got -1"),
        ("data_selection_bench.py", ["--freeze-layers", "-1"],
         "argument --freeze-layers: must be >= 0, got -1"),
        ("data_selection_bench.py", ["--freeze-layers", "9"],
         "--freeze-layers: must be <= 6 (minilm has 6 layers), got 9"),
        ("data_selection_bench.py", ["--max-length", "0"],
         "argument --max-length: must be >= 8, got 0"),
        # 5: freeze_scores' range, target and steps, before any training
        ("freeze_scores.py", ["--freeze", "9"], "--freeze: must be <= 6 (minilm has 6 layers), got 9"),
        ("freeze_scores.py", ["--target", "nope"], "--target: unknown task 'nope'"),
        ("freeze_scores.py", ["--steps", "1"], "argument --steps: must be >= 2, got 1"),
        # 6: screen_spearman's probes and table
        ("screen_spearman.py", ["--study", "s", "--probes", "0"],
         "argument --probes: must be >= 1, got 0"),
        ("screen_spearman.py", ["--table", "/nonexistent/gains.csv", "--target", "t"],
         "error: --table: no file /nonexistent/gains.csv"),
        # 9: an outage of minus three seconds, and a seed the chosen sections do not read
        ("fault_injection.py", ["--outage", "-3"],
         "argument --outage: must be a finite number > 0, got -3"),
        ("affinity_bench.py", ["--only", "mimic27", "--first-seed", "5", "--candidates", "foo"],
         "error: --first-seed is an option of --only search"),
    ],
)  # fmt: skip
def test_bad_arguments_are_one_error_line_before_any_work(
    benchmark_script: Load,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    script: str,
    argv: list[str],
    message: str,
) -> None:
    line = _refused(benchmark_script, capsys, monkeypatch, script, argv)
    assert message in line


SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_reports_an_argparse_error_in_one_line_without_the_usage_block(
    benchmark_script: Load,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    script: str,
) -> None:
    line = _refused(benchmark_script, capsys, monkeypatch, script, ["--no-such-option"])
    assert line == "error: unrecognized arguments: --no-such-option"


def _help(load: Load, script: str, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    stopped = _run(_load(load, script, monkeypatch), ["--help"], monkeypatch)
    assert stopped.code in (0, None)
    return " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines


@pytest.mark.parametrize(
    "script",
    [
        "data_selection_bench.py",
        "freeze_scores.py",
        "masking_bench.py",
        "real_data_joint.py",
        "screen_spearman.py",
        "trainer_throughput.py",
    ],
)
def test_every_data_option_says_the_same_default(
    benchmark_script: Load,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    script: str,
) -> None:
    assert f"--data DATA {DATA_HELP}" in _help(benchmark_script, script, monkeypatch, capsys)


def test_trial_cost_names_where_it_reads_the_data_and_keeps_its_cache(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _help(benchmark_script, "trial_cost.py", monkeypatch, capsys)
    assert DATA_DEFAULT in text
    assert "taskgraph-bench-cache" in text and "reused by the next" in text


def test_a_quick_run_gets_the_bounded_sizes_too(benchmark_script: Load) -> None:
    args = benchmark_script("data_selection_bench.py").parse_args(["--quick"])
    assert (args.startup, args.threads, args.freeze_layers) == (1, 1, 4)


# -- 1, 2: the summary lines come before the --json file ---------------------------------------


def test_orchestration_overhead_prints_the_figures_before_a_json_file_that_fails(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from taskgraph.errors import ConfigError

    bench = benchmark_script("orchestration_overhead.py")
    folder = tmp_path / "out"
    folder.mkdir()
    path = str(bench.parse_args(["--json", str(folder / "r.json")]).json)
    folder.rmdir()  # the folder goes away while the benchmark runs
    figures = {name: {"wall": 0.5} for name in ("local", "ray_reuse", "ray_fresh_actors")}
    with pytest.raises(ConfigError, match=r"^--json: cannot write "):
        bench.report(figures, trials=3, load_end=(0.0, 0.0, 0.0), json_path=path)
    out = capsys.readouterr().out
    assert "ray_overhead_s_per_trial: 0.500" in out and "local_overhead_s_per_trial: " in out


# -- 7: the steady time per trial leaves the first actor's start out --------------------------


def test_the_steady_time_leaves_out_the_first_gap(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = benchmark_script("orchestration_overhead.py")
    # the first gap (1.2 s) is the first actor's start: the median of the rest is 0.3 s
    assert bench.steady_gap([0.0, 1.2, 1.5, 1.8]) == pytest.approx(0.3)
    assert bench.steady_gap([0.0, 1.2, 1.5, 1.8, 2.1]) == pytest.approx(0.3)
    assert not capsys.readouterr().err


def test_too_few_trials_for_a_steady_time_give_nan_with_a_note(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = benchmark_script("orchestration_overhead.py")
    assert bench.steady_gap([0.0, 1.2, 1.5], "ray_reuse") is None  # one gap after the first
    assert "needs >= 4 trials, got 3: nan" in capsys.readouterr().err
    assert bench.steady_gap([], "local") is None  # no timestamps at all: nothing to note
    assert not capsys.readouterr().err


# -- 8: trainer_throughput warns about runs too short to mean anything ------------------------


def test_trainer_throughput_warns_below_the_meaningful_sizes(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = benchmark_script("trainer_throughput.py")
    short = bench.parse_args(["--steps", "10", "--warmup", "1", "--repeats", "1"])
    assert bench.too_small(short) == ["--steps 10 < 20", "--warmup 1 < 3", "--repeats 1 < 2"]
    assert bench.too_small(bench.parse_args([])) == []  # the defaults are meaningful
    assert "are not meaningful" in _help(benchmark_script, "trainer_throughput.py",
                                         monkeypatch, capsys)  # fmt: skip


# -- 4: a method whose every trial failed prints no nan score --------------------------------


def test_data_selection_prints_no_nan_score_when_every_trial_of_a_method_failed(
    benchmark_script: Load, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = benchmark_script("data_selection_bench.py")
    results = {"random": [{"test": math.nan, "dev": math.nan}],
               "none": [{"test": 0.5, "dev": 0.5}]}  # fmt: skip
    assert bench.report(results) == 1
    captured = capsys.readouterr()
    assert "_score" not in captured.out
    assert captured.err.strip() == "error: every trial of random failed (reasons above)"
    assert bench.report({"none": [{"test": 0.5, "dev": 0.5}]}) == 0
    assert capsys.readouterr().out == "none_score: 0.5000\n"


# -- 6: screen_spearman's new screen database and its --storage ------------------------------


def _measured_table(tmp_path: Path) -> Path:
    table = tmp_path / "gains.csv"
    rows = ["target,task_set,split,value,higher_is_better", "t,t,val,0.5,1"]
    rows += [f"t,t+{aux},val,{0.5 + gain},1" for aux, gain in
             {"a": 0.3, "b": 0.1, "c": -0.1, "d": 0.0}.items()]  # fmt: skip
    table.write_text("\n".join(rows) + "\n")
    return table


def test_a_screen_study_in_a_new_database_is_screened_there(
    benchmark_script: Load,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import taskgraph.app.screening as screening
    import taskgraph.app.studies.specs as studies
    from taskgraph.storage import open_repository
    from taskgraph.trial import (
        Cost,
        LookaheadMatrix,
        Objective,
        TrialConfig,
        TrialResult,
        TrialStatus,
    )

    def fake_screen(spec: Any, *, storage: str, **_: Any) -> None:  # what a screen run stores
        objective = Objective(metric="f1", split="dev", direction="maximize")
        tasks = ["t", "a", "b", "c", "d"]
        values = [[math.nan] * 5 for _ in tasks]
        for i, effect in enumerate([0.05, 0.02, -0.03, 0.0], start=1):
            values[i][0] = effect
        with open_repository(storage) as repo:
            repo.ensure_study(spec.name, spec={"target": "t"}, target="t")
            repo.add_screen(
                study=spec.name,
                config=TrialConfig(
                    target="t", auxiliaries=("a", "b", "c", "d"), objective=objective
                ),
                result=TrialResult(
                    status=TrialStatus.COMPLETE,
                    cost=Cost(seconds=25.0, total_steps=80),
                    lookahead=LookaheadMatrix(tasks=tasks, values=values, n_probes=4),
                ),
                details={},
            )

    monkeypatch.setattr(screening, "screen_study", fake_screen)
    monkeypatch.setattr(studies, "load_study_spec", lambda path: SimpleNamespace(name="demo"))
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    new = tmp_path / "NEW.db"
    result = benchmark_script("screen_spearman.py").main([
        "--table", str(_measured_table(tmp_path)), "--target", "t", "--no-textemb",
        "--screen-study", "demo", "--screen-storage", f"sqlite:///{new}", "--spec", "demo.yaml",
        "--bootstrap", "50", "--storage", f"sqlite:///{new}",
    ])  # fmt: skip
    assert new.exists() and result["screen"].spearman == pytest.approx(1.0)
    assert "screen_spearman: 1.000" in capsys.readouterr().out


@pytest.mark.parametrize("from_env", [False, True])
def test_a_missing_records_database_names_storage_option_or_variable(
    benchmark_script: Load,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    from_env: bool,
) -> None:
    monkeypatch.chdir(tmp_path)
    if from_env:  # honoured, as the taskgraph command does
        monkeypatch.setenv("TASKGRAPH_STORAGE", f"sqlite:///{tmp_path / 'env.db'}")
    else:
        monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    with pytest.raises(SystemExit) as stopped:
        benchmark_script("screen_spearman.py").main(["--study", "s", "--no-textemb"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no records database at ") and err.count("\n") == 1
    if from_env:
        assert "env.db" in err and "from TASKGRAPH_STORAGE" in err
    else:
        assert "pass --storage / set TASKGRAPH_STORAGE" in err
    assert not list(tmp_path.glob("*.db"))

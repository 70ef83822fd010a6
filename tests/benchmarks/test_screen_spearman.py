"""``benchmarks/screen_spearman.py`` on a small synthetic records database and long CSV."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from taskgraph.affinity.screening import rank_agreement
from taskgraph.errors import ConfigError
from taskgraph.storage import open_repository
from taskgraph.trial import Cost, LookaheadMatrix, Objective, TrialConfig, TrialResult, TrialStatus

GAINS = {"a": 0.30, "b": 0.10, "c": -0.10, "d": 0.0}  # measured: a > b > d > c


@pytest.fixture(scope="module")
def bench(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("screen_spearman.py")


def _result(value: float, *, tasks: tuple[str, ...]) -> TrialResult:
    scores = {t: {"dev": {"f1": value}} for t in tasks}
    return TrialResult(status=TrialStatus.COMPLETE, scores=scores, objective=value,
                       cost=Cost(seconds=10.0))  # fmt: skip


def _database(tmp_path: Path, effects: dict[str, float]) -> str:
    url = f"sqlite:///{tmp_path / 'gains.db'}"
    objective = Objective(metric="f1", split="dev", direction="maximize")
    with open_repository(url) as repo:
        repo.ensure_study("tr", spec={"target": "t", "objective": {"metric": "f1", "split": "dev"}},
                          target="t")  # fmt: skip
        for number, (aux, gain) in enumerate([(None, 0.0), *GAINS.items()]):
            auxiliaries = () if aux is None else (aux,)
            for seed in (0, 1):
                config = TrialConfig(
                    target="t", auxiliaries=auxiliaries, seed=seed, objective=objective
                )
                value = 0.5 + gain + 0.001 * seed
                repo.add_run_result(study="tr", trial_number=number, config=config,
                                    result=_result(value, tasks=config.task_set))  # fmt: skip
        tasks = ["t", *effects]
        values = [[math.nan] * len(tasks) for _ in tasks]
        for i, task in enumerate(tasks[1:], start=1):
            values[i][0] = effects[task]
        screen = TrialConfig(target="t", auxiliaries=tuple(sorted(effects)), objective=objective)
        result = TrialResult(status=TrialStatus.COMPLETE, cost=Cost(seconds=25.0, total_steps=80),
                             lookahead=LookaheadMatrix(tasks=tasks, values=values, n_probes=4))  # fmt: skip
        repo.add_screen(study="tr", config=screen, result=result, details={})
    return url


def _reversed_embeddings(tasks: list[str], **_: Any) -> dict[str, np.ndarray]:
    # cosine to t falls as the measured gain rises: textemb ranks the candidates backwards
    angle = {"t": 0.0, "a": 1.4, "b": 1.0, "d": 0.6, "c": 0.2}
    return {k: np.array([math.cos(angle[k]), math.sin(angle[k])]) for k in tasks if k in angle}


def test_a_screen_in_the_measured_order_scores_one_and_textemb_reversed_minus_one(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _database(tmp_path, {"a": 0.05, "b": 0.02, "c": -0.03, "d": 0.0})
    result = bench.main(["--storage", url, "--study", "tr", "--bootstrap", "200"],
                        embed=_reversed_embeddings)  # fmt: skip
    out = capsys.readouterr().out
    assert "screen_spearman: 1.000" in out.splitlines()
    assert "textemb_spearman: -1.000" in out.splitlines()
    assert "n_candidates: 4" in out and "target: t" in out
    assert "screen = 1.25 trials" in out  # 25 s against a trial of 2 seeds x 10 s
    assert result["screen"].n == 4 and result["textemb"].spearman == pytest.approx(-1.0)


def test_a_screen_in_another_order_scores_lower_and_a_table_gives_the_same_gains(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _database(tmp_path, {"a": -0.05, "b": 0.02, "c": 0.03, "d": 0.0})
    table = tmp_path / "gains.csv"
    rows = ["target,task_set,split,value,higher_is_better", "t,t,val,0.5,1"]
    rows += [f"t,t+{aux},val,{0.5 + gain},1" for aux, gain in GAINS.items()]
    table.write_text("\n".join(rows) + "\n")
    result = bench.main(["--storage", url, "--table", str(table), "--target", "t",
                         "--screen-study", "tr", "--no-textemb"])  # fmt: skip
    out = capsys.readouterr().out
    assert result["screen"].spearman == pytest.approx(-0.8)  # rank differences 3, 0, -3, 0
    assert "screen_spearman: -0.800" in out and "textemb_spearman: nan" in out


def test_no_screen_and_no_spec_is_an_error(bench: ModuleType, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with open_repository(url) as repo:
        repo.ensure_study("tr", spec={"target": "t"}, target="t")
    with pytest.raises(SystemExit, match="has no screen"):
        bench.main(["--storage", url, "--study", "tr", "--no-textemb"])
    with pytest.raises(SystemExit, match="no study 'nope'"):
        bench.main(["--storage", url, "--study", "nope"])


def test_rank_agreement_states_significance_for_the_number_of_candidates() -> None:
    predicted = {f"c{i}": float(i) for i in range(14)}
    agreement = rank_agreement(predicted, dict(predicted), n_bootstrap=100)
    assert agreement.spearman == pytest.approx(1.0) and agreement.p_value < 1e-6
    assert agreement.critical == pytest.approx(0.532, abs=0.01)
    with pytest.raises(ConfigError, match=">= 3 candidates"):
        rank_agreement({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0})


def test_small_samples_get_the_exact_permutation_p_value() -> None:
    four = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    agreement = rank_agreement(four, dict(four), n_bootstrap=50)
    # 2 of the 24 orders reach |rho| = 1: p = 1/12, where the t approximation says 0.
    assert agreement.spearman == pytest.approx(1.0)
    assert agreement.p_value == pytest.approx(2 / 24)


def test_small_samples_take_the_critical_value_from_the_same_permutations(
    bench: ModuleType,
) -> None:
    four = rank_agreement({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, GAINS, n_bootstrap=20)
    # Even rho = 1 has p = 1/12 with 4 candidates: no |rho| is significant, in words.
    assert four.p_value >= 0.05 and four.critical is None
    assert "no |rho| is significant at 5 %" in bench.significance_note(four)
    six = {f"c{i}": float(i) for i in range(6)}
    exact = rank_agreement(six, dict(six), n_bootstrap=20)
    assert exact.critical == pytest.approx(0.886, abs=1e-3)  # tables: 0.886 for n = 6
    assert "|rho| >= 0.89 is significant at 5 % (two-sided, exact" in bench.significance_note(exact)
    fourteen = {f"c{i}": float(i) for i in range(14)}
    approximate = rank_agreement(fourteen, dict(fourteen), n_bootstrap=20)
    assert "|rho| > 0.53 is significant at 5 % (two-sided, t approximation" in (
        bench.significance_note(approximate)
    )


def test_fewer_than_three_measured_candidates_print_nan(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _database(tmp_path, {"a": 0.05, "b": 0.02, "c": -0.03, "d": 0.0})
    table = tmp_path / "two.csv"
    table.write_text("target,task_set,split,value,higher_is_better\nt,t,val,0.5,1\n"
                     "t,t+a,val,0.6,1\nt,t+b,val,0.4,1\n")  # fmt: skip
    result = bench.main(["--storage", url, "--table", str(table), "--target", "t",
                         "--screen-study", "tr", "--no-textemb"])  # fmt: skip
    out = capsys.readouterr().out
    assert result["screen"] is None and "screen_spearman: nan" in out and ">= 3 candidates" in out


def test_spec_runs_a_screen_when_none_is_stored(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    table = tmp_path / "gains.csv"
    gains = {"synth_related": 0.8, "synth_cls_related": 0.7, "synth_unrelated": 0.5,
             "synth_conflict": 0.4}  # fmt: skip
    rows = ["target,task_set,split,value,higher_is_better", "synth_target,synth_target,val,0.5,1"]
    rows += [f"synth_target,synth_target+{aux},val,{value},1" for aux, value in gains.items()]
    table.write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    base = ["--table", str(table), "--target", "synth_target", "--no-textemb"]
    # no study to read a screen of and no spec: an error, and no database left behind
    with pytest.raises(SystemExit, match="no --screen-study to read"):
        bench.main(base)
    assert not list(tmp_path.glob("*.db"))
    url = f"sqlite:///{tmp_path / 'screen.db'}"
    spec = Path(__file__).parents[2] / "searchspaces" / "demo.yaml"
    result = bench.main([*base, "--storage", url, "--spec", str(spec), "--steps", "8",
                         "--probes", "2", "--bootstrap", "50"])  # fmt: skip
    out = capsys.readouterr().out
    assert "n_candidates: 4" in out and result["screen"].n == 4
    assert "screen_cost: " in out

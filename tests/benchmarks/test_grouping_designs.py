"""``benchmarks/grouping_designs.py`` on Standley's setting 1 (the shipped published table)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from taskgraph.affinity.converters import convert
from taskgraph.affinity.longtable import LongTable


@pytest.fixture(scope="module")
def designs(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("grouping_designs.py")


@pytest.fixture(scope="module")
def setting1(benchmarks_dir: Path) -> LongTable:
    return convert("standley_s1", root=benchmarks_dir)


def test_regrets_are_zero_where_a_design_measures_the_optimum(
    designs: ModuleType, setting1: LongTable
) -> None:
    table = designs.regrets(setting1, [1, 5])
    # singles and triples hold setting 1's best budget-5 grouping; singles and pairs do not
    assert table["triples/measured"][5] == pytest.approx((0.0, 0.0), abs=1e-12)
    assert table["pairs/measured"][5][0] > 0.005
    assert 1 not in table["pairs/measured"]  # no measured network covers five tasks at budget 1
    assert all(
        v >= -1e-12 for v, _ in table["pairs/setfn"].values()
    )  # nothing beats the optimum on val


def test_groupings_below_the_goal_list_the_optimum(
    designs: ModuleType, setting1: LongTable
) -> None:
    found = designs.groupings_below(setting1, 5, designs.GOAL)
    assert found and all(test <= designs.GOAL for _, test, _ in found)
    assert found[0][1] == pytest.approx(
        0.43481, abs=5e-6
    )  # lowest validation total: the optimum's grouping
    assert all(any(len(n) == 3 for n in combo) for _, _, combo in found)
    assert len(designs.groupings_below(setting1, 5, 0.4348)) < len(found)


def test_the_script_ends_with_name_value_lines(
    designs: ModuleType, setting1: LongTable, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README: scripts in benchmarks/ end with `name: value` lines (this one ended with
    the list of groupings)."""
    assert designs.main(["--settings", "1", "--budgets", "4,5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = dict(line.split(": ") for line in lines[-13:])
    assert list(summary)[-1] == "standley_s1_budget5_groupings_at_goal"
    assert int(summary.pop("standley_s1_budget5_groupings_at_goal")) >= 1
    assert set(summary) == {
        f"{design}_{method}_{split}_regret"
        for design in designs.DESIGNS
        for method in designs.METHODS
        for split in ("val", "test")
    }
    assert all(float(value) >= -1e-12 for value in summary.values())

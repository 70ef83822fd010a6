"""The benchmark scripts refuse bad arguments before any work: one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("affinity_bench.py", ["--only", "ranking_metadata", "--candidates", "foo"],
         "--candidates: unknown ['foo']"),
        ("affinity_bench.py", ["--search-tables", "foo"], "--search-tables: unknown ['foo']"),
        ("affinity_bench.py", ["--candidates", "eight + all"],
         "--candidates is an option of --only ranking_metadata"),
        ("affinity_bench.py", ["--first-seed", "-5"], "argument --first-seed: must be >= 0"),
        ("search_diagnosis.py", ["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
        ("data_selection_bench.py", ["--methods", "foo"], "--methods: unknown ['foo']"),
    ],
)  # fmt: skip
def test_bad_arguments_stop_the_script_with_one_line(
    benchmark_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    script: str,
    argv: list[str],
    message: str,
) -> None:
    module = benchmark_script(script)
    with pytest.raises(SystemExit) as stopped:
        (module.parse_args if script == "data_selection_bench.py" else module.main)(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err

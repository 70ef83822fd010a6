"""The benchmark scripts refuse bad arguments before any work: one line, exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
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
        ("freeze_scores.py", ["--freeze", "0"], "argument --freeze: must be >= 1, got 0"),
        ("masking_bench.py", ["--options", "{x"], "--options: not JSON"),
        ("masking_bench.py", ["--options", '{"nope": 1}'], "unknown option 'nope'"),
        ("masking_bench.py", ["--options", '{"q_start": "a"}'],
         "`q_start` must be a number in [0, 1], but got 'a'"),
        ("masking_bench.py", ["--corpus-cap", "0"], "argument --corpus-cap: must be >= 1, got 0"),
        # A traceback (int() outside argparse), nothing run with exit 0, a minute's work to an
        # exit 1, or another exit status than the other argument errors': refused alike.
        ("grouping_designs.py", ["--budgets", "x"], "argument --budgets: expected an integer, got 'x'"),
        ("grouping_designs.py", ["--budgets", ""], "argument --budgets: expected an integer, got ''"),
        ("grouping_designs.py", ["--settings", "x"], "argument --settings: expected an integer, got 'x'"),
        ("grouping_designs.py", ["--settings", "1,5"],
         "argument --settings: expected settings of 1, 2, 3, 4, got 5"),
        ("affinity_bench.py", ["--only", ""], "--only names no section; known: mimic27, "),
        ("affinity_bench.py", ["--only", ","], "--only names no section; known: mimic27, "),
        ("affinity_bench.py", ["--only", "search", "--search-tables", ""],
         "--search-tables names no table; known: ettm1, "),
        ("affinity_bench.py", ["--only", "search", "--search-tables", ","],
         "--search-tables names no table; known: ettm1, "),
        ("affinity_bench.py", ["--only", "ranking_ceiling", "--search-tables", "ettm1"],
         "--search-tables is an option of --only search"),
        ("masking_bench.py", ["--schemes", "foo"],
         "--schemes: unknown ['foo']; known: none, adaptive, random"),
        ("masking_bench.py", ["--schemes", ","], "--schemes names no scheme; known: none, "),
        ("screen_spearman.py", ["--table", "gains.csv"], "error: --table needs --target"),
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
        getattr(module, "parse_args", module.main)(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("script", "quick", "given"),
    [
        ("data_selection_bench.py", {"steps": 6, "trials": 2, "seeds": 1}, ["--steps", "9"]),
        ("masking_bench.py", {"steps": 6, "corpus_cap": 80, "seeds": 2}, ["--seeds", "3"]),
    ],
)
def test_quick_sets_small_sizes_but_a_size_given_with_it_wins(
    benchmark_script: Callable[[str], ModuleType],
    script: str,
    quick: dict[str, int],
    given: list[str],
) -> None:
    parse = benchmark_script(script).parse_args
    args = vars(parse(["--quick"]))
    assert {key: args[key] for key in quick} == quick
    explicit = vars(parse(["--quick", *given]))
    key = given[0].removeprefix("--").replace("-", "_")
    assert explicit[key] == int(given[1]) != quick[key]
    assert explicit == {**args, key: int(given[1])}  # the other quick sizes stay


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "abc"], "argument --seeds: expected an integer, got 'abc'"),
        (["--seeds", "100,-1"], "argument --seeds: must be >= 0, got -1"),
        (["--out", "/nonexistent/x.jsonl"], "--out: cannot append to /nonexistent/x.jsonl: "),
        (["--summary-of", "/nonexistent/x"], "--summary-of: cannot read /nonexistent/x: "),
        (["--summary-of", "BAD"], "--summary-of: BAD, line 2: not JSON"),
    ],
)
def test_search_variants_refuses_bad_seeds_and_files_with_one_line(
    benchmark_script: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"variant": "graph"}\n{oops\n')
    argv = [str(bad) if a == "BAD" else a for a in argv]
    with pytest.raises(SystemExit) as stopped:
        benchmark_script("search_variants.py").main(["--table", "taskonomy5", *argv])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message.replace("BAD", str(bad)) in err and "Traceback" not in err

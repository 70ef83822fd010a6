"""The Python API's arguments of screens, resumes and spec overrides: a wrong type is a
ConfigError naming the keyword, an override's error names it once and as Python gives it, and
the Python snippets of the docs run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import taskgraph
from taskgraph.errors import ConfigError, SpecError, StorageError, command_line_wording
from taskgraph.spec import spec_from_dict
from taskgraph.testing import tiny_training_spec, write_rising_table

ROOT = Path(__file__).parents[2]

TABULAR = """\
name: tab
target: a
candidates: [b, c]
search: {auxiliaries: {max_size: 2}, sharing: [hard]}
budget: {trials: 3}
sampler: {name: graph, seed: 0}
runner: {name: tabular, table: results.csv}
"""

TINY = tiny_training_spec()


@pytest.fixture
def tabular_spec(tmp_path: Path) -> Path:
    """A tabular study's spec file (three tasks, every subset scored) beside its table."""
    write_rising_table(tmp_path / "results.csv", ("a", "b", "c"), max_size=3)
    path = tmp_path / "tab.yaml"
    path.write_text(TABULAR)
    return path


@pytest.fixture
def tabular_study(tabular_spec: Path, tmp_path: Path) -> str:
    """The database of the tabular study, run to its budget (no screen)."""
    url = f"sqlite:///{tmp_path / 'tab.db'}"
    assert taskgraph.run_study(tabular_spec, storage=url).progress.n_done == 3
    return url


@pytest.fixture(scope="module")
def screened(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> str:
    """The database of the tiny study with one screen (2 steps, 1 probe), number -1."""
    url = f"sqlite:///{tmp_path_factory.mktemp('screened') / 'screen.db'}"
    report = taskgraph.screen_study(
        spec_from_dict(TINY), storage=url, data=data_dir, steps=2, probes=1
    )
    assert report["screen"] == -1
    return url


# -- screen_study ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"steps": "5"}, "`steps` must be an integer, but got '5'"),
        ({"probes": "3"}, "`probes` must be an integer, but got '3'"),
        ({"steps": 2.5}, "`steps` must be an integer, but got 2.5"),
        ({"probes": 0}, "`probes` must be >= 1, but got 0"),
        ({"full_matrix": "yes"}, "`full_matrix` must be True or False, but got 'yes'"),
        ({"full_matrix": 1}, "`full_matrix` must be True or False, but got 1"),
        ({"trust_remote_code": "no"}, "`trust_remote_code` must be True or False"),
    ],
)
def test_screen_study_refuses_counts_and_flags_of_the_wrong_type_before_any_training(
    tmp_path: Path, data_dir: Path, keywords: dict[str, Any], message: str
) -> None:
    path = tmp_path / "screen.db"
    with pytest.raises(ConfigError, match=re.escape(message)):
        taskgraph.screen_study(
            spec_from_dict(TINY), storage=f"sqlite:///{path}", data=data_dir, **keywords
        )
    assert not path.exists()  # nothing trained, nothing written


# -- screen_report ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "screen", "message"),
    [
        (None, None, "`name` must be a non-empty study name, but got None"),
        ("", None, "`name` must be a non-empty study name, but got ''"),
        ("tiny", "-1", "`screen` must be an integer, but got '-1'"),
        ("tiny", -1.0, "`screen` must be an integer, but got -1.0"),
    ],
)
def test_screen_report_refuses_arguments_of_the_wrong_type(
    screened: str, name: Any, screen: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        taskgraph.screen_report(name, storage=screened, screen=screen)


def test_screen_report_lists_the_screens_when_the_one_asked_is_missing(screened: str) -> None:
    assert taskgraph.screen_report("tiny", storage=screened, screen=-1)["screen"] == -1
    with pytest.raises(StorageError, match=r"^study 'tiny' has no screen 1; its screens: -1$"):
        taskgraph.screen_report("tiny", storage=screened, screen=1)


def test_screen_report_of_a_study_without_a_screen_says_how_to_run_one(
    tabular_study: str,
) -> None:
    with pytest.raises(StorageError, match=re.escape("run taskgraph.screen_study(SPEC) for it")):
        taskgraph.screen_report("tab", storage=tabular_study)
    with command_line_wording(), pytest.raises(StorageError, match="`taskgraph study screen SPEC`"):
        taskgraph.screen_report("tab", storage=tabular_study)


# -- resume_study ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"trials": "3"}, "`trials` must be an integer, but got '3'"),
        ({"trials": 3.0}, "`trials` must be an integer, but got 3.0"),
        ({"trials": 0}, "`trials` must be >= 1, but got 0"),
        ({"wall_time": True}, "`wall_time` must be seconds (a number) or a duration"),
        ({"wall_time": [60]}, "`wall_time` must be seconds (a number) or a duration"),
    ],
)
def test_resume_study_refuses_arguments_of_the_wrong_type(
    tabular_study: str, keywords: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        taskgraph.resume_study("tab", storage=tabular_study, **keywords)
    assert taskgraph.study_status("tab", storage=tabular_study)["n_done"] == 3


def test_resume_study_takes_a_duration_as_text(tabular_study: str) -> None:
    summary = taskgraph.resume_study("tab", storage=tabular_study, trials=4, wall_time="10m")
    assert summary.progress.n_done == 4


# -- spec overrides --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "from_python", "on_command_line"),
    [
        (
            {"budget.trials": "x"},
            "overrides['budget.trials']: Input should be a valid integer, got 'x'",
            "--set budget.trials: Input should be a valid integer, got 'x'",
        ),
        (
            {"runner.tabel": "x.csv"},
            "overrides['runner.tabel']: unknown field 'tabel'",
            "--set runner.tabel: unknown field 'tabel'",
        ),
    ],
)
def test_an_override_of_load_study_spec_is_named_as_it_was_given(
    tabular_spec: Path, overrides: dict[str, Any], from_python: str, on_command_line: str
) -> None:
    with pytest.raises(SpecError, match="^" + re.escape(from_python)):
        taskgraph.load_study_spec(tabular_spec, overrides)
    with command_line_wording(), pytest.raises(SpecError, match="^" + re.escape(on_command_line)):
        taskgraph.load_study_spec(tabular_spec, overrides)


@pytest.mark.parametrize("given_as", ["file", "object"])
@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"budgett__trials": 2}, "budgett__trials: unknown field 'budgett'; allowed: budget, "),
        ({"search__mixng__scheme": "uniform"}, "search__mixng__scheme: unknown field 'mixng'; "),
    ],
)
def test_a_keyword_under_an_unknown_field_is_named_once(
    tabular_spec: Path, tmp_path: Path, given_as: str, keywords: dict[str, Any], message: str
) -> None:
    spec = tabular_spec if given_as == "file" else taskgraph.load_study_spec(tabular_spec)
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        taskgraph.run_study(spec, storage=f"sqlite:///{tmp_path / 'x.db'}", **keywords)


def test_the_readme_names_the_keywords_that_take_comma_separated_names(
    tabular_study: str, tabular_spec: Path, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From Python") :]
    section = " ".join(section[: section.index("\n## ", 1)].split())
    said = section[section.index('"a,b"') - 200 : section.index('"a,b"') + 120]
    for keyword in ("`tasks`", "`samplers`", "`metrics`", '`candidates=["b", "c"]`'):
        assert keyword in said
    # what it says: a names keyword splits "a,b"; a spec field takes what the file holds
    table = taskgraph.results_table("tab", storage=tabular_study, metrics="score, score")
    assert table.to_dict()["metrics"] == ["score"]
    with pytest.raises(SpecError, match=r"^candidates: "):
        taskgraph.run_study(
            tabular_spec, storage=f"sqlite:///{tmp_path / 'x.db'}", candidates="b,c"
        )


# -- docs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["docs/models.md", "docs/storage.md"])
def test_the_python_snippets_of_the_docs_run_as_written(
    doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the storage snippet writes its example.db here
    monkeypatch.delenv("TASKGRAPH_STORAGE", raising=False)
    snippets = re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), flags=re.DOTALL)
    assert snippets
    for snippet in snippets:
        exec(compile(snippet, doc, "exec"), {"__name__": "snippet"})


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"sampler__name": "nosuch"}, "sampler__name: unknown sampler 'nosuch'"),
        ({"candidates": ["nosuchtask"]}, "unknown task 'nosuchtask'"),
        ({"budget__trials": 0}, "budget__trials: "),
    ],
)
def test_a_spec_field_keyword_that_does_not_fit_is_a_spec_error(
    override: dict[str, Any], named: str, tmp_path: Path
) -> None:
    # Whichever check catches it (the models' or the one that blames an override), a spec
    # field given as a keyword is a SpecError, as the README says.
    url = f"sqlite:///{tmp_path / 'never.db'}"
    with pytest.raises(SpecError, match=re.escape(named)):
        taskgraph.run_study(ROOT / "searchspaces/demo.yaml", storage=url, **override)
    assert not (tmp_path / "never.db").exists()

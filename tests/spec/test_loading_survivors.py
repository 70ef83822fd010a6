"""What :func:`taskgraph.spec.load_spec` does that a mutation audit found unpinned.

``${VAR:-default}`` takes a set variable over its default and may default to nothing;
variables inside lists are expanded.  A blank path and a path that is no regular file are
refused as such.  Paths set by overrides (``--set``) are read beside the spec like the file's
own, a ``~`` path is the home folder, and a symlinked spec reads its paths beside the file it
points to.  An override below a shorthand (``encoder: tiny-bert``) keeps its name; only the
top-level ``runner`` defaults to the local one; and an override below a value that is no
mapping gives a spec or a :class:`SpecError`, never a ``TypeError``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import TabularRunnerSpec, load_spec

MINIMAL = "name: s1\ntarget: synth_a\ncandidates: [synth_b, synth_c]\n"
INLINE = (
    "name: s1\ntarget: synth_a\ncandidates:\n  - synth_b\n"
    "  - {{name: mine, format: iob, type: token_tagging, label_field: ner, "
    "files: {{train: '{train}'}}}}\n"
)


def write(folder: Path, text: str, name: str = "spec.yaml") -> Path:
    """Write ``text`` to ``folder/name`` (folders made) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_set_variable_wins_over_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_TEST_DESCRIPTION", "from the environment")
    spec = load_spec(write(tmp_path, MINIMAL + "description: ${TG_TEST_DESCRIPTION:-default}\n"))
    assert spec.description == "from the environment"


def test_an_empty_default_expands_to_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TG_TEST_UNSET", raising=False)
    spec = load_spec(write(tmp_path, MINIMAL + "description: 'x${TG_TEST_UNSET:-}y'\n"))
    assert spec.description == "xy"


def test_variables_inside_a_list_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TG_TEST_CANDIDATE", "synth_c")
    text = MINIMAL.replace("[synth_b, synth_c]", "[synth_b, '${TG_TEST_CANDIDATE}']")
    assert load_spec(write(tmp_path, text)).candidate_names == ["synth_b", "synth_c"]


def test_a_blank_spec_path_is_refused_as_empty() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec("  ")
    assert str(raised.value) == "the spec path is empty: give the study's YAML file"


def test_a_spec_path_that_is_no_regular_file_says_so_not_that_it_is_missing() -> None:
    with pytest.raises(SpecError) as raised:
        load_spec(os.devnull)
    assert str(raised.value) == f"{os.devnull}: not a regular file: give the study's YAML file"


def test_paths_set_by_overrides_are_read_beside_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "study"
    spec = write(folder, MINIMAL + "runner: tabular\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    loaded = load_spec(spec, overrides={"runner.table": "t.csv", "data_dir": "data"})
    assert isinstance(loaded.runner, TabularRunnerSpec)
    assert loaded.runner.table == str(folder.resolve() / "t.csv")
    assert loaded.data_dir == str(folder.resolve() / "data")


def test_a_relative_data_dir_is_read_beside_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "study"
    spec = write(folder, MINIMAL + "data_dir: corpora\n")
    monkeypatch.chdir(tmp_path)
    assert load_spec(spec).data_dir == str(folder.resolve() / "corpora")


def test_a_tilde_path_is_the_home_folder_not_one_beside_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    spec = load_spec(write(tmp_path / "study", INLINE.format(train="~/data/train.iob")))
    assert spec.inline_tasks()[0].files == {"train": str(home / "data" / "train.iob")}


def test_a_symlinked_spec_reads_its_paths_beside_the_file_it_points_to(tmp_path: Path) -> None:
    real = write(tmp_path / "real", MINIMAL + "data_dir: data\n")
    link = tmp_path / "links" / "spec.yaml"
    link.parent.mkdir()
    link.symlink_to(real)
    assert load_spec(link).data_dir == str(real.parent.resolve() / "data")


@pytest.mark.parametrize(
    ("field", "override", "value"),
    [("encoder", "max_length", 64), ("sampler", "seed", 3), ("pruner", "min_resource", 2)],
)
def test_an_override_below_a_shorthand_keeps_its_name(
    tmp_path: Path, field: str, override: str, value: int
) -> None:
    names = {"encoder": "tiny-bert", "sampler": "random", "pruner": "median"}
    spec = load_spec(
        write(tmp_path, MINIMAL + f"{field}: {names[field]}\n"),
        overrides={f"{field}.{override}": value},
    )
    assert getattr(spec, field).name == names[field]
    assert getattr(getattr(spec, field), override) == value


def test_a_runner_key_below_the_top_is_not_the_runner(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL), overrides={"encoder.options.runner.depth": 2})
    assert spec.encoder.options == {"runner": {"depth": 2}}


def test_an_override_below_a_value_that_is_no_mapping_is_no_type_error(tmp_path: Path) -> None:
    # The file's `budget: 5` is replaced by the override's mapping; a TypeError ("'int' object
    # does not support item assignment") would be a traceback, not one line.
    spec = load_spec(write(tmp_path, MINIMAL + "budget: 5\n"), overrides={"budget.trials": 3})
    assert spec.budget.trials == 3

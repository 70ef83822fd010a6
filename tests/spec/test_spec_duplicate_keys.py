"""Study spec: a key given twice in one mapping is refused, naming both lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec

MINIMAL = "name: a\ntarget: synth_a\ncandidates: [synth_b, synth_c]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "name: b\n", ":4: duplicate key 'name' (first on line 1)"),
        (
            MINIMAL + "search:\n  sharing: [hard]\nseeds: 2\nsearch:\n  batch_size: [8]\n",
            ":7: duplicate key 'search' (first on line 4)",
        ),
        (
            MINIMAL + "budget: {trials: 2, trials: 3}\n",
            ":4: duplicate key 'trials' (first on line 4)",
        ),
    ],
)
def test_duplicate_key_is_one_line_with_both_lines(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}{message}"


def test_a_merged_key_may_be_overridden(tmp_path: Path) -> None:
    text = MINIMAL.replace("name: a\n", "") + (
        "budget:\n  <<: {trials: 2, wall_time: 10m}\n  trials: 3\nname: a\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.name == "a" and spec.budget.trials == 3 and spec.budget.wall_time == 600.0

"""`study run` reads an inline task's files in full before the study is created.

`study validate` reads the first 20 examples of each split; a malformed line further down
passed it, and `study run` then created the study and failed one trial after another on it
("data error: .../train.tsv:28: ...", exit 1).  A malformed data file is exit 2 with nothing
written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.app.studies.running import run_study
from taskgraph.cli.app import app
from taskgraph.errors import DataFormatError

runner = CliRunner()

SPEC = """\
name: full_read
target: synth_target
candidates: [synth_related, my_x]
encoder: {{name: tiny-bert, max_length: 16}}
search:
  sharing: [hard]
  max_steps: 2
  batch_size: 4
  mixing: {{max_examples: {{"*": 16}}}}
training:
  eval_every: 2
  hyperparameters: {{max_eval_examples: 8}}
budget: {{trials: 2}}
sampler: {{name: random, seed: 0}}
tasks:
  - name: my_x
    format: tsv
    type: sentence_classification
    label_field: label
    path: {data}
    reader_options: {{header: true, text_column: sentence, label_column: label}}
"""

BAD_LINE = 28  # past the first 20 examples that `study validate` reads


def _data(root: Path) -> Path:
    data = root / "my_x"
    data.mkdir()
    for split, rows in (("train", 40), ("dev", 10)):
        lines = ["sentence\tlabel"]
        lines += [f"sentence number {i}\t{'pos' if i % 2 else 'neg'}" for i in range(rows)]
        if split == "train":
            lines[BAD_LINE - 1] = "only one field here"
        (data / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return data


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(data=_data(tmp_path)))
    return path


def test_study_run_refuses_a_malformed_line_past_the_head_and_writes_nothing(
    spec: Path, tmp_path: Path
) -> None:
    valid = runner.invoke(app, ["study", "validate", str(spec)])
    assert valid.exit_code == 0, valid.output  # what validate reads is well formed
    db = tmp_path / "records.db"
    result = runner.invoke(app, ["study", "run", str(spec), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    err = result.stderr
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: {spec}: task 'my_x' (split train): ")
    assert f"{tmp_path / 'my_x' / 'train.tsv'}:{BAD_LINE}: expected" in err
    assert not db.exists()


def test_the_python_api_refuses_it_before_the_study_is_created(spec: Path, tmp_path: Path) -> None:
    db = tmp_path / "api.db"
    with pytest.raises(DataFormatError) as caught:
        run_study(spec, storage=f"sqlite:///{db}")
    assert caught.value.line == BAD_LINE
    assert caught.value.path.endswith(str(tmp_path / "my_x" / "train.tsv"))
    assert not db.exists()

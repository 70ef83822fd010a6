"""`study validate` reads only the splits of an inline task that the study reads.

A ``{split}`` pattern makes every matching file a split; a stray file the study never reads
(``ner_spaces.iob``) failed validate, although only the splits read must hold an example.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from taskgraph.app.studies.specs import load_study_spec
from taskgraph.cli.app import app

SENTENCES = "The\tO\ncat\tB-ANIMAL\nsat\tO\n\n" * 3
BROKEN = "this line has no tab\n\n"

SPEC = """\
name: t
target: my_ner
tasks: [{name: my_ner, format: iob, type: token_tagging, label_field: ner,
         path: 'd/ner_{split}.iob'}]
candidates: [synth_related]
encoder: {name: tiny-bert, max_length: 16}
search: {max_steps: 2, batch_size: 4}
budget: {trials: 1}
"""


def _write(tmp_path: Path, extra: str = "") -> Path:
    data = tmp_path / "d"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"ner_{split}.iob").write_text(SENTENCES, encoding="utf-8")
    (data / "ner_spaces.iob").write_text(BROKEN, encoding="utf-8")  # split 'spaces'
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC + extra, encoding="utf-8")
    return spec


def test_a_split_the_study_never_reads_is_not_read(tmp_path: Path) -> None:
    spec = _write(tmp_path)
    result = CliRunner().invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert load_study_spec(spec).target == "my_ner"


def test_the_same_split_is_read_when_the_study_scores_it(tmp_path: Path) -> None:
    spec = _write(tmp_path, extra="training: {eval_splits: [dev, spaces]}\n")
    result = CliRunner().invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code != 0  # a data format error (exit 1)
    assert result.stderr.startswith(f"error: {spec}: tasks[0] (task 'my_ner', split spaces): ")
    assert "ner_spaces.iob:1: expected at least 2 tab-separated columns" in result.stderr
    # and validate passes once the study no longer scores it
    (tmp_path / "d" / "ner_spaces.iob").unlink()
    spec.write_text(SPEC, encoding="utf-8")
    (tmp_path / "d" / "ner_test.iob").write_text(BROKEN, encoding="utf-8")  # never read
    assert CliRunner().invoke(app, ["study", "validate", str(spec)]).exit_code == 0

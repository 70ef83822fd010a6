"""A pretraining corpus file is read before a study exists: a file that is not UTF-8, or holds
no text, is one error line from ``study validate`` and from ``study run`` (and no database),
the message the pretraining stage gives, naming the spec field, the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskgraph.cli.app import app
from taskgraph.errors import ConfigError

runner = CliRunner()

SPEC = """\
name: t
target: synth_target
candidates: [synth_related]
encoder: {{name: tiny-bert, max_length: 16}}
search:
  pretraining: {{scheme: [none, random], steps: 2, corpus: [synth_related, {corpus}]}}
  max_steps: 2
  batch_size: 4
budget: {{trials: 1}}
"""


def write_spec(tmp_path: Path, corpus: bytes) -> tuple[Path, Path]:
    text = tmp_path / "corpus.txt"
    text.write_bytes(corpus)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(corpus="corpus.txt"), encoding="utf-8")
    return spec, text


def refused(spec: Path, tmp_path: Path) -> str:
    """Return the one error line of `study validate`, the same as `study run`'s, no database."""
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 2 and result.stdout == "", result.output
    db = tmp_path / "s.db"
    ran = runner.invoke(app, ["study", "run", str(spec), "--storage", f"sqlite:///{db}"])
    assert ran.exit_code == 2 and ran.stdout == "", ran.output
    assert ran.stderr == result.stderr
    assert not db.exists()
    assert result.stderr.count("\n") == 1
    return result.stderr


def test_a_corpus_file_that_is_not_utf8_is_refused_before_the_study(tmp_path: Path) -> None:
    spec, text = write_spec(tmp_path, "caf\u00e9 au lait\n\nsecond line\n".encode())
    assert runner.invoke(app, ["study", "validate", str(spec)]).exit_code == 0  # UTF-8 is fine
    text.write_bytes(b"good\nsecond\n\xff\xfe bad\n")
    assert refused(spec, tmp_path) == (
        f"error: {spec}: search.pretraining.corpus[1]: {text}, line 3: not UTF-8 text "
        "(byte 0xff at byte 1 of the line); save the file as UTF-8\n"
    )


def test_a_corpus_of_files_without_text_is_refused_before_the_study(tmp_path: Path) -> None:
    spec, text = write_spec(tmp_path, b"\n  \n\t\n")
    spec.write_text(SPEC.format(corpus="corpus.txt").replace("synth_related, ", "", 1))
    assert refused(spec, tmp_path) == (
        f"error: {spec}: search.pretraining.corpus: [{str(text)!r}] holds no text\n"
    )


def test_the_reader_streams_lines_and_names_the_line(tmp_path: Path) -> None:
    from taskgraph.training.pretraining import corpus_file_lines  # the stage's, preflight's

    text = tmp_path / "c.txt"
    text.write_bytes(b"one\r\n\n two \xc3\xa9\rthree\nfour \xe9\n")
    lines = corpus_file_lines(text, "pretraining.corpus[0]")
    assert [next(lines), next(lines), next(lines)] == ["one", " two \u00e9", "three"]
    with pytest.raises(ConfigError) as caught:
        next(lines)
    assert str(caught.value) == (
        f"pretraining.corpus[0]: {text}, line 4: not UTF-8 text (byte 0xe9 at byte 6 of the "
        "line); save the file as UTF-8"
    )

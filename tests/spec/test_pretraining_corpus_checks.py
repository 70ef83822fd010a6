"""A pretraining corpus is read before a study exists: a file that is not UTF-8, holds no
text, or a file or task too short for the stage's windows, is one error line from ``study
validate`` and from ``study run`` (and no database), the message the pretraining stage gives,
naming the spec field, the file and the line."""

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
    from taskgraph.training.pretraining_corpus import corpus_file_lines  # the stage's, preflight's

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


# A corpus too short for the stage: it cuts its corpus into ``[CLS] ... [SEP]`` windows (a
# chunk of fewer than 4 word pieces gives none) and needs at least 2; such a corpus passed
# ``study validate`` and then failed every trial.  The preflight counts the windows with the
# stage's own function (``corpus_windows``) and the encoder's tokenizer.

WINDOW_SPEC = """\
name: t
target: synth_target
candidates: [synth_related]
encoder: {{name: tiny-bert, max_length: 16}}
{tasks}
search:
  pretraining: {{scheme: [random], steps: 2, corpus: [{corpus}]}}
  max_steps: 2
  batch_size: 4
budget: {{trials: 1}}
"""

INLINE = """\
tasks:
  - name: short_text
    format: tsv
    type: sentence_classification
    label_field: label
    files: {train: train.tsv, dev: dev.tsv}
    metrics: [accuracy]
    reader_options: {header: true, text_column: text, label_column: label}
"""


def window_spec(tmp_path: Path, corpus: str, *, tasks: str = "") -> Path:
    spec = tmp_path / "s.yaml"
    spec.write_text(WINDOW_SPEC.format(corpus=corpus, tasks=tasks), encoding="utf-8")
    return spec


def test_a_corpus_file_of_short_lines_is_refused_before_the_study(tmp_path: Path) -> None:
    text = tmp_path / "short.txt"
    text.write_text("ok\nyes\nno\n", encoding="utf-8")  # three texts, no window
    spec = window_spec(tmp_path, "short.txt")
    assert refused(spec, tmp_path) == (
        f"error: {spec}: search.pretraining.corpus: [{str(text)!r}] gives 0 window(s) of 16 "
        "tokens (encoder.max_length); the pretraining stage needs at least 2 (a text of fewer "
        "than 4 word pieces gives none): add text or name a longer corpus\n"
    )


def test_a_corpus_task_of_short_texts_is_refused_before_the_study(tmp_path: Path) -> None:
    for split in ("train", "dev"):
        (tmp_path / f"{split}.tsv").write_text("text\tlabel\nok\ta\nno\tb\nyes\ta\n")
    spec = window_spec(tmp_path, "short_text", tasks=INLINE)
    line = refused(spec, tmp_path)
    assert line.startswith(f"error: {spec}: search.pretraining.corpus: ['short_text'] gives 0 ")


def test_the_preflight_counts_windows_not_lines(tmp_path: Path) -> None:
    from taskgraph.training.pretraining_corpus import corpus_windows, encoder_tokenizer

    words = " ".join(f"word{i}" for i in range(40))
    text = tmp_path / "one.txt"
    # One long passage gives the stage several windows: a study the old line count refused
    # would be wrong to refuse, and one line of a single window is refused.
    text.write_text(words + "\n", encoding="utf-8")
    spec = window_spec(tmp_path, "one.txt")
    result = runner.invoke(app, ["study", "validate", str(spec)])
    assert result.exit_code == 0, result.output
    tokenizer = encoder_tokenizer("tiny-bert")
    assert corpus_windows([str(text)], tokenizer, max_length=16) > 2
    text.write_text("the patient was given aspirin\n", encoding="utf-8")
    assert corpus_windows([str(text)], tokenizer, max_length=16) == 1
    assert " gives 1 window(s) of 16 tokens " in refused(spec, tmp_path)


def test_the_count_is_the_stages(tmp_path: Path) -> None:
    from taskgraph.training.pretraining_corpus import _windows, corpus_windows, encoder_tokenizer

    texts = ["ok", "the patient was given aspirin", " ".join(["long"] * 50), "a b c d e f g"]
    text = tmp_path / "c.txt"
    text.write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    tokenizer = encoder_tokenizer("tiny-bert")
    for length in (8, 16, 32):
        stage = len(_windows(texts, tokenizer, max_length=length))
        assert corpus_windows([str(text)], tokenizer, max_length=length) == stage
        assert corpus_windows([str(text)], tokenizer, max_length=length, at_most=2) == min(stage, 2)


def test_without_a_tokenizer_the_windows_are_left_to_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taskgraph.errors import SpecError
    from taskgraph.search.checks import check_spec
    from taskgraph.spec import load_spec
    from taskgraph.training import pretraining_corpus

    (tmp_path / "short.txt").write_text("ok\nyes\nno\n", encoding="utf-8")
    spec = load_spec(window_spec(tmp_path, "short.txt"))
    with pytest.raises(SpecError, match=r"gives 0 window\(s\) of 16 tokens"):
        check_spec(spec)

    def unreadable(name: str) -> None:
        raise ConfigError(f"encoder {name!r}: cannot read a tokenizer")

    # The corpus holds text; how many windows it gives cannot be told without the tokenizer.
    monkeypatch.setattr(pretraining_corpus, "encoder_tokenizer", unreadable)
    check_spec(spec)

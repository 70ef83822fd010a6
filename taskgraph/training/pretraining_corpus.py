"""The pretraining stage's corpus: its texts, their fingerprint, and the windows cut from them.

Each ``pretraining.corpus`` entry is a task name (looked up first: the text of its train split)
or the path of a UTF-8 text file (one passage a line); an empty corpus means the trial's own
tasks.  Texts are cut into ``[CLS] ... [SEP]`` windows of ``max_length`` tokens.  The stage
(:mod:`taskgraph.training.pretraining`) and the study's preflight
(:mod:`taskgraph.search.checks.pretraining`) read and count a corpus through these functions,
so both say the same thing about it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taskgraph.errors import ConfigError, TaskgraphError
from taskgraph.tasks import edited_while_read, get_task, iter_examples, task_fingerprint
from taskgraph.tasks.types import ParsedSentence, QAExample, TaggedSentence, TaskDef, TextExample
from taskgraph.trial import PretrainingConfig, TrialConfig

__all__ = [
    "corpus_entry_texts",
    "corpus_file_lines",
    "corpus_texts",
    "corpus_windows",
    "encoder_tokenizer",
]


def _iter_texts_of(task: TaskDef, data_dir: str | os.PathLike[str] | None) -> Iterator[str]:
    """Yield the non-blank texts of ``task``'s train split, an example at a time."""
    if "train" not in task.splits:
        raise ConfigError(f"pretraining.corpus: task {task.name!r} has no train split")
    contexts: set[str] = set()
    for example in iter_examples(task, "train", data_dir=data_dir):
        texts: list[str] = []
        if isinstance(example, (TaggedSentence, ParsedSentence)):
            texts.append(" ".join(example.tokens))
        elif isinstance(example, QAExample):
            if example.context not in contexts:
                contexts.add(example.context)
                texts.append(example.context)
            texts.append(example.question)
        elif isinstance(example, TextExample):
            texts.append(example.text)
            if example.text_pair is not None:
                texts.append(example.text_pair)
        yield from (t for t in texts if t.strip())


def _corpus_sources(
    entries: Sequence[str], tasks: Mapping[str, TaskDef] | None
) -> Iterator[tuple[str, TaskDef | Path]]:
    """Yield each corpus entry's name in messages and what it names: a task (looked up first)
    or a text file; an entry that is neither is a ConfigError naming it."""
    for index, entry in enumerate(entries):
        where = f"pretraining.corpus[{index}]"
        try:
            task = get_task(entry, extra=tasks)
        except TaskgraphError:
            path = Path(os.path.expanduser(entry))
            if not path.is_file():
                raise ConfigError(f"{where}: {entry!r} is neither a task nor a text file") from None
            yield where, path
        else:
            yield where, task


def corpus_texts(
    config: TrialConfig,
    *,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[str], str]:
    """Return the corpus' texts and its fingerprint (a sha256 over every entry's data)."""
    assert config.pretraining is not None
    entries = config.pretraining.corpus or config.task_set
    texts: list[str] = []
    prints: list[str] = []
    for where, source in _corpus_sources(entries, tasks):
        if isinstance(source, Path):
            digest = hashlib.sha256()
            texts.extend(corpus_file_lines(source, where, digest=digest))
            prints.append("file:" + digest.hexdigest())
        else:
            fingerprint = task_fingerprint(source, data_dir=data_dir)
            texts.extend(_iter_texts_of(source, data_dir))
            # The stage's weights are cached under this fingerprint: texts of files edited
            # while they were read would be kept under the version before the edit.
            if task_fingerprint(source, data_dir=data_dir) != fingerprint:
                raise edited_while_read(f"{where} (task {source.name!r})", what="its files")
            prints.append("task:" + fingerprint)
    if not texts:
        raise ConfigError(f"pretraining.corpus: {list(entries)} holds no text")
    return texts, hashlib.sha256("|".join(prints).encode()).hexdigest()


def corpus_windows(
    entries: Sequence[str],
    tokenizer: Any,
    *,
    max_length: int,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    at_most: int | None = None,
) -> int:
    """Return how many windows of ``max_length`` tokens the corpus ``entries`` gives the stage.

    The entries are read as :func:`corpus_texts` reads them (a task name first, else a text
    file) and cut as the stage cuts them (``[CLS] ... [SEP]``, chunks of fewer than 4 word
    pieces dropped), before ``max_sequences``; with ``at_most``, reading stops once that many
    are found.  Only the tokenizer is needed (:func:`encoder_tokenizer`), so a study's
    preflight counts what every trial's stage would, without loading the encoder.
    """
    count = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal count
        if batch:
            count += len(_window_chunks(batch, tokenizer, width=max_length - 2))
            batch.clear()

    for text in corpus_entry_texts(entries, tasks=tasks, data_dir=data_dir):
        batch.append(text)
        if len(batch) >= 256:
            flush()
            if at_most is not None and count >= at_most:
                return count
    flush()
    return count if at_most is None else min(count, at_most)


def corpus_entry_texts(
    entries: Sequence[str],
    *,
    tasks: Mapping[str, TaskDef] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Iterator[str]:
    """Yield the texts of the corpus ``entries`` as :func:`corpus_texts` reads them, lazily."""
    for where, source in _corpus_sources(entries, tasks):
        if isinstance(source, Path):
            yield from corpus_file_lines(source, where)
        else:
            yield from _iter_texts_of(source, data_dir)


def encoder_tokenizer(name: str) -> Any:
    """Return the tokenizer the stage cuts windows with for encoder ``name``, without its model.

    ``tiny-bert`` uses MiniLM's (as :func:`~taskgraph.models.load_encoder` builds it); a
    directory's is read from its files.  Raises ConfigError when it cannot be read.
    """
    from taskgraph.encoder_files import encoder_version
    from taskgraph.models.encoders import _tokenizer, minilm_path

    path = minilm_path() if name in ("tiny-bert", "minilm") else Path(os.path.expanduser(name))
    try:
        return _tokenizer(path, encoder_version(name))
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(
            f"encoder {name!r}: cannot read a tokenizer from {str(path)!r}"
        ) from error


def corpus_file_lines(path: Path, where: str, *, digest: Any = None) -> Iterator[str]:
    """Yield the non-blank lines of the corpus file ``path``, read a line at a time.

    ``where`` is the corpus entry's field (``pretraining.corpus[0]``).  A file that cannot be
    read, or a line that is not UTF-8, is a ConfigError naming the field, the file and the
    line; ``digest`` (a hashlib object), when given, is fed every byte of the file.  The
    pretraining stage and the study's preflight read a corpus file through this function, so
    both say the same thing about it.
    """
    try:
        with open(path, "rb") as file:
            for number, raw in enumerate(file, start=1):
                if digest is not None:
                    digest.update(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ConfigError(
                        f"{where}: {path}, line {number}: not UTF-8 text (byte "
                        f"0x{raw[error.start]:02x} at byte {error.start + 1} of the line); "
                        f"save the file as UTF-8"
                    ) from None
                # a b"\n" never ends a UTF-8 sequence, so a line decodes as the whole file
                # would; splitlines() also splits at the other line ends, as before
                yield from (line for line in text.splitlines() if line.strip())
    except OSError as error:
        raise ConfigError(f"{where}: cannot read {str(path)!r}: {error.strerror}") from None


def _check_window(max_length: int, encoder: Any, *, field: str) -> None:
    """Raise ConfigError unless windows of ``max_length`` tokens fit ``encoder``'s positions."""
    if max_length < 6:
        raise ConfigError(
            f"{field} must be at least 6 ([CLS], 4 pieces, [SEP]), but got {max_length}"
        )
    positions = getattr(getattr(encoder.model, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        raise ConfigError(
            f"{field} is {max_length}, but the encoder has {positions} positions "
            f"(max_position_embeddings); use at most {positions}"
        )


def _windows(texts: Sequence[str], tokenizer: Any, *, max_length: int) -> np.ndarray:
    """Return (N, max_length) token ids: each text cut into [CLS] piece [SEP] windows, padded."""
    cls, sep = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    rows = [[cls, *chunk, sep] for chunk in _window_chunks(texts, tokenizer, width=max_length - 2)]
    out = np.full((len(rows), max_length), int(tokenizer.pad_token_id), dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _window_chunks(texts: Iterable[str], tokenizer: Any, *, width: int) -> list[list[int]]:
    """Return the word pieces of each window of ``texts``: ``width`` at most, 4 at least."""
    # Texts are tokenized whole and cut into windows below, so a text longer than the model's
    # positions is expected: verbose=False drops transformers' "Token indices sequence length
    # is longer than the specified maximum" warning, the only one a call without padding or
    # truncation gives (another call of the same tokenizer still warns).
    pieces = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    chunks: list[list[int]] = []
    for ids in pieces:
        for start in range(0, len(ids), width):
            chunk = ids[start : start + width]
            if len(chunk) >= 4:
                chunks.append(list(chunk))
    return chunks


def _window_field(pre: PretrainingConfig) -> str:
    if pre.max_length is None:
        return "the pretraining window length (the trial's max_length)"
    return "pretraining.max_length"

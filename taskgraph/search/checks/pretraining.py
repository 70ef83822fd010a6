"""Checks of the pretraining stage (``search.pretraining``): its schemes, options and corpus."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskgraph.errors import SpecError, TaskgraphError
from taskgraph.spec.checks import inline_task_defs
from taskgraph.spec.models import StudySpec


def _check_pretraining(spec: StudySpec, source: str) -> None:
    from taskgraph.spec.pretraining import NO_PRETRAINING
    from taskgraph.tasks import get_task
    from taskgraph.training.masking import MASKING_SCHEMES, build_masking, masking_options

    space = spec.search.pretraining
    where = "search.pretraining"
    known = ["none", *MASKING_SCHEMES.names()]
    schemes = [n for n in space.scheme.values() if n not in NO_PRETRAINING]
    for name in schemes:
        if name not in MASKING_SCHEMES:
            raise SpecError(
                f"{source}: {where}.scheme: unknown pretraining scheme {name!r}; allowed: "
                f"{', '.join(known)}"
            )
    for scheme, options in space.options.items():
        if scheme not in schemes:
            raise SpecError(
                f"{source}: {where}.options.{scheme}: not a scheme this study searches; "
                f"allowed: {', '.join(map(str, schemes)) or '(none: the study does not pretrain)'}"
            )
        allowed = masking_options(str(scheme))
        for option, domain in options.items():
            if option not in allowed:
                # `{nope:1}` (no space after the colon) is YAML for the key 'nope:1': name
                # the option, not the key with its value glued on
                name, colon, rest = str(option).partition(":")
                if colon and name.strip() in allowed:
                    raise SpecError(
                        f"{source}: {where}.options.{scheme}.{name.strip()}: {option!r} is one "
                        f"YAML key; write '{name.strip()}: {rest.strip()}' (a space after ':')"
                    )
                raise SpecError(
                    f"{source}: {where}.options.{scheme}.{name.strip() or option}: unknown "
                    f"option of {scheme!r}; allowed: {', '.join(allowed)}"
                )
            for value in domain.values():
                try:
                    build_masking(str(scheme), {option: value})
                except (TaskgraphError, TypeError) as error:
                    message = str(error).removeprefix("pretraining.options: ")
                    raise SpecError(
                        f"{source}: {where}.options.{scheme}.{option}: {message}"
                    ) from None
    if not schemes:
        return
    from taskgraph.training.pretraining_corpus import corpus_file_lines

    extra = inline_task_defs(spec, source=source)
    file_lines, tasks = 0, 0
    for index, entry in enumerate(space.corpus):
        try:
            get_task(entry, extra=extra)
            tasks += 1
            continue
        except TaskgraphError:
            pass  # as the stage reads it: a task name first, else a text file
        path = Path(os.path.expanduser(entry))
        if not path.is_file():
            raise SpecError(
                f"{source}: {where}.corpus[{index}]: {entry!r} is neither a task nor a text file"
            )
        # Read it whole, a line at a time, through the stage's own reader: a file that is not
        # UTF-8 (or unreadable) is one error now rather than every trial failing on it.
        try:
            file_lines += sum(1 for _ in corpus_file_lines(path, f"{where}.corpus[{index}]"))
        except TaskgraphError as error:
            raise SpecError(f"{source}: {error}") from None
    if space.corpus and not tasks and not file_lines:  # files only (tasks are read later)
        raise SpecError(f"{source}: {where}.corpus: {list(space.corpus)} holds no text")
    if space.corpus:
        _check_corpus_windows(spec, source, extra)


def _check_corpus_windows(spec: StudySpec, source: str, extra: dict[str, Any]) -> None:
    """Refuse a named corpus that gives the stage fewer than 2 windows (every trial fails).

    Counted as the stage counts them (:func:`~taskgraph.training.pretraining_corpus.corpus_windows`),
    with the encoder's tokenizer only; when that cannot be read, a corpus without a single
    text is refused.  A task whose data cannot be read here is left to the stage to judge
    (a runner's workers may read another data directory).
    """
    from taskgraph.training.pretraining_corpus import (
        corpus_entry_texts,
        corpus_windows,
        encoder_tokenizer,
    )

    space = spec.search.pretraining
    corpus = list(space.corpus)
    length = space.max_length or spec.encoder.max_length
    field = "search.pretraining.max_length" if space.max_length else "encoder.max_length"
    try:
        tokenizer = encoder_tokenizer(spec.encoder.name)
    except TaskgraphError:
        tokenizer = None
    try:
        if tokenizer is None:
            empty = next(corpus_entry_texts(corpus, tasks=extra), None) is None
        else:
            windows = corpus_windows(corpus, tokenizer, max_length=length, tasks=extra, at_most=2)
    except (TaskgraphError, OSError):
        return
    if tokenizer is None:
        if empty:
            raise SpecError(f"{source}: search.pretraining.corpus: {corpus} holds no text")
        return
    if windows < 2:
        raise SpecError(
            f"{source}: search.pretraining.corpus: {corpus} gives {windows} window(s) of "
            f"{length} tokens ({field}); the pretraining stage needs at least 2 (a text "
            f"of fewer than 4 word pieces gives none): add text or name a longer corpus"
        )

"""SQuAD-style JSON (v1.1 and v2.0) for extractive question answering.

``data[].paragraphs[].{context, qas[].{id, question, answers[].{text, answer_start},
is_impossible?}}``.  Version 2.0 questions with ``is_impossible: true`` must have no answers;
all other questions need at least one.  Every answer must occur in the context at its
``answer_start``.  JSON has to be parsed whole, so this reader holds one file in memory; it
decodes with a position-tracking decoder so that each error names the line of the object at
fault (and invalid JSON the line and column where decoding stopped).

Option ``group_by``: ``"title"`` (default; the article is the unit of carved splits) or
``"id_prefix"`` (the part of the question id before the first ``:``, e.g. a BioASQ question
whose snippets are separate examples).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taskgraph.errors import DataFormatError
from taskgraph.tasks.readers.base import Reader, Record, check_text, option, show
from taskgraph.tasks.types import Answer, QAExample, TaskType

__all__ = ["SquadReader", "load_located_json"]


class _Located(dict[str, Any]):
    """A JSON object that remembers the line where it starts."""

    __slots__ = ("line",)
    line: int


def load_located_json(path: Path) -> Any:
    """Return the parsed JSON of ``path``; every object is a dict with a ``.line`` attribute."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataFormatError(path, line, "UTF-8 text", "an undecodable byte") from None
    newlines = [index for index, char in enumerate(text) if char == "\n"]
    decoder = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any, **kwargs: Any) -> tuple[Any, int]:
        pairs, end = json.decoder.JSONObject(s_and_end, *args, **kwargs)  # type: ignore[attr-defined]
        located = _Located(pairs)
        located.line = bisect_right(newlines, s_and_end[1] - 1) + 1
        return located, end

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as error:
        # The column matters: SQuAD files are often one line of megabytes.
        at = "" if error.msg.endswith(" at") else " at"
        got = f"{error.msg}{at} column {error.colno}"
        raise DataFormatError(path, error.lineno, "valid JSON", got) from None
    except RecursionError:
        raise DataFormatError(path, 1, "valid JSON", "nesting too deep") from None


def _line(value: Any, fallback: int) -> int:
    return value.line if isinstance(value, _Located) else fallback


def _field(path: Path, obj: Any, key: str, kind: type, where: str, line: int) -> Any:
    """Return ``obj[key]``, raising DataFormatError unless it exists and is a ``kind``."""
    if not isinstance(obj, dict):
        raise DataFormatError(path, line, f"an object at {where}", type(obj).__name__)
    if key not in obj:
        raise DataFormatError(path, _line(obj, line), f"key {key!r} in {where}", "none")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataFormatError(
            path,
            _line(obj, line),
            f"{where}.{key} to be {kind.__name__}",
            f"{type(value).__name__} {show(str(value))}",
        )
    return value


class SquadReader(Reader):
    """Reads SQuAD v1.1/v2.0 JSON into :class:`QAExample` records."""

    name = "squad"
    task_types = frozenset({TaskType.EXTRACTIVE_QA})
    option_names = frozenset({"group_by"})

    def group_unit(self, options: Mapping[str, Any]) -> str:
        """Return what a group is: an article, or a question id prefix."""
        if options.get("group_by", "title") == "id_prefix":
            return "question (id before ':')"
        return "article (title)"

    def check_options(
        self, task_type: TaskType, label_field: str, options: Mapping[str, Any]
    ) -> None:
        option(options, "group_by", "title", kinds=str, choices=("title", "id_prefix"))

    def read(
        self,
        path: Path,
        *,
        task_type: TaskType,
        label_field: str,
        options: Mapping[str, Any],
    ) -> Iterator[Record]:
        by_prefix = options.get("group_by", "title") == "id_prefix"
        root = load_located_json(path)
        articles = _field(path, root, "data", list, "the top level", 1)
        seen: dict[str, int] = {}
        for a, article in enumerate(articles):
            where = f"data[{a}]"
            paragraphs = _field(path, article, "paragraphs", list, where, _line(root, 1))
            title = article.get("title", f"article{a}")
            if not isinstance(title, str):
                raise DataFormatError(path, article.line, f"{where}.title to be str", repr(title))
            for p, paragraph in enumerate(paragraphs):
                pwhere = f"{where}.paragraphs[{p}]"
                pline = _line(paragraph, article.line)
                context = _field(path, paragraph, "context", str, pwhere, pline)
                check_text(path, pline, context, what=f"{pwhere}.context")
                questions = _field(path, paragraph, "qas", list, pwhere, pline)
                for q, qa in enumerate(questions):
                    qwhere = f"{pwhere}.qas[{q}]"
                    example = self._example(path, qa, qwhere, pline, context, title)
                    if example.id in seen:
                        raise DataFormatError(
                            path,
                            qa.line,
                            f"a new question id in {qwhere}",
                            f"{show(example.id)} (already on line {seen[example.id]})",
                        )
                    seen[example.id] = qa.line
                    group = example.id.partition(":")[0] if by_prefix else title
                    texts = (context, example.question) if by_prefix else (context,)
                    yield Record(
                        example=QAExample(
                            id=example.id,
                            question=example.question,
                            context=context,
                            answers=example.answers,
                            is_impossible=example.is_impossible,
                            group=group,
                        ),
                        line=qa.line,
                        group=group,
                        texts=texts,
                    )

    @staticmethod
    def _example(path: Path, qa: Any, where: str, line: int, context: str, title: str) -> QAExample:
        qid = _field(path, qa, "id", str, where, line)
        question = _field(path, qa, "question", str, where, line)
        check_text(path, _line(qa, line), qid, what=f"{where}.id")
        check_text(path, _line(qa, line), question, what=f"{where}.question")
        answers = _field(path, qa, "answers", list, where, line)
        impossible = qa.get("is_impossible", False)
        if not isinstance(impossible, bool):
            raise DataFormatError(
                path, qa.line, f"{where}.is_impossible to be true or false", repr(impossible)
            )
        if not qid.strip() or not question.strip():
            raise DataFormatError(path, qa.line, f"a non-empty id and question in {where}", "empty")
        if impossible and answers:
            raise DataFormatError(
                path, qa.line, f"no answers for the unanswerable {where}", f"{len(answers)}"
            )
        if not impossible and not answers:
            raise DataFormatError(path, qa.line, f"at least one answer in {where}", "none")
        spans: list[Answer] = []
        for n, answer in enumerate(answers):
            awhere = f"{where}.answers[{n}]"
            text = _field(path, answer, "text", str, awhere, qa.line)
            start = _field(path, answer, "answer_start", int, awhere, qa.line)
            if not text or context[start : start + len(text)] != text or start < 0:
                found = context[max(start, 0) : max(start, 0) + len(text)]
                raise DataFormatError(
                    path,
                    _line(answer, qa.line),
                    f"answer {show(text)} at offset {start} of the context",
                    show(found),
                )
            spans.append(Answer(text=text, start=start))
        return QAExample(
            id=qid,
            question=question,
            context=context,
            answers=tuple(spans),
            is_impossible=impossible,
            group=title,
        )


SQUAD = SquadReader()

"""CoNLL-U treebanks (Universal Dependencies), read from their tab-separated fields.

Lines are checked one by one (10 tab-separated fields, well-formed IDs and heads) so that an
error names its line, and the examples are built from those same fields: UD allows spaces in
FORM and LEMMA, which :func:`conllu.parse_token_and_metadata` (it also splits on two spaces)
would take for column breaks.  Multiword-token ranges (``3-4``) and empty nodes (``5.1``) are
skipped: the examples are the basic tree over syntactic words, whose IDs must run 1..n and
whose heads must be in 0..n; for parsing, the heads must form a tree (no word is its own head
or in a cycle).

``label_field``: ``upos`` or ``xpos`` for token tagging, ``head+deprel`` for parsing.  The
``# newdoc`` comment names the document, the unit of carved splits.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from taskgraph.errors import ConfigError, DataFormatError
from taskgraph.tasks.readers.base import Reader, Record, read_lines, show
from taskgraph.tasks.types import ParsedSentence, TaggedSentence, TaskType

__all__ = ["ConlluReader"]

_WORD_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_EMPTY_ID = re.compile(r"(0|[1-9][0-9]*)\.[1-9][0-9]*")
_HEAD = re.compile(r"0|[1-9][0-9]*")
# the columns of a word line: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
_FORM, _UPOS, _XPOS, _HEAD_COLUMN, _DEPREL = 1, 3, 4, 6, 7


class ConlluReader(Reader):
    """Reads CoNLL-U into :class:`ParsedSentence` or :class:`TaggedSentence` records."""

    name = "conllu"
    task_types = frozenset({TaskType.TOKEN_TAGGING, TaskType.DEPENDENCY_PARSING})
    option_names = frozenset()

    def group_unit(self, options: Mapping[str, Any]) -> str:
        """Return what a group is in this format."""
        return "document (# newdoc id)"

    def check_options(
        self, task_type: TaskType, label_field: str, options: Mapping[str, Any]
    ) -> None:
        allowed = ("head+deprel",) if task_type is TaskType.DEPENDENCY_PARSING else ("upos", "xpos")
        if label_field not in allowed:
            raise ConfigError(
                f"`label_field` for {task_type.value} from CoNLL-U must be one of "
                f"{', '.join(allowed)}, but got {label_field!r}"
            )

    def read(
        self,
        path: Path,
        *,
        task_type: TaskType,
        label_field: str,
        options: Mapping[str, Any],
    ) -> Iterator[Record]:
        in_sentence = False
        words: list[list[str]] = []
        word_lines: list[int] = []  # each word's line, for an error about that word
        start = 0
        document = ""
        for number, line in read_lines(path):
            if not line.strip():
                if in_sentence:
                    if not words:
                        raise DataFormatError(path, start, "a sentence with words", "none")
                    yield self._record(
                        path, start, words, word_lines, document, task_type, label_field
                    )
                    in_sentence, words, word_lines = False, [], []
                continue
            if not in_sentence:
                in_sentence, start = True, number
            if line.startswith("#"):
                if words:
                    raise DataFormatError(
                        path, number, "a token line or a blank line", f"comment {show(line)}"
                    )
                if line.startswith("# newdoc"):
                    document = line.partition("=")[2].strip() or f"line{number}"
                continue
            fields = self._check_line(path, number, line, len(words))
            if fields is not None:
                words.append(fields)
                word_lines.append(number)
        if in_sentence:
            if not words:
                raise DataFormatError(path, start, "a sentence with words", "only comments")
            yield self._record(path, start, words, word_lines, document, task_type, label_field)

    @staticmethod
    def _check_line(path: Path, number: int, line: str, words: int) -> list[str] | None:
        """Return a syntactic word line's 10 fields, or None for a range or empty node.

        Raises DataFormatError naming the line when the line is malformed.
        """
        fields = line.split("\t")
        if len(fields) != 10:
            raise DataFormatError(
                path, number, "10 tab-separated CoNLL-U fields", f"{len(fields)} in {show(line)}"
            )
        word_id, form, head, deprel = (
            fields[0],
            fields[_FORM],
            fields[_HEAD_COLUMN],
            fields[_DEPREL],
        )
        if _RANGE_ID.fullmatch(word_id) or _EMPTY_ID.fullmatch(word_id):
            return None
        if not _WORD_ID.fullmatch(word_id):
            raise DataFormatError(path, number, "an ID like 7, 7-8 or 7.1", show(word_id))
        if int(word_id) != words + 1:
            raise DataFormatError(path, number, f"word ID {words + 1}", show(word_id))
        if not form or form != form.strip():
            raise DataFormatError(path, number, "a non-empty FORM without outer spaces", show(form))
        if not _HEAD.fullmatch(head):
            raise DataFormatError(path, number, "an integer HEAD", show(head))
        if not deprel or deprel == "_" or deprel != deprel.strip():
            raise DataFormatError(path, number, "a DEPREL", show(deprel))
        upos = fields[_UPOS]
        if not upos or upos == "_" or upos != upos.strip():
            raise DataFormatError(path, number, "a UPOS tag", show(upos))
        return fields

    @staticmethod
    def _record(
        path: Path,
        start: int,
        words: list[list[str]],
        word_lines: list[int],
        document: str,
        task_type: TaskType,
        label_field: str,
    ) -> Record:
        forms = tuple(fields[_FORM] for fields in words)
        heads = tuple(int(fields[_HEAD_COLUMN]) for fields in words)
        for index, head in enumerate(heads):
            if head > len(words):
                raise DataFormatError(
                    path,
                    word_lines[index],
                    f"HEAD of word {index + 1} in 0..{len(words)}",
                    str(head),
                )
        if task_type is TaskType.DEPENDENCY_PARSING:
            _check_tree(path, start, heads)
            example: ParsedSentence | TaggedSentence = ParsedSentence(
                tokens=forms,
                heads=heads,
                deprels=tuple(fields[_DEPREL] for fields in words),
                upos=tuple(fields[_UPOS] for fields in words),
            )
        else:
            column = _UPOS if label_field == "upos" else _XPOS
            for index, fields in enumerate(words):
                if not fields[column] or fields[column] == "_":
                    raise DataFormatError(
                        path,
                        word_lines[index],
                        f"a {label_field.upper()} tag for word {index + 1}",
                        "_",
                    )
            example = TaggedSentence(tokens=forms, tags=tuple(f[column] for f in words))
        return Record(example=example, line=start, group=document, texts=(" ".join(forms),))


def _check_tree(path: Path, start: int, heads: tuple[int, ...]) -> None:
    """Return nothing; raise DataFormatError when following heads from a word never reaches 0."""
    reaches_root = [False] * (len(heads) + 1)
    reaches_root[0] = True
    for word in range(1, len(heads) + 1):
        path_words: list[int] = []
        node = word
        while not reaches_root[node]:
            if node in path_words:
                cycle = " -> ".join(map(str, [*path_words[path_words.index(node) :], node]))
                raise DataFormatError(
                    path, start, "HEADs that form a tree (every word reaches 0)", f"cycle {cycle}"
                )
            path_words.append(node)
            node = heads[node - 1]
        for visited in path_words:
            reaches_root[visited] = True


CONLLU = ConlluReader()

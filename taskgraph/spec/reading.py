"""Read a spec file's text and data from YAML or JSON; a file refused is one SpecError line.

The YAML is read with a loader that counts nodes as it composes them, aliases expanded, and
refuses a document past :data:`~taskgraph.spec.limits.MAX_SPEC_NODES` nodes or
:data:`~taskgraph.spec.limits.MAX_SPEC_DEPTH` levels: an alias bomb of a few hundred bytes
would otherwise make ``${VAR}`` expansion walk billions of copies.

A file ending in ``.json`` is read as JSON (``study show NAME --spec --json`` writes one): YAML
1.1 would read its numbers such as ``5e-05`` as text.  The same limits, the refusal of a key
given twice and the line numbers of field errors apply to it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from taskgraph.errors import SpecError
from taskgraph.spec.limits import MAX_SPEC_BYTES, MAX_SPEC_DEPTH, MAX_SPEC_NODES

_MERGE_TAG = "tag:yaml.org,2002:merge"  # the `<<` key
# A JSON string, a bracket or separator, or any other scalar (number, true, false, null).
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}:,]|[^\s\][{}:,"]+')


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses documents too large once aliases are expanded.

    ``compose_node`` returns the anchored node itself for an alias, so a node's expanded
    size is its own count plus its children's (memoised per node): the check costs one pass
    over the file, however many copies the aliases stand for.  It also refuses a key given
    twice in one mapping, as written (keys a ``<<`` merge brings in may be overridden).
    """

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self._expanded: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        if self._depth > MAX_SPEC_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecError(
                f"{self.source}:{mark.line + 1}: lists and mappings nested deeper than "
                f"{MAX_SPEC_DEPTH} levels"
            )
        alias = self.check_event(yaml.AliasEvent)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        size = self._expanded.get(id(node))
        if alias and size is None and not isinstance(node, yaml.ScalarNode):
            # The anchored list or mapping is still being composed: it contains itself.
            raise SpecError(
                f"{self.source}:{node.start_mark.line + 1}: an alias refers to a list or mapping "
                "that contains it (a recursive structure)"
            )
        if size is None:
            size = 1
            if isinstance(node, yaml.SequenceNode):
                size += sum(self._expanded.get(id(child), 1) for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                self._refuse_duplicate_keys(node)  # before any merge rewrites it
                size += sum(
                    self._expanded.get(id(key), 1) + self._expanded.get(id(value), 1)
                    for key, value in node.value
                )
            self._expanded[id(node)] = size
        if size > MAX_SPEC_NODES:
            raise SpecError(
                f"{self.source}:{node.start_mark.line + 1}: the spec expands to more than "
                f"{MAX_SPEC_NODES} values once YAML aliases are expanded; use fewer aliases"
            )
        return node

    def _refuse_duplicate_keys(self, node: yaml.MappingNode) -> None:
        # PyYAML keeps the last of two equal keys: a second `name:` would silently rename
        # the study, a second `search:` drop the first block.  Checked on the composed node,
        # as written: merging later copies keys into an anchored mapping in place, where
        # they would look like duplicates.  Keys a `<<` merge brings in are not checked:
        # overriding them is what a merge is for.
        first_lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:value":
                key_node.tag = "tag:yaml.org,2002:str"  # as PyYAML's merging does: `=` is text
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue  # a list or mapping key is unhashable: PyYAML's own error names it
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            first = first_lines.get(key)
            if first is not None:
                raise SpecError(
                    f"{self.source}:{line}: duplicate key {key!r} (first on line {first})"
                )
            first_lines[key] = line

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # PyYAML 6.0.4 drops a merged key when its string is the same object as one already
        # merged, so a one-letter key can lose its override and `<<: [*a, *b]` picks a
        # different winner for short and long keys.  The YAML merge rules instead: the
        # mapping's own keys win, then the mapping merged earlier.
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            if isinstance(value_node, yaml.SequenceNode):
                sources = value_node.value
            elif isinstance(value_node, yaml.MappingNode):
                sources = [value_node]
            else:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"expected a mapping or list of mappings for merging, but found {value_node.id}",
                    value_node.start_mark,
                )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {source.id}",
                        source.start_mark,
                    )
                self.flatten_mapping(source)  # in place: its own merges are resolved once
                merged.extend(source.value)
        if len(own) == len(node.value):
            return
        # Keys in PyYAML's order (merged ones first, where the merge put them; then the
        # mapping's other own keys): an own key that overrides a merged one takes its place.
        # The order matters: search.sharing's is the order of the sharing choices.
        overrides = {self._key(key_node): (key_node, value_node) for key_node, value_node in own}
        placed: set[Any] = set()
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in merged:
            key = self._key(key_node)
            if key not in placed:
                placed.add(key)
                pairs.append(overrides.get(key, (key_node, value_node)))
        pairs += [pair for pair in own if self._key(pair[0]) not in placed]
        node.value = pairs

    def _key(self, key_node: yaml.Node) -> Any:
        """Return the key ``key_node`` stands for: its value if a scalar, else the node itself."""
        if isinstance(key_node, yaml.ScalarNode):
            # Compared as constructed, so `1` and `0x1`, or `true` and `yes`, are one key.
            return self.construct_object(key_node, deep=True)
        return key_node  # a list or mapping key: unhashable once built, PyYAML's error names it


def _read_spec(file: Path) -> tuple[str, Any]:
    """Return the text of ``file`` and its data, parsed as JSON if it ends in ``.json``."""
    text = _read_text(file)
    if file.suffix.lower() == ".json":
        return text, _parse_json(text, file)
    return text, _parse_yaml(text, file)


def _read_text(file: Path) -> str:
    """Return the UTF-8 text of ``file``; a file too large or not UTF-8 is one SpecError line."""
    size = file.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"{file}: a spec file is at most {MAX_SPEC_BYTES} bytes, this one is {size}"
        )
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        number = data.count(b"\n", 0, error.start) + 1
        raise SpecError(
            f"{file}:{number}: not UTF-8 text: byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start} cannot be decoded"
        ) from None
    return text


def _parse_yaml(text: str, file: Path) -> Any:
    """Return the parsed YAML ``text`` of ``file``; every problem is one SpecError line."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text, source=str(file))  # refuses control characters
        return loader.get_single_data()
    except SpecError:
        raise  # the loader's own limits, already one line naming the file
    except yaml.YAMLError as error:
        raise SpecError(_single_line(_yaml_error(file, error))) from None
    except (ValueError, OverflowError) as error:
        # The safe constructor turns `2001-02-30` into a datetime and fails with ValueError.
        raise SpecError(f"{file}: not valid YAML: {_single_line(str(error))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _yaml_error(file: Path, error: yaml.YAMLError) -> str:
    # PyYAML marks where it gave up (`problem_mark`) and, for an unclosed quote or bracket,
    # where the construct began (`context_mark`): the line to fix is the latter, which may be
    # far above (an unclosed quote is only noticed at the end of the file).
    problem_mark = getattr(error, "problem_mark", None)
    context_mark = getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    if (
        context
        and context_mark is not None
        and problem_mark is not None
        and context_mark.line != problem_mark.line
    ):
        if context.startswith("while parsing a block"):
            # A block mapping or sequence begins where the document (or the section) does:
            # the line to fix is the one PyYAML stopped at (a bad indent, a stray bracket).
            return (
                f"{file}:{problem_mark.line + 1}: not valid YAML: {problem} (in the "
                f"{context.removeprefix('while parsing a ')} from line {context_mark.line + 1})"
            )
        return (
            f"{file}:{context_mark.line + 1}: not valid YAML: {context} here, "
            f"{problem} at line {problem_mark.line + 1}"
        )
    mark = problem_mark or context_mark
    line = f":{mark.line + 1}" if mark is not None else ""
    return f"{file}{line}: not valid YAML: {problem}"


def _parse_json(text: str, file: Path) -> Any:
    """Return the parsed JSON ``text`` of ``file``; every problem is one SpecError line."""
    text = text.removeprefix("\ufeff")  # a BOM does not make the file invalid
    too_deep = False
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(
            f"{file}:{error.lineno}: not valid JSON: {error.msg} (column {error.colno})"
        ) from None
    except RecursionError:
        # Past Python's recursion limit, so past MAX_SPEC_DEPTH: the walk below says where.
        too_deep = True
    except ValueError as error:
        # An integer of more digits than Python converts (sys.get_int_max_str_digits()).
        raise SpecError(f"{file}: not valid JSON: {_single_line(str(error))}") from None
    _json_lines(text, source=str(file))
    if too_deep:
        raise SpecError(f"{file}: lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels")
    return data


def _json_lines(text: str, *, source: str) -> dict[tuple[str | int, ...], int]:
    """Return the 1-based line of every mapping key and list item of JSON ``text``, by path.

    A mapping's field is found at its key's line, a list item where it starts, as
    :func:`~taskgraph.spec.validation_messages._line_of` finds them in YAML.  The walk also
    refuses what :class:`_BoundedLoader` refuses in YAML, as a SpecError naming ``source``
    and the line: lists and mappings nested past MAX_SPEC_DEPTH, a list or mapping of more
    than MAX_SPEC_NODES values (scalars, keys, lists and mappings each count 1) and a key
    given twice in one mapping (JSON would keep the last silently).  ``text`` is valid JSON:
    the tokens are not checked for syntax.
    """
    lines: dict[tuple[str | int, ...], int] = {}
    stack: list[_JsonContainer] = []
    line, last, nodes = 1, 0, 0  # line of offset `last`; values so far
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        line += text.count("\n", last, match.start())
        last = match.start()
        top = stack[-1] if stack else None
        if token in (",", ":"):
            if token == "," and top is not None:
                top.next_item()
            continue
        if token in ("]", "}"):
            if top is not None:
                stack.pop()
                if nodes - top.nodes_before > MAX_SPEC_NODES:
                    raise SpecError(
                        f"{source}:{top.line}: the spec holds more than {MAX_SPEC_NODES} values "
                        "(scalars, lists and mappings)"
                    )
            continue
        nodes += 1
        if len(stack) + 1 > MAX_SPEC_DEPTH:
            raise SpecError(
                f"{source}:{line}: lists and mappings nested deeper than {MAX_SPEC_DEPTH} levels"
            )
        path: tuple[str | int, ...] = ()
        if top is not None and top.expects_key:
            key = _json_key(token)
            first = top.keys.get(key)
            if first is not None:
                raise SpecError(f"{source}:{line}: duplicate key {key!r} (first on line {first})")
            top.keys[key] = line
            top.key = key
            top.expects_key = False
            lines[(*top.path, key)] = line
            continue
        if top is not None:
            path = (*top.path, top.key if top.mapping else top.index)
            lines.setdefault(path, line)
        if token in ("[", "{"):
            stack.append(
                _JsonContainer(path=path, mapping=token == "{", line=line, nodes_before=nodes - 1)
            )
    return lines


def _json_key(token: str) -> str:
    """Return the key a JSON string token spells (the token itself where it spells none)."""
    try:
        key = json.loads(token)
    except ValueError:
        return token  # only in text json.loads refused for its depth: the walk goes on
    return key if isinstance(key, str) else token


class _JsonContainer:
    """A list or mapping :func:`_json_lines` is inside: where it is, and the item it is at."""

    def __init__(
        self, *, path: tuple[str | int, ...], mapping: bool, line: int, nodes_before: int
    ) -> None:
        self.path = path
        self.mapping = mapping
        self.line = line
        self.nodes_before = nodes_before  # values counted before this list or mapping
        self.keys: dict[str, int] = {}  # key -> its line, in a mapping
        self.key = ""  # the mapping's key whose value comes next
        self.expects_key = mapping
        self.index = 0  # the list item that comes next

    def next_item(self) -> None:
        if self.mapping:
            self.expects_key = True
        else:
            self.index += 1


def _single_line(text: str) -> str:
    return " ".join(text.split())

"""Deterministic carving of splits that a dataset lacks (a train or dev split from one file).

A carved split is written in :attr:`SplitSource.select` as ``by_group:<allocation>:<part>``, e.g.
``by_group:train=0.8,dev=0.2:dev`` = "the dev part when this file's groups are divided 80/20".

The rule, in full:

1. Every record belongs to a *group* (document, article, BioASQ question; a record without one
   is its own group, keyed by its text).  Groups that share any text (the same sentence, the
   same context, the same question) are merged, so an identical text never lands on both sides.
2. The merged groups are ordered by the sha256 of their smallest group key (deterministic,
   independent of file order, and unrelated to content or length).
3. Walking that order, a group goes to the first part whose cumulative share of the file's
   examples is not yet filled: with ``N`` examples and ``c`` examples before the group, the
   group goes to the first part ``k`` with ``c < N * (f_1 + ... + f_k)``.

So parts are as close to their fractions as whole groups allow, they add up to the file, and
the same file always gives the same parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from taskgraph.errors import ConfigError

__all__ = ["Carve", "allocate_parts", "format_carve", "parse_carve"]

_PREFIX = "by_group"


@dataclass(frozen=True, slots=True)
class Carve:
    """A parsed ``by_group`` rule: the named fractions and the part this split takes."""

    parts: tuple[tuple[str, float], ...]
    part: str

    @property
    def allocation(self) -> str:
        """Return the allocation text (``train=0.8,dev=0.2``), the same for all parts."""
        return ",".join(f"{name}={fraction:g}" for name, fraction in self.parts)

    def describe(self) -> str:
        """Return a one-line, human-readable statement of the rule."""
        shares = ", ".join(f"{name} {fraction:.0%}" for name, fraction in self.parts)
        return f"part {self.part!r} of a deterministic group split ({shares})"


def format_carve(parts: Sequence[tuple[str, float]], part: str) -> str:
    """Return the ``select`` string for ``part`` of ``parts``."""
    carve = Carve(parts=tuple(parts), part=part)
    return f"{_PREFIX}:{carve.allocation}:{part}"


def parse_carve(select: str) -> Carve:
    """Return the :class:`Carve` written in ``select``; raise ConfigError when malformed."""
    prefix, _, rest = select.partition(":")
    allocation, _, part = rest.rpartition(":")
    if prefix != _PREFIX or not allocation or not part:
        raise ConfigError(
            f"split selection {select!r} must look like 'by_group:train=0.8,dev=0.2:dev'"
        )
    parts: list[tuple[str, float]] = []
    for item in allocation.split(","):
        name, _, value = item.partition("=")
        try:
            fraction = float(value)
        except ValueError:
            raise ConfigError(
                f"split selection {select!r}: expected name=fraction, got {item!r}"
            ) from None
        if not name or not 0.0 < fraction <= 1.0:
            raise ConfigError(f"split selection {select!r}: fraction of {name!r} must be in (0, 1]")
        parts.append((name, fraction))
    names = [name for name, _ in parts]
    if len(set(names)) != len(names) or part not in names:
        raise ConfigError(f"split selection {select!r}: part {part!r} must be one of {names}")
    if abs(sum(f for _, f in parts) - 1.0) > 1e-9:
        raise ConfigError(f"split selection {select!r}: fractions must add up to 1")
    return Carve(parts=tuple(parts), part=part)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self.parent.setdefault(node, node)
        root = node
        while parent != root:
            root, parent = parent, self.parent[parent]
        while node != root:  # path compression keeps later finds flat
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a


def allocate_parts(
    units: Iterable[tuple[str, Sequence[str]]], fractions: Sequence[float]
) -> list[int]:
    """Return the part index of every unit, in order, by the rule in this module's docstring.

    ``units`` are ``(group, texts)`` pairs, one per example; ``fractions`` add up to 1.
    """
    keys: list[str] = []
    forest = _UnionFind()
    for group, texts in units:
        key = group if group else "text:" + (texts[0] if texts else str(len(keys)))
        keys.append(key)
        node = "g:" + key
        forest.find(node)
        for text in texts:
            forest.union(node, "t:" + text)
    sizes: dict[str, int] = {}
    smallest: dict[str, str] = {}
    for key in keys:
        root = forest.find("g:" + key)
        sizes[root] = sizes.get(root, 0) + 1
        if root not in smallest or key < smallest[root]:
            smallest[root] = key
    order = sorted(sizes, key=lambda root: hashlib.sha256(smallest[root].encode()).hexdigest())
    total = len(keys)
    bounds: list[float] = []
    running = 0.0
    for fraction in fractions:
        running += fraction
        bounds.append(running * total)
    bounds[-1] = float("inf")  # rounding must never leave a group without a part
    part_of_root: dict[str, int] = {}
    before = 0
    for root in order:
        part_of_root[root] = next(k for k, bound in enumerate(bounds) if before < bound)
        before += sizes[root]
    return [part_of_root[forest.find("g:" + key)] for key in keys]

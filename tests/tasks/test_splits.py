"""The carving rule: proportional, deterministic, whole groups, shared texts kept together."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskgraph.errors import ConfigError
from taskgraph.tasks.splits import allocate_parts, format_carve, parse_carve


def test_parse_and_format_round_trip() -> None:
    select = format_carve((("train", 0.8), ("dev", 0.2)), "dev")
    assert select == "by_group:train=0.8,dev=0.2:dev"
    carve = parse_carve(select)
    assert carve.parts == (("train", 0.8), ("dev", 0.2)) and carve.part == "dev"
    assert "dev 20%" in carve.describe()


@pytest.mark.parametrize(
    "select",
    [
        "hash:dev:0.1",
        "by_group:train=0.8,dev=0.3:dev",
        "by_group:train=0.8,dev=0.2:test",
        "by_group:train=x:train",
        "by_group:train=1.0",
        "by_group:train=0.5,train=0.5:train",
    ],
)
def test_malformed_selections_are_config_errors(select: str) -> None:
    with pytest.raises(ConfigError, match="split selection"):
        parse_carve(select)


def test_hand_worked_allocation() -> None:
    # 10 single-example groups split 70/30: exactly 7 and 3, whatever the hash order
    units = [(f"g{i}", (f"text {i}",)) for i in range(10)]
    parts = allocate_parts(units, [0.7, 0.3])
    assert parts.count(0) == 7 and parts.count(1) == 3
    # a shared text glues two groups: they land in the same part
    units[9] = ("g9", ("text 0",))
    parts = allocate_parts(units, [0.5, 0.5])
    assert parts[0] == parts[9]


GROUPED = st.lists(
    st.tuples(
        st.sampled_from(["", "d1", "d2", "d3", "d4", "d5"]),
        st.lists(
            st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]), min_size=1, max_size=2
        ).map(tuple),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(GROUPED, st.sampled_from([[0.8, 0.2], [0.7, 0.15, 0.15], [1.0]]))
def test_allocation_properties(
    units: list[tuple[str, tuple[str, ...]]], fractions: list[float]
) -> None:
    parts = allocate_parts(units, fractions)
    assert len(parts) == len(units) and set(parts) <= set(range(len(fractions)))
    assert parts == allocate_parts(units, fractions)  # deterministic
    # no group and no text on two sides
    seen_group: dict[str, int] = {}
    seen_text: dict[str, int] = {}
    for (group, texts), part in zip(units, parts, strict=True):
        if group:
            assert seen_group.setdefault(group, part) == part
        for text in texts:
            assert seen_text.setdefault(text, part) == part
    # independent of file order
    order = list(range(len(units)))[::-1]
    reversed_parts = allocate_parts([units[i] for i in order], fractions)
    assert [reversed_parts[order.index(i)] for i in range(len(units))] == parts


@settings(max_examples=100, deadline=None)
@given(st.integers(20, 400), st.sampled_from([[0.8, 0.2], [0.6, 0.2, 0.2]]))
def test_singleton_groups_get_their_share(n: int, fractions: list[float]) -> None:
    parts = allocate_parts([("", (f"sentence {i}",)) for i in range(n)], fractions)
    for k, fraction in enumerate(fractions):
        assert abs(parts.count(k) - fraction * n) <= 1

"""A screen's ranking from its lookahead matrix."""

from __future__ import annotations

import math

import pytest

from taskgraph.affinity.screening import screen_ranking, screen_scores
from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

NAN = math.nan


def test_candidates_are_ranked_by_their_column_entry_with_its_standard_error() -> None:
    # values[i][j] = Z(tasks[i] -> tasks[j]): the target's column is j = 1.
    matrix = LookaheadMatrix(
        tasks=["b", "t", "a", "c", "d"],
        values=[[9.0, 0.2, 9.0, 9.0, 9.0], [NAN, 0.5, NAN, NAN, NAN], [NAN, 0.2, NAN, NAN, NAN],
                [NAN, -0.3, NAN, NAN, NAN], [NAN, NAN, NAN, NAN, NAN]],
        n_probes=4,
        stderr=[[0.0, 0.01, 0.0, 0.0, 0.0], [NAN] * 5, [NAN, NAN, NAN, NAN, NAN],
                [NAN, 0.05, NAN, NAN, NAN], [NAN] * 5],
    )  # fmt: skip
    ranking = screen_ranking(matrix, "t")
    # Ties by name; the target's own entry and an unmeasured candidate (d) are left out.
    assert [(e.rank, e.candidate, e.effect, e.stderr) for e in ranking] == [
        (1, "a", 0.2, None), (2, "b", 0.2, 0.01), (3, "c", -0.3, 0.05),
    ]  # fmt: skip
    assert screen_scores(matrix, "t", ["c", "zzz"]) == {"c": -0.3}
    without = LookaheadMatrix(tasks=matrix.tasks, values=matrix.values, n_probes=4)
    assert [e.stderr for e in screen_ranking(without, "t")] == [None, None, None]
    with pytest.raises(ConfigError, match="no task 'x'"):
        screen_ranking(matrix, "x")

"""The whole demo (searchspaces/demo.yaml, its 24 trials) through the CLI: the graph-guided
sampler proposes no auxiliary set more often than its stated limit, pruned trials included
(issue 11: `synth_conflict+synth_unrelated` ran 9 times of 24, every time pruned)."""

from __future__ import annotations

import inspect
from collections import Counter
from pathlib import Path
from types import ModuleType

import optuna
import pytest

from taskgraph.search.graph_sampler import GraphGuidedSampler
from taskgraph.search.space import SUBSET_ATTR

pytestmark = pytest.mark.slow

MAX_REPEATS = inspect.signature(GraphGuidedSampler).parameters["max_repeats"].default


def test_the_demo_proposes_no_set_more_than_max_repeats_times(
    tmp_path: Path, cli: ModuleType
) -> None:
    storage = f"sqlite:///{tmp_path / 'demo.db'}"
    # About a minute on a quiet machine; a loaded one takes many times that.
    cli.taskgraph("study", "run", "searchspaces/demo.yaml", "--storage", storage, timeout=3600)
    study = optuna.load_study(study_name="demo", storage=storage)
    counts = Counter("+".join(sorted(t.user_attrs[SUBSET_ATTR])) for t in study.trials)
    assert len(study.trials) == 24 and sum(counts.values()) == 24
    assert max(counts.values()) <= MAX_REPEATS, counts
    # 11 valid sets (the baseline, 4 singles, 6 pairs): each is tried before any repeats.
    first = ["+".join(sorted(t.user_attrs[SUBSET_ATTR])) for t in study.trials[:11]]
    assert len(set(first)) == 11

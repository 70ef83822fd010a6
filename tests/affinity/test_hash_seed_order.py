"""Predictions must not depend on PYTHONHASHSEED.

A task set is a frozenset of names, and a frozenset of strings iterates in an order set by the
hash seed.  Float addition is not associative, so an estimator that added its pair gains (or
took their mean) in that order printed other last digits, and could rank near-ties otherwise,
from one run of the same command to the next.  The gains below make the order visible: summed
in name order, ``1e16 + 1 - 1e16 + 3`` is 3.0; in other orders 2.0, 4.0 or 5.0.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from taskgraph.affinity.estimators import TextEmbEstimator

REPO = Path(__file__).resolve().parents[2]

#: auxiliary -> (pair gain of target "t", its standard error)
PAIRS = {"a": (1e16, 1e8), "b": (1.0, 1.0), "c": (-1e16, 1e8), "d": (3.0, 3.0)}
#: auxiliary -> cosine of its embedding with the target's
COSINES = {"a": 0.1, "b": 0.7, "c": 0.2, "d": 0.3}


def _embeddings() -> dict[str, list[float]]:
    return {"t": [1.0, 0.0], **{s: [c, math.sqrt(1 - c * c)] for s, c in COSINES.items()}}


SNIPPET = f"""
import math

import networkx as nx

from taskgraph.affinity import grouping
from taskgraph.affinity.estimators import (
    HigherOrderEstimator, LookaheadEstimator, PairwiseEstimator, SetFunctionEstimator,
    TextEmbEstimator,
)
from taskgraph.affinity.estimators.setfn import _B
from taskgraph.affinity.gains import Gain, GainTable
from taskgraph.affinity.recommend import recommend_auxiliaries
from taskgraph.trial import LookaheadMatrix

pairs = {PAIRS!r}
names = sorted(pairs)
every = {{"t", *names}}
table = GainTable(gains=[Gain("t", frozenset({{s}}), m, se, 2) for s, (m, se) in pairs.items()])
for estimator in (PairwiseEstimator(), HigherOrderEstimator()):
    mean, std = estimator.fit_gains(table).predict("t", every)
    print(estimator.name, repr(mean), repr(std))

# lookahead: Z(s -> t) is the pair gain; no measured gains, so uncalibrated (alpha 0, beta 1)
tasks = ["t", *names]
values = [[math.nan] * len(tasks) for _ in tasks]
for i, s in enumerate(names, start=1):
    values[i][0] = pairs[s][0]
lookahead = LookaheadEstimator(lookahead=[LookaheadMatrix(tasks=tasks, values=values)])
print("lookahead", repr(lookahead.fit_gains(GainTable(gains=[])).predict("t", every)[0]))

# textemb: the mean cosine, uncalibrated
textemb = TextEmbEstimator(task_embeddings={_embeddings()!r}).fit_gains(GainTable(gains=[]))
print("textemb", repr(textemb.predict("t", every)[0]))

# setfn, a target outside the fit: the mean of the auxiliaries' source effects b_s, times the
# pooled scale (set to 1 here, so the printed digits are the mean's)
setfn = SetFunctionEstimator(pooling="mean").fit_gains(table)
for s in names:
    setfn.fit_.mean[setfn.offsets[_B] + setfn.index[s]] = pairs[s][0]
setfn.cold_scale = 1.0
print("setfn", repr(setfn.predict("z", names)[0]))

# recommend from a graph: the mean of the set's edges into the target
graph = nx.DiGraph(gain_kind="relative")
for s, (m, se) in pairs.items():
    graph.add_edge(s, "t", predicted_relative_gain=m, predicted_relative_gain_std=se)
whole = [r for r in recommend_auxiliaries(graph, "t", k=15) if len(r.auxiliaries) == 4]
print("graph", repr(whole[0].predicted_gain), repr(whole[0].std))

# grouping's heuristic pool keeps the network of best mean improvement over the single-task
# scores: {{a, b, c, d}} improves by 0.75 in name order (0.5, 1.0 or 1.25 in others),
# {{a, b, c, e}} by 0.8
scores = {{frozenset({{x}}): {{x: 0.0}} for x in "abcde"}}
scores[frozenset("abcd")] = {{s: m for s, (m, _) in pairs.items()}}
scores[frozenset("abce")] = dict.fromkeys("abce", 0.8)
grouping.HEURISTIC_POOL = 1
pool = grouping._heuristic_pool(scores, list("abcde"), True)
print("grouping", sorted(sorted(n) for n in pool if len(n) > 1))
"""


def run_with_seed(seed: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", SNIPPET],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_predictions_have_the_same_digits_under_every_hash_seed() -> None:
    started = {seed: run_with_seed(seed) for seed in range(8)}
    printed: dict[int, list[str]] = {}
    for seed, process in started.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        printed[seed] = out.splitlines()
    # Every seed prints the same text ...
    for line, first in enumerate(printed[0]):
        seen = {seed: lines[line] for seed, lines in printed.items()}
        assert set(seen.values()) == {first}, seen
    assert all(len(lines) == len(printed[0]) for lines in printed.values())
    # ... and it is the sum or the mean in name order.
    names = sorted(PAIRS)
    total, variance = 0.0, 0.0
    for name in names:
        total += PAIRS[name][0]
        variance += PAIRS[name][1] ** 2
    mean = float(np.mean([PAIRS[name][0] for name in names]))
    mean_std = math.sqrt(sum(PAIRS[name][1] ** 2 for name in names)) / len(names)
    assert total == 3.0 and mean == 0.75  # the order matters: see the module docstring
    textemb = TextEmbEstimator(task_embeddings=_embeddings())
    cosine = float(np.mean([textemb._cos("t", name) for name in names]))
    assert printed[0] == [
        f"pairwise {total!r} {math.sqrt(variance)!r}",
        f"hoa {mean!r} {mean_std!r}",
        f"lookahead {mean!r}",
        f"textemb {cosine!r}",
        f"setfn {mean!r}",
        f"graph {mean!r} {mean_std!r}",
        "grouping [['a', 'b', 'c', 'e']]",
    ]

"""``sourcerank``: a learned ranker of single auxiliary (source) tasks for a target.

The question it answers is TaskWeb's (Kim et al. 2023) and Bingel & Søgaard's (2017): given the
pair gains ``g(t | {t, s})`` measured for the other targets and a few for ``t``, which untried
source ``s`` will help ``t`` most?  The "popular source" prior (a source's mean gain over the
other targets) is a strong baseline that the Bayesian ``setfn`` did not beat on Bingel.

Model: the target's standardised gain from ``s`` is a linear function of scores of ``s``,
each standardised over the target's candidate sources, so gains whose scales differ by 100x
across targets (Bingel: 0.15 % for chunking, 11 % for hyperlinks) share one model::

    z(t, s) = sum_k w_k * standardise_s(f_k(t, s))

The scores ``f_k`` (and the task-metadata ones) are those of
:mod:`taskgraph.affinity.estimators.sourcerank_features`, which lists them.

A task the metadata does not cover gets the average score.  Without metadata (the default)
the estimator computes exactly what it did before these options existed.  No metadata score is
in ``features`` by default; ``alternatives`` (other feature lists) lets each fit choose by its
cross-validation over targets (below) whether metadata scores help on its table, and
:func:`metadata_alternatives` gives the lists ``taskgraph bench --task-metadata`` tries
(``describe()["cv_by_features"]`` shows each list's score).  Scores that identify each source
(``source:<name>`` with about as many features as sources) let the ridge learn a per-source
intercept; the cross-validation is built so that this cannot read the held-out targets' gains
(before 2026-12-04 it could: 12 random numbers per task then raised Bingel's validation
Spearman from 0.53 to 0.86 and not its test one; ``docs/affinity.md``, "Research log").

Fitting (no held-out truth of any target is used): every target with at least ``n_observed + 2``
measured sources is a training target; for up to ``max_draws`` random subsets of
``n_observed`` of its entries the features are computed as if only those were observed, and the
responses are its standardised hidden gains.  The weights are a ridge regression; the ridge
strength is chosen from :data:`RIDGE_GRID` by cross-validation over targets (leave one target
out, or 10 folds of targets when there are more; the mean per-target Spearman on the held-out
targets' simulated draws).  The training targets' scores in each fold are computed with the
held-out rows removed from the matrix, as the evaluated target's hidden gains are absent in use
(until 2026-12-04 they were not, which let source-identifying scores leak the held-out gains
into the cross-validation).  With fewer than three training targets the model is ``popular_z``.

Why this model (its validation table against the popular-source prior and single features):
``docs/affinity.md`` ("Research log").

Larger task sets are predicted by the mean of the pair predictions (Standley et al.'s HOA over
the completed pair matrix); measured gains are returned as measured.  Use ``setfn`` when larger
groups are the question.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import rankdata

from taskgraph.affinity.estimators.base import AffinityEstimator, pooled_std
from taskgraph.affinity.estimators.sourcerank_features import (
    _TEXT_FEATURES,
    DEFAULT_FEATURES,
    FEATURES,
    METADATA_FEATURES,
    OBSERVED_FEATURES,
    _Features,
    _row_stats,
    _standardise,
    metadata_alternatives,
)
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import GainKind, GainTable
from taskgraph.affinity.metadata import feature_matrix
from taskgraph.affinity.similarity import embedding_similarity
from taskgraph.errors import ConfigError

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "METADATA_FEATURES",
    "OBSERVED_FEATURES",
    "RIDGE_GRID",
    "SourceRankEstimator",
    "metadata_alternatives",
]

#: Ridge strengths (per example) tried by the cross-validation over targets; 1e6 is the limit ``w ~ X'y``.
RIDGE_GRID = (0.01, 0.1, 1.0, 10.0, 1e6)
_SCALE_PSEUDO_COUNT = 3.0  # observations worth of the pooled mean / spread in a target's scale
_MIN_TRAINING_TARGETS = 3
#: Folds of targets in the ridge's cross-validation (leave one target out when there are fewer).
_CV_FOLDS = 10


class _Tried(NamedTuple):
    """One feature list's cross-validation (:meth:`SourceRankEstimator._choose_features`)."""

    score: float  #: mean per-target Spearman at the best ridge
    names: list[str]
    examples: dict[int, tuple[np.ndarray, np.ndarray]]
    selected: tuple[float, float]  #: (ridge, rmse)
    cv_spearman: dict[float, float]
    per_target: np.ndarray  #: per held-out target Spearman at the best ridge, in fold order


class SourceRankEstimator(AffinityEstimator):
    """The learned source ranker of the module docstring (registry name ``sourcerank``)."""

    name = "sourcerank"

    def __init__(
        self,
        *,
        gain_kind: GainKind = "relative",
        split: str | None = None,
        metric: str | None = None,
        n_observed: int = 3,
        max_draws: int = 20,
        ridge_grid: Sequence[float] = RIDGE_GRID,
        features: Sequence[str] = DEFAULT_FEATURES,
        alternatives: Sequence[Sequence[str]] = (),
        task_embeddings: Mapping[str, np.ndarray] | None = None,
        task_features: Mapping[str, Mapping[str, float]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(gain_kind=gain_kind, split=split, metric=metric)
        self.task_embeddings = dict(task_embeddings or {})
        self.task_features = {t: dict(v) for t, v in (task_features or {}).items()}
        #: The feature lists tried (``features`` first, then ``alternatives``), each in a fixed
        #: order (FEATURES, then METADATA_FEATURES, then source:<name>); the fit keeps one.
        self.feature_sets = [self._checked(f) for f in (features, *alternatives)]
        self._name(self.feature_sets[0])
        if n_observed < 1:
            raise ConfigError(f"`n_observed` must be at least 1, but got {n_observed}")
        if max_draws < 1:
            raise ConfigError(f"`max_draws` must be at least 1, but got {max_draws}")
        if not ridge_grid or any(not (lam > 0) for lam in ridge_grid):
            raise ConfigError(
                f"`ridge_grid` must hold positive strengths, but got {list(ridge_grid)}"
            )
        self.n_observed = n_observed
        self.max_draws = max_draws
        self.ridge_grid = tuple(float(lam) for lam in ridge_grid)
        self.seed = seed

    def _checked(self, features: Sequence[str]) -> list[str]:
        """Return ``features`` in the fixed order, or raise :class:`ConfigError` naming what is wrong."""
        numeric_names = sorted({n for per in self.task_features.values() for n in per})
        known = [*FEATURES, *METADATA_FEATURES, *(f"source:{n}" for n in numeric_names)]
        unknown = [f for f in features if f not in known]
        if unknown or not features:
            raise ConfigError(
                f"`features` must be a non-empty subset of {list(FEATURES) + list(METADATA_FEATURES)} "
                f"and 'source:<name>' for a feature in `task_features`, but got {list(features)}"
            )
        if not self.task_embeddings and any(f in _TEXT_FEATURES for f in features):
            raise ConfigError(
                f"features {[f for f in features if f in _TEXT_FEATURES]} need `task_embeddings`, but got none"
            )
        if not self.task_features and any(
            f in ("feature_similarity", "feature_knn") for f in features
        ):
            raise ConfigError(
                "features 'feature_similarity' / 'feature_knn' need `task_features`, but got none"
            )
        return [f for f in known if f in set(features)]

    def _name(self, names: list[str]) -> None:
        """Record ``names`` as the scores used and which of them come from task metadata."""
        self.feature_names = names
        self.metadata_names = [f for f in names if f not in FEATURES]

    def _use(self, names: list[str]) -> None:
        """Make ``names`` the scores used by the fit (its matrix must be set)."""
        self._name(names)
        self.features = self._feature_source(self.task_order, self.matrix)

    # ----------------------------------------------------------------- fitting
    def _fit(self, table: GainTable) -> None:
        tasks = sorted(set(table.tasks))
        if not tasks:
            raise ConfigError(f"no gains to fit: {table.why_empty()}")
        self.index = {t: i for i, t in enumerate(tasks)}
        n = len(tasks)
        self.pairs = dict(pair_gains(table.gains))
        matrix = np.full((n, n), np.nan)
        for (target, source), (mean, _, _) in self.pairs.items():
            matrix[self.index[target], self.index[source]] = mean
        self.matrix = matrix
        self.exact = {(g.target, g.auxiliaries): g for g in table.gains if len(g.auxiliaries) >= 2}
        # A gain measured once on each side has no standard error: use the typical one, as
        # ``pairwise`` does.  An error of exactly 0 (identical values) says nothing about the
        # noise of another gain.  Over every gain, not only pairs: the default serves both.
        known_se = [g.stderr for g in table.gains if math.isfinite(g.stderr) and g.stderr > 0]
        means = [m for m, _, _ in self.pairs.values()]
        self.default_se = (
            float(np.median(known_se)) if known_se else pooled_std(means, fallback=1.0)
        )
        self.task_order = tasks
        self._use(self.feature_sets[0])
        examples = self._examples(self.features)
        self.cv_spearman: dict[float, float] = {}
        self.cv_rmse = 1.0
        #: Cross-validated Spearman (at its best ridge) of each feature list tried.
        self.cv_by_features: dict[tuple[str, ...], float] = {}
        selected: tuple[float, float] | None = None
        if len(examples) >= _MIN_TRAINING_TARGETS and len(self.feature_sets) > 1:
            examples, selected = self._choose_features(examples)
        if len(examples) < _MIN_TRAINING_TARGETS:
            self.ridge = math.nan
            self.weights = (
                np.array([f == "popular_z" for f in self.feature_names], dtype=float)
                if "popular_z" in self.feature_names
                else np.ones(len(self.feature_names))
            )
        else:
            self.ridge, self.cv_rmse = selected or self._select(examples)
            xs = np.concatenate([x.reshape(-1, x.shape[-1]) for x, _ in examples.values()])
            ys = np.concatenate([y.ravel() for _, y in examples.values()])
            self.weights = _ridge(xs.T @ xs, xs.T @ ys, len(ys), self.ridge)
        self.n_training_targets = len(examples)
        self._scale_stats()
        self.scores = np.full((n, n), np.nan)
        for t in range(n):
            self.scores[t] = self._score_row(matrix, t)

    def _choose_features(
        self, first: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], tuple[float, float]]:
        """Use the feature list the cross-validation prefers; return its examples and ``(ridge, rmse)``.

        The same cross-validation as the ridge's (:meth:`_select`, run per list): no evaluated
        target's hidden entries, the held-out targets' rows out of the training targets' scores.
        An alternative replaces the first list only when its mean per-target Spearman beats the
        first's by more than the paired standard error over targets (the one-standard-error
        rule: with ten targets, chance alone moves the score by a few hundredths); of several
        such, the best.  ``first``: the first list's examples, already built.  Leaves
        :attr:`cv_spearman` at the chosen list's.
        """
        tried: list[_Tried] = []
        for index, names in enumerate(self.feature_sets):
            if index:  # the first list is in use already
                self._use(names)
            self.cv_spearman = {}
            examples = first if index == 0 else self._examples(self.features)
            selected = self._select(examples)
            score = self.cv_spearman[selected[0]]
            self.cv_by_features[tuple(names)] = score
            tried.append(
                _Tried(score, names, examples, selected, self.cv_spearman, self._cv_per_target)
            )
        chosen = tried[0]
        for candidate in tried[1:]:
            diff = candidate.per_target - tried[0].per_target
            diff = diff[np.isfinite(diff)]  # the targets both lists could rank
            se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.inf
            if len(diff) and float(diff.mean()) > se and _above(candidate.score, chosen.score):
                chosen = candidate
        self.cv_spearman = chosen.cv_spearman
        self._use(chosen.names)
        return chosen.examples, chosen.selected

    def _feature_source(self, tasks: Sequence[str], matrix: np.ndarray) -> _Features:
        """Return the feature scores of ``matrix`` with the task metadata the chosen features need."""
        text_kernel = numeric = None
        numeric_names: list[str] = []
        if any(f in _TEXT_FEATURES for f in self.feature_names):
            text_kernel = embedding_similarity(tasks, self.task_embeddings)
            missing = np.array([t not in self.task_embeddings for t in tasks])
            text_kernel[missing, :] = np.nan
            text_kernel[:, missing] = np.nan
        if any(f not in FEATURES and f not in _TEXT_FEATURES for f in self.feature_names):
            # Every feature named, so a ``source:<name>`` whose tasks this fit lacks (a held-out
            # target's only source) is a column of NaN, the average score, not a missing column.
            names = sorted({n for per in self.task_features.values() for n in per})
            numeric, numeric_names = feature_matrix(tasks, self.task_features, names)
        return _Features(
            matrix, text_kernel=text_kernel, numeric=numeric, numeric_names=numeric_names
        )

    def _design(
        self,
        target: int,
        observed: np.ndarray,
        values: np.ndarray,
        base: np.ndarray,
        candidates: np.ndarray,
        features: _Features | None = None,
    ) -> np.ndarray:
        """Return the standardised design (candidates x chosen features) of ``target`` given its observed gains.

        ``features``: the scores' source (default the fitted matrix's).
        """
        features = features or self.features
        scores = features.observed(target, observed, values, base, self.feature_names)
        extra = (
            features.metadata(target, self.metadata_names, base[:, 1])
            if self.metadata_names
            else None
        )
        return features.matrix(base, scores, candidates, self.feature_names, extra)

    def _examples(
        self, features: _Features, targets: Sequence[int] | None = None
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Return per training target: designs (draws, hidden, features) and standardised truths (draws, hidden).

        ``features`` computes the scores (those of the full matrix, or of one with the
        cross-validation's held-out rows removed); ``targets`` limits the targets (default all).
        A target's draws depend on the seed and the target only, so they are the same in both.
        """
        out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for u in range(len(self.matrix)) if targets is None else targets:
            known = np.flatnonzero(~np.isnan(self.matrix[u]))
            if len(known) < self.n_observed + 2:
                continue
            truth = _standardise(self.matrix[u, known])
            base = features.base(u)
            rng = np.random.default_rng([self.seed, u])
            draws = _draws(len(known), self.n_observed, self.max_draws, rng)
            xs, ys = [], []
            for chosen in draws:
                observed = known[list(chosen)]
                design = self._design(
                    u, observed, self.matrix[u, observed], base, known, features=features
                )
                hidden = np.ones(len(known), dtype=bool)
                hidden[list(chosen)] = False
                xs.append(design[hidden])
                ys.append(truth[hidden])
            out[u] = (np.stack(xs), np.stack(ys))
        return out

    def training_examples(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Return the fit's training examples per target name: designs (draws, hidden, features) and standardised truths.

        What the ridge is fitted on (the scores of the full matrix), for diagnostics such as how
        well any one weighting of the features could rank the training targets' hidden sources.
        """
        return {self.task_order[u]: xy for u, xy in self._examples(self.features).items()}

    def _select(self, examples: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
        """Return the ridge strength with the best cross-validated Spearman over targets, and its RMSE (z units).

        Targets are held out in up to :data:`_CV_FOLDS` interleaved folds (fold ``k`` holds
        every tenth target from the ``k``-th, in the fit's task order; one target per fold when
        there are that few).  The held-out targets' rows are removed from the matrix before the
        training targets' scores are computed: otherwise a training target's ``popular*``
        scores (means over the other rows) carry the held-out target's hidden gains, and a ridge
        that can tell the sources apart reconstructs them (``docs/affinity.md``, "Research log").
        A held-out target's own scores are those of the full matrix, which never read its row.
        """
        order = sorted(examples)
        n_folds = min(_CV_FOLDS, len(order))
        folds = [order[k::n_folds] for k in range(n_folds)]
        rhos: dict[float, list[float]] = {lam: [] for lam in self.ridge_grid}
        squared: dict[float, list[float]] = {lam: [] for lam in self.ridge_grid}
        for fold in folds:
            masked = self.matrix.copy()
            masked[fold] = np.nan
            training = self._examples(
                self._feature_source(self.task_order, masked),
                targets=[u for u in order if u not in fold],
            )
            xs = np.concatenate([x.reshape(-1, x.shape[-1]) for x, _ in training.values()])
            ys = np.concatenate([y.ravel() for _, y in training.values()])
            gram, moment = xs.T @ xs, xs.T @ ys
            for lam in self.ridge_grid:
                w = _ridge(gram, moment, len(ys), lam)
                for u in fold:
                    x, y = examples[u]
                    predicted = x @ w
                    rhos[lam].append(_mean_defined(_spearman_rows(predicted, y)))
                    squared[lam].append(float(np.mean((predicted - y) ** 2)))
        best: tuple[float, float, float] | None = None
        for lam in self.ridge_grid:
            # A target none of whose draws can be ranked (its hidden gains all equal) says
            # nothing about the ridge: it is left out of the mean, not allowed to make it NaN.
            score = _mean_defined(np.array(rhos[lam]))
            self.cv_spearman[lam] = score
            if best is None or _above(score, best[0] + 1e-12):
                best = (score, lam, math.sqrt(float(np.mean(squared[lam]))))
        assert best is not None
        self._cv_per_target = np.array(rhos[best[1]])  # in fold order, the same for every list
        return best[1], best[2]

    def _score_row(self, matrix: np.ndarray, t: int) -> np.ndarray:
        """Return the predicted standardised gain of every source for target index ``t`` (NaN at ``t``)."""
        n = len(matrix)
        candidates = np.array([s for s in range(n) if s != t], dtype=int)
        row = np.full(n, np.nan)
        if not len(candidates):
            return row
        observed = np.flatnonzero(~np.isnan(matrix[t]))
        base = self.features.base(t)
        design = self._design(t, observed, matrix[t, observed], base, candidates)
        row[candidates] = design @ self.weights
        return row

    def _scale_stats(self) -> None:
        """Store each target's gain mean and spread, shrunk toward the pooled ones (returns None)."""
        counts, means, spreads = _row_stats(self.matrix)
        has_mean, has_spread = counts >= 1, counts >= 2
        pooled_mean = float(np.mean(means[has_mean])) if has_mean.any() else 0.0
        pooled_var = float(np.mean(spreads[has_spread] ** 2)) if has_spread.any() else 1.0
        k = _SCALE_PSEUDO_COUNT
        self.row_mean = (np.where(has_mean, means * counts, 0.0) + k * pooled_mean) / (counts + k)
        squares = np.where(has_spread, spreads**2 * counts, 0.0)
        self.row_scale = np.sqrt((squares + k * (pooled_var or 1.0)) / (counts + k))

    # ----------------------------------------------------------------- prediction
    def _pair(self, target: str, source: str) -> tuple[float, float]:
        measured = self.pairs.get((target, source))
        if measured is not None:
            mean, se, _ = measured
            return mean, se if math.isfinite(se) else self.default_se
        t = self.index.get(target)
        s = self.index.get(source)
        if t is None:
            return self._cold(source)
        scale = float(self.row_scale[t])
        spread = scale * self.cv_rmse
        if s is None or s == t:
            return float(self.row_mean[t]), scale
        return float(self.row_mean[t] + scale * self.scores[t, s]), spread

    def _cold(self, source: str) -> tuple[float, float]:
        """Return the popular-source prior of ``source`` for a target the fit never saw."""
        s = self.index.get(source)
        pooled = float(np.sqrt(np.mean(self.row_scale**2))) if len(self.row_scale) else 1.0
        if s is None:
            return 0.0, pooled
        column = self.matrix[:, s]
        known = column[~np.isnan(column)]
        return (float(known.mean()), pooled) if len(known) else (0.0, pooled)

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        exact = self.exact.get((target, auxiliaries))
        if exact is not None:
            return exact.mean, exact.stderr if math.isfinite(exact.stderr) else self.default_se
        parts = [self._pair(target, s) for s in sorted(auxiliaries)]
        mean = float(np.mean([m for m, _ in parts]))
        std = math.sqrt(sum(sd**2 for _, sd in parts)) / len(parts)
        return mean, std

    def describe(self) -> dict[str, Any]:
        """Return the chosen ridge strength, the feature weights and the cross-validated Spearman."""
        return {
            **super().describe(),
            "training_targets": self.n_training_targets,
            "ridge": None if math.isnan(self.ridge) else self.ridge,
            "weights": {
                name: round(float(w), 4)
                for name, w in zip(self.feature_names, self.weights, strict=True)
            },
            "cv_spearman": {str(lam): round(score, 4) for lam, score in self.cv_spearman.items()},
            "metadata_scores": list(self.metadata_names),
            **(
                {
                    "cv_by_features": {
                        "+".join(k): round(v, 4) for k, v in self.cv_by_features.items()
                    }
                }
                if self.cv_by_features
                else {}
            ),
        }


def _draws(
    n_known: int, n_observed: int, max_draws: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """Return up to ``max_draws`` distinct subsets of ``n_observed`` positions (all when fewer exist)."""
    if math.comb(n_known, n_observed) <= max_draws:
        return list(itertools.combinations(range(n_known), n_observed))
    seen: set[tuple[int, ...]] = set()
    while len(seen) < max_draws:
        seen.add(tuple(sorted(rng.choice(n_known, size=n_observed, replace=False).tolist())))
    return sorted(seen)


def _ridge(gram: np.ndarray, moment: np.ndarray, count: int, strength: float) -> np.ndarray:
    """Return ridge weights with a penalty of ``strength`` per example."""
    return np.linalg.solve(gram + strength * max(count, 1) * np.eye(len(gram)), moment)


def _mean_defined(values: np.ndarray) -> float:
    """Return the mean of the finite ``values``; NaN when there are none (without numpy's warning)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _above(score: float, than: float) -> bool:
    """Return whether ``score`` beats ``than``; an undefined (NaN) score beats nothing and loses to any."""
    if math.isnan(score):
        return False
    return math.isnan(than) or score > than


def _spearman_rows(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return Spearman's rho of each row pair (NaN where a row is constant)."""
    a = rankdata(predicted, axis=1)
    b = rankdata(truth, axis=1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / den, np.nan)

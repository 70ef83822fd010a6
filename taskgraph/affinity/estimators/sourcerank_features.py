"""The scores of ``sourcerank``'s model, computed from one pair matrix: arrays in, arrays out.

Each is an ``f_k(t, s)`` of :mod:`taskgraph.affinity.estimators.sourcerank`'s
``z(t, s) = sum_k w_k * standardise_s(f_k(t, s))``; the estimator, its ridge and its
cross-validation are there.

========================  ====================================================================
``popular``               mean gain of ``s`` over the other targets (the prior itself)
``popular_z``             mean of the other targets' standardised gains (each target one vote)
``popular_rank``          mean of the other targets' normalised ranks (robust to outliers)
``profile_knn``           ``popular_z`` weighted by the source-profile similarity of ``t`` to each
                          target (how alike they help the others; needs no gain of ``t``)
``observed_knn``          ``popular_z`` weighted by ``exp(2 cos)`` agreement of each target with
                          ``t``'s observed gains, minus ``popular_z`` (collaborative filtering)
``source_steadiness``     minus the log spread of ``s``'s own gains as a target
``source_self_gain``      minus the mean of ``s``'s own gains as a target
``reciprocal``            how much ``t`` helps ``s`` (``s``'s standardised gain from ``t``)
``observed_gp``           Gaussian-process posterior mean of ``t``'s centred observed gains over
                          the sources, the kernel being how alike two sources help the other
                          targets: each observed entry counts by what it adds to the others
``observed_transitive``   how much ``s`` helps the observed sources, weighted by how much each
                          helps ``t`` (TaskWeb's transitivity through pivot tasks)
========================  ====================================================================

The first eight are the default (:data:`DEFAULT_FEATURES`); the last two are options
(``features=``): on validation they changed the Spearman by less than 0.005 on either table,
so they were not added (``docs/affinity.md``, "Research log").

Task metadata (optional; ``taskgraph.affinity.metadata``): with ``task_embeddings`` (task ->
vector, e.g. the mean MiniLM embedding of its description and examples) and ``task_features``
(task -> {name: number}, e.g. single-task learning-curve statistics) four more scores and one
per numeric feature can be named in ``features`` (:data:`METADATA_FEATURES`):

========================  ====================================================================
``text_similarity``       centred cosine of the target's and the source's embeddings (TextEmb)
``text_knn``              ``popular_z`` weighted by the text similarity of ``t`` to each target
``feature_similarity``    ``exp(-mean squared difference)`` of the standardised numeric features
``feature_knn``           ``popular_z`` weighted by that similarity of ``t`` to each target
``source:<name>``         the source's standardised numeric feature ``<name>``
========================  ====================================================================

The two ``source_*`` scores describe the auxiliary task itself: Bingel & Søgaard found that
properties of the tasks, not only of the pair, predict whether sharing helps; a task that every
auxiliary moves a lot (a small, unsaturated task) tends to be a weak auxiliary on their table.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from taskgraph.affinity.similarity import profile_similarity

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "METADATA_FEATURES",
    "OBSERVED_FEATURES",
    "metadata_alternatives",
]

FEATURES = (
    "popular",
    "popular_z",
    "popular_rank",
    "profile_knn",
    "observed_knn",
    "source_steadiness",
    "source_self_gain",
    "reciprocal",
    "observed_gp",
    "observed_transitive",
)
#: Scores that depend on which of the target's entries are observed (recomputed per draw).
OBSERVED_FEATURES = ("observed_knn", "observed_gp", "observed_transitive")
_BASE_FEATURES = tuple(f for f in FEATURES if f not in OBSERVED_FEATURES)
#: The features used unless ``features`` names others (chosen on validation: docs/affinity.md).
DEFAULT_FEATURES = FEATURES[:8]
#: Scores from task metadata (``task_embeddings`` / ``task_features``), besides ``source:<name>``.
METADATA_FEATURES = ("text_similarity", "text_knn", "feature_similarity", "feature_knn")
_TEXT_FEATURES = ("text_similarity", "text_knn")
_KNN_SHARPNESS = 2.0  # exp(2 cos): a perfectly agreeing target weighs e^4 = 55x an opposite one
_GP_NOISE = 1.0  # noise variance of ``observed_gp`` on the kernel's unit scale, set a priori


def metadata_alternatives(*, texts: bool, numeric_names: Sequence[str]) -> list[list[str]]:
    """Return the feature lists a fit weighs against :data:`DEFAULT_FEATURES` given task metadata.

    ``texts``: task embeddings exist; ``numeric_names``: the numeric features' names.  One list
    per kind of metadata (the eight plus ``text_knn``; the eight plus every ``source:<name>``),
    and both together when both exist; empty without metadata.  ``taskgraph bench
    --task-metadata`` passes them as ``alternatives``.  The scores are the best of their kind on
    validation: ``text_knn`` on TaskWeb, the source features on Bingel & Søgaard
    (docs/affinity.md, "Research log").
    """
    text = ["text_knn"] if texts else []
    numeric = [f"source:{n}" for n in sorted(numeric_names)]
    kinds = [kind for kind in (text, numeric) if kind]
    lists = [[*DEFAULT_FEATURES, *kind] for kind in kinds]
    if len(kinds) == 2:
        lists.append([*DEFAULT_FEATURES, *text, *numeric])
    return lists


def _standardise(values: np.ndarray) -> np.ndarray:
    """Return ``values`` centred and divided by their spread (centred only when constant)."""
    spread = float(values.std())
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


def _row_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row standardised and as normalised ranks in [0, 1] (NaN where unmeasured)."""
    z = np.full(matrix.shape, np.nan)
    ranks = np.full(matrix.shape, np.nan)
    for i, row in enumerate(matrix):
        known = ~np.isnan(row)
        if known.sum() >= 2:
            z[i, known] = _standardise(row[known])
            ranks[i, known] = (rankdata(row[known]) - 1) / (known.sum() - 1)
    return z, ranks


def _row_stats(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per row the count, mean and standard deviation of the measured entries (0 where none)."""
    present = ~np.isnan(matrix)
    counts = present.sum(axis=1)
    values = np.where(present, matrix, 0.0)
    means = values.sum(axis=1) / np.maximum(counts, 1)
    squares = (np.where(present, matrix - means[:, None], 0.0) ** 2).sum(axis=1)
    return counts, means, np.sqrt(squares / np.maximum(counts, 1))


def _weighted_mean(weights: np.ndarray, rows: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Return the column means of ``rows`` weighted by ``weights`` over measured cells (``fallback`` where none)."""
    present = ~np.isnan(rows)
    den = (weights[:, None] * present).sum(axis=0)
    num = (weights[:, None] * np.where(present, rows, 0.0)).sum(axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), fallback)


class _Features:
    """The feature scores of every source for any target of one pair matrix ``P[target, source]``.

    ``text_kernel`` (tasks x tasks, NaN where a task has no text) and ``numeric`` (tasks x
    features, standardised, NaN where unknown) carry the task metadata, when given.
    """

    def __init__(
        self,
        pairs: np.ndarray,
        *,
        text_kernel: np.ndarray | None = None,
        numeric: np.ndarray | None = None,
        numeric_names: Sequence[str] = (),
    ) -> None:
        self.pairs = pairs
        self.text_kernel = text_kernel
        self.numeric = numeric
        self.numeric_names = list(numeric_names)
        self.z, self.ranks = _row_scores(pairs)
        counts, means, spreads = _row_stats(pairs)
        self.steadiness = np.where(
            spreads > 0, -np.log(np.where(spreads > 0, spreads, 1.0)), np.nan
        )
        self.self_gain = np.where(counts > 0, -means, np.nan)
        self.kernels: dict[int, np.ndarray | None] = {}

    def _others(self, target: int) -> np.ndarray:
        """Return the mask of the rows other than ``target`` with at least two gains."""
        others = np.ones(len(self.pairs), dtype=bool)
        others[target] = False
        return others & ~np.all(np.isnan(self.z), axis=1)

    def base(self, target: int) -> np.ndarray:
        """Return the draw-independent scores (n, 7: the features not in :data:`OBSERVED_FEATURES`) of ``target``'s sources.

        Nothing of ``target``'s own row enters: its observed gains only reach the ``observed_*`` scores.
        """
        others = self._others(target)
        rows, z_rows = self.pairs[others], self.z[others]
        ones = np.ones(int(others.sum()))
        popular_z = _weighted_mean(ones, z_rows, np.zeros(len(self.pairs)))
        popular = _weighted_mean(ones, rows, np.zeros(len(self.pairs)))
        popular_rank = _weighted_mean(ones, self.ranks[others], np.full(len(self.pairs), 0.5))
        without = self.pairs.copy()
        without[target] = np.nan
        kernel = profile_similarity(without)
        self.kernels[target] = kernel
        profile = popular_z
        if kernel is not None:
            profile = _weighted_mean(np.clip(kernel[target, others], 0.0, None), z_rows, popular_z)
        reciprocal = self.z[:, target]
        return np.stack(
            [
                popular,
                popular_z,
                popular_rank,
                profile,
                self.steadiness,
                self.self_gain,
                reciprocal,
            ],
            axis=1,
        )

    def observed(
        self,
        target: int,
        observed: np.ndarray,
        values: np.ndarray,
        base: np.ndarray,
        names: Sequence[str] = OBSERVED_FEATURES,
    ) -> np.ndarray:
        """Return the scores (n, 3, :data:`OBSERVED_FEATURES` order) given ``target``'s observed gains.

        ``base`` is :meth:`base`'s output for ``target`` (its ``popular_z`` column is the prior).
        Only the scores in ``names`` are computed; the others are 0.
        """
        popular_z = base[:, 1]
        n = len(self.pairs)
        out = np.zeros((n, len(OBSERVED_FEATURES)))
        if "observed_knn" in names:
            out[:, 0] = self.observed_knn(target, observed, values, popular_z)
        if len(observed) < 2:
            return out
        centred = values - values.mean()
        if "observed_gp" in names:
            if target not in self.kernels:
                self.base(target)
            kernel = self.kernels[target]
            if kernel is not None:
                out[:, 1] = _gp_mean(kernel, observed, centred)
        if "observed_transitive" in names:
            out[:, 2] = self.observed_transitive(observed, centred)
        return out

    def observed_knn(
        self, target: int, observed: np.ndarray, values: np.ndarray, popular_z: np.ndarray
    ) -> np.ndarray:
        """Return the agreement-weighted ``popular_z`` minus ``popular_z`` given ``target``'s observed gains."""
        others = self._others(target)
        if len(observed) < 2 or not others.any():
            return np.zeros(len(self.pairs))
        x = values - values.mean()
        y = self.z[np.ix_(others, observed)]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", RuntimeWarning
            )  # a row with none of the observed sources
            y = y - np.nanmean(y, axis=1, keepdims=True)
        y = np.nan_to_num(y)
        den = np.linalg.norm(x) * np.linalg.norm(y, axis=1)
        cosine = np.where(den > 0, (y @ x) / np.where(den > 0, den, 1.0), 0.0)
        weighted = _weighted_mean(np.exp(_KNN_SHARPNESS * cosine), self.z[others], popular_z)
        return weighted - popular_z

    def observed_transitive(self, observed: np.ndarray, centred: np.ndarray) -> np.ndarray:
        """Return, per source, how much it helps the observed sources, weighted by how much each helps the target.

        ``sum_o x_o z(o <- s) / sum_o |x_o|`` with ``x`` the target's centred observed gains and
        ``z(o <- s)`` the standardised gain of task ``o`` from ``s`` (0 where unmeasured).
        """
        scale = float(np.abs(centred).sum())
        if scale == 0:
            return np.zeros(len(self.pairs))
        helped = np.nan_to_num(self.z[observed])  # row o: how each source helps o
        return (centred @ helped) / scale

    def metadata(
        self, target: int, names: Sequence[str], popular_z: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Return the metadata scores ``names`` (of :data:`METADATA_FEATURES` and ``source:<name>``) of ``target``'s sources.

        NaN where the metadata does not cover a task: :meth:`matrix` gives such a source the
        average score.  Nothing of ``target``'s own row enters.
        """
        n = len(self.pairs)
        out: dict[str, np.ndarray] = {}
        others = self._others(target)
        for name in names:
            if name in _TEXT_FEATURES:
                assert self.text_kernel is not None
                similarity = self.text_kernel[target]
            elif name in ("feature_similarity", "feature_knn"):
                assert self.numeric is not None
                similarity = _feature_similarity(self.numeric, target)
            else:
                assert self.numeric is not None
                out[name] = self.numeric[:, self.numeric_names.index(name.split(":", 1)[1])]
                continue
            if name.endswith("_similarity"):
                out[name] = similarity
            else:  # like profile_knn: the other targets' standardised gains, weighted by similarity
                weights = np.nan_to_num(np.clip(similarity[others], 0.0, None))
                out[name] = (
                    _weighted_mean(weights, self.z[others], popular_z)
                    if weights.sum() > 0
                    else np.full(n, np.nan)
                )
        return out

    def matrix(
        self,
        base: np.ndarray,
        observed: np.ndarray,
        candidates: np.ndarray,
        names: Sequence[str] = FEATURES,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Return the design matrix over ``candidates`` (columns ``names``, in :data:`FEATURES` order first), standardised.

        ``extra`` holds the metadata scores (:meth:`metadata`) named in ``names``.
        """
        by_name = dict(zip(_BASE_FEATURES, base.T, strict=True))
        by_name.update(zip(OBSERVED_FEATURES, observed.T, strict=True))
        columns = [FEATURES.index(f) for f in names if f in FEATURES]
        table = _fill_standardise(np.stack([by_name[f] for f in FEATURES], axis=1)[candidates])
        design = table[:, columns]
        if extra:
            more = np.stack([extra[f] for f in names if f not in FEATURES], axis=1)[candidates]
            design = np.concatenate([design, _fill_standardise(more)], axis=1)
        return design


def _fill_standardise(full: np.ndarray) -> np.ndarray:
    """Return each column of ``full`` standardised, its NaN cells first set to the column mean."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: mean of nothing
        column_mean = np.nan_to_num(np.nanmean(full, axis=0))
    # A source with no gains of its own as a target has no source_* score: the average.
    full = np.where(np.isnan(full), column_mean[None, :], full)
    spread = full.std(axis=0)
    return (full - full.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def _feature_similarity(numeric: np.ndarray, target: int) -> np.ndarray:
    """Return ``exp(-mean squared difference)`` of every task's standardised features to ``target``'s (NaN where none shared)."""
    both = ~np.isnan(numeric) & ~np.isnan(numeric[target])[None, :]
    squared = np.where(both, (numeric - np.nan_to_num(numeric[target])[None, :]) ** 2, 0.0)
    count = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.exp(-squared.sum(axis=1) / np.maximum(count, 1)), np.nan)


def _gp_mean(kernel: np.ndarray, observed: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Return the Gaussian-process posterior mean over all sources given ``values`` at ``observed``.

    ``kernel[s, o]``: how alike sources ``s`` and ``o`` help the other targets (unit diagonal);
    the noise variance :data:`_GP_NOISE` is fixed.  Solving with ``K_OO`` weighs each observed
    entry by how much it adds to the others: two near-identical sources count about once.
    """
    k_oo = kernel[np.ix_(observed, observed)] + _GP_NOISE * np.eye(len(observed))
    return kernel[:, observed] @ np.linalg.solve(k_oo, values)

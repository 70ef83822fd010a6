"""``setfn``: a learned set function over auxiliary tasks that shares strength across targets.

Model (one linear-Gaussian model over every gain record, not only pairs; gains divided by a
per-target scale, see below)::

    g(t, A) = a_t + mean_{s in A} (b_s + d_{t,s}) + mean_{{s,s'} in A} i_{s,s'}
              + (c + c_t) * log|A|  [+ beta * mean_{s in A} Z(s -> t)]

* ``a_t``: how much target ``t`` tends to gain from anything; ``b_s``: how much auxiliary
  ``s`` helps in general (the "popular source" of TaskWeb, learned jointly);
* ``d_{t,s}``: the target-specific effect of ``s`` on ``t``.  Its prior couples targets:
  ``Cov(d_{t,s}, d_{t',s}) = tau_d * ((1 - rho) I + rho K)[t, t']`` with a target-similarity
  kernel ``K`` (a Gaussian process over targets): similar targets gain from the same sources;
* ``i_{s,s'}``: what two auxiliaries do together beyond their separate effects, shared by all
  targets (``interactions="shared"``; ``"target"`` gives every target its own, for few tasks);
* ``c + c_t``: the effect of the group's size, which pairs cannot show (HOA's blind spot);
* ``Z``: lookahead affinity from joint runs (Fifty et al. 2021), when given, with a learned
  coefficient, so cheap evidence shifts the prior without being trusted blindly.

With one auxiliary the model is a pair-gain smoother; with larger groups the same ``d_{t,s}``
explain mean effects, so a few larger groups correct every pair estimate of their target.

Pooling (``pooling``): ``"mean"`` averages the members' effects ``b_s + d_{t,s}`` (and ``Z``);
``"sum"`` adds them, so every member moves the gain by its own amount whatever the group's
size (the interaction and size terms are the same in both).  ``"bma"`` (the default) fits both
and averages their predictions with the weights of Bayesian model averaging (Hoeting et al.
1999): ``sum``'s weight is ``sigmoid(log evidence of sum - log evidence of mean)``, each at
its own evidence-maximising hyperparameters (with a ``hyperprior``, each fit's MAP-II
objective, the log evidence plus the log hyperprior at those hyperparameters: the closer of
the two to the models' marginal likelihoods, and what ``auto`` compares too), and a
prediction is the two-component mixture (its mean the weighted mean, its variance the
mixture's).  ``"auto"`` keeps one of the two, ``sum`` only when its evidence is strongly
higher (log Bayes factor above :data:`AUTO_POOLING_LOG_BAYES_FACTOR`, 3).  With no record of
two or more auxiliaries the poolings coincide and one fit is made.  On MTG-Net's MIMIC-27 the
evidence favours ``sum`` by 190-280 (its weight is 1) and the held-out groups' Spearman rises
from 0.578 to 0.654; on small tables the evidence differs by a few units either way, and
averaging beat choosing on the validation rule that made ``bma`` the default of plain fits.
With the small-data hyperprior it did not pass that rule, so the command line, which fits with
it, keeps ``mean`` (:func:`taskgraph.app.affinity.fitting.default_pooling`; the graph-guided
sampler keeps ``mean`` too; ``docs/affinity.md``, "Research log").
The prior variances, the noise, ``rho`` and the kernel ``K`` (identity, the "source-profile"
similarity of how tasks help the other targets, its Hadamard square and cube, and the cosine
similarity of task embeddings when given: Vu et al. 2020's TextEmb) are all chosen by the
marginal likelihood of the fitted records (:mod:`taskgraph.affinity.evidence`): nothing is
tuned on held-out truth.  A target with no records of its own (cold start) gets ``b_s`` plus
the ``d_{t',s}`` of similar targets.

Small data: ``hyperprior=SMALL_DATA_HYPERPRIOR`` fits the hyperparameters by MAP-II (the
evidence times a weak log-normal prior, ``log v ~ N(log 1, 2^2)``, on every free prior
variance and the noise) instead of ML-II, which is degenerate on a handful of gains of one
target.  Opt-in; why, and what it changes: ``docs/affinity.md`` ("Research log").

Per-target scale: gains are divided by a shrunken per-target standard deviation before
fitting (and multiplied back), so targets whose gains vary by 30 % and targets whose gains
vary by 0.3 % share one noise model.  A target with no gains of its own (one outside the
fit included: a cold start) gets the pooled standard deviation.

Why this model (its validation table against HOA, per-target ridge and its own ablations):
``docs/affinity.md`` ("Research log").
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy.special import expit

from taskgraph.affinity.estimators.base import AffinityEstimator, query_task_sets, task_sets_of
from taskgraph.affinity.evidence import EvidenceFit, fit_evidence
from taskgraph.affinity.gain_queries import pair_gains
from taskgraph.affinity.gains import GainKind, GainTable
from taskgraph.affinity.similarity import embedding_similarity, profile_similarity
from taskgraph.errors import ConfigError
from taskgraph.trial import LookaheadMatrix

__all__ = [
    "DEFAULT_POOLING",
    "POOLINGS",
    "SMALL_DATA_HYPERPRIOR",
    "SetFunctionEstimator",
    "check_pooling",
]

_T = TypeVar("_T")

# Parameter groups of the linear model (one prior variance each).
_A, _B, _D, _C, _CBAR, _BETA, _I = range(7)
_MAX_TARGET_INTERACTIONS = 3000
_SCALE_PSEUDO_COUNT = 3.0  # observations worth of the pooled spread in each target's scale
#: a bma component weighing less is left out (log Bayes factor beyond about 27.6 either way)
_NEGLIGIBLE_WEIGHT = 1e-12
#: log-normal (centre, width) of the variances, on the per-target unit scale
SMALL_DATA_HYPERPRIOR = (1.0, 2.0)
#: How a set's members' effects combine (``pooling``): averaged, added, chosen by the evidence,
#: or both averaged with the evidence's weights (module docstring).
POOLINGS = ("mean", "sum", "auto", "bma")
#: ``setfn``'s pooling when none is named (docs/affinity.md, "Issue 16, item 4: averaging the poolings").
DEFAULT_POOLING = "bma"
#: ``pooling="auto"`` adds the members' effects only when the evidence for it is strong: its log
#: marginal likelihood above the mean's by more than 3 (Kass & Raftery 1995's "strong", 2 ln B >
#: 6).  ETTm1's fits differ by under 2.5 in 19 of 20 (a coin flip that cost its validation
#: Spearman 0.011), MIMIC-27's by 190-280 (docs/affinity.md, "Research log").
AUTO_POOLING_LOG_BAYES_FACTOR = 3.0


def check_pooling(pooling: str, name: str = "`pooling`") -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``pooling`` is one of :data:`POOLINGS`."""
    if pooling not in POOLINGS:
        choices = ", ".join(POOLINGS[:-1]) + " or " + POOLINGS[-1]
        raise ConfigError(f"{name} must be {choices}, but got {pooling!r}")


@dataclass(frozen=True)
class _Component:
    """One pooling's fit: the posterior, its kernel's eigenbasis, and its weight in the mixture."""

    weight: float
    pooling: str
    fit: EvidenceFit
    eigvecs: np.ndarray
    kernel: str


class SetFunctionEstimator(AffinityEstimator):
    """The learned set-function model of the module docstring (registry name ``setfn``)."""

    name = "setfn"

    def __init__(
        self,
        *,
        gain_kind: GainKind = "relative",
        split: str | None = None,
        metric: str | None = None,
        task_embeddings: Mapping[str, np.ndarray] | None = None,
        lookahead: Sequence[LookaheadMatrix] = (),
        similarity_powers: Sequence[int] = (1, 2, 3),
        size_effect: bool = True,
        interactions: str = "shared",
        hyperprior: tuple[float, float] | None = None,
        pooling: str = DEFAULT_POOLING,
    ) -> None:
        super().__init__(gain_kind=gain_kind, split=split, metric=metric)
        check_pooling(pooling)
        self.pooling_option = pooling
        #: the pooling the features are built with now: the fit's (the heavier one under bma)
        self.pooling = self._single_pooling()
        self.components: list[_Component] = []
        self.task_embeddings = dict(task_embeddings or {})
        self.lookahead = list(lookahead)
        self.similarity_powers = tuple(similarity_powers)
        self.size_effect = size_effect
        if interactions not in ("none", "shared", "target"):
            raise ConfigError(
                f"`interactions` must be none, shared or target, but got {interactions!r}"
            )
        self.interactions = interactions
        if hyperprior is not None and not (len(hyperprior) == 2 and min(hyperprior) > 0):
            raise ConfigError(
                f"`hyperprior` must be (center, width) with both > 0, or None, but got {hyperprior!r}"
            )
        self.hyperprior = (
            None if hyperprior is None else (float(hyperprior[0]), float(hyperprior[1]))
        )

    # ----------------------------------------------------------------- features
    def _layout(self, tasks: Sequence[str]) -> None:
        self.index = {t: i for i, t in enumerate(tasks)}
        n = len(tasks)
        self.n = n
        self.pair_i, self.pair_j = np.triu_indices(n, k=1)
        n_pairs = len(self.pair_i)
        n_inter = {"none": 0, "shared": n_pairs, "target": n * n_pairs}[self._interactions]
        sizes = [n, n, n * n, n, 1, 1 if self._z is not None else 0, n_inter]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.groups = np.concatenate([np.full(size, g) for g, size in enumerate(sizes)]).astype(int)

    def _features(
        self, targets: np.ndarray, members: np.ndarray, eigvecs: np.ndarray
    ) -> np.ndarray:
        """Return the design rows for target indices and 0/1 auxiliary masks (rows = points)."""
        n = self.n
        k = members.sum(axis=1)
        weights = members * self._member_weights(k)[:, None]
        rows = np.zeros((len(targets), int(self.offsets[-1])))
        rows[np.arange(len(targets)), self.offsets[_A] + targets] = 1.0
        rows[:, self.offsets[_B] : self.offsets[_B] + n] = weights
        # d in the kernel's eigenbasis: d[t, s] = sum_i U[t, i] e[i, s].
        d_rows = eigvecs[targets][:, :, None] * weights[:, None, :]
        rows[:, self.offsets[_D] : self.offsets[_D] + n * n] = d_rows.reshape(len(targets), n * n)
        if self.size_effect:
            rows[np.arange(len(targets)), self.offsets[_C] + targets] = np.log(k)
            rows[:, self.offsets[_CBAR]] = np.log(k)
        if self._z is not None:
            rows[:, self.offsets[_BETA]] = (weights * self._z[targets]).sum(axis=1)
        if self._interactions != "none":
            # Mean over the pairs inside the set of a pair-of-auxiliaries effect.
            n_pairs_in = np.maximum(k * (k - 1) / 2.0, 1.0)
            both = members[:, self.pair_i] * members[:, self.pair_j] / n_pairs_in[:, None]
            start = int(self.offsets[_I])
            if self._interactions == "shared":
                rows[:, start : start + both.shape[1]] = both
            else:
                width = both.shape[1]
                for row, t in enumerate(targets):
                    rows[row, start + t * width : start + (t + 1) * width] = both[row]
        return rows

    def _member_weights(self, sizes: np.ndarray) -> np.ndarray:
        """Return each member's weight in sets of ``sizes`` members: 1/|A| (mean pooling) or 1 (sum)."""
        sizes = np.asarray(sizes, dtype=float)
        return 1.0 / sizes if self.pooling == "mean" else np.ones_like(sizes)

    # ----------------------------------------------------------------- fitting
    def _fit(self, table: GainTable) -> None:
        tasks = sorted(set(table.tasks) | set(self.task_embeddings))
        if not tasks:
            raise ConfigError(f"no gains to fit: {table.why_empty()}")
        self._z: np.ndarray | None = self._lookahead_matrix(tasks) if self.lookahead else None
        # Interactions need sets of two or more auxiliaries; without any they would be prior-only.
        larger = any(len(g.auxiliaries) >= 2 for g in table.gains)
        self._interactions = self.interactions if larger else "none"
        if (
            self._interactions == "target"
            and len(tasks) ** 2 * (len(tasks) - 1) / 2 > _MAX_TARGET_INTERACTIONS
        ):
            raise ConfigError(
                f"`interactions='target'` needs {len(tasks)}^2 * {len(tasks) - 1} / 2 parameters for "
                f"{len(tasks)} tasks (at most {_MAX_TARGET_INTERACTIONS}); use 'shared'"
            )
        self._layout(tasks)
        n = self.n
        observed = [g for g in table.gains if g.auxiliaries]
        targets = np.array([self.index[g.target] for g in observed], dtype=int)
        members = np.zeros((len(observed), n))
        for row, gain in enumerate(observed):
            members[row, [self.index[s] for s in gain.auxiliaries]] = 1.0
        values = np.array([g.mean for g in observed], dtype=float)
        self.scale = self._target_scales(targets, values)
        y = values / self.scale[targets] if len(values) else values
        self.n_observations = len(values)
        fixed = {_CBAR: 10.0, _BETA: 10.0}
        if not self.size_effect:
            fixed[_C] = 1.0
        best_by_pooling: dict[str, tuple[float, EvidenceFit, np.ndarray, str, str]] = {}
        # With no set of 2+ auxiliaries the poolings give the same features: one fit (mean).
        poolings = (
            ("mean", "sum")
            if self.pooling_option in ("auto", "bma") and larger
            else (self._single_pooling(),)
        )
        for pooling, (label, similarity) in itertools.product(
            poolings, list(self._similarities(tasks, table))
        ):
            self.pooling = pooling
            eigvals, eigvecs = np.linalg.eigh(similarity)
            eig_per_param = np.ones(int(self.offsets[-1]))
            # e[i, s] is stored at offsets[_D] + i * n + s: eigenvalue i for every s.
            eig_per_param[self.offsets[_D] : self.offsets[_D] + n * n] = np.repeat(
                np.clip(eigvals, 0, None), n
            )
            phi = (
                self._features(targets, members, eigvecs)
                if len(y)
                else np.zeros((0, int(self.offsets[-1])))
            )
            fit = fit_evidence(
                phi,
                y,
                groups=self.groups,
                n_groups=7,
                fixed=fixed,
                kernel_group=_D if label != "identity" else None,
                eigenvalues=eig_per_param,
                hyperprior=self.hyperprior,
            )
            if pooling not in best_by_pooling or fit.log_posterior > best_by_pooling[pooling][0]:
                best_by_pooling[pooling] = (fit.log_posterior, fit, eigvecs, label, pooling)
        # Each pooling with its best kernel (a kernel is chosen freely); a weight per pooling.
        weights = {poolings[0]: 1.0}
        if len(poolings) == 2:
            log_factor = best_by_pooling["sum"][0] - best_by_pooling["mean"][0]
            if self.pooling_option == "auto":  # sum only on strong evidence
                weights = {"sum" if log_factor > AUTO_POOLING_LOG_BAYES_FACTOR else "mean": 1.0}
            else:  # bma: the posterior model probabilities under equal prior odds
                w_sum = float(expit(log_factor))
                weights = {"mean": 1.0 - w_sum, "sum": w_sum}
        # A weight below _NEGLIGIBLE_WEIGHT cannot move a prediction: that pooling is left out
        # (one fit to predict with, the draws of a plain fit), whichever pooling it is.
        kept = {pooling: w for pooling, w in weights.items() if w >= _NEGLIGIBLE_WEIGHT}
        total = sum(kept.values())
        self.components = [
            _Component(weight / total, pooling, *best_by_pooling[pooling][1:4])
            for pooling, weight in kept.items()
        ]
        self._activate(self._heaviest())

    def _single_pooling(self) -> str:
        """Return the pooling of a one-fit model: the option's, or mean under auto and bma."""
        return self.pooling_option if self.pooling_option in ("mean", "sum") else "mean"

    def _heaviest(self) -> _Component:
        """Return the component with the largest weight (the first, mean, on a tie)."""
        return max(self.components, key=lambda c: c.weight)

    def _activate(self, component: _Component) -> None:
        """Make ``component`` the fit that features and predictions use."""
        self.pooling = component.pooling
        self.fit_ = component.fit
        self.eigvecs = component.eigvecs
        self.kernel = component.kernel

    def _per_component(self, compute: Callable[[], _T]) -> list[tuple[float, _T]]:
        """Return ``(weight, compute())`` under each component's fit; the heaviest stays active."""
        if len(self.components) <= 1:
            return [(1.0, compute())]
        results = []
        try:
            for component in self.components:
                self._activate(component)
                results.append((component.weight, compute()))
        finally:
            self._activate(self._heaviest())
        return results

    def _target_scales(self, targets: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Return each target's scale; set :attr:`cold_scale`, that of a target with no gains.

        A target's scale is its gains' standard deviation shrunk toward the pooled one with
        :data:`_SCALE_PSEUDO_COUNT` observations' weight, so a target with no gains of its own
        (one of ``task_embeddings``, or a cold start outside the fit) gets the pooled one.
        """
        if len(values) < 2:
            # One gain: its size is the only scale there is; a gain of exactly 0 has none (1,
            # as the pooled variance's fallback below).
            self.cold_scale = (float(np.abs(values).mean()) if len(values) else 0.0) or 1.0
            return np.full(self.n, self.cold_scale)
        scale = np.ones(self.n)
        pooled = float(np.var(values)) or float(np.mean(values**2)) or 1.0
        self.cold_scale = math.sqrt(pooled)
        for t in range(self.n):
            own = values[targets == t]
            ss = float(((own - own.mean()) ** 2).sum()) if len(own) else 0.0
            scale[t] = math.sqrt(
                (ss + _SCALE_PSEUDO_COUNT * pooled) / (len(own) + _SCALE_PSEUDO_COUNT)
            )
        return scale  # y / scale has about unit variance per target, as fit_evidence expects

    def _similarities(
        self, tasks: Sequence[str], table: GainTable
    ) -> Iterable[tuple[str, np.ndarray]]:
        n = len(tasks)
        yield "identity", np.eye(n)
        pairs = pair_gains(table.gains)
        matrix = np.full((n, n), np.nan)
        for (target, source), (mean, _, _) in pairs.items():
            matrix[self.index[target], self.index[source]] = mean
        profile = profile_similarity(matrix)
        if profile is not None:
            for power in self.similarity_powers:
                yield f"profile^{power}", profile**power
        if self.task_embeddings:
            embedded = embedding_similarity(tasks, self.task_embeddings)
            yield "textemb", embedded
            if profile is not None:
                yield "textemb+profile", 0.5 * (embedded + profile)

    def _lookahead_matrix(self, tasks: Sequence[str]) -> np.ndarray:
        """Return Z[t, s] = mean lookahead affinity of source s on target t over the matrices."""
        index = {t: i for i, t in enumerate(tasks)}
        total = np.zeros((len(tasks), len(tasks)))
        count = np.zeros_like(total)
        for matrix in self.lookahead:
            for i, source in enumerate(matrix.tasks):
                for j, target in enumerate(matrix.tasks):
                    value = matrix.values[i][j]
                    if (
                        source != target
                        and source in index
                        and target in index
                        and math.isfinite(value)
                    ):
                        total[index[target], index[source]] += value
                        count[index[target], index[source]] += 1
        z = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        spread = float(z[count > 0].std()) if (count > 0).sum() > 1 else 1.0
        return z / (spread or 1.0)

    # ----------------------------------------------------------------- prediction
    def _encode(
        self, target: str, auxiliaries: Iterable[frozenset[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return design rows for ``target`` with each auxiliary set, and the variance of unseen tasks."""
        sets = list(auxiliaries)
        t = self.index[target]
        members = np.zeros((len(sets), self.n))
        sizes = np.array([len(a) for a in sets], dtype=float)
        for row, aux in enumerate(sets):
            members[row, [self.index[s] for s in aux if s in self.index]] = 1.0
        n_known = members.sum(axis=1)
        rows = np.zeros((len(sets), int(self.offsets[-1])))
        some = n_known > 0
        if some.any():
            # Features of the known tasks, each weighted as a member of the whole set.
            rows[some] = self._features(np.full(int(some.sum()), t), members[some], self.eigvecs)
            rows[some] *= (self._member_weights(sizes[some]) / self._member_weights(n_known[some]))[
                :, None
            ]
        rows[:, self.offsets[_A] + t] = 1.0
        if self.size_effect:  # the size term counts every auxiliary, known or not
            rows[:, self.offsets[_C] + t] = np.log(sizes)
            rows[:, self.offsets[_CBAR]] = np.log(sizes)
        # A task never seen contributes its prior variance (b and d) with its weight (1/k or 1).
        prior = self.fit_.group_variances[_B] + self.fit_.group_variances[_D]
        extra_var = (sizes - n_known) * prior * self._member_weights(sizes) ** 2
        return rows, extra_var

    def predict_many(
        self, target: str, task_sets: Sequence[Iterable[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return means and standard deviations for many task sets at once (vectorised).

        Under ``pooling="bma"`` the moments of the two poolings' mixture.
        """
        self.table  # noqa: B018 -- raises NotFittedError when not fitted
        auxes = [s - {target} for s in task_sets_of(task_sets)]
        parts = self._per_component(lambda: self._predict_active(target, auxes))
        if len(parts) == 1:
            return parts[0][1]
        weights = np.array([weight for weight, _ in parts])
        means = np.array([m for _, (m, _) in parts])
        stds = np.array([sd for _, (_, sd) in parts])
        mean = weights @ means
        second = weights @ (stds**2 + means**2)
        return mean, np.sqrt(np.clip(second - mean**2, 0.0, None))

    def _predict_active(
        self, target: str, auxes: list[frozenset[str]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return :meth:`predict_many` of the active component's fit."""
        means = np.zeros(len(auxes))
        stds = np.zeros(len(auxes))
        nonempty = [i for i, a in enumerate(auxes) if a]
        if not nonempty:
            return means, stds
        if target not in self.index:
            return self._cold_predict([auxes[i] for i in nonempty], means, stds, nonempty)
        rows, extra = self._encode(target, [auxes[i] for i in nonempty])
        mean, std = self.fit_.predict(rows)
        scale = self.scale[self.index[target]]
        means[nonempty] = mean * scale
        stds[nonempty] = np.sqrt(std**2 + extra) * scale
        return means, stds

    def _cold_predict(
        self, auxes: list[frozenset[str]], means: np.ndarray, stds: np.ndarray, where: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        # A task outside the fit: general source effects b_s only, with the prior's spread.
        # Both are on the fit's per-target unit scale; a target with no gains of its own has
        # the pooled scale (``cold_scale``, as a target in ``task_embeddings`` without gains).
        b0 = int(self.offsets[_B])
        variances = self.fit_.group_variances
        scale = self.cold_scale
        for slot, aux in zip(where, auxes, strict=True):
            # In name order: the sum's last digits must not follow the hash seed.
            known = [self.index[s] for s in sorted(aux) if s in self.index]
            weight = float(self._member_weights(np.array([len(aux)]))[0])
            means[slot] = (
                float(np.sum(self.fit_.mean[b0 + np.array(known, dtype=int)])) * weight * scale
                if known
                else 0.0
            )
            stds[slot] = scale * math.sqrt(
                variances[_A] + (variances[_B] + variances[_D]) * len(aux) * weight**2
            )
        return means, stds

    def sample_gains(
        self,
        queries: Sequence[tuple[str, Iterable[str]]],
        rng: np.random.Generator,
        *,
        n_samples: int = 1,
    ) -> np.ndarray:
        """Return joint posterior draws of the queried gains (one parameter draw per sample)."""
        self.table  # noqa: B018 -- raises NotFittedError when not fitted
        if len(self.components) <= 1:
            return self._sample_active(queries, rng, n_samples)
        # A mixture: each sample is a draw of the pooling (by its weight), then of its fit.
        which = rng.choice(
            len(self.components), size=n_samples, p=[c.weight for c in self.components]
        )
        parts = self._per_component(lambda: self._sample_active(queries, rng, n_samples))
        return np.choose(which[:, None], [draws for _, draws in parts])

    def _sample_active(
        self,
        queries: Sequence[tuple[str, Iterable[str]]],
        rng: np.random.Generator,
        n_samples: int,
    ) -> np.ndarray:
        """Return :meth:`sample_gains` of the active component's fit."""
        draws = np.zeros((n_samples, len(queries)))
        chol = np.linalg.cholesky(self.fit_.cov + 1e-12 * np.eye(len(self.fit_.mean)))
        params = (
            self.fit_.mean[None, :] + rng.standard_normal((n_samples, len(self.fit_.mean))) @ chol.T
        )
        for column, (target, task_set) in enumerate(query_task_sets(queries)):
            aux = task_set - {target}
            if not aux:
                continue
            if target not in self.index:
                # This component's cold prediction (not predict(): that would mix the components).
                mean, std = self._predict_active(target, [frozenset(aux)])
                draws[:, column] = mean[0] + std[0] * rng.standard_normal(n_samples)
                continue
            rows, extra = self._encode(target, [aux])
            scale = self.scale[self.index[target]]
            noise = np.sqrt(extra[0]) * rng.standard_normal(n_samples)
            draws[:, column] = (params @ rows[0] + noise) * scale
        return draws

    def _predict(self, target: str, auxiliaries: frozenset[str]) -> tuple[float, float]:
        mean, std = self.predict_many(target, [auxiliaries])
        return float(mean[0]), float(std[0])

    def describe(self) -> dict[str, Any]:
        """Return the chosen kernel and hyperparameters with the evidence they reached."""
        base = super().describe()  # refuses an estimator not fitted yet
        variances = self.fit_.group_variances
        return {
            **base,
            "kernel": self.kernel,
            "pooling": self.pooling_option if self.pooling_option == "bma" else self.pooling,
            # each pooling's weight in the predictions (one of 1 unless bma); kernel and the rest below: the heaviest's
            "pooling_weights": {c.pooling: round(c.weight, 6) for c in self.components},
            "rho": round(self.fit_.rho, 4),
            "noise": round(self.fit_.noise, 6),
            "tau": {
                name: round(float(variances[g]), 6)
                for name, g in (("a", _A), ("b", _B), ("d", _D), ("c", _C))
            },
            "log_evidence": round(self.fit_.log_evidence, 3),
            "hyperprior": list(self.hyperprior) if self.hyperprior is not None else None,
        }

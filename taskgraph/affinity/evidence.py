"""Bayesian linear regression whose prior variances are chosen by maximising the evidence.

The math behind the ``setfn`` estimator, kept apart from any record or task name: arrays in,
a posterior out (as Optuna keeps its Parzen estimator apart from the sampler).

Model: ``y = Phi w + e`` with ``e ~ N(0, noise)`` and independent ``w_j ~ N(0, lambda_j)``,
where ``lambda_j = v[group_j]`` and, for parameters of the *kernel group*,
``lambda_j = v[group_j] * ((1 - rho) + rho * mu_j)``: the eigenvalues ``mu_j`` of a similarity
matrix shrink the parameters toward a shared pattern as ``rho`` grows (the eigenbasis turns
a correlated Gaussian prior into independent coordinates).  The free group variances, the
noise and ``rho`` maximise the log marginal likelihood (type-II maximum likelihood, MacKay
1992) with exact gradients under L-BFGS-B; fixed groups keep a given variance.

With ``hyperprior=(center, width)`` they maximise the marginal likelihood times a log-normal
prior, ``log v ~ N(log center, width^2)``, on every free variance and the noise (MAP-II).
With a handful of points ML-II is degenerate: it can explain everything as noise (every
effect variance at zero) or interpolate exactly (noise at zero, standard deviations of
0.001).  The log-normal is chosen over an inverse-gamma because its pull grows only
linearly in ``log v``: an inverse-gamma's ``beta / v`` term explodes for groups whose
variance is legitimately small (size effects, pair interactions on large tables) and would
bias large fits, while the log-normal's pull is negligible against a likelihood with
hundreds of points (its curvature in ``log v`` grows with the number of parameters the
data inform).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, lapack
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

__all__ = ["EvidenceFit", "fit_evidence"]

_RHO_MAX = 0.995  # rho = 1 would give the zero-eigenvalue directions zero variance


@dataclass
class EvidenceFit:
    """The posterior of ``w`` and the hyperparameters that maximise the evidence."""

    mean: np.ndarray  # (p,)
    cov: np.ndarray  # (p, p)
    group_variances: np.ndarray  # (n_groups,)
    noise: float
    rho: float
    log_evidence: float
    #: log evidence + log hyperprior (= log_evidence without a prior)
    log_posterior: float = math.nan

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return posterior means and standard deviations of ``features @ w`` (rows = points)."""
        features = np.atleast_2d(features)
        mean = features @ self.mean
        var = np.sum((features @ self.cov) * features, axis=1)
        return mean, np.sqrt(np.clip(var, 0.0, None))


def _unpack(
    theta: np.ndarray,
    free: Sequence[int],
    fixed: Mapping[int, float],
    n_groups: int,
    has_kernel: bool,
) -> tuple[np.ndarray, float, float]:
    variances = np.empty(n_groups)
    for index, group in enumerate(free):
        variances[group] = math.exp(theta[index])
    for group, value in fixed.items():
        variances[group] = value
    noise = math.exp(theta[len(free)])
    rho = _RHO_MAX / (1.0 + math.exp(-theta[len(free) + 1])) if has_kernel else 0.0
    return variances, noise, rho


def fit_evidence(
    phi: np.ndarray,
    y: np.ndarray,
    *,
    groups: np.ndarray,
    n_groups: int,
    fixed: Mapping[int, float] | None = None,
    kernel_group: int | None = None,
    eigenvalues: np.ndarray | None = None,
    max_iter: int = 200,
    hyperprior: tuple[float, float] | None = None,
) -> EvidenceFit:
    """Return the evidence-maximising posterior of ``y ~ phi @ w`` (module docstring).

    ``groups[j]`` is the prior group of parameter ``j``; ``fixed`` maps groups to variances
    that are not optimised; ``eigenvalues[j]`` (>= 0) shapes the variances of the parameters of
    ``kernel_group``.  ``y`` should be on a unit scale (the starting point assumes it).
    ``hyperprior=(center, width)`` puts a log-normal prior, ``log v ~ N(log center, width^2)``,
    on every free variance and the noise and maximises the evidence times that prior instead
    (MAP-II, module docstring).
    """
    phi = np.asarray(phi, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = phi.shape
    fixed = dict(fixed or {})
    free = [g for g in range(n_groups) if g not in fixed]
    has_kernel = kernel_group is not None and eigenvalues is not None
    mu = (
        np.ones(p)
        if eigenvalues is None
        else np.clip(np.asarray(eigenvalues, dtype=float), 0.0, None)
    )
    in_kernel = (groups == kernel_group) if has_kernel else np.zeros(p, dtype=bool)
    gram = phi.T @ phi
    phi_y = phi.T @ y
    yy = float(y @ y)
    group_index = np.asarray(groups, dtype=int)

    def terms(theta: np.ndarray) -> tuple[float, np.ndarray, tuple[np.ndarray, ...]] | None:
        variances, noise, rho = _unpack(theta, free, fixed, n_groups, has_kernel)
        shape = np.where(in_kernel, (1.0 - rho) + rho * mu, 1.0)
        lam = variances[group_index] * shape
        a = gram / noise
        a[np.diag_indices(p)] += 1.0 / lam
        try:
            factor = cho_factor(a, lower=True, check_finite=False)
        except LinAlgError:
            return None
        mean = cho_solve(factor, phi_y / noise, check_finite=False)
        inverse, info = lapack.dpotri(factor[0], lower=1)
        if info != 0:
            return None
        cov = np.tril(inverse) + np.tril(inverse, -1).T
        log_det_a = 2.0 * float(np.log(np.diag(factor[0])).sum())
        residual = yy - 2 * float(mean @ phi_y) + float(mean @ gram @ mean)
        nll = 0.5 * (
            residual / noise
            + float(mean @ (mean / lam))
            + log_det_a
            + float(np.log(lam).sum())
            + n * math.log(noise)
        )
        # d nll / d log lambda_j (ARD identity), then the chain rule to groups, noise and rho.
        d_log_lam = 0.5 * (1.0 - (np.diag(cov) + mean**2) / lam)
        grad = np.zeros(len(free) + 1 + (1 if has_kernel else 0))
        for index, group in enumerate(free):
            grad[index] = float(d_log_lam[group_index == group].sum())
        trace = float(np.sum(gram * cov))
        grad[len(free)] = 0.5 * (n - (residual + trace) / noise)
        if has_kernel:
            d_rho = float(np.sum(d_log_lam[in_kernel] * (mu[in_kernel] - 1.0) / shape[in_kernel]))
            s = rho / _RHO_MAX
            grad[len(free) + 1] = d_rho * _RHO_MAX * s * (1.0 - s)
        evidence_nll = nll
        if hyperprior is not None:
            # -log N(theta; log center, width^2) for theta = log v of every free variance and the noise.
            center, width = hyperprior
            offset = theta[: len(free) + 1] - math.log(center)
            nll += float(0.5 * (offset**2).sum() / width**2)
            grad[: len(free) + 1] += offset / width**2
        return nll, grad, (mean, cov, variances, np.array([noise, rho, evidence_nll]))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        result = terms(theta)
        if result is None:
            return 1e12, np.zeros_like(theta)
        return result[0], result[1]

    theta0 = np.concatenate(
        [np.full(len(free), math.log(0.3)), [math.log(0.5)], [0.0] if has_kernel else []]
    )
    bounds = [(-14.0, 6.0)] * (len(free) + 1) + ([(-8.0, 8.0)] if has_kernel else [])
    # Matrices of a few hundred columns: BLAS threads cost more than they save (20x on a busy host).
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter},
        )
        final = terms(result.x)
        if final is None:  # the optimiser ended on a numerically singular point: start value
            final = terms(theta0)
    if final is None:
        raise ValueError("the evidence could not be evaluated: the design matrix is degenerate")
    nll, _, (mean, cov, variances, extra) = final
    constant = 0.5 * n * math.log(2 * math.pi)
    return EvidenceFit(
        mean=mean,
        cov=cov,
        group_variances=variances,
        noise=float(extra[0]),
        rho=float(extra[1]),
        log_evidence=-float(extra[2]) - constant,
        log_posterior=-nll - constant,
    )

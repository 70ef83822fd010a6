"""Evidence maximisation: the reported evidence is the true marginal likelihood, at its maximum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from taskgraph.affinity.evidence import fit_evidence


def _log_marginal(phi: np.ndarray, y: np.ndarray, lam: np.ndarray, noise: float) -> float:
    cov = noise * np.eye(len(y)) + phi @ np.diag(lam) @ phi.T
    return float(multivariate_normal(mean=np.zeros(len(y)), cov=cov).logpdf(y))


@pytest.fixture
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(80, 6))
    groups = np.array([0, 0, 0, 1, 1, 2])
    w = np.concatenate([rng.normal(0, 1.0, 3), rng.normal(0, 0.3, 2), [0.5]])
    y = phi @ w + rng.normal(0, 0.4, size=80)
    return phi, y, groups


def test_reported_evidence_is_the_marginal_likelihood_and_a_maximum(
    problem: tuple[np.ndarray, ...],
) -> None:
    phi, y, groups = problem
    fit = fit_evidence(phi, y, groups=groups, n_groups=3, fixed={2: 4.0})
    lam = fit.group_variances[groups]
    best = _log_marginal(phi, y, lam, fit.noise)
    assert fit.log_evidence == pytest.approx(best, rel=1e-6)
    assert fit.group_variances[2] == 4.0  # fixed group untouched
    for factor in (0.8, 1.25):
        assert _log_marginal(phi, y, lam, fit.noise * factor) < best
        for group in (0, 1):
            moved = fit.group_variances.copy()
            moved[group] *= factor
            assert _log_marginal(phi, y, moved[groups], fit.noise) < best
    assert fit.noise == pytest.approx(0.16, rel=0.4)


def test_posterior_mean_is_the_ridge_solution(problem: tuple[np.ndarray, ...]) -> None:
    phi, y, groups = problem
    fit = fit_evidence(phi, y, groups=groups, n_groups=3)
    lam = fit.group_variances[groups]
    ridge = np.linalg.solve(phi.T @ phi / fit.noise + np.diag(1 / lam), phi.T @ y / fit.noise)
    assert np.allclose(fit.mean, ridge)
    mean, std = fit.predict(phi[:3])
    assert np.allclose(mean, phi[:3] @ ridge) and (std > 0).all()


def test_kernel_weight_rho_rises_when_parameters_share_a_pattern() -> None:
    rng = np.random.default_rng(1)
    n = 10
    similarity = np.full((n, n), 0.95) + 0.05 * np.eye(n)  # all parameters alike
    eigvals, eigvecs = np.linalg.eigh(similarity)
    shared = rng.normal()
    w = shared + 0.05 * rng.normal(size=n)
    phi = np.eye(n).repeat(3, axis=0)
    y = phi @ w + rng.normal(0, 0.1, size=len(phi))
    # Coordinates in the eigenbasis: phi @ U, eigenvalues as the kernel shape.
    fit = fit_evidence(
        phi @ eigvecs,
        y,
        groups=np.zeros(n, dtype=int),
        n_groups=1,
        kernel_group=0,
        eigenvalues=eigvals,
    )
    assert fit.rho > 0.9


def test_hyperprior_gives_the_map_point_and_keeps_few_points_off_the_boundaries() -> None:
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(4, 6))  # more parameters than points: ML-II interpolates (noise -> 0)
    groups = np.array([0, 0, 0, 1, 1, 1])
    y = phi @ rng.normal(size=6)
    plain = fit_evidence(phi, y, groups=groups, n_groups=2)
    center, width = 1.0, 2.0
    fit = fit_evidence(phi, y, groups=groups, n_groups=2, hyperprior=(center, width))
    assert plain.noise < 1e-3 and plain.log_posterior == plain.log_evidence
    assert fit.noise > 0.05
    lam = fit.group_variances[groups]
    assert fit.log_evidence == pytest.approx(_log_marginal(phi, y, lam, fit.noise), rel=1e-6)

    def log_posterior(variances: np.ndarray, noise: float) -> float:
        logs = np.log(np.append(variances, noise))
        log_prior = (
            -0.5 * float(((logs - np.log(center)) ** 2).sum()) / width**2
        )  # without its constant
        return _log_marginal(phi, y, variances[groups], noise) + log_prior

    best = log_posterior(fit.group_variances, fit.noise)
    assert fit.log_posterior == pytest.approx(best, rel=1e-6)
    for factor in (0.8, 1.25):
        assert log_posterior(fit.group_variances, fit.noise * factor) < best
        for group in (0, 1):
            moved = fit.group_variances.copy()
            moved[group] *= factor
            assert log_posterior(moved, fit.noise) < best

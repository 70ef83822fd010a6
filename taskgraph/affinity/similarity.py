"""Task-similarity kernels: which targets should share what they learned about sources.

Both return a positive semi-definite matrix with a unit diagonal (a valid Gaussian-process
kernel over tasks), so the ``setfn`` estimator can use either as the prior correlation of two
targets' source effects.

* :func:`profile_similarity`: two tasks are similar when they help the *other* targets alike
  (the cosine of their standardised columns in the pair-gain matrix).  It needs no record of
  the task as a target, so a new target that has served as an auxiliary is not a cold start.
* :func:`embedding_similarity`: the cosine of task embeddings, e.g. the mean MiniLM embedding
  of a task's training text (TextEmb, Vu et al. 2020, "Exploring and Predicting
  Transferability across NLP Tasks", EMNLP).  The embeddings are computed outside this
  package (``taskgraph affinity`` does it with the encoder); here they are plain arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["embedding_similarity", "profile_similarity"]


def profile_similarity(pair_matrix: np.ndarray, *, min_targets: int = 3) -> np.ndarray | None:
    """Return the source-profile kernel of ``pair_matrix[t, s]`` (NaN = unmeasured), or None.

    None when fewer than ``min_targets`` targets or fewer than two sources have measurements.
    """
    matrix = np.asarray(pair_matrix, dtype=float)
    measured_rows = ~np.all(np.isnan(matrix), axis=1)
    if measured_rows.sum() < min_targets:
        return None
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(np.where(measured_rows[:, None], matrix, 0.0), axis=1, keepdims=True)
        std = np.nanstd(np.where(measured_rows[:, None], matrix, 0.0), axis=1, keepdims=True)
    # Each target's row on a common scale, so that targets with large gains do not dominate.
    standard = np.nan_to_num((matrix - mean) / np.where(std > 0, std, 1.0))
    profiles = standard.T  # row s: how source s helps each target
    norms = np.linalg.norm(profiles, axis=1)
    present = norms > 0
    if present.sum() < 2:
        return None
    profiles[present] /= norms[present, None]
    kernel = profiles @ profiles.T
    kernel[~present, :] = 0.0
    kernel[:, ~present] = 0.0
    np.fill_diagonal(kernel, 1.0)  # sources x sources: as many as the matrix has columns
    return kernel


def embedding_similarity(tasks: Sequence[str], embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
    """Return the cosine kernel of the centred ``embeddings`` of ``tasks`` (identity rows where absent)."""
    n = len(tasks)
    have = [i for i, t in enumerate(tasks) if t in embeddings]
    kernel = np.eye(n)
    if len(have) < 2:
        return kernel
    vectors = np.stack([np.asarray(embeddings[tasks[i]], dtype=float).ravel() for i in have])
    # Centring removes what every text embedding shares, which would make all tasks look alike.
    vectors = vectors - vectors.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(vectors, axis=1)
    vectors = vectors / np.where(norms > 0, norms, 1.0)[:, None]
    sub = vectors @ vectors.T
    kernel[np.ix_(have, have)] = sub
    kernel[np.diag_indices(n)] = 1.0
    return kernel

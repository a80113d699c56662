"""The numba kernels (E- and M-steps) of :mod:`dcai_assets.core.label_model`.

A module of their own so that importing :mod:`dcai_assets` does not import numba: the label
model imports this module when it fits or predicts.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _posterior(score: np.ndarray, gold: int, out: np.ndarray) -> float:
    """Softmax of one row's class scores into ``out`` (one-hot if gold is known); returns the
    row's log normaliser."""
    top = score.max()
    total = 0.0
    for y in range(score.shape[0]):
        score[y] = np.exp(score[y] - top)
        total += score[y]
    for y in range(score.shape[0]):
        if gold >= 0:
            out[y] = 1.0 if y == gold else 0.0
        else:
            out[y] = score[y] / total
    return top + np.log(total)


@numba.njit(parallel=True, cache=True)
def _ds_e_step(
    L: np.ndarray, log_theta: np.ndarray, log_prior: np.ndarray, gold: np.ndarray, q: np.ndarray
) -> float:
    """Latent-class posteriors q (n x k); log_theta[j, v + 1, y] = log P(vote v | class y)."""
    n, m = L.shape
    k = log_prior.shape[0]
    ll = np.zeros(n)
    for i in numba.prange(n):
        s = log_prior.copy()
        for j in range(m):
            v = L[i, j] + 1
            for y in range(k):
                s[y] += log_theta[j, v, y]
        ll[i] = _posterior(s, gold[i], q[i])
    return ll.sum()


@numba.njit(parallel=True, cache=True)
def _ds_m_step(LT: np.ndarray, q: np.ndarray, smoothing: float, log_theta: np.ndarray) -> None:
    """P(vote | class) per LF from expected counts (Dirichlet-smoothed)."""
    m, n = LT.shape
    k = q.shape[1]
    for j in numba.prange(m):
        counts = np.zeros((k + 1, k))
        for i in range(n):
            v = LT[j, i] + 1
            for y in range(k):
                counts[v, y] += q[i, y]
        for y in range(k):
            total = 0.0
            for v in range(k + 1):
                total += counts[v, y]
            for v in range(k + 1):
                log_theta[j, v, y] = np.log((counts[v, y] + smoothing) / (total + (k + 1) * smoothing))

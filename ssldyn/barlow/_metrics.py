r"""Measurements on Barlow Twins trajectories: embedding eigenvalues and step times."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import sym
from .._validation import as_array


def embedding_eigenvalues(W, Gamma) -> jax.Array:
    """Eigenvalues of `C = W Γ Wᵀ`, descending (works on stacks of W)."""
    W = as_array(W, "W", ndim=(2, 3, 4))
    Gamma = as_array(Gamma, "Gamma", ndim=2)
    return jnp.linalg.eigvalsh(sym(W @ Gamma @ jnp.swapaxes(W, -1, -2)))[..., ::-1]


def output_eigenvalues(R, B) -> jax.Array:
    """Eigenvalues of `C = Rᵀ B R`, descending (output space; works on stacks of R)."""
    R = as_array(R, "R", ndim=(2, 3, 4))
    B = as_array(B, "B", ndim=2)
    return jnp.linalg.eigvalsh(sym(jnp.swapaxes(R, -1, -2) @ B @ R))[..., ::-1]


def crossing_times(ts, values, level: float = 0.5) -> np.ndarray:
    r"""First time each column of `values` (n_times, k) crosses `level` upward, by linear interpolation.

    NaN for a column that never reaches `level`; `ts[0]` for one that starts at or above it.
    """
    ts = np.asarray(ts, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[0] != ts.shape[0]:
        raise ValueError(f"`values` must be (len(ts), k) = ({ts.shape[0]}, k), got shape {values.shape}.")
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        v = values[:, j]
        above = np.nonzero(v >= level)[0]
        if above.size == 0:
            continue
        i = above[0]
        if i == 0:
            out[j] = ts[0]
            continue
        out[j] = ts[i - 1] + (level - v[i - 1]) * (ts[i] - ts[i - 1]) / (v[i] - v[i - 1])
    return out

r"""Input–output statistics and aligned starts of the two-layer linear network (Saxe et al., ICLR 2014).

Row layout: `ŷ = W2 W1 x` with `W1 ∈ R^{h×d}`, `W2 ∈ R^{o×h}`; data one sample per row.

- `io_correlation(X, Y)`: `Σ_yx = Yᵀ X / n` (the input must be whitened, `XᵀX/n = I`, for the flow
  of `_flows` to be the gradient flow of the sample loss);
- `io_modes(Σ_yx, r)`: the top-r singular triplets `(s, U, V)`, `Σ_yx = U diag(s) Vᵀ`;
- `aligned_init(Σ_yx, a1, a2)`: `W1 = diag(a1) V_rᵀ`, `W2 = U_r diag(a2)` (h = r hidden units).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_array, check_rank_k, check_same_rows, is_concrete


def io_correlation(X, Y) -> jax.Array:
    """`Σ_yx = Yᵀ X / n` from samples (rows); X should be whitened (`XᵀX/n = I`)."""
    X = as_array(X, "X", ndim=2)
    Y = as_array(Y, "Y", ndim=2)
    n = check_same_rows({"X": X, "Y": Y})
    return Y.T @ X / n


def io_modes(Sigma_yx, r: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Top-r singular triplets of `Σ_yx` (o, d): `(s (r,), U (o, r), V (d, r))`, s descending and positive."""
    S = as_array(Sigma_yx, "Sigma_yx", ndim=2, nonempty=True)
    r = check_rank_k(r, min(S.shape), "r")
    U, s, Vt = jnp.linalg.svd(S, full_matrices=False)
    s, U, V = s[:r], U[:, :r], Vt[:r].T
    if is_concrete(s) and not np.all(np.asarray(s) > 0):
        raise ValueError(f"`Sigma_yx` must have r = {r} positive singular values, got {np.asarray(s)}.")
    return s, U, V


def aligned_init(Sigma_yx, a1, a2) -> tuple[jax.Array, jax.Array]:
    r"""Aligned start `W1 = diag(a1) V_rᵀ`, `W2 = U_r diag(a2)`; r = len(a1) modes, h = r hidden units.

    **Arguments:** `Sigma_yx` (o, d); `a1`, `a2` (r,) per-mode strengths of the two layers (equal for a
    balanced start; `a1 a2 > 0`).
    """
    a1 = as_array(a1, "a1", ndim=1)
    a2 = as_array(a2, "a2", ndim=1)
    if a1.shape != a2.shape:
        raise ValueError(f"`a1` and `a2` must have the same shape, got {tuple(a1.shape)} and {tuple(a2.shape)}.")
    _, U, V = io_modes(Sigma_yx, a1.shape[0])
    return a1[:, None] * V.T, U * a2[None, :]

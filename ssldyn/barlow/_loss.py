r"""The linear Barlow Twins objective with an off-diagonal weight (Simon et al., ICML 2023).

    L(W) = Σ_a (C_aa − 1)² + λ_off Σ_{a≠b} C_ab²,     C = W Γ Wᵀ   (k×k),

a **sum** (no ½), no batch normalisation, no centring; `λ_off = 1` gives `‖WΓWᵀ − I‖_F²`, the loss of
the paper's theory. Its Euclidean gradient is `∇_W L = 4 (M ⊙ (C − I)) W Γ` with `M_aa = 1`,
`M_ab = λ_off`, so the gradient flow on `t = η·steps` is `dW/dt = −4 (M ⊙ (C − I)) W Γ`
(`BarlowFlow`).

- `barlow_loss(W, Gamma)`: the population form (given Γ);
- `barlow_pair_loss(W, X1, X2)`: the same loss from the views, with the symmetrised batch
  cross-correlation `C = (ZᵀZ' + Z'ᵀZ)/(2n)` (equal to `barlow_loss(W, pair_correlation(X1, X2))`);
- `barlow_output_loss(R, B)`: the output-space form, `C = Rᵀ B R` (`R = Φ Wᵀ` stacked outputs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import sym
from .._validation import as_array, check_positive, check_same_cols, check_same_rows


def check_off_diagonal(off_diagonal) -> jax.Array:
    """The off-diagonal weight λ_off ≥ 0 as an array (raises naming `off_diagonal`)."""
    check_positive(off_diagonal, "off_diagonal", allow_zero=True)
    return jnp.asarray(off_diagonal, dtype=jnp.result_type(float))


def weighted_residual(C, off_diagonal) -> jax.Array:
    """`M ⊙ (C − I)`: the residual with off-diagonal entries weighted by λ_off."""
    E = C - jnp.eye(C.shape[-1], dtype=C.dtype)
    diag = jnp.diagonal(E, axis1=-2, axis2=-1)
    return off_diagonal * E + (1.0 - off_diagonal) * (diag[..., :, None] * jnp.eye(C.shape[-1], dtype=C.dtype))


def correlation_loss(C, off_diagonal=1.0) -> jax.Array:
    """`Σ_a (C_aa − 1)² + λ_off Σ_{a≠b} C_ab²` of a (k, k) cross-correlation (sum, no ½)."""
    E = C - jnp.eye(C.shape[-1], dtype=C.dtype)
    on = jnp.sum(jnp.diagonal(E, axis1=-2, axis2=-1) ** 2, axis=-1)
    return on + off_diagonal * (jnp.sum(E**2, axis=(-2, -1)) - on)


def barlow_loss(W, Gamma, *, off_diagonal=1.0) -> jax.Array:
    r"""Linear Barlow Twins loss `Σ_a (C_aa − 1)² + λ_off Σ_{a≠b} C_ab²`, `C = W Γ Wᵀ`.

    **Arguments:** `W` (k, d); `Gamma` (d, d) symmetric; `off_diagonal` λ_off ≥ 0 (1: `‖C − I‖_F²`).

    References: Simon et al., *On the Stepwise Nature of Self-Supervised Learning*, ICML 2023;
    Zbontar et al., ICML 2021 (the Barlow Twins objective).
    """
    W = as_array(W, "W", ndim=2)
    Gamma = as_array(Gamma, "Gamma", ndim=2)
    lam = check_off_diagonal(off_diagonal)
    return correlation_loss(W @ sym(Gamma) @ W.T, lam)


def barlow_pair_loss(W, X1, X2, *, off_diagonal=1.0) -> jax.Array:
    r"""The loss from views: `C = (ZᵀZ' + Z'ᵀZ)/(2n)`, `Z = X1 Wᵀ`, `Z' = X2 Wᵀ` (symmetrised, uncentred)."""
    W = as_array(W, "W", ndim=2)
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    n = check_same_rows({"X1": X1, "X2": X2})
    check_same_cols({"X1": X1, "X2": X2, "W": W})
    lam = check_off_diagonal(off_diagonal)
    Z, Zp = X1 @ W.T, X2 @ W.T
    return correlation_loss(sym(Z.T @ Zp) / n, lam)


def barlow_output_loss(R, B, *, off_diagonal=1.0) -> jax.Array:
    r"""The loss in output space, `C = Rᵀ B R` (R: (m, k) stacked outputs of both views; B: `pair_operator`)."""
    R = as_array(R, "R", ndim=2)
    B = as_array(B, "B", ndim=2)
    lam = check_off_diagonal(off_diagonal)
    return correlation_loss(R.T @ sym(B) @ R, lam)

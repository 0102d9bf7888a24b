r"""Losses of the dimensional-collapse toy (Jing et al., ICLR 2022).

- `dot_info_nce((W, b), X1, X2, τ)`: InfoNCE with dot-product logits `ℓ_ij = z_i⁽¹⁾·z_j⁽²⁾/τ`,
  cross-entropy over rows (view 1 as anchors), **mean** over the N anchors, gradients through both
  views: `L = mean_i [logsumexp_j ℓ_ij − ℓ_ii]`.
- `distance_info_nce(W, X1, X2, τ)`: the same with distance logits `ℓ_ij = −‖z_i − z'_j‖²/(2τ)`, no
  bias (the form in which the paper writes its mechanism).
- `gaussian_info_nce(W, C+, C0, τ)`: the infinite-negative limit of `dot_info_nce` for centred
  Gaussian views with negatives from the view marginal, up to a constant:
  `L = −tr(W C+ Wᵀ)/τ + ‖W C0 Wᵀ‖_F²/(2τ²)`. (log E exp(u) = Var(u)/2 for a centred Gaussian u; the
  bias only adds `bᵀ(WC0Wᵀ)b/(2τ²) ≥ 0`, so it decays to 0 and is dropped.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import sym
from .._validation import as_array, check_positive, check_same_rows


def _check_temperature(temperature):
    check_positive(temperature, "temperature")


def dot_logits(params, X1, X2, temperature) -> jax.Array:
    W, b = params
    return (X1 @ W.T + b) @ (X2 @ W.T + b).T / temperature


def _ce_rows(logits):
    return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits))


def _checked_views(X1, X2, temperature):
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    check_same_rows({"X1": X1, "X2": X2})
    _check_temperature(temperature)
    return X1, X2


def dot_info_nce(params, X1, X2, temperature) -> jax.Array:
    r"""InfoNCE with dot-product logits `z⁽¹⁾z⁽²⁾ᵀ/τ`, `z = Wx + b`; mean over anchors (rows of X1)."""
    X1, X2 = _checked_views(X1, X2, temperature)
    return _ce_rows(dot_logits(params, X1, X2, temperature))


def distance_logits(W, X1, X2, temperature) -> jax.Array:
    Z1, Z2 = X1 @ W.T, X2 @ W.T
    sq = jnp.sum(Z1**2, 1)[:, None] + jnp.sum(Z2**2, 1)[None, :] - 2 * Z1 @ Z2.T
    return -sq / (2 * temperature)


def distance_info_nce(W, X1, X2, temperature) -> jax.Array:
    r"""InfoNCE with distance logits `−‖z_i − z'_j‖²/(2τ)`, `z = Wx`; mean over anchors."""
    X1, X2 = _checked_views(X1, X2, temperature)
    return _ce_rows(distance_logits(W, X1, X2, temperature))


def gaussian_info_nce(W, C_pos, C0, temperature) -> jax.Array:
    r"""Infinite-negative Gaussian InfoNCE, `−tr(WC+Wᵀ)/τ + ‖WC0Wᵀ‖_F²/(2τ²)` (+ const)."""
    W = as_array(W, "W", ndim=2)
    _check_temperature(temperature)
    S = W @ sym(C0) @ W.T
    return -jnp.sum(W * (W @ sym(C_pos))) / temperature + jnp.sum(S**2) / (2 * temperature**2)

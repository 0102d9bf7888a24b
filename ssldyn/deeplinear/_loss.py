r"""The squared-error loss of the two-layer linear network with whitened input (Saxe et al., ICLR 2014).

    L(W1, W2) = ½ E‖y − W2 W1 x‖² = ½‖Σ_yx − W2 W1‖_F² + const     (E[xxᵀ] = I; mean over samples, factor ½)

so `−∂L/∂W1 = W2ᵀ(Σ_yx − W2W1)`, `−∂L/∂W2 = (Σ_yx − W2W1)W1ᵀ`, time `t = η·steps` (the paper's time
constant τ = 1/η is absorbed into t).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._validation import as_array, check_same_rows


def deep_linear_loss(params, Sigma_yx) -> jax.Array:
    r"""`½‖Σ_yx − W2 W1‖_F²` (the population loss up to a constant); `params = (W1, W2)`."""
    W1, W2 = params
    return 0.5 * jnp.sum((Sigma_yx - W2 @ W1) ** 2)


def deep_linear_sample_loss(params, X, Y) -> jax.Array:
    r"""`½ mean_i ‖y_i − W2 W1 x_i‖²` over samples (rows of X, Y)."""
    X = as_array(X, "X", ndim=2)
    Y = as_array(Y, "Y", ndim=2)
    check_same_rows({"X": X, "Y": Y})
    W1, W2 = params
    return 0.5 * jnp.mean(jnp.sum((Y - X @ W1.T @ W2.T) ** 2, axis=1))

r"""Objectives of linear BYOL/SimSiam and IsoLoss on batches.

**Normalisation.** Every loss is a mean over samples and a sum over output coordinates, with the
explicit ½ of the papers:

    Euclidean BYOL:  L = ½ (1/n) Σ_i ‖z_pred,i − SG(z_target,i)‖²
    IsoLoss:         L = ½ (1/n) Σ_i ‖z_i − SG(z⁺_i + z_i − P(z_i))‖²        (same value as BYOL)
    linear BYOL:     L = ½ (1/n) Σ_i ‖W_p W x₁ᵢ − SG(W_a x₂ᵢ)‖²,  averaged over the two view orders,

so that the symmetrised linear loss is, through the moments of `ViewStats`,
`½ tr(W_p W C0 Wᵀ W_pᵀ) − tr(W_p W C+ W_aᵀ) + ½ tr(W_a C0 W_aᵀ)` and its gradients are the
vector fields of `LinearBYOLFlow`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validation import as_array


def euclidean_byol_loss(z_pred, z_target) -> Float[Array, ""]:
    r"""Euclidean BYOL/SimSiam loss on a batch, `½ (1/n) Σ_i ‖z_pred,i − SG(z_target,i)‖²`.

    **Arguments:** `z_pred` (n, k) predictor outputs of the online branch; `z_target` (n, k) target
    representations of the other view (stop-gradient applied here).

    **Returns:** a scalar.
    """
    z_pred = as_array(z_pred, "z_pred", ndim=2)
    z_target = as_array(z_target, "z_target", ndim=2)
    if z_pred.shape != z_target.shape:
        raise ValueError(f"`z_pred` and `z_target` must have equal shapes, got {z_pred.shape} and {z_target.shape}.")
    return 0.5 * jnp.mean(jnp.sum((z_pred - jax.lax.stop_gradient(z_target)) ** 2, axis=-1))


def isoloss(z_online, z_pred, z_target) -> Float[Array, ""]:
    r"""IsoLoss (Halvagal, Laborieux & Zenke 2023) on a batch:

        L = ½ (1/n) Σ_i ‖ z_i − SG( z⁺_i + z_i − P(z_i) ) ‖²,

    with `z` the online representation, `P(z)` the predictor output and `z⁺` the target of the other
    view. Its value equals `euclidean_byol_loss(P(z), z⁺)`; its gradient with respect to `z` is
    `(P(z) − z⁺)/n` — the predictor is bypassed in the backward pass, which equalises the per-mode
    convergence rates. No gradient reaches the predictor (use a closed-form predictor).

    **Arguments:** `z_online`, `z_pred`, `z_target`: (n, k) arrays.

    **Returns:** a scalar.
    """
    z = as_array(z_online, "z_online", ndim=2)
    zp = as_array(z_pred, "z_pred", ndim=2)
    zt = as_array(z_target, "z_target", ndim=2)
    if not (z.shape == zp.shape == zt.shape):
        raise ValueError(f"`z_online`, `z_pred`, `z_target` must have equal shapes, got {z.shape}, {zp.shape}, {zt.shape}.")
    anchor = jax.lax.stop_gradient(zt + z - zp)
    return 0.5 * jnp.mean(jnp.sum((z - anchor) ** 2, axis=-1))


def linear_byol_loss(W, Wp, Wa, X1, X2, *, symmetric: bool = True) -> Float[Array, ""]:
    r"""Batch loss of linear BYOL with a stop-gradient target:

        L = ½ (1/n) Σ_i ‖W_p W x₁ᵢ − SG(W_a x₂ᵢ)‖²,

    averaged over the two view orders when `symmetric` (then its gradients are those of
    `LinearBYOLFlow` with the batch `ViewStats`). Mean over samples, sum over coordinates, explicit ½.

    **Arguments:** `W` (k, d), `Wp` (k, k), `Wa` (k, d); `X1`, `X2` (n, d) the two views, one row per
    sample; `symmetric`: average over both view orders.

    **Returns:** a scalar.
    """
    W = as_array(W, "W", ndim=2)
    Wp = as_array(Wp, "Wp", ndim=2)
    Wa = as_array(Wa, "Wa", ndim=2)
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    if X1.shape != X2.shape or X1.shape[1] != W.shape[1]:
        raise ValueError(f"`X1` and `X2` must both be (n, {W.shape[1]}), got {tuple(X1.shape)} and {tuple(X2.shape)}.")

    def one(A, B):
        return euclidean_byol_loss(A @ W.T @ Wp.T, B @ Wa.T)

    return 0.5 * (one(X1, X2) + one(X2, X1)) if symmetric else one(X1, X2)

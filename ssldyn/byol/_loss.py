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
from ._model import predictor_matrix


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


STOP_GRADIENTS = ("target", "none", "online")
"""Where `predictor_population_loss` puts the stop-gradient."""


def predictor_population_loss(W, C0, Cp, *, stop_gradient: str = "target", exponent=0.5, eps=0.0,
                              normalize: bool = False) -> Float[Array, ""]:
    r"""Population Euclidean BYOL/SimSiam loss with a closed-form predictor and a chosen stop-gradient
    (Halvagal, Laborieux & Zenke 2023, Fig. 2: where the stop-gradient goes decides collapse):

        L = ½ E‖A x₁ − B x₂‖² = ½ tr(A C0 Aᵀ) − tr(A C+ Bᵀ) + ½ tr(B C0 Bᵀ),   A = W_p W,  B = W,

    with `W_p = g(W Wᵀ)` (`closed_form_predictor`) never differentiated, and

    - `"target"`: `B = SG(W)` (BYOL/SimSiam; its gradient flow is `ClosedFormPredictorFlow(loss="byol")`),
    - `"none"`: no stop-gradient (the target branch is differentiated too),
    - `"online"`: `A = SG(W_p W)` (the stop-gradient on the wrong branch).

    Its autodiff flow `GradientFlow(predictor_population_loss, args=...)` is the training dynamics of
    each variant. For `C+ = λI`, `C0 = (λ+λ')I` and an aligned state, per mode `ṡ = 2 s μ` (derived):

        target: μ = p(λ − p(λ+λ')),   none: μ = p(λ − p(λ+λ')) + pλ − (λ+λ'),   online: μ = pλ − (λ+λ'),

    so without a stop-gradient `μ = −(λ+λ')p² + 2λp − (λ+λ') < 0` for every p when λ' > 0 (every mode
    collapses), and with it on the wrong branch modes with `p > (λ+λ')/λ` diverge while the others
    collapse.

    **Arguments:** `W` (k, d); `C0`, `Cp` (d, d) view moments; `stop_gradient` in `STOP_GRADIENTS`;
    `exponent`, `eps`, `normalize`: the map g.

    **Returns:** a scalar.
    """
    if stop_gradient not in STOP_GRADIENTS:
        raise ValueError(f"`stop_gradient` must be one of {STOP_GRADIENTS}, got {stop_gradient!r}.")
    W = as_array(W, "W", ndim=2)
    C0 = as_array(C0, "C0", ndim=2)
    Cp = as_array(Cp, "Cp", ndim=2)
    if C0.shape != (W.shape[1], W.shape[1]) or Cp.shape != C0.shape:
        raise ValueError(f"`C0` and `Cp` must be ({W.shape[1]}, {W.shape[1]}), got {tuple(C0.shape)} and "
                         f"{tuple(Cp.shape)}.")
    sg = jax.lax.stop_gradient
    Wp = sg(predictor_matrix(0.5 * (W @ W.T + (W @ W.T).T), exponent, eps, normalize))
    A = Wp @ W
    B = W
    if stop_gradient == "target":
        B = sg(W)
    elif stop_gradient == "online":
        A = sg(A)
    return 0.5 * jnp.sum(A * (A @ C0)) - jnp.sum(A * (B @ Cp)) + 0.5 * jnp.sum(B * (B @ C0))

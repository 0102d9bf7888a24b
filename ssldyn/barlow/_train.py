r"""Training linear Barlow Twins step by step, on the time axis `t = η·steps`.

- `train_barlow_gd(W0, X1, X2, lr, n_steps)`: full-batch gradient descent on the views, the gradient
  taken by `jax.grad` of `barlow_pair_loss` (independent of the hand-written field of `BarlowFlow`);
  saves the embedding eigenvalues of `C = (ZᵀZ' + Z'ᵀZ)/(2n)` and the loss. Works for raw inputs
  (linear model) and for frozen hidden features `Φ1, Φ2` (one-hidden-layer network, output layer
  trained).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._linalg import sym
from .._training import TrainResult, check_loop, finite_result, run_steps
from .._validation import as_array, check_same_cols, check_same_rows
from ._loss import check_off_diagonal, correlation_loss


def _corr(W, X1, X2):
    Z, Zp = X1 @ W.T, X2 @ W.T
    return sym(Z.T @ Zp) / X1.shape[0]


@finite_result()
def train_barlow_gd(W0, X1, X2, lr, n_steps: int, *, save_every: int | None = None, off_diagonal=1.0,
                    include_initial: bool = True) -> TrainResult:
    r"""Full-batch GD on the linear Barlow Twins loss of the views (gradient by autodiff).

    **Arguments:** `W0` (k, d) or a stack (S, k, d) of starts (vmapped); `X1`, `X2` (n, d) views or
    frozen hidden features; `lr` η > 0; `n_steps`; `save_every`; `off_diagonal` λ_off ≥ 0;
    `include_initial`: save t = 0 too.

    **Returns:** `TrainResult` with `final` the weights and `saved = (eigenvalues (…, n_save, k)
    descending, loss (…, n_save))` on `ts = η·steps`.
    """
    W0 = as_array(W0, "W0", ndim=(2, 3))
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    check_same_rows({"X1": X1, "X2": X2})
    check_same_cols({"X1": X1, "X2": X2, "W0": W0})
    if W0.shape[-2] > X1.shape[1]:
        raise ValueError(f"`W0` must have k <= d = {X1.shape[1]} rows, got k = {W0.shape[-2]}.")
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    lam = check_off_diagonal(off_diagonal)
    fn = jax.vmap(_train, in_axes=(0, None, None, None, None, None, None, None)) if W0.ndim == 3 else _train
    return fn(W0, X1, X2, jnp.asarray(lr, W0.dtype), lam, n_steps, save_every, bool(include_initial))


@eqx.filter_jit
def _train(W0, X1, X2, lr, lam, n_steps, save_every, include_initial):
    def loss(W):
        return correlation_loss(_corr(W, X1, X2), lam)

    grad = jax.grad(loss)

    def step(W, _):
        return W - lr * grad(W)

    def save(W):
        C = _corr(W, X1, X2)
        return jnp.linalg.eigvalsh(C)[::-1], correlation_loss(C, lam)

    return run_steps(step, W0, lr=lr, n_steps=n_steps, save_every=save_every, save_fn=save,
                     final_fn=lambda W: W, include_initial=include_initial)

r"""The closed population flow of Wen & Li's two-neuron network with a prediction head (theory §3).

With `t = η·steps` and `ρ = η_E/η`, the flow is `dθ/dt = ∇J` with the stop-gradient copy `(ā, q̄)`
evaluated at `(a, q)`:

    da/dt = ∂J/∂a,    dq/dt = q (Γ + Γᵀ) + (Γ + Γᵀ) q  (Γ = ∂J/∂q, entries independent),
    dE_jr/dt = ρ ∂J/∂E_jr  (j ≠ r).

`HeadFlow` integrates these 9 variables; `HeadWeightFlow` integrates `W` itself with `dW/dt = ∇_W J`
by autodiff (the two agree to solver tolerance). Both are autonomous: `vector_field` ignores `t`.
BN makes the online part of J invariant to `W → cW`, so `‖W‖_F²` is conserved (each `‖w_j‖²`
separately when the head is frozen).
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float

from .._flows import AbstractFlow
from .._linalg import as_hyper
from .._validation import as_array, is_concrete
from ._loss import objective
from ._model import HeadData, HeadState, check_model


class _HeadFlowBase(AbstractFlow):
    model: HeadData
    lr_ratio: Float[Array, ""]
    stop_gradient: bool = eqx.field(static=True)

    def __init__(self, model: HeadData, *, lr_ratio=1.0, stop_gradient: bool = True):
        check_model(model)
        self.model = model
        self.lr_ratio = as_hyper(lr_ratio, "lr_ratio")
        self.stop_gradient = bool(stop_gradient)

    def _J(self, a, q, e):
        ab, qb = (jax.lax.stop_gradient(a), jax.lax.stop_gradient(q)) if self.stop_gradient else (a, q)
        return objective(self.model, a, q, e, ab, qb)


class HeadFlow(_HeadFlowBase):
    r"""The closed 9-variable population flow of Wen & Li's two-neuron network (theory §3):

        da/dt = ∂J/∂a,  dq/dt = q(Γ + Γᵀ) + (Γ + Γᵀ)q,  de/dt = ρ ∂J/∂e,

    gradients taken with the target copy (ā, q̄) held fixed (stop-gradient) and then evaluated at
    (a, q). `lr_ratio = 0` freezes the head (the no-head arm, with `e(0) = 0`, i.e. `E = I`).

    **Arguments:**
    - `model`: a `HeadData`.
    - `lr_ratio`: ρ = η_E/η ≥ 0.
    - `stop_gradient`: False differentiates through the target branch too (ablation).

    **State:** `HeadState(a, q, e)`. `loss(y) = −J`.

    References: Z. Wen, Y. Li, NeurIPS 2022 (arXiv:2205.06226).
    """

    def vector_field(self, t, y: HeadState) -> HeadState:
        a, q, e = y
        ga, gq, ge = jax.grad(self._J, argnums=(0, 1, 2))(a, q, e)
        G = gq + gq.T
        return HeadState(ga, q @ G + G @ q, self.lr_ratio * ge)

    def loss(self, y: HeadState) -> Float[Array, ""]:
        return -objective(self.model, y[0], y[1], y[2], y[0], y[1])

    def check_initial(self, y0) -> HeadState:
        if not (isinstance(y0, (tuple, list)) and len(y0) == 3):
            raise TypeError("`y0` must be a HeadState (a, q, e) or a 3-tuple of arrays.")
        a = as_array(y0[0], "y0.a", ndim=2)
        q = as_array(y0[1], "y0.q", ndim=2)
        e = as_array(y0[2], "y0.e", ndim=1)
        if a.shape != (2, 2) or q.shape != (2, 2) or e.shape != (2,):
            raise ValueError(f"`y0` must hold a (2, 2), q (2, 2), e (2,), got {a.shape}, {q.shape}, {e.shape}.")
        if is_concrete(q):
            if not np.allclose(np.asarray(q), np.asarray(q).T):
                raise ValueError("`y0.q` must be symmetric (a Gram matrix).")
            if float(np.min(np.linalg.eigvalsh(np.asarray(q)))) < -1e-12 * max(1.0, float(np.max(np.abs(np.asarray(q))))):
                raise ValueError("`y0.q` must be positive semi-definite (a Gram matrix).")
        return HeadState(a, q, e)


class HeadWeightFlow(_HeadFlowBase):
    r"""The same population flow integrated in weight space: `dW/dt = ∇_W J`, `de/dt = ρ ∂J/∂e`,
    with `a = W[:2]`, `q = W[2:]ᵀ W[2:]` (the features are the first two coordinates) and the target
    copy held fixed. Equal to `HeadFlow` through `head_state_from_weights`; gradient descent on it
    (`ssldyn.simulate_gd`) is full-population GD on the network.

    **Arguments:** as `HeadFlow`. **State:** `(W, e)` with `W` (d, 2), `e` (2,).

    References: Z. Wen, Y. Li, NeurIPS 2022 (arXiv:2205.06226).
    """

    def _split(self, W):
        return W[:2], W[2:].T @ W[2:]

    def vector_field(self, t, y: tuple[Float[Array, "d 2"], Float[Array, "2"]]
                     ) -> tuple[Float[Array, "d 2"], Float[Array, "2"]]:
        W, e = y
        gW, ge = jax.grad(lambda W, e: self._J(*self._split(W), e), argnums=(0, 1))(W, e)
        return gW, self.lr_ratio * ge

    def loss(self, y: tuple[Float[Array, "d 2"], Float[Array, "2"]]) -> Float[Array, ""]:
        a, q = self._split(y[0])
        return -objective(self.model, a, q, y[1], a, q)

    def check_initial(self, y0) -> tuple[Float[Array, "d 2"], Float[Array, "2"]]:
        if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
            raise TypeError("`y0` must be a tuple (W, e).")
        W = as_array(y0[0], "y0[0]", ndim=2)
        e = as_array(y0[1], "y0[1]", ndim=1)
        if W.shape != (self.model.d, 2) or e.shape != (2,):
            raise ValueError(f"`y0` must be (W ({self.model.d}, 2), e (2,)), got {W.shape} and {e.shape}.")
        return (W, e)

r"""Exact solutions of the quadratic flows, built once and evaluated at any time t ≥ 0.

Like `neural_tangents.predict`, each constructor factorises once (one eigendecomposition of S) and
returns an object whose methods are functions of `t` (vmap over `t` for many times).

With `S = Σ_j μ_j u_j u_jᵀ`, `μ_1 ≥ … ≥ μ_d`, and `C = UᵀW(0)`:

- naive flow `dW/dt = 2SW − ωW`:      `W(t) = e^{−ωt} U diag(e^{2tμ}) C`;
- Oja/Grassmann flow `dW/dt = 2(I − WWᵀ)SW`: `P(t) = W Wᵀ` is the projector onto `span(e^{2tS} W(0))`
  (Yan, Helmke & Moore 1994);
- k = 1: `w(t) = e^{2tS} w(0) / ‖e^{2tS} w(0)‖` exactly.

**Stable evaluation of P(t).** Orthonormalising `e^{2tS}W(0)` directly fails once
`e^{2t(μ_1−μ_k)}` exceeds ~1e16: the columns become numerically parallel (a spurious collapse).
We use graph coordinates instead. Split `C = [C_top; C_rest]` (top-k modes first) and right-multiply
the spanning matrix by the invertible `C_top^{-1} diag(e^{−2tμ_top})`, which does not change the span:

    span(e^{2tS}W(0)) = U · span([I_k ; E(t)]),   E(t)_{ij} = e^{2t(μ_{k+i} − μ_j)} (C_rest C_top^{-1})_{ij}.

Every exponent is ≤ 0 for t ≥ 0, so nothing overflows at any t, and `E(t) → 0` gives the limit
`U_k U_kᵀ` at rate `e^{−2(μ_k − μ_{k+1})t}`. The cost per evaluation is O(d k²) plus one O(d² k)
rotation. It needs `C_top` invertible (`W(0)` not orthogonal to a top-k direction), which holds for
a generic start; the constructor checks the smallest cosine of the principal angles, σ_min(C_top).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._manifolds import qf
from ._stats import sym
from ._validation import as_array, check_orthonormal_columns, check_positive, check_symmetric, is_concrete


def _eigh_desc(S):
    mu, U = jnp.linalg.eigh(sym(S))
    return mu[::-1], U[:, ::-1]


def _check_S_W0(S, W0):
    S = as_array(S, "S", ndim=2)
    check_symmetric(S, "S")
    W0 = as_array(W0, "W0", ndim=(1, 2))
    if W0.shape[0] != S.shape[0]:
        raise ValueError(f"`W0` must have {S.shape[0]} rows to match `S`, got shape {tuple(W0.shape)}.")
    return S, W0


def _check_t(t):
    if is_concrete(t) and np.any(np.asarray(t) < 0):
        raise ValueError(f"`t` must be >= 0, got {t}.")
    return jnp.asarray(t)


class NaiveSolution(eqx.Module):
    r"""Closed form of the naive flow `dW/dt = 2SW − ωW`: `W(t) = e^{−ωt} e^{2tS} W(0)`.

    **Arguments:** `S` symmetric (d, d); `W0` (d, k); `weight_decay` ω ≥ 0.

    Call it with a time `t` (≥ 0) to get `W(t)`. It overflows for `2μ_1 t` beyond ~700 (float64):
    that is the true solution growing, not a numerical artefact.
    """

    mu: jax.Array
    U: jax.Array
    C: jax.Array
    weight_decay: jax.Array

    def __init__(self, S, W0, *, weight_decay=0.0):
        S, W0 = _check_S_W0(S, W0)
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        self.mu, self.U = _eigh_desc(S)
        self.C = self.U.T @ W0
        self.weight_decay = jnp.asarray(weight_decay, dtype=S.dtype)

    def __call__(self, t):
        t = _check_t(t)
        scale = jnp.exp(2.0 * t * self.mu - self.weight_decay * t)
        return self.U @ (scale[:, None] * self.C)


class GrassmannSolution(eqx.Module):
    r"""Closed form of the Oja/Grassmann flow `dW/dt = 2(I − WWᵀ)SW`, stable at every t ≥ 0.

    The flow's `W(t)` is defined by the ODE only up to a rotation `W ↦ WQ(t)`; this object gives the
    invariant quantities exactly: the projector `P(t) = W(t)W(t)ᵀ`, an orthonormal `basis(t)` of the
    same span (a rotation of `W(t)`), and the loss `−tr(P(t) S)`.

    **Arguments:** `S` symmetric (d, d); `W0` (d, k) with orthonormal columns.

    References: Yan, Helmke & Moore, *Global analysis of Oja's flow for neural networks*, IEEE TNN
    5(5), 1994; Esser, Mukherjee & Ghoshdastidar, TMLR 2024.
    """

    mu: jax.Array
    U: jax.Array
    G: jax.Array
    k: int = eqx.field(static=True)

    def __init__(self, S, W0, *, min_cosine: float = 1e-8):
        S, W0 = _check_S_W0(S, W0)
        if W0.ndim != 2:
            raise ValueError(f"`W0` must be a (d, k) matrix, got shape {tuple(W0.shape)}.")
        check_orthonormal_columns(W0, "W0")
        k = W0.shape[1]
        self.mu, self.U = _eigh_desc(S)
        C = self.U.T @ W0
        C_top = C[:k]
        if is_concrete(C_top):
            # σ_min(U_kᵀW0) is the cosine of the largest principal angle to the top-k eigenspace.
            cos_max_angle = float(np.linalg.svd(np.asarray(C_top), compute_uv=False).min())
            if not cos_max_angle > min_cosine:
                raise ValueError(
                    f"`W0` is (nearly) orthogonal to the top-{k} eigenspace of `S` (smallest cosine of "
                    f"the principal angles = {cos_max_angle:.3g} <= {min_cosine:g}): the graph-coordinate "
                    "closed form is ill-conditioned. Integrate the flow with `ssldyn.solve` instead."
                )
        self.G = jnp.linalg.solve(C_top.T, C[k:].T).T
        self.k = k

    def _graph_basis(self, t):
        t = _check_t(t)
        k = self.k
        gaps = self.mu[k:, None] - self.mu[None, :k]
        E = jnp.exp(2.0 * t * gaps) * self.G
        Y = jnp.concatenate([jnp.eye(k, dtype=self.G.dtype), E], axis=0)
        return qf(Y)

    def basis(self, t):
        """An orthonormal (d, k) basis of the subspace at time t (equal to W(t) up to a rotation)."""
        return self.U @ self._graph_basis(t)

    def projector(self, t):
        """The projector `P(t) = W(t) W(t)ᵀ` (d, d)."""
        B = self.basis(t)
        return B @ B.T

    def loss(self, t):
        """`−tr(W(t)ᵀ S W(t)) = −Σ_j μ_j ‖row_j of the eigen-coordinate basis‖²`."""
        Q = self._graph_basis(t)
        return -jnp.sum(self.mu[:, None] * Q**2)

    def limit_projector(self):
        """`U_k U_kᵀ`, the projector onto the top-k eigenspace (the t → ∞ limit)."""
        Uk = self.U[:, : self.k]
        return Uk @ Uk.T


class PowerFlowSolution(eqx.Module):
    r"""Exact solution of the k = 1 constrained flow `dw/dt = 2(I − wwᵀ)Sw`, `‖w‖ = 1`:

        w(t) = e^{2tS} w(0) / ‖e^{2tS} w(0)‖,

    evaluated as `U (e^{2t(μ − μ_1)} ⊙ c) / ‖·‖` so it never overflows. For k = 1 the rotation
    ambiguity is only a sign, fixed by continuity, so this is `w(t)` itself, not just its span.

    **Arguments:** `S` symmetric (d, d); `w0` unit vector (d,) or (d, 1).
    """

    mu: jax.Array
    U: jax.Array
    c: jax.Array
    column: bool = eqx.field(static=True)

    def __init__(self, S, w0):
        S, w0 = _check_S_W0(S, w0)
        column = w0.ndim == 2
        if column and w0.shape[1] != 1:
            raise ValueError(f"`w0` must be a vector (d,) or (d, 1), got shape {tuple(w0.shape)}.")
        w0 = w0.reshape(-1)
        if is_concrete(w0):
            norm = float(np.linalg.norm(np.asarray(w0)))
            if abs(norm - 1.0) > (1e-10 if w0.dtype == jnp.float64 else 1e-5):
                raise ValueError(f"`w0` must be a unit vector, got norm {norm:.6g}.")
        self.mu, self.U = _eigh_desc(S)
        self.c = self.U.T @ w0
        self.column = column

    def __call__(self, t):
        t = _check_t(t)
        v = jnp.exp(2.0 * t * (self.mu - self.mu[0])) * self.c
        w = self.U @ (v / jnp.linalg.norm(v))
        return w[:, None] if self.column else w

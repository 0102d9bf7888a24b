r"""Flows of the dimensional-collapse toy (Jing et al., ICLR 2022): infinite-negative Gaussian flow,
frozen-minibatch flow, and the paper's frozen-softmax (X-matrix) mechanism with its closed form.

**Infinite negatives** (`GaussianInfoNCEFlow`, gradient flow of `gaussian_info_nce`):

    dW/dt = (2/τ) W C+ − (2/τ²) (W C0 Wᵀ) W C0.

At a full-rank (k = d) stationary point `C+ = C0 WᵀW C0/τ`, so `WᵀW = τ C0⁻¹ C+ C0⁻¹`
(`stationary_gram`): the embedding covariance over clean inputs (Σ_x = C+ = I in the toy) has
eigenvalues τ on the clean and `τ/(1 + σ_aug²)²` on the noised coordinates (`stationary_spectrum`).

**Frozen minibatches** (`frozen_minibatch_flow`): the gradient flow (`ssldyn.GradientFlow`, autodiff)
of the mean `dot_info_nce` over a fixed ensemble of sampled batches (inputs and augmentation noise
frozen): the deterministic counterpart of SGD.

**The paper's mechanism** (`mechanism_matrix`, `FrozenXFlow`, `FrozenXSolution`). With distance logits
and the softmax weights α held fixed, the mean loss over N anchors has

    dW/dt = W X / (N τ),   X = Σ_i [ Σ_{j≠i} α_ij D_ij − (1 − α_ii) D_ii ],   D_ij = (x'_j − x_i)(x'_j − x_i)ᵀ,

i.e. `X = X2ᵀ diag(Σ_i α_ij) X2 − X2ᵀαᵀX1 − X1ᵀαX2 + X1ᵀX1 − (X2 − X1)ᵀ(X2 − X1)`; with X frozen,
`W(t) = W(0) e^{tX/(Nτ)}`.

References: L. Jing, P. Vincent, Y. LeCun, Y. Tian. *Understanding Dimensional Collapse in Contrastive
Self-supervised Learning.* ICLR 2022 (arXiv:2110.09348).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._flows import AbstractFlow, GradientFlow
from .._linalg import sym, symmetric_pair
from .._solution import AbstractSolution
from .._validation import (all_finite, as_array, check_choice, check_positive, check_symmetric, check_time,
                           in_trace)
from ._loss import _ce_rows, distance_logits, dot_logits, gaussian_info_nce


class GaussianInfoNCEFlow(AbstractFlow):
    r"""Infinite-negative InfoNCE flow `dW/dt = (2/τ)WC+ − (2/τ²)(WC0Wᵀ)WC0` (field by hand).

    **Arguments:** `C_pos` (d, d) cross-view covariance C+; `C0` (d, d) view covariance; `temperature` τ > 0.
    State: W (k, d).
    """

    C_pos: Float[Array, "d d"]
    C0: Float[Array, "d d"]
    temperature: Float[Array, ""]

    def __init__(self, C_pos, C0, temperature):
        self.C_pos, self.C0 = symmetric_pair(C_pos, C0, ("C_pos", "C0"))
        check_positive(temperature, "temperature")
        self.temperature = jnp.asarray(temperature, jnp.result_type(float))

    def vector_field(self, t, W):
        tau = self.temperature
        WC0 = W @ self.C0
        return (2 / tau) * W @ self.C_pos - (2 / tau**2) * (WC0 @ W.T) @ WC0

    def loss(self, W):
        return gaussian_info_nce(W, self.C_pos, self.C0, self.temperature)

    def check_initial(self, y0):
        W = as_array(y0, "y0", ndim=2)
        if W.shape[1] != self.C0.shape[0]:
            raise ValueError(f"`y0` must be (k, {self.C0.shape[0]}), got shape {tuple(W.shape)}.")
        return W


def stationary_gram(C_pos, C0, temperature) -> jax.Array:
    r"""`WᵀW = τ C0⁻¹ C+ C0⁻¹` at the full-rank (k = d) stationary point of `GaussianInfoNCEFlow`."""
    C_pos, C0 = symmetric_pair(C_pos, C0, ("C_pos", "C0"))
    check_positive(temperature, "temperature", scalar=True)
    inv = jnp.linalg.inv(C0)
    G = temperature * sym(inv @ C_pos @ inv)
    if not in_trace(G) and not all_finite(G):
        raise ValueError("`C0` must be invertible (a positive-definite covariance): its inverse is not finite.")
    return G


def stationary_spectrum(C_pos, C0, temperature, Sigma_x=None) -> jax.Array:
    r"""Eigenvalues (descending) of the stationary embedding covariance `W Σ_x Wᵀ` (default Σ_x = C+)."""
    G = stationary_gram(C_pos, C0, temperature)
    S = as_array(C_pos if Sigma_x is None else Sigma_x, "Sigma_x", ndim=2)
    if S.shape != G.shape:
        raise ValueError(f"`Sigma_x` must have the shape {tuple(G.shape)} of `C0`, got {tuple(S.shape)}.")
    ev, P = jnp.linalg.eigh(sym(S))
    root = (P * jnp.sqrt(jnp.clip(ev, 0.0))) @ P.T
    return jnp.linalg.eigvalsh(sym(root @ G @ root))[::-1]


def _frozen_loss(params, args):
    X1b, X2b, tau = args
    return jnp.mean(jax.vmap(lambda a, b: _ce_rows(dot_logits(params, a, b, tau)))(X1b, X2b))


def frozen_minibatch_flow(X1_batches, X2_batches, temperature) -> GradientFlow:
    r"""Gradient flow (autodiff) of the mean dot-product InfoNCE over a frozen ensemble of batches.

    **Arguments:** `X1_batches`, `X2_batches` (M, B, d): the two views of M sampled batches (noise
    included); `temperature` τ > 0. State: `(W (k, d), b (k,))`.
    """
    X1b = as_array(X1_batches, "X1_batches", ndim=3)
    X2b = as_array(X2_batches, "X2_batches", ndim=3)
    if X1b.shape != X2b.shape:
        raise ValueError(f"`X1_batches` and `X2_batches` must have the same shape, got {X1b.shape} and {X2b.shape}.")
    check_positive(temperature, "temperature")
    return GradientFlow(_frozen_loss, "euclidean", args=(X1b, X2b, jnp.asarray(temperature, X1b.dtype)))


def mechanism_matrix(W, X1, X2, temperature, *, b=None, logits: str = "distance") -> jax.Array:
    r"""The paper's X matrix (distance-logit form) with the current softmax weights.

    `α = softmax_rows(logits)`, with `logits="distance"` (`−‖z_i − z'_j‖²/(2τ)`, the setting in which
    `dW/dt = WX/(Nτ)` is exact) or `"dot"` (`z_i·z'_j/τ` with bias `b`, the weights the dot-product
    toy actually trains with). Returns X (d, d), symmetric.
    """
    W = as_array(W, "W", ndim=2)
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    check_positive(temperature, "temperature")
    check_choice(logits, "logits", ("distance", "dot"))
    if logits == "distance":
        ell = distance_logits(W, X1, X2, temperature)
    else:
        ell = dot_logits((W, jnp.zeros(W.shape[0], W.dtype) if b is None else b), X1, X2, temperature)
    alpha = jax.nn.softmax(ell, axis=1)
    col = jnp.sum(alpha, axis=0)
    A = (X2 * col[:, None]).T @ X2 - X2.T @ alpha.T @ X1 - X1.T @ alpha @ X2 + X1.T @ X1
    D = X2 - X1
    return sym(A - D.T @ D)


class FrozenXFlow(AbstractFlow):
    r"""The frozen-softmax linear flow `dW/dt = W X / (N τ)` (gradient flow of `−tr(WXWᵀ)/(2Nτ)`)."""

    X: Float[Array, "d d"]
    rate: Float[Array, ""]

    def __init__(self, X, n: int, temperature):
        X = as_array(X, "X", ndim=2)
        check_symmetric(X, "X")
        check_positive(n, "n")
        check_positive(temperature, "temperature")
        self.X = sym(X)
        self.rate = 1.0 / (jnp.asarray(n, X.dtype) * temperature)

    def vector_field(self, t, W):
        return self.rate * W @ self.X

    def loss(self, W):
        return -0.5 * self.rate * jnp.sum(W * (W @ self.X))


class FrozenXSolution(AbstractSolution):
    r"""`W(t) = W(0) e^{t X/(Nτ)}`, by one eigendecomposition of X."""

    W0: Float[Array, "k d"]
    mu: Float[Array, " d"]
    P: Float[Array, "d d"]

    def __init__(self, X, n: int, temperature, W0):
        flow = FrozenXFlow(X, n, temperature)
        self.W0 = as_array(W0, "W0", ndim=2)
        if self.W0.shape[1] != flow.X.shape[0]:
            raise ValueError(f"`W0` must be (k, {flow.X.shape[0]}), got shape {tuple(self.W0.shape)}.")
        mu, self.P = jnp.linalg.eigh(flow.X)
        self.mu = mu * flow.rate

    def evaluate(self, t):
        t = check_time(t)  # finite and >= 0 (concrete values)
        return ((self.W0 @ self.P) * jnp.exp(self.mu * t)[None, :]) @ self.P.T

r"""Gradient-flow vector fields of linearised SSL, all integrated by `ssldyn.solve`.

Every flow is an immutable `equinox.Module` with numeric hyperparameters stored as arrays, so a
sweep over them reuses one compilation. The one general mechanism is

    dW/dt = −grad_M L(W),     grad_M = tangent projection of the Euclidean gradient (see `_manifolds`),

used by `GradientFlow` (any differentiable loss, gradient by `jax.grad`) and by `QuadraticFlow`
(`L = −tr(WᵀSW) + (ω/2)‖W‖²`, gradient in closed form, optional eigenbasis fast path). The
output-space flows (`OutputFlow`) are the same weight flows pushed through `R = Φ W`.

Layouts: weights `W ∈ R^{d×k}` (column layout, `f(x) = Wᵀx`); outputs `R ∈ R^{m×k}` (one row per input).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._linalg import as_hyper, check_pair_matrix, kernel_root, sym
from ._manifolds import AbstractManifold, Euclidean, Grassmann, Sphere, get_manifold
from ._validation import (as_array, check_int, check_keys, check_positive, check_psd, check_square, check_symmetric,
                          in_trace, is_concrete)


_hyper = as_hyper  # old private name, kept for callers that have not moved yet


def _eigen_operator(S, eigenbasis: bool) -> tuple[jax.Array | None, jax.Array | None, jax.Array | None]:
    """Storage `(S, mu, U)` of a symmetric operator for a flow that may run in its eigenbasis.

    With `eigenbasis`, `S = U diag(mu) Uᵀ` is decomposed once (`jnp.linalg.eigh`) and `S` itself is
    dropped: `(None, mu, U)`; the flow's state is then `W̃ = UᵀW` and `S W` becomes `mu ⊙ W̃`.
    Otherwise `(S, None, None)`. `S` must already be symmetrised. Shared by `QuadraticFlow` and
    `LowRankOutputFlow`.
    """
    if eigenbasis:
        mu, U = jnp.linalg.eigh(S)
        return None, mu, U
    return S, None, None


class AbstractFlow(eqx.Module):
    """A vector field `dy/dt = vector_field(t, y)` with a loss and an initial-condition check.

    Subclasses may integrate in internal coordinates (e.g. an eigenbasis): `solve` maps the initial
    condition with `to_internal` and saved states back with `from_internal`.
    """

    @abc.abstractmethod
    def vector_field(self, t, y):
        """The right-hand side, in internal coordinates."""

    @abc.abstractmethod
    def loss(self, y) -> jax.Array:
        """The loss at a state `y` (in external coordinates)."""

    def check_initial(self, y0):
        """Validate and convert the initial condition (raises naming `y0`)."""
        return jax.tree_util.tree_map(lambda a: as_array(a, "y0"), y0)

    def to_internal(self, y):
        return y

    def from_internal(self, y):
        return y

    def restore(self, y):
        """Pull a state that drifted off the flow's constraint set back onto it (identity here).

        `solve` applies it after every accepted step (internal coordinates) and to every saved state
        (external coordinates), the standard projection method (Hairer, Lubich & Wanner, *Geometric
        Numerical Integration*, §IV.4): without it the drift of `WᵀW − I` grows like `e^{4|μ|t}` when
        the loss has negative curvature along the subspace, and round-off alone reaches ~1e-6 in float32.
        A flow overriding it must keep its internal coordinates an orthogonal change of basis."""
        return y

    @property
    def manifold(self) -> AbstractManifold | None:
        """The weight manifold, for retraction GD (`simulate_gd`); None for output-space flows."""
        return None


class AbstractOperatorFlow(AbstractFlow):
    """A flow driven by one symmetric operator `S` (`W ↦ S W`) that it may store in its eigenbasis
    (`_eigen_operator`): then its state is `W̃ = UᵀW` and `S W` becomes `μ ⊙ W̃`. Subclasses set
    `S, mu, U` with `_eigen_operator` in `__init__`; `to_internal`/`from_internal` map between the
    two coordinates (`solve` applies them), `_SW` applies the operator in internal coordinates and
    `_quadratic` is `−tr(Wᵀ S W)` at external coordinates. Shared by `QuadraticFlow` and
    `ssldyn.scaling.LowRankOutputFlow`."""

    S: Float[Array, "d d"] | None
    mu: Float[Array, " d"] | None
    U: Float[Array, "d d"] | None

    def _SW(self, W):
        return self.S @ W if self.S is not None else self.mu[:, None] * W

    def _quadratic(self, W):
        Wi = self.to_internal(W)
        return -jnp.sum(Wi * self._SW(Wi))

    def to_internal(self, W):
        return W if self.U is None else self.U.T @ W

    def from_internal(self, W):
        return W if self.U is None else self.U @ W


class QuadraticFlow(AbstractOperatorFlow):
    r"""Gradient flow of `L(W) = −tr(Wᵀ S W) + (ω/2)‖W‖_F²` on a manifold.

    The Euclidean gradient is `G = −2SW + ωW`; the flow is `dW/dt = −grad_M L`:

    - Euclidean (naive): `dW/dt = 2SW − ωW`, solution `e^{−ωt} e^{2tS} W(0)`;
    - sphere: `dW/dt = 2(SW − tr(WᵀSW) W)`;
    - Stiefel/Grassmann (Oja): `dW/dt = 2(I − WWᵀ) S W` (weight decay is normal to the manifold and
      drops out).

    **Eigenbasis fast path** (`eigenbasis=True`): with `S = U diag(μ) Uᵀ` computed once, the state is
    `W̃ = UᵀW` and `S W` becomes `μ ⊙ W̃`, so a step of the Oja flow costs O(d k²) instead of O(d² k).
    All four projections are equivariant under `W ↦ UW`, so this is the same flow in rotated
    coordinates.

    **Arguments:**
    - `S`: symmetric (d, d) matrix, e.g. `ViewStats.matrix("contrastive")`.
    - `manifold`: `"euclidean"`, `"sphere"`, `"stiefel"`, `"grassmann"` or an `AbstractManifold`.
    - `weight_decay`: ω ≥ 0.
    - `eigenbasis`: use the eigenbasis fast path.

    References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024; Yan, Helmke & Moore, IEEE TNN 1994.
    """

    weight_decay: Float[Array, ""]
    manifold_: AbstractManifold

    def __init__(self, S, *, manifold="grassmann", weight_decay=0.0, eigenbasis: bool = False):
        S = as_array(S, "S", ndim=2)
        check_square(S, "S")
        check_symmetric(S, "S")
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        self.manifold_ = get_manifold(manifold)
        self.S, self.mu, self.U = _eigen_operator(sym(S), eigenbasis)

    @classmethod
    def from_eigh(cls, mu, U=None, *, manifold="grassmann", weight_decay=0.0) -> QuadraticFlow:
        """The flow of `S = U diag(mu) Uᵀ` from an eigendecomposition already at hand (no `eigh` here),
        e.g. one shared by several solves. `U=None` means S = diag(mu): the state is then given and
        returned in the eigen-coordinates themselves, and a step costs O(d k²) with no (d, d) array.

        **Arguments:** `mu` (d,) real eigenvalues; `U` None or (d, d) with orthonormal columns (not
        checked: it comes from `jnp.linalg.eigh`); `manifold`, `weight_decay` as for the constructor."""
        mu = as_array(mu, "mu", ndim=1, nonempty=True)
        if U is not None:
            U = as_array(U, "U", ndim=2)
            if U.shape != (mu.shape[0], mu.shape[0]):
                raise ValueError(f"`U` must be ({mu.shape[0]}, {mu.shape[0]}) to match `mu`, got {tuple(U.shape)}.")
        flow = cls(jnp.zeros((1, 1), mu.dtype), manifold=manifold, weight_decay=weight_decay)
        return eqx.tree_at(lambda f: (f.S, f.mu, f.U), flow, (None, mu, U), is_leaf=lambda x: x is None)

    @property
    def manifold(self) -> AbstractManifold:
        return self.manifold_

    @property
    def dim(self) -> int:
        return self.S.shape[0] if self.S is not None else self.mu.shape[0]

    def vector_field(self, t, W):
        G = -2.0 * self._SW(W) + self.weight_decay * W
        return -self.manifold_.project(W, G)

    def loss(self, W):
        return self._quadratic(W) + 0.5 * self.weight_decay * jnp.sum(W**2)

    def check_initial(self, y0):
        W = self.manifold_.check(as_array(y0, "y0"), "y0")  # an array (a nested list too), never a pytree
        if W.shape[0] != self.dim:
            raise ValueError(f"`y0` must have {self.dim} rows to match `S`, got shape {tuple(W.shape)}.")
        return W

    def restore(self, W):
        """The manifold's `restore` (valid in both coordinates: `W ↦ UᵀW` is orthogonal)."""
        return self.manifold_.restore(W)


def naive_flow(S, *, weight_decay=0.0, eigenbasis: bool = False) -> QuadraticFlow:
    """Naive Euclidean flow `dW/dt = 2SW − ωW` (collapses to rank one). See `QuadraticFlow`."""
    return QuadraticFlow(S, manifold=Euclidean(), weight_decay=weight_decay, eigenbasis=eigenbasis)


def sphere_flow(S, *, eigenbasis: bool = False) -> QuadraticFlow:
    """Sphere-normalised flow `dW/dt = 2(SW − tr(WᵀSW)W)` on `‖W‖_F = 1`. See `QuadraticFlow`."""
    return QuadraticFlow(S, manifold=Sphere(), eigenbasis=eigenbasis)


def grassmann_flow(S, *, eigenbasis: bool = False) -> QuadraticFlow:
    """Orthogonality-constrained (Oja/Grassmann) flow `dW/dt = 2(I − WWᵀ)SW`. See `QuadraticFlow`."""
    return QuadraticFlow(S, manifold=Grassmann(), eigenbasis=eigenbasis)


class GradientFlow(AbstractFlow):
    r"""Gradient flow of any differentiable loss on a manifold, by autodiff plus tangent projection:

        dW/dt = −grad_M [ L(W) + (ω/2)‖W‖_F² ],   G = jax.grad(L)(W) + ωW.

    **Arguments:**
    - `loss_fn`: `loss_fn(W)` or, when `args` is given, `loss_fn(W, args)`, returning a scalar. On
      the Euclidean manifold `W` may be any pytree of arrays (e.g. a tuple of layers).
      Pass data through `args` (a pytree of arrays): arrays captured in a closure are compiled in
      as constants, so a new closure means a new compilation.
    - `manifold`: `"euclidean"` (default), `"sphere"`, `"stiefel"`, `"grassmann"` or an instance.
    - `args`: optional pytree passed to `loss_fn`.
    - `weight_decay`: ω ≥ 0.

    Example: `GradientFlow(lambda W, a: info_nce_loss(a[0] @ W, a[1] @ W), "stiefel", args=(X, Xp))`.
    """

    loss_fn: Callable = eqx.field(static=True)
    manifold_: AbstractManifold
    args: Any
    weight_decay: Float[Array, ""]

    def __init__(self, loss_fn: Callable, manifold="euclidean", *, args=None, weight_decay=0.0):
        if not callable(loss_fn):
            raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}.")
        self.loss_fn = loss_fn
        self.manifold_ = get_manifold(manifold)
        self.args = args
        self.weight_decay = _hyper(weight_decay, "weight_decay")

    @property
    def manifold(self) -> AbstractManifold:
        return self.manifold_

    def _raw_loss(self, W):
        return self.loss_fn(W) if self.args is None else self.loss_fn(W, self.args)

    def loss(self, W):
        sq = sum(jnp.sum(leaf**2) for leaf in jax.tree_util.tree_leaves(W))
        return self._raw_loss(W) + 0.5 * self.weight_decay * sq

    def vector_field(self, t, W):
        G = jax.grad(self.loss)(W)
        return jax.tree_util.tree_map(jnp.negative, self.manifold_.project(W, G))

    def restore(self, W):
        """The manifold's `restore` (the identity on the Euclidean manifold, also for pytree states)."""
        return self.manifold_.restore(W)

    def check_initial(self, y0):
        W = self.manifold_.check(y0, "y0")
        if not in_trace(W, self.args):
            value = self.loss(W)
            if not hasattr(value, "shape") or jnp.ndim(value) != 0:
                got = f"shape {tuple(jnp.shape(value))}" if hasattr(value, "shape") else type(value).__name__
                raise TypeError(f"`loss_fn` must return a scalar (the loss), got {got} at `y0`; sum or average it "
                                "(e.g. `jnp.sum(...)`).")
            if jnp.iscomplexobj(value):
                raise TypeError(f"`loss_fn` must return a real scalar, got dtype {value.dtype}.")
            value = float(value)
            if not np.isfinite(value):
                raise ValueError(f"`loss_fn` is not finite at `y0` (got {value}).")
        return W


class OutputFlow(AbstractFlow):
    r"""Width-independent output-space flow of `f(x) = Wᵀ φ(Vx)` with `V` frozen (rows: `R = Φ W`).

    Pushing the weight flow through `R = ΦW` (Φ ∈ R^{m×h} hidden features of the m stacked inputs,
    `K = ΦΦᵀ`, `L = −tr(RᵀBR)`) gives, in row layout,

        constrained (W on the Stiefel manifold):   dR/dt = 2 (K − R Rᵀ) B R
        naive (unconstrained):                      dR/dt = 2 K B R − ω R

    Representations of unseen inputs `R* = Φ* W` follow from the same weight flow, with
    `K* = Φ* Φᵀ` (m*, m) the cross kernel:

        constrained:   dR*/dt = 2 (K* B R − R* Rᵀ B R)
        naive:         dR*/dt = 2 K* B R − ω R*

    (this is the output ODE on the joint set of inputs with `B` padded by zeros). The state is
    `R` (m, k), or the tuple `(R, R_test)` when `K_test` is given: its size never depends on the
    width h, which enters only through `K`, `K*` and `R(0) = Φ W(0)`.

    With `K` replaced by a neural tangent kernel Θ, the naive form is the NTK-linearised function-space
    dynamics `dR/dt = 2 Θ B R` (see `ntk_flow`).

    **Arguments:**
    - `B`: symmetric (m, m) pair matrix (`pair_matrix`).
    - `K`: symmetric (m, m) kernel (hidden-feature Gram, an infinite-width kernel, or an NTK).
    - `K_test`: optional (m*, m) cross kernel to unseen inputs.
    - `constrained`: orthogonality-constrained (default) or naive dynamics.
    - `weight_decay`: ω ≥ 0, naive dynamics only.

    References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024 (width-independent dynamics; the
    joint test-point form is derived in ssldyn's docs).
    """

    B: Float[Array, "m m"]
    K: Float[Array, "m m"]
    K_test: Float[Array, "m_test m"] | None
    constrained: bool = eqx.field(static=True)
    weight_decay: Float[Array, ""]

    def __init__(self, B, K, *, K_test=None, constrained: bool = True, weight_decay=0.0):
        B = check_pair_matrix(B, name="B")
        K = check_pair_matrix(K, B.shape[0], name="K")
        check_psd(K, "K")
        if K_test is not None:
            K_test = as_array(K_test, "K_test", ndim=2)
            if K_test.shape[1] != B.shape[0]:
                raise ValueError(f"`K_test` must be (m_test, {B.shape[0]}), got {tuple(K_test.shape)}.")
        if constrained and is_concrete(weight_decay) and float(weight_decay) != 0.0:
            raise ValueError("`weight_decay` must be 0 for the constrained flow (it is normal to the manifold).")
        self.B, self.K, self.K_test = sym(B), sym(K), K_test
        self.constrained = bool(constrained)
        self.weight_decay = _hyper(weight_decay, "weight_decay")

    def _rates(self, R):
        BR = self.B @ R
        N = R.T @ BR if self.constrained else None
        return BR, N

    def _dR(self, Kmat, Rrows, BR, N):
        if self.constrained:
            return 2.0 * (Kmat @ BR - Rrows @ N)
        return 2.0 * (Kmat @ BR) - self.weight_decay * Rrows

    def vector_field(self, t, y):
        R = y[0] if self.K_test is not None else y
        BR, N = self._rates(R)
        dR = self._dR(self.K, R, BR, N)
        if self.K_test is None:
            return dR
        return dR, self._dR(self.K_test, y[1], BR, N)

    def loss(self, y):
        R = y[0] if self.K_test is not None else y
        return -jnp.sum(R * (self.B @ R))

    def check_initial(self, y0):
        m = self.B.shape[0]
        if self.K_test is not None:
            if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
                raise TypeError("`y0` must be a tuple (R0, R0_test) when `K_test` is given.")
            R0 = as_array(y0[0], "y0[0]", ndim=2)
            R0t = as_array(y0[1], "y0[1]", ndim=2)
            if R0t.shape != (self.K_test.shape[0], R0.shape[1]):
                raise ValueError(f"`y0[1]` must be ({self.K_test.shape[0]}, {R0.shape[1]}), got {tuple(R0t.shape)}.")
        else:
            R0 = as_array(y0, "y0", ndim=2)
        if R0.shape[0] != m:
            raise ValueError(f"`y0` must have {m} rows (one per stacked input), got shape {tuple(R0.shape)}.")
        if R0.shape[1] > m:
            raise ValueError(f"`y0` must have k <= m columns, got k = {R0.shape[1]} > m = {m}.")
        return (R0, R0t) if self.K_test is not None else R0


def output_flow(B, K, *, K_test=None, constrained: bool = True, weight_decay=0.0) -> OutputFlow:
    """Output-space flow of a one-hidden-layer network with frozen `V`. See `OutputFlow`."""
    return OutputFlow(B, K, K_test=K_test, constrained=constrained, weight_decay=weight_decay)


def ntk_flow(B, Theta, *, Theta_test=None, weight_decay=0.0) -> OutputFlow:
    r"""NTK-linearised function-space flow `dR/dt = 2 Θ B R − ωR` (unconstrained).

    Solution `R(t) = e^{−ωt} e^{2tΘB} R(0)`; unseen inputs follow `dR*/dt = 2 Θ* B R − ωR*`. Θ is a
    scalar (per-output-identical) NTK, e.g. the infinite-width NTK; with only the last layer trained,
    Θ = K and this is the naive output flow.
    """
    return OutputFlow(B, Theta, K_test=Theta_test, constrained=False, weight_decay=weight_decay)


def sample_initial_outputs(key: jax.Array, K, k: int, *, width: int, root=None) -> jax.Array:
    r"""Approximate `R(0) = Φ W(0)` for a Haar `W(0) ∈ St(h, k)` from the kernel alone.

    For large width h the columns of `R(0)` are approximately i.i.d. `N(0, K/h)` (exact as h → ∞ at
    fixed k). Use this to run the ODE with an infinite-width kernel without h-dimensional objects.

    **Arguments:** `key`; `K` (m, m) symmetric PSD kernel (include test inputs to get their initial
    outputs jointly); `k` columns; `width` h; `root`: optional precomputed `kernel_root(K)`.
    """
    key, single = check_keys(key, "key")
    if not single:
        raise TypeError(f"`key` must be a single PRNG key, got a stack of shape {tuple(key.shape)}.")
    k = check_int(k, "k", minimum=1)
    check_positive(width, "width")
    if root is None:
        root = kernel_root(K)
    else:
        root = as_array(root, "root", ndim=2, nonempty=True)
    z = jax.random.normal(key, (root.shape[1], k), dtype=root.dtype)
    return root @ z / jnp.sqrt(width)

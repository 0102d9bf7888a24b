r"""Manifolds for gradient flows: tangent projections, retractions and random points.

Weights are in column layout `W ∈ R^{d×k}`. For a loss `L` with Euclidean gradient `G = ∇L(W)` each
manifold returns the Riemannian gradient (embedded metric); the flow is `dW/dt = −grad L`.

| manifold | constraint | `grad L` |
|---|---|---|
| `Euclidean` | none | `G` |
| `Sphere` | `‖W‖_F = 1` | `G − ⟨G, W⟩ W` |
| `Stiefel` | `WᵀW = I_k` | `G − W sym(WᵀG)` |
| `Grassmann` | `WᵀW = I_k`, horizontal | `(I − WWᵀ) G` |

For a loss invariant under `W ↦ WQ` (`Q ∈ O(k)`), `WᵀG` is symmetric and the Stiefel and Grassmann
gradients coincide; e.g. `−tr(WᵀSW)` gives the Oja flow `dW/dt = 2(I − WWᵀ)SW`.

References: Edelman, Arias & Smith, SIAM J. Matrix Anal. Appl. 20(2), 1998; Absil, Mahony &
Sepulchre, *Optimization Algorithms on Matrix Manifolds*, 2008.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._stats import sym
from ._validation import as_array, check_orthonormal_columns, is_concrete


def _factor_input(A, name: str = "A") -> jax.Array:
    """`A` as a real array of matrices (..., d, k): complex dtypes and fewer than 2 dimensions are
    refused, and NaN/Inf when `A` is concrete (a tracer inside jit/vmap passes unchecked)."""
    A = as_array(A, name, finite=is_concrete(A))
    if A.ndim < 2:
        raise ValueError(f"`{name}` must be a matrix (..., d, k) with at least 2 dimensions, "
                         f"got shape {tuple(A.shape)}.")
    return A


def qf(A: jax.Array) -> jax.Array:
    """Q factor of a thin QR decomposition with a positive diagonal of R (unique for full rank).

    `A` must be real and, when concrete, finite (raises naming `A`; a NaN would spread silently)."""
    return _qf(_factor_input(A))


def _qf(A: jax.Array) -> jax.Array:
    Q, R = jnp.linalg.qr(A)
    signs = jnp.sign(jnp.diagonal(R, axis1=-2, axis2=-1))
    signs = jnp.where(signs == 0, 1.0, signs).astype(Q.dtype)
    return Q * signs[..., None, :]


def polar(A: jax.Array) -> jax.Array:
    """Orthogonal polar factor `A (AᵀA)^{-1/2}` via the SVD.

    `A` must be real and, when concrete, finite (raises naming `A`)."""
    return _polar(_factor_input(A))


def _polar(A: jax.Array) -> jax.Array:
    U, _, Vt = jnp.linalg.svd(A, full_matrices=False)
    return U @ Vt


def newton_schulz(W: jax.Array, steps: int = 2) -> jax.Array:
    """Newton–Schulz steps `W ← W (3I − WᵀW)/2` towards the polar factor `W (WᵀW)^{-1/2}`, the nearest
    matrix with orthonormal columns: `E = WᵀW − I` becomes `−(3/4)E² + (1/4)E³` per step, so two steps
    take a drift of 1e-3 down to round-off. Matrix products only (O(d k²)): cheap, smooth (the SVD's
    derivative is singular at the repeated singular values 1 of an orthonormal W) and jit/vmap/grad
    friendly. It converges for singular values in (0, √3); a state that far off is not drift but a
    failed solve. The result's `‖WᵀW − I‖` is the round-off of forming `WᵀW`, ~√d·ε."""
    eye = jnp.eye(W.shape[-1], dtype=W.dtype)
    for _ in range(steps):
        W = W @ (1.5 * eye - 0.5 * (jnp.swapaxes(W, -1, -2) @ W))
    return W


class AbstractManifold(eqx.Module):
    """A constraint set for weights `W` (d, k): tangent projection, retraction, random points."""

    @abc.abstractmethod
    def project(self, W: jax.Array, G: jax.Array) -> jax.Array:
        """Riemannian gradient at `W` of a loss with Euclidean gradient `G`."""

    @abc.abstractmethod
    def retract(self, W: jax.Array, V: jax.Array) -> jax.Array:
        """Map the tangent step `V` at `W` back onto the manifold."""

    def check(self, W, name: str = "W0") -> jax.Array:
        """Validate a point (raises with the argument's name); returns it as an array."""
        return as_array(W, name, ndim=2)

    def restore(self, W):
        """Pull a point that drifted off the manifold (round-off, truncation error of an ODE step) back
        onto it, moving it by O(its distance): the identity for an unconstrained manifold."""
        return W

    def random_point(self, key: jax.Array, d: int, k: int, dtype=None) -> jax.Array:
        """A random point; Gaussian entries `N(0, 1/d)` unless the manifold overrides it."""
        return jax.random.normal(key, (d, k), dtype=dtype or jnp.result_type(float)) / jnp.sqrt(d)


class Euclidean(AbstractManifold):
    """No constraint: `grad L = ∇L`; the retraction is `W + V` (leafwise for pytree states)."""

    def project(self, W, G):
        return G

    def retract(self, W, V):
        return jax.tree_util.tree_map(jnp.add, W, V)

    def check(self, W, name: str = "W0"):
        """Any pytree of finite arrays (e.g. a tuple of weight matrices)."""
        if isinstance(W, (tuple, list, dict)):
            return jax.tree_util.tree_map(lambda a: as_array(a, name), W)
        return as_array(W, name)


class Sphere(AbstractManifold):
    """Unit Frobenius sphere `‖W‖_F = 1`; retraction by normalisation."""

    def project(self, W, G):
        return G - jnp.sum(G * W) * W

    def retract(self, W, V):
        Y = W + V
        return Y / jnp.linalg.norm(Y)

    def check(self, W, name: str = "W0"):
        W = as_array(W, name, ndim=2)
        if is_concrete(W):
            norm = float(np.linalg.norm(np.asarray(W)))
            tol = 1e-10 if W.dtype == jnp.float64 else 1e-5
            if abs(norm - 1.0) > tol:
                raise ValueError(f"`{name}` must have unit Frobenius norm for a sphere flow, got {norm:.6g}.")
        return W

    def random_point(self, key, d, k, dtype=None):
        W = jax.random.normal(key, (d, k), dtype=dtype or jnp.result_type(float))
        return W / jnp.linalg.norm(W)

    def restore(self, W):
        """`W / ‖W‖_F`, the nearest point of the sphere."""
        return W / jnp.linalg.norm(W)


class Stiefel(AbstractManifold):
    """Stiefel manifold `St(d, k) = {W : WᵀW = I_k}` with the embedded metric.

    **Fields:** `retraction`: `"qr"` (default, `qf(W + V)`) or `"polar"`.
    """

    retraction: str = eqx.field(static=True, default="qr")

    def __check_init__(self):
        if self.retraction not in ("qr", "polar"):
            raise ValueError(f"`retraction` must be 'qr' or 'polar', got {self.retraction!r}.")

    def project(self, W, G):
        return G - W @ sym(W.T @ G)

    def retract(self, W, V):
        return _qf(W + V) if self.retraction == "qr" else _polar(W + V)  # internal: trusted inputs

    def check(self, W, name: str = "W0"):
        W = as_array(W, name, ndim=2)
        check_orthonormal_columns(W, name)
        return W

    def restore(self, W):
        """`newton_schulz(W)`: back to orthonormal columns, moving W by about `‖WᵀW − I‖/2`."""
        return newton_schulz(W)

    def random_point(self, key, d, k, dtype=None):
        return stiefel_init(key, d, k, dtype=dtype)


class Grassmann(Stiefel):
    """Grassmannian `Gr(d, k)` represented by orthonormal bases, horizontal gradient `(I − WWᵀ)G`."""

    def project(self, W, G):
        return G - W @ (W.T @ G)


def stiefel_init(key: jax.Array, d: int, k: int, *, dtype=None) -> jax.Array:
    """A Haar-distributed point of `St(d, k)`: `qf` of a Gaussian (d, k) matrix.

    **Arguments:** `key`; `d` rows; `k` columns with `1 ≤ k ≤ d`; optional `dtype`.

    **Returns:** `W` (d, k) with `WᵀW = I_k`.
    """
    from ._validation import check_int, check_rank_k

    d = check_int(d, "d", minimum=1)
    check_rank_k(k, d)
    return _qf(jax.random.normal(key, (d, k), dtype=dtype or jnp.result_type(float)))


MANIFOLDS = {"euclidean": Euclidean, "sphere": Sphere, "stiefel": Stiefel, "grassmann": Grassmann}


def get_manifold(manifold) -> AbstractManifold:
    """A manifold instance from an instance or one of the names in `MANIFOLDS`."""
    if isinstance(manifold, AbstractManifold):
        return manifold
    if isinstance(manifold, str) and manifold.lower() in MANIFOLDS:
        return MANIFOLDS[manifold.lower()]()
    raise ValueError(f"`manifold` must be one of {tuple(MANIFOLDS)} or an AbstractManifold, got {manifold!r}.")

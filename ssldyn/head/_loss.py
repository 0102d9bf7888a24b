r"""The objectives of Wen & Li (2022): the population objective J and the network's batch loss.

**Network.** `f_j(X) = Σ_p ⟨w_j, X_p⟩³`; online output `F = E f(X⁽¹⁾)` with head
`E = [[1, E_12], [E_21, 1]]` (diagonal frozen, off-diagonals `e = (E_12, E_21)` trained, `E(0) = I`);
target `G = SG(f(X⁽²⁾))` (same weights, no EMA); BatchNorm without affine part on both branches.

**Normalisation.** The batch loss is `L = −Σ_j corr_batch(F_j, G_j)`: a sum over the two output
coordinates of batch correlations (mean-centred, variance-normalised over the batch, means over
the batch, no factor ½). Up to the constant m = 2 it is half the squared BN distance
`(1/n) Σ_i ‖BN(F)_i − BN(G)_i‖² = 2m − 2Σ_j corr_j`, so its flow is twice as slow as that distance's;
gradients pass through the online BN statistics. Its population value is `−J` with

    J(a, q, E) = Σ_j (Σ_r E_jr C_rj) / sqrt( (E D Eᵀ)_jj U_j )   (C, D, U from `head_moments`),

so each term of J is a correlation and `J ∈ [−2, 2]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validation import as_array
from ._model import HeadData, head_moments, moments


def head_matrix(e):
    """The head `E = [[1, e_0], [e_1, 1]]` from its off-diagonals."""
    one = jnp.ones((), e.dtype)
    return jnp.stack([jnp.stack([one, e[0]]), jnp.stack([e[1], one])])


def objective(model, a, q, e, ab, qb):
    """`head_objective` without validation (traceable)."""
    C, D, U = moments(model, a, q, ab, qb)
    E = head_matrix(e)
    num = jnp.diagonal(E @ C)
    var = jnp.diagonal(E @ D @ E.T)
    return jnp.sum(num / jnp.sqrt(var * U))


def head_objective(model: HeadData, a: Float[Array, "2 2"], q: Float[Array, "2 2"], e: Float[Array, "2"],
                   a_bar: Float[Array, "2 2"] | None = None, q_bar: Float[Array, "2 2"] | None = None
                   ) -> Float[Array, ""]:
    r"""Population objective `J = Σ_j (E C)_jj / sqrt((E D Eᵀ)_jj U_j)` (= −L; each term a correlation).

    **Arguments:** `model`; `a`, `q` (2, 2); `e` = (E_12, E_21); `a_bar`, `q_bar` target copy
    (default online values).

    **Returns:** a scalar in [−2, 2].
    """
    C, D, U = head_moments(model, a, q, a_bar, q_bar)
    e = as_array(e, "e", ndim=1)
    if e.shape != (2,):
        raise ValueError(f"`e` must be (E_12, E_21), shape (2,), got {tuple(e.shape)}.")
    E = head_matrix(e)
    return jnp.sum(jnp.diagonal(E @ C) / jnp.sqrt(jnp.diagonal(E @ D @ E.T) * U))


def head_encoder(W: Float[Array, "d 2"], X: Float[Array, "n P d"]) -> Float[Array, "n 2"]:
    r"""Encoder outputs `f_j(X) = Σ_p ⟨w_j, X_p⟩³` for a batch `X` (n, P, d) and `W` (d, 2): (n, 2)."""
    return jnp.sum(jnp.einsum("npd,dj->npj", X, W) ** 3, axis=1)


def _bn(Z):
    Z = Z - jnp.mean(Z, axis=0)
    return Z / jnp.sqrt(jnp.mean(Z**2, axis=0))


def head_network_loss(W: Float[Array, "d 2"], e: Float[Array, "2"], X1: Float[Array, "n P d"],
                      X2: Float[Array, "n P d"], *, stop_gradient: bool = True) -> Float[Array, ""]:
    r"""Batch loss of the two-neuron network with head, BatchNorm and stop-gradient target:

        L = −Σ_j (1/n) Σ_i BN(F_j)_i BN(G_j)_i,   F = f(X⁽¹⁾) Eᵀ,   G = SG(f(X⁽²⁾)),

    i.e. minus the sum of the batch correlations. Gradients pass through the online BN statistics.

    **Arguments:** `W` (d, 2); `e` (2,) head off-diagonals; `X1`, `X2` (n, P, d) views;
    `stop_gradient`: False lets the gradient through the target branch (ablation).

    **Returns:** a scalar in [−2, 2].
    """
    E = head_matrix(e)
    F = head_encoder(W, X1) @ E.T
    G = head_encoder(W, X2)
    if stop_gradient:
        G = jax.lax.stop_gradient(G)
    return -jnp.sum(jnp.mean(_bn(F) * _bn(G), axis=0))

r"""Positive-pair statistics, eigenmodes and initialisations of linear Barlow Twins (Simon et al. 2023).

Row layout: `f(x) = W x` with `W ∈ R^{k×d}`; data one sample per row (`X1, X2 ∈ R^{n×d}`, the two
views of n positive pairs).

- `pair_correlation(X1, X2)`: `Γ = (X1ᵀX2 + X2ᵀX1)/(2n)`, the symmetrised cross-correlation of the
  views (the matrix the whole dynamics depends on);
- `pair_operator(n)`: the (2n, 2n) matrix `B = ½[[0, I], [I, 0]]/n` with `Γ = Φᵀ B Φ` for stacked
  features `Φ = [Φ1; Φ2]` (the output-space form of Γ);
- `eigenmodes(Γ, k)`: the top-k eigenpairs (descending), which must be positive;
- `kernel_eigenmodes(B, K, k)`: the same modes in output space, eigenpairs of `K^{1/2} B K^{1/2}`;
- `aligned_weights`, `aligned_outputs`, `small_random_init`: initial conditions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import sym, symmetric_pair
from .._validation import as_array, check_int, check_positive, check_rank_k, check_same_cols, check_same_rows, \
    check_symmetric, is_concrete


def pair_correlation(X1, X2) -> jax.Array:
    r"""Symmetrised cross-correlation of two views, `Γ = (X1ᵀ X2 + X2ᵀ X1) / (2n)` (no centring).

    With `Z = X1 Wᵀ`, `Z' = X2 Wᵀ` the symmetrised embedding cross-correlation is
    `C = (ZᵀZ' + Z'ᵀZ)/(2n) = W Γ Wᵀ`, the matrix of the linear Barlow Twins loss.

    **Arguments:** `X1`, `X2`: (n, d) views of n positive pairs (row i of each is one pair).

    **Returns:** Γ, (d, d) symmetric.

    References: Simon et al., ICML 2023, §3 (linear model, Γ over positive pairs).
    """
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    n = check_same_rows({"X1": X1, "X2": X2})
    check_same_cols({"X1": X1, "X2": X2})
    return sym(X1.T @ X2) / n


def pair_operator(n: int, *, dtype=None) -> jax.Array:
    r"""The (2n, 2n) pair operator `B = [[0, I], [I, 0]] / (2n)`, so that `Γ = Φᵀ B Φ` for `Φ = [Φ1; Φ2]`.

    For outputs `R = Φ W` (row layout of samples; `W ∈ R^{h×k}`) the embedding cross-correlation is
    `C = Rᵀ B R`.
    """
    n = check_int(n, "n", minimum=1)
    dtype = dtype or jnp.result_type(float)
    I = jnp.eye(n, dtype=dtype)
    Z = jnp.zeros((n, n), dtype)
    return jnp.block([[Z, I], [I, Z]]) / (2.0 * n)


def _check_gamma(Gamma) -> jax.Array:
    Gamma = as_array(Gamma, "Gamma", ndim=2)
    check_symmetric(Gamma, "Gamma")
    return sym(Gamma)


def eigenmodes(Gamma, k: int) -> tuple[jax.Array, jax.Array]:
    r"""The top-k eigenpairs of Γ, descending: `(γ (k,), V (d, k))`, `Γ v_j = γ_j v_j`.

    Raises (naming `Gamma`) if any of the top-k eigenvalues is not positive: a mode with `γ_j ≤ 0`
    never learns (its logistic rate `8γ_j` is not positive) and has no step time.
    """
    Gamma = _check_gamma(Gamma)
    k = check_rank_k(k, Gamma.shape[0])
    g, V = jnp.linalg.eigh(Gamma)
    g, V = g[::-1][:k], V[:, ::-1][:, :k]
    if is_concrete(g) and not np.all(np.asarray(g) > 0):
        raise ValueError(f"`Gamma` must have k = {k} positive leading eigenvalues, got {np.asarray(g)}.")
    return g, V


def _root(K):
    kappa, P = jnp.linalg.eigh(sym(K))
    return (P * jnp.sqrt(jnp.clip(kappa, 0.0))[None, :]) @ P.T


def kernel_eigenmodes(B, K, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Modes of the output-space (kernel) dynamics: the top-k eigenpairs of `G = K^{1/2} B K^{1/2}`.

    For `K = ΦΦᵀ` the nonzero eigenvalues of G are those of `Γ = ΦᵀBΦ` (same nonzero spectrum as
    `B K`), so the γ_j here are the linear model's γ_j of the hidden features, at any width, and
    for an infinite-width kernel they are the width → ∞ limit.

    **Returns:** `(γ (k,), U (m, k), K^{1/2} (m, m))`.
    """
    B, K = symmetric_pair(B, K, ("B", "K"))
    k = check_rank_k(k, B.shape[0])
    root = _root(K)
    g, U = jnp.linalg.eigh(sym(root @ sym(B) @ root))
    g, U = g[::-1][:k], U[:, ::-1][:, :k]
    if is_concrete(g) and not np.all(np.asarray(g) > 0):
        raise ValueError(f"`K^(1/2) B K^(1/2)` must have k = {k} positive leading eigenvalues, got {np.asarray(g)}.")
    return g, U, root


def _check_lambda0(lambda0, k: int) -> jax.Array:
    lam = as_array(lambda0, "lambda0", ndim=(0, 1))
    lam = jnp.broadcast_to(lam, (k,))
    check_positive(lam, "lambda0")
    return lam


def aligned_weights(Gamma, k: int, lambda0) -> jax.Array:
    r"""The aligned start `W(0) = diag(s_0) V_kᵀ` with embedding eigenvalues `λ_j(0) = γ_j s_{0j}² = lambda0`.

    **Arguments:** `Gamma` (d, d); `k` ≤ d; `lambda0` > 0, a scalar or (k,) (initial λ_j).

    **Returns:** `W(0)`, (k, d).
    """
    g, V = eigenmodes(Gamma, k)
    lam = _check_lambda0(lambda0, k)
    return jnp.sqrt(lam / g)[:, None] * V.T


def aligned_outputs(B, K, k: int, lambda0) -> jax.Array:
    r"""The aligned start in output space, `R(0) = K^{1/2} U_k diag(s_0)`, with `λ_j(0) = γ_j s_{0j}²`.

    For `K = ΦΦᵀ` this is `R(0) = Φ Wᵀ(0)` of the aligned weights of the hidden features.
    """
    g, U, root = kernel_eigenmodes(B, K, k)
    lam = _check_lambda0(lambda0, k)
    return root @ (U * jnp.sqrt(lam / g)[None, :])


def small_random_init(key, k: int, d: int, *, scale: float, dtype=None) -> jax.Array:
    r"""A small random start `W(0)` with i.i.d. entries `N(0, scale²/d)`, shape (k, d)."""
    if not isinstance(key, jax.Array):
        raise TypeError(f"`key` must be a jax.random key, got {type(key).__name__}.")
    d = check_int(d, "d", minimum=1)
    k = check_rank_k(k, d)
    check_positive(scale, "scale", scalar=True)
    dtype = dtype or jnp.result_type(float)
    return scale / np.sqrt(d) * jax.random.normal(key, (k, d), dtype)

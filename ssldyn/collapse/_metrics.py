r"""Spectral diagnostics of the dimensional-collapse toy."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._linalg import sym
from .._validation import as_array, check_int


def embedding_spectrum(W, Sigma_x=None) -> jax.Array:
    r"""Eigenvalues (descending) of the embedding covariance `W Σ_x Wᵀ` (default Σ_x = I: the population
    covariance of `Wx` over clean toy inputs, which the paper estimates from 1000 samples). Works on stacks."""
    W = as_array(W, "W", ndim=(2, 3, 4))
    M = W @ jnp.swapaxes(W, -1, -2) if Sigma_x is None else W @ as_array(Sigma_x, "Sigma_x", ndim=2) @ jnp.swapaxes(W, -1, -2)
    return jnp.linalg.eigvalsh(sym(M))[..., ::-1]


def block_spectra(W, n_noised: int = 8) -> tuple[jax.Array, jax.Array]:
    r"""Eigenvalues (descending) of the clean and noised blocks of `WᵀW`: `(eig(W_cᵀW_c), eig(W_nᵀW_n))`,
    `W = [W_c, W_n]` split by input coordinates (the last `n_noised` are augmented). Works on stacks."""
    W = as_array(W, "W", ndim=(2, 3, 4))
    d = W.shape[-1]
    n_noised = check_int(n_noised, "n_noised", minimum=1, maximum=d - 1)
    Wc, Wn = W[..., : d - n_noised], W[..., d - n_noised:]
    g = lambda A: jnp.linalg.eigvalsh(sym(jnp.swapaxes(A, -1, -2) @ A))[..., ::-1]  # noqa: E731
    return g(Wc), g(Wn)


def separation(W, n_noised: int = 8) -> jax.Array:
    r"""`min eig(W_cᵀW_c) / max eig(W_nᵀW_n)`: > 1 iff every noised direction sits below every clean one."""
    clean, noised = block_spectra(W, n_noised)
    return clean[..., -1] / noised[..., 0]

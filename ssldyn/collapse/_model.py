r"""The dimensional-collapse toy of Jing et al. (ICLR 2022), case 1.

Row layout: inputs `X ∈ R^{n×d}` (one sample per row), encoder `z = W x + b`, `W ∈ R^{k×d}`.

- inputs `x ~ N(0, I_d)` (d = 16), a fixed pool (`sample_inputs`);
- views `x^(v) = x + σ_aug [0; ε_v]`, `ε_v ~ N(0, I_{n_noised})` independent per view, on the last
  `n_noised` coordinates only (`augment`);
- population moments (`toy_moments`): `C+ = E[x^(1) x^(2)ᵀ] = I`, `C0 = E[x^(v) x^(v)ᵀ] =
  diag(1, …, 1, 1 + σ_aug², …)`;
- PyTorch's default `nn.Linear` initialisation, `W, b ~ U(−1/√d, 1/√d)` (`fanin_uniform_init`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._validation import as_array, check_int, check_positive


def _check_split(d, n_noised):
    d = check_int(d, "d", minimum=1)
    n_noised = check_int(n_noised, "n_noised", minimum=0, maximum=d)
    return d, n_noised


def noised_mask(d: int = 16, n_noised: int = 8) -> jax.Array:
    """Boolean mask of the augmented (last `n_noised`) coordinates."""
    d, n_noised = _check_split(d, n_noised)
    return jnp.arange(d) >= d - n_noised


def toy_moments(sigma_aug, *, d: int = 16, n_noised: int = 8) -> tuple[jax.Array, jax.Array]:
    r"""Population moments of the toy's views: `(C+, C0) = (I, I + σ_aug² diag(0_{d−n}, 1_n))`."""
    check_positive(sigma_aug, "sigma_aug", allow_zero=True, scalar=True)
    mask = noised_mask(d, n_noised)
    C0 = jnp.diag(1.0 + jnp.where(mask, jnp.asarray(sigma_aug, jnp.result_type(float)) ** 2, 0.0))
    return jnp.eye(mask.shape[0], dtype=C0.dtype), C0


def sample_inputs(key, n: int, d: int = 16, *, dtype=None) -> jax.Array:
    """`n` clean inputs `x ~ N(0, I_d)`, shape (n, d)."""
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    return jax.random.normal(key, (n, d), dtype or jnp.result_type(float))


def augment(key, X, sigma_aug, n_noised: int = 8) -> jax.Array:
    r"""One view `x + σ_aug [0; ε]` of each row of `X`, noise on the last `n_noised` coordinates."""
    X = as_array(X, "X", ndim=(2, 3), nonempty=True)
    check_positive(sigma_aug, "sigma_aug", allow_zero=True, scalar=True)
    mask = noised_mask(X.shape[-1], n_noised)
    return X + sigma_aug * mask * jax.random.normal(key, X.shape, X.dtype)


def fanin_uniform_init(key, d: int = 16, k: int = 16, *, dtype=None) -> tuple[jax.Array, jax.Array]:
    r"""`(W (k, d), b (k,))` with entries `U(−1/√d, 1/√d)` (PyTorch's `nn.Linear` default)."""
    d = check_int(d, "d", minimum=1)
    k = check_int(k, "k", minimum=1)
    dtype = dtype or jnp.result_type(float)
    kw, kb = jax.random.split(key)
    bound = 1.0 / jnp.sqrt(jnp.asarray(d, dtype))
    return (jax.random.uniform(kw, (k, d), dtype, -bound, bound), jax.random.uniform(kb, (k,), dtype, -bound, bound))

r"""Self-supervised losses as pure JAX functions.

Normalisation (theory README §4): **means over anchors, sums over output coordinates**, no implicit
factor ½. A loss `c·L` only rescales gradient-flow time by `c`; each docstring states its constant.

Layouts: data rows are samples, `X ∈ R^{n×d}`; linear weights are in column layout `W ∈ R^{d×k}`, so
the representations are `X W ∈ R^{n×k}`; outputs on stacked inputs are `R ∈ R^{m×k}`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._linalg import check_pair_matrix as check_pair_matrix  # noqa: F401  (old home)
from ._validation import as_array, check_positive, check_same_cols, check_same_rows


def _reps(name_pairs):
    out = {}
    for name, z in name_pairs.items():
        if z is not None:
            out[name] = as_array(z, name, ndim=2)
    check_same_rows(out)
    check_same_cols(out)
    return out


def contrastive_loss(W, X, X_pos, X_neg) -> jax.Array:
    r"""Inner-product contrastive loss of a linear encoder `f(x) = Wᵀx`.

        L_C(W) = −(1/n) Σ_i [ f(x_i)ᵀ f(x_i⁺) − f(x_i)ᵀ f(x_i⁻) ]  =  −tr(Wᵀ (C+ − C−) W).

    Mean over the n anchors, sum over the k output coordinates, constant 1.

    **Arguments:** `W` (d, k); `X`, `X_pos`, `X_neg` (n, d), one row per sample.

    **Returns:** a scalar.

    References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024, eq. (1) (inner-product reading).
    """
    W = as_array(W, "W", ndim=2)
    v = _reps({"X": X, "X_pos": X_pos, "X_neg": X_neg})
    z, zp, zn = v["X"] @ W, v["X_pos"] @ W, v["X_neg"] @ W
    return -jnp.mean(jnp.sum(z * zp, axis=-1) - jnp.sum(z * zn, axis=-1))


def noncontrastive_loss(W, X, X_pos) -> jax.Array:
    r"""Inner-product non-contrastive loss `L_NC(W) = −(1/n) Σ_i f(x_i)ᵀ f(x_i⁺) = −tr(Wᵀ C+ W)`.

    Mean over anchors, sum over coordinates, constant 1. Unbounded below without a constraint.
    """
    W = as_array(W, "W", ndim=2)
    v = _reps({"X": X, "X_pos": X_pos})
    return -jnp.mean(jnp.sum((v["X"] @ W) * (v["X_pos"] @ W), axis=-1))


def squared_contrastive_loss(W, X, X_pos, X_neg) -> jax.Array:
    r"""Squared-distance contrastive loss

        L_sq(W) = (1/n) Σ_i ( ‖f(x_i) − f(x_i⁺)‖² − ‖f(x_i) − f(x_i⁻)‖² )  =  −tr(Wᵀ (D− − D+) W).

    Mean over anchors, constant 1. Not equivalent to `contrastive_loss` under `WᵀW = I`.
    """
    W = as_array(W, "W", ndim=2)
    v = _reps({"X": X, "X_pos": X_pos, "X_neg": X_neg})
    z, zp, zn = v["X"] @ W, v["X_pos"] @ W, v["X_neg"] @ W
    return jnp.mean(jnp.sum((z - zp) ** 2, axis=-1) - jnp.sum((z - zn) ** 2, axis=-1))


def squared_noncontrastive_loss(W, X, X_pos) -> jax.Array:
    r"""Squared-distance non-contrastive loss `(1/n) Σ_i ‖f(x_i) − f(x_i⁺)‖² = tr(Wᵀ D+ W)`."""
    W = as_array(W, "W", ndim=2)
    v = _reps({"X": X, "X_pos": X_pos})
    return jnp.mean(jnp.sum((v["X"] @ W - v["X_pos"] @ W) ** 2, axis=-1))


def quadratic_loss(W, S) -> jax.Array:
    r"""`L(W) = −tr(Wᵀ S W)` for a symmetric `S` (d, d) and `W` (d, k) (any leading batch axes on W)."""
    return -jnp.sum(W * (S @ W), axis=(-2, -1))


def output_loss(R, B) -> jax.Array:
    r"""Output-space loss `L = −tr(Rᵀ B R)` for outputs `R` (m, k) on stacked views and pair matrix `B`.

    With `B = pair_matrix(n, kind)` this equals the corresponding per-anchor loss exactly.
    """
    return -jnp.sum(R * (B @ R), axis=(-2, -1))


def info_nce_loss(z, z_pos, *, temperature: float = 0.5, symmetric: bool = True) -> jax.Array:
    r"""InfoNCE (NT-Xent) loss with in-batch negatives and cosine similarity.

        ℓ_i = −log( exp(s_ii/τ) / Σ_j exp(s_ij/τ) ),   s_ij = ẑ_iᵀ ẑ⁺_j,   ẑ = z/‖z‖,

    averaged over anchors (and over both directions when `symmetric`). Uses a stable log-sum-exp.

    **Arguments:** `z`, `z_pos` (n, k) representations of the two views; `temperature` τ > 0.

    **Returns:** a scalar.

    References: van den Oord et al. 2018; Chen et al. (SimCLR) 2020.
    """
    z = as_array(z, "z", ndim=2)
    z_pos = as_array(z_pos, "z_pos", ndim=2)
    check_same_rows({"z": z, "z_pos": z_pos})
    check_same_cols({"z": z, "z_pos": z_pos})
    check_positive(temperature, "temperature")

    def normalise(a):
        return a / jnp.sqrt(jnp.sum(a**2, axis=-1, keepdims=True) + 1e-12)

    logits = normalise(z) @ normalise(z_pos).T / temperature
    diag = jnp.diagonal(logits)
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=1) - diag)
    if symmetric:
        loss = 0.5 * (loss + jnp.mean(jax.nn.logsumexp(logits, axis=0) - diag))
    return loss


def spectral_contrastive_loss(z, z_pos) -> jax.Array:
    r"""Spectral contrastive loss (HaoChen et al., NeurIPS 2021), empirical form with in-batch negatives:

        L = −(2/n) Σ_i z_iᵀ z⁺_i + (1/(n(n−1))) Σ_{i≠j} (z_iᵀ z⁺_j)².
    """
    z = as_array(z, "z", ndim=2)
    z_pos = as_array(z_pos, "z_pos", ndim=2)
    check_same_rows({"z": z, "z_pos": z_pos})
    n = z.shape[0]
    if n < 2:
        raise ValueError("`z` must have at least 2 rows for in-batch negatives.")
    G = z @ z_pos.T
    off = jnp.sum(G**2) - jnp.sum(jnp.diagonal(G) ** 2)
    return -2.0 * jnp.mean(jnp.diagonal(G)) + off / (n * (n - 1))


def barlow_twins_loss(z, z_pos, *, lambd: float = 5e-3, normalize: bool = True) -> jax.Array:
    r"""Barlow Twins loss (Zbontar et al., ICML 2021):

        L = Σ_a (1 − C_aa)² + λ Σ_{a≠b} C_ab²,   C = (1/n) ẑᵀ ẑ⁺,

    where `ẑ` is batch-standardised per coordinate when `normalize` (as in the paper), otherwise raw.
    With `normalize=False` and `λ = 1` this is `‖C − I‖_F²`, the linear loss of Simon et al. (2023).
    """
    z = as_array(z, "z", ndim=2)
    z_pos = as_array(z_pos, "z_pos", ndim=2)
    check_same_rows({"z": z, "z_pos": z_pos})
    check_positive(lambd, "lambd", allow_zero=True)
    n = z.shape[0]
    if normalize:
        z = (z - z.mean(0)) / (z.std(0) + 1e-12)
        z_pos = (z_pos - z_pos.mean(0)) / (z_pos.std(0) + 1e-12)
    C = z.T @ z_pos / n
    on = jnp.sum((1.0 - jnp.diagonal(C)) ** 2)
    off = jnp.sum(C**2) - jnp.sum(jnp.diagonal(C) ** 2)
    return on + lambd * off

r"""Fiber views of cyclic 1-D signals and their `ViewStats` (theory note §3.1–3.2).

A linear fiber map reads `f(x)(g) = Wᵀ P_g x` (column layout, `W ∈ R^{r×k}`), where

    P_g x = (x_g, x_{g+1}, …, x_{g+r−1}) ∈ R^r        (indices mod L)

applies `g^{-1}` and crops to the receptive field `r`. A positive pair is two fibers of one signal at
`g_1` (uniform) and `g_2 = g_1 + Δ`, `Δ ~ p(Δ)`; a negative is a fiber of an independently drawn
signal at an independent uniform position.

**Closed form.** With the position-averaged circular autocorrelation over the data set
`ρ(ℓ) = (1/n) Σ_i (1/L) Σ_g x_{i,g} x_{i,g+ℓ}` and `(R_Δ)_{ab} = ρ(b − a + Δ)`:

    C0 = R_0,   C+ = sym Σ_Δ p(Δ) R_Δ,   C− = μ̄² 1 1ᵀ (μ̄ the mean entry of X),
    D+ = 2C0 − 2C+,   D− = 2C0 − 2C−.

This is exact for the empirical distribution of the rows of `X` (no stationarity is assumed:
position averaging is built into `ρ`). The Monte-Carlo samplers (`hssl_pairs`: fibers of one
forward pass; `assl_pairs`: shift the input by `g^{-1}`, then crop) draw the same random numbers
from the same key and produce identical views.

Offsets are integers `Δ` with `|Δ| < L`; `p(Δ)` is stored as a vector over `Δ mod L`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._stats import ViewStats, view_stats
from .._validation import as_array, check_int, check_keys


def offset_probs(max_offset: int, length: int, *, include_zero: bool = True, dtype=None) -> jax.Array:
    """`p(Δ)` uniform on `{−m, …, m}` (without 0 unless `include_zero`), as a vector over `Δ mod L`.

    `max_offset = 0` gives `δ_0` (no augmentation). Offsets must lie inside the signal: `m ≤ L − 1`.
    """
    length = check_int(length, "length", minimum=2)
    m = check_int(max_offset, "max_offset", minimum=0)
    if m > length - 1:
        raise ValueError(f"`max_offset` = {m} lies outside the signal: offsets must satisfy |Δ| <= length - 1 "
                         f"= {length - 1}.")
    if m == 0 and not include_zero:
        raise ValueError("`max_offset` = 0 with `include_zero=False` leaves no offsets.")
    p = np.zeros(length)
    for d in range(-m, m + 1):
        if d == 0 and not include_zero:
            continue
        p[d % length] += 1.0
    return jnp.asarray(p / p.sum(), dtype=jnp.result_type(float) if dtype is None else dtype)


def offsets_from(p, length: int, name: str = "p") -> jax.Array:
    """Validate an offset law: a vector over `Δ mod L` (length L), non-negative, summing to 1."""
    p = as_array(p, name, ndim=1)
    if p.shape[0] != length:
        raise ValueError(f"`{name}` must be a vector over the {length} offsets Δ mod L, got length {p.shape[0]}; "
                         "offsets outside the signal cannot be represented.")
    pn = np.asarray(p)
    if np.any(pn < 0) or abs(pn.sum() - 1.0) > 1e-8:
        raise ValueError(f"`{name}` must be a probability vector (non-negative, sum 1), got sum {pn.sum():.6g}.")
    return p


def symmetrised(p) -> jax.Array:
    """`½(p(Δ) + p(−Δ))` over `Δ mod L`."""
    return 0.5 * (p + jnp.roll(p[::-1], 1))


def _check_signals(X, r, name="X"):
    X = as_array(X, name, ndim=2)
    L = X.shape[1]
    r = check_int(r, "r", minimum=1)
    if r > L:
        raise ValueError(f"The receptive field `r` = {r} is larger than the signal (length {L}).")
    return X, r


def signal_fibers(X, r: int) -> jax.Array:
    """All crop-and-transform views `P_g x` of every row: `(n, L, r)`, entry `[i, g, a] = x_{i,(g+a) mod L}`."""
    X, r = _check_signals(X, r)
    L = X.shape[1]
    idx = (np.arange(L)[:, None] + np.arange(r)[None, :]) % L
    return X[:, idx]


def position_autocorrelation(X) -> jax.Array:
    """`ρ(ℓ) = (1/n) Σ_i (1/L) Σ_g x_{i,g} x_{i,g+ℓ}` for `ℓ = 0 … L−1` (circular, by FFT)."""
    X = as_array(X, "X", ndim=2)
    F = jnp.fft.fft(X, axis=1)
    return jnp.real(jnp.fft.ifft(jnp.mean(jnp.abs(F) ** 2, axis=0))) / X.shape[1]


def toeplitz_moment(rho, r: int, delta) -> jax.Array:
    """`(R_Δ)_{ab} = ρ(b − a + Δ)` (indices mod L), shape (r, r)."""
    L = rho.shape[0]
    a = jnp.arange(r)
    return rho[(a[None, :] - a[:, None] + delta) % L]


def fiber_view_stats(X, r: int, p) -> ViewStats:
    """Closed-form fiber `ViewStats` of the rows of `X (n, L)` for receptive field `r` and offset law `p`."""
    X, r = _check_signals(X, r)
    L = X.shape[1]
    p = offsets_from(p, L)
    rho = position_autocorrelation(X)
    Rs = jax.vmap(lambda d: toeplitz_moment(rho, r, d))(jnp.arange(L))        # (L, r, r)
    C0 = Rs[0]
    Cp = jnp.einsum("d,dab->ab", p, Rs)
    Cp = 0.5 * (Cp + Cp.T)
    mu = jnp.mean(X)
    Cm = mu ** 2 * jnp.ones((r, r), X.dtype)
    return ViewStats(C0=C0, Cp=Cp, Dp=2 * C0 - 2 * Cp, Cm=Cm, Dm=2 * C0 - 2 * Cm, n=int(X.shape[0]))


def fiber_cross_moments(X, r: int) -> jax.Array:
    """Position-resolved moments `C_{gg'} = (1/n) Σ_i P_g x_i (P_{g'} x_i)ᵀ`, shape (L, L, r, r)."""
    V = signal_fibers(X, r)
    return jnp.einsum("nga,nhb->ghab", V, V) / V.shape[0]


def joint_offsets(p) -> jax.Array:
    """Symmetric joint law `p(g, g') = (1/L) ½(p(g'−g) + p(g−g'))` of positive fiber positions, (L, L)."""
    L = p.shape[0]
    ps = symmetrised(p)
    g = jnp.arange(L)
    return ps[(g[None, :] - g[:, None]) % L] / L


# --------------------------------------------------------------------------------------------------
# Monte-Carlo samplers
# --------------------------------------------------------------------------------------------------

def _draws(key, n_rows: int, L: int, p, n_pairs: int):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    i = jax.random.randint(k1, (n_pairs,), 0, n_rows)
    g1 = jax.random.randint(k2, (n_pairs,), 0, L)
    delta = jax.random.choice(k3, L, (n_pairs,), p=p)
    i_neg = jax.random.randint(k4, (n_pairs,), 0, n_rows)
    g_neg = jax.random.randint(k5, (n_pairs,), 0, L)
    return i, g1, (g1 + delta) % L, i_neg, g_neg


def _check_sampler(key, X, r, p, n_pairs):
    key, single = check_keys(key, "key")
    if not single:
        raise ValueError("`key` must be a single key.")
    X, r = _check_signals(X, r)
    p = offsets_from(p, X.shape[1])
    return key, X, r, p, check_int(n_pairs, "n_pairs", minimum=1)


def hssl_pairs(key, X, r: int, p, n_pairs: int):
    """H-SSL views: one forward pass of the identity fiber map, fibers at `g_1` and `g_1 + Δ`.

    **Returns:** `(anchors, positives, negatives)`, each `(n_pairs, r)`.
    """
    key, X, r, p, n_pairs = _check_sampler(key, X, r, p, n_pairs)
    i, g1, g2, i_neg, g_neg = _draws(key, X.shape[0], X.shape[1], p, n_pairs)
    V = signal_fibers(X, r)                                      # the "feature field" of every signal
    return V[i, g1], V[i, g2], V[i_neg, g_neg]


def assl_pairs(key, X, r: int, p, n_pairs: int):
    """A-SSL views: transform the input by `g^{-1}` (cyclic shift by −g), then crop the first `r` positions.

    Uses the same draws as `hssl_pairs` for the same key, hence (tested) the same views.
    """
    key, X, r, p, n_pairs = _check_sampler(key, X, r, p, n_pairs)
    i, g1, g2, i_neg, g_neg = _draws(key, X.shape[0], X.shape[1], p, n_pairs)

    def view(rows, g):
        return jax.vmap(lambda x, s: jnp.roll(x, -s)[:r])(X[rows], g)

    return view(i, g1), view(i, g2), view(i_neg, g_neg)


def sampled_fiber_view_stats(key, X, r: int, p, n_pairs: int, *, sampler: str = "hssl") -> ViewStats:
    """Monte-Carlo fiber `ViewStats` from `n_pairs` sampled pairs (`sampler` "hssl" or "assl")."""
    if sampler not in ("hssl", "assl"):
        raise ValueError(f"`sampler` must be 'hssl' or 'assl', got {sampler!r}.")
    views = (hssl_pairs if sampler == "hssl" else assl_pairs)(key, X, r, p, n_pairs)
    return view_stats(*views)


# --------------------------------------------------------------------------------------------------
# 2-D images for the translation and p4 cells
# --------------------------------------------------------------------------------------------------

def pad_images(X, side: int) -> np.ndarray:
    """Zero-pad square images `X (n, s, s)` symmetrically to `(n, side, side)` (`side − s` must be even)."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"`X` must be a stack of square images (n, s, s), got shape {X.shape}.")
    side = check_int(side, "side", minimum=X.shape[1])
    extra = side - X.shape[1]
    if extra % 2:
        raise ValueError(f"`side` - {X.shape[1]} must be even (a centred pad), got `side` = {side}.")
    c = extra // 2
    return np.pad(X, ((0, 0), (c, c), (c, c)))


def downsample_images(X, factor: int) -> np.ndarray:
    """Average-pool square images `X (n, s, s)` over non-overlapping `factor × factor` blocks."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise ValueError(f"`X` must be a stack of images (n, s, s), got shape {X.shape}.")
    factor = check_int(factor, "factor", minimum=1)
    n, h, w = X.shape
    if h % factor or w % factor:
        raise ValueError(f"`factor` = {factor} must divide the image sides {h}x{w}.")
    return X.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4))


def load_digits_padded(side: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits (1,797 images, offline), scaled to [0, 1] (÷16) and zero-padded
    to `(side, side)`: `(X (n, side, side) float32, y (n,) int32)`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("The 8x8 digits need scikit-learn (`pip install scikit-learn`); they ship inside it.") from err
    d = load_digits()
    X = pad_images(np.asarray(d.images, np.float32) / 16.0, side)
    return X.astype(np.float32), np.asarray(d.target, np.int32)

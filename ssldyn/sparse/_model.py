r"""Stage 1 of `ssldyn.sparse`: the sparse-coding data model, the augmentations and their population moments.

**Data** (theory §1). `x = M z + ξ` with `M ∈ R^{d₁×d}` orthonormal columns (atoms), `z_j ∈ {−1, 0, +1}`
independent with `Pr(z_j ≠ 0) = p` and symmetric signs, and `ξ ~ N(0, σ_ξ² I)`; `E[xxᵀ] = p MMᵀ + σ_ξ² I`.
Samples are rows, `X ∈ R^{n×d₁}`.

**Augmentations** (theory §2): complementary masking `x⁽¹⁾ = 2Dx`, `x⁽²⁾ = 2(I − D)x`, and the controls
(none, Gaussian noise, two independent masks). `feature_decoupling` is the exact conditional identity
behind masking, `sparse_view_stats` the population moments `C+`, `C0` of every augmentation, and
`view_noise_scale` the noise level of `⟨w, x⁽ᵛ⁾⟩` that sets the bias schedule.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._stats import ViewStats
from .._validation import as_array, check_choice, check_int, check_positive, check_probability, is_concrete

Augmentation = Literal["mask", "none", "noise", "independent_mask"]
AUGMENTATIONS: tuple[str, ...] = ("mask", "none", "noise", "independent_mask")


def check_augmentation(augmentation) -> str:
    """Raise unless `augmentation` is one of `AUGMENTATIONS`; return it."""
    return check_choice(augmentation, "augmentation", AUGMENTATIONS)


class SparseCoding(eqx.Module):
    r"""The sparse-coding data model `x = M z + ξ` (theory §1).

    `M ∈ R^{d₁×d}` has orthonormal columns (the atoms); the code `z ∈ {−1, 0, +1}^d` has independent
    coordinates with `Pr(z_j ≠ 0) = p` and symmetric signs, so `E[zzᵀ] = pI`; the dense part is
    `ξ ~ N(0, σ_ξ² I_{d₁})`. Hence

    $$E[x x^\top] = p\,MM^\top + \sigma_\xi^2 I.$$

    **Arguments:**
    - `M`: dictionary (d₁, d) with orthonormal columns (e.g. `SparseCoding.random(...).M`).
    - `p`: atom activation probability in [0, 1].
    - `noise_std`: σ_ξ ≥ 0.

    Numeric fields are arrays, so a sweep over `p` or `noise_std` reuses compiled code. Build a
    random instance with `SparseCoding.random(key, d1, d, p=..., noise_std=...)`.

    References: Wen & Li, ICML 2021, §2 (sparse coding model).
    """

    M: Float[Array, "d1 d"]
    p: Float[Array, ""]
    noise_std: Float[Array, ""]

    def __init__(self, M, *, p, noise_std):
        M = as_array(M, "M", ndim=2, nonempty=True)
        d1, d = M.shape
        if d > d1:
            raise ValueError(f"`M` must be (d1, d) with d <= d1 (orthonormal columns), got shape {(d1, d)}.")
        if is_concrete(M):
            err = float(jnp.max(jnp.abs(M.T @ M - jnp.eye(d, dtype=M.dtype))))
            tol = 1e-8 if M.dtype == jnp.float64 else 1e-4
            if err > tol:
                raise ValueError(f"`M` must have orthonormal columns: max |MᵀM − I| = {err:.3g} > {tol:g}.")
        check_probability(p, "p")
        check_positive(noise_std, "noise_std", allow_zero=True)
        self.M = M
        self.p = jnp.asarray(p, dtype=M.dtype)
        self.noise_std = jnp.asarray(noise_std, dtype=M.dtype)

    @classmethod
    def random(cls, key, d1: int, d: int, *, p, noise_std, dtype=None) -> SparseCoding:
        r"""A random model whose dictionary is the first d columns of a Haar-random orthogonal
        d₁×d₁ matrix (delocalised atoms, entries of order `1/sqrt(d₁)`).

        **Arguments:** `key`; `d1` input dimension; `d ≤ d1` number of atoms; `p`; `noise_std`;
        `dtype` (default: JAX's default float).

        **Returns:** a `SparseCoding`.
        """
        d1 = check_int(d1, "d1", minimum=1)
        d = check_int(d, "d", minimum=1)
        if d > d1:
            raise ValueError(f"`d` (atoms) must be <= `d1` (input dimension), got d = {d} > d1 = {d1}.")
        dtype = jnp.result_type(float) if dtype is None else dtype
        return cls(_haar_columns(key, d1, d, dtype), p=p, noise_std=noise_std)

    @property
    def d1(self) -> int:
        return self.M.shape[0]

    @property
    def d(self) -> int:
        return self.M.shape[1]

    def sample_code(self, key, n: int) -> jax.Array:
        r"""Draw `n` sparse codes `z` (n, d): `z_j = ±1` with probability `p/2` each, else 0."""
        k1, k2 = jax.random.split(key)
        active = jax.random.bernoulli(k1, self.p, (n, self.d)).astype(self.M.dtype)
        return active * (2.0 * _fair_bits(k2, (n, self.d), self.M.dtype) - 1.0)

    def sample(self, key, n: int, *, return_code: bool = False):
        r"""Draw `n` samples `x = Mz + ξ` as rows of `X` (n, d₁).

        **Arguments:** `key`; `n`; `return_code`: also return the codes `Z` (n, d).

        **Returns:** `X`, or `(X, Z)`.

        More than 1024 samples are drawn in blocks of 1024 rows with keys `fold_in(key, i)`, so large
        draws of any size share one compilation.
        """
        n = check_int(n, "n", minimum=1)
        if n <= _CHUNK:
            X, Z = _sample(self, key, n)
        else:
            parts = [_sample(self, jax.random.fold_in(key, i), _CHUNK) for i in range(-(-n // _CHUNK))]
            X = jnp.concatenate([q[0] for q in parts])[:n]
            Z = jnp.concatenate([q[1] for q in parts])[:n]
        return (X, Z) if return_code else X

    def second_moment(self) -> jax.Array:
        r"""`E[xxᵀ] = p MMᵀ + σ_ξ² I` (d₁, d₁)."""
        return self.p * self.M @ self.M.T + self.noise_std**2 * jnp.eye(self.d1, dtype=self.M.dtype)


@partial(jax.jit, static_argnames=("d1", "d", "dtype"))
def _haar_columns(key, d1, d, dtype):
    A = jax.random.normal(key, (d1, d1), dtype=dtype)
    Q, R = jnp.linalg.qr(A)
    Q = Q * jnp.sign(jnp.diagonal(R))[None, :]  # Haar measure
    return Q[:, :d]


@partial(jax.jit, static_argnames=("n",))
def _sample(data, key, n):
    k1, k2 = jax.random.split(key)
    Z = data.sample_code(k1, n)
    X = Z @ data.M.T + data.noise_std * jax.random.normal(k2, (n, data.d1), dtype=data.M.dtype)
    return X, Z


def check_data(data) -> SparseCoding:
    if not isinstance(data, SparseCoding):
        raise TypeError(f"`data` must be a SparseCoding, got {type(data).__name__}.")
    return data


# ----------------------------------------------------------------------------------------------
# augmentations and the decoupling identity
# ----------------------------------------------------------------------------------------------


def make_views(key, X, augmentation: Augmentation = "mask", *, aug_noise_std=0.0):
    r"""Two views of each row of `X`.

    - `"mask"` (complementary masking): `x⁽¹⁾ = 2Dx`, `x⁽²⁾ = 2(I − D)x`, `D_aa ~ Bern(½)` i.i.d. per
      sample and coordinate, so `E[x⁽ᵛ⁾ | x] = x`;
    - `"none"`: `x⁽¹⁾ = x⁽²⁾ = x`;
    - `"noise"`: `x⁽ᵛ⁾ = x + ε_v`, `ε_v ~ N(0, s² I)` independent, `s = aug_noise_std`;
    - `"independent_mask"`: `x⁽ᵛ⁾ = D_v x` with independent `D_1, D_2` and no factor 2 (a variant that
      does not decouple).

    **Arguments:** `key`; `X` (n, d₁); `augmentation`; `aug_noise_std` s ≥ 0 (for `"noise"`).

    **Returns:** `(X1, X2)`, each (n, d₁). More than 1024 rows are processed in blocks of 1024 with
    keys `fold_in(key, i)`.

    References: Wen & Li, ICML 2021 (random masking augmentation; reconstructed).
    """
    X = as_array(X, "X", ndim=2)
    check_augmentation(augmentation)
    check_positive(aug_noise_std, "aug_noise_std", allow_zero=True)
    return _make_views(key, X, augmentation, aug_noise_std)


def _fair_bits(key, shape, dtype):
    """i.i.d. Bernoulli(½) entries of `shape` (n, k) from 32 random bits per uint32 word (cheaper than
    `jax.random.bernoulli`, which spends a full random word per entry)."""
    n, k = shape
    words = jax.random.bits(key, (n, -(-k // 32)), dtype=jnp.uint32)
    bits = (words[:, :, None] >> jnp.arange(32, dtype=jnp.uint32)) & jnp.uint32(1)
    return bits.reshape(n, -1)[:, :k].astype(dtype)


def _views_mask(key, X, s):
    D = _fair_bits(key, X.shape, X.dtype)
    return 2.0 * D * X, 2.0 * (1.0 - D) * X


def _views_none(key, X, s):
    return X, X


def _views_noise(key, X, s):
    k1, k2 = jax.random.split(key)
    return X + s * jax.random.normal(k1, X.shape, X.dtype), X + s * jax.random.normal(k2, X.shape, X.dtype)


def _views_independent(key, X, s):
    k1, k2 = jax.random.split(key)
    return _fair_bits(k1, X.shape, X.dtype) * X, _fair_bits(k2, X.shape, X.dtype) * X


_VIEW_FNS = (_views_mask, _views_none, _views_noise, _views_independent)


def views_by_index(key, X, aug_index, aug_noise_std):
    """Views with the augmentation chosen by a (possibly traced) index into `AUGMENTATIONS`."""
    s = jnp.asarray(aug_noise_std, X.dtype)
    return jax.lax.switch(aug_index, _VIEW_FNS, key, X, s)


_views_by_index_jit = jax.jit(views_by_index)
_CHUNK = 1024  # rows per block for large draws outside jit (one compilation serves every size)


def _make_views(key, X, augmentation, aug_noise_std):
    # one compilation per block shape serves every augmentation (traced index) and every size
    index = jnp.asarray(AUGMENTATIONS.index(augmentation), jnp.int32)
    n = X.shape[0]
    if n <= _CHUNK or not is_concrete(X):
        return _views_by_index_jit(key, X, index, aug_noise_std)
    pad = -n % _CHUNK
    Xp = jnp.concatenate([X, jnp.zeros((pad, X.shape[1]), X.dtype)]) if pad else X
    parts = [_views_by_index_jit(jax.random.fold_in(key, i), Xp[i * _CHUNK:(i + 1) * _CHUNK], index, aug_noise_std)
             for i in range(Xp.shape[0] // _CHUNK)]
    return jnp.concatenate([q[0] for q in parts])[:n], jnp.concatenate([q[1] for q in parts])[:n]


def feature_decoupling(x):
    r"""The feature-decoupling identity for complementary masking, conditional on one sample x:

    $$E[x^{(1)} x^{(2)\top} \mid x] = xx^\top - \mathrm{Diag}(xx^\top),\qquad
      E[x^{(1)} x^{(1)\top} \mid x] = xx^\top + \mathrm{Diag}(xx^\top).$$

    (Entry (a, b) of `x⁽¹⁾x⁽²⁾ᵀ` is `4 D_a(1 − D_b) x_a x_b`, with mean `x_a x_b` for a ≠ b and 0 for
    a = b; entry (a, b) of `x⁽¹⁾x⁽¹⁾ᵀ` is `4 D_a D_b x_a x_b`, mean `x_a x_b` or `2x_a²`.)

    **Arguments:** `x` (d₁,) or a batch (n, d₁).

    **Returns:** `(cross, same)`, each (d₁, d₁) or (n, d₁, d₁).

    References: Wen & Li, ICML 2021 (feature decoupling).
    """
    x = as_array(x, "x", ndim=(1, 2))
    outer = x[..., :, None] * x[..., None, :]
    diag = x[..., :, None] ** 2 * jnp.eye(x.shape[-1], dtype=x.dtype)
    return outer - diag, outer + diag


def sparse_view_stats(data: SparseCoding, augmentation: Augmentation = "mask", *, aug_noise_std=0.0) -> ViewStats:
    r"""Population view moments of the sparse-coding model (the decoupling table of theory §2).

    With `E xxᵀ = pMMᵀ + σ²I` and `Δ = Diag(pMMᵀ + σ²I)`:

    | augmentation | `C+` | `C0` |
    |---|---|---|
    | `"mask"` | `pMMᵀ − p Diag(MMᵀ)` | `pMMᵀ + p Diag(MMᵀ) + 2σ²I` |
    | `"none"` | `pMMᵀ + σ²I` | same |
    | `"noise"` (std s) | `pMMᵀ + σ²I` | `pMMᵀ + (σ² + s²)I` |
    | `"independent_mask"` | `¼(pMMᵀ + σ²I)` | `¼ E xxᵀ + ¼ Δ` |

    The negatives are independent and the data has zero mean, so `C− = 0`, `D+ = 2(C0 − C+)` and
    `D− = 2C0`.

    **Arguments:** `data`; `augmentation`; `aug_noise_std` (for `"noise"`).

    **Returns:** a `ViewStats` (`n = 0`: population values).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §2.
    """
    data = check_data(data)
    check_augmentation(augmentation)
    check_positive(aug_noise_std, "aug_noise_std", allow_zero=True)
    return _sparse_view_stats(data, augmentation, jnp.asarray(aug_noise_std, data.M.dtype))


@partial(jax.jit, static_argnames=("augmentation",))
def _sparse_view_stats(data, augmentation, aug_noise_std):
    M, p, s2 = data.M, data.p, data.noise_std**2
    eye = jnp.eye(data.d1, dtype=M.dtype)
    MM = M @ M.T
    Exx = p * MM + s2 * eye
    dMM = jnp.diag(jnp.diagonal(MM))
    if augmentation == "mask":
        Cp = p * (MM - dMM)
        C0 = p * (MM + dMM) + 2.0 * s2 * eye
    elif augmentation == "none":
        Cp = C0 = Exx
    elif augmentation == "noise":
        Cp = Exx
        C0 = Exx + aug_noise_std**2 * eye
    else:
        Cp = 0.25 * Exx
        C0 = 0.25 * Exx + 0.25 * jnp.diag(jnp.diagonal(Exx))
    zero = jnp.zeros_like(Cp)
    return ViewStats(C0=C0, Cp=Cp, Dp=2.0 * (C0 - Cp), Cm=zero, Dm=2.0 * C0, n=0)


def view_noise_scale(data: SparseCoding, augmentation: Augmentation = "mask", *, aug_noise_std=0.0) -> jax.Array:
    r"""`s_view σ_ξ`: the standard deviation of the noise part of `⟨w, x⁽ᵛ⁾⟩` per unit `‖w‖`.

    Masking: each masked noise coordinate `2D_aξ_a` has variance `2σ_ξ²`, so `√2 σ_ξ`; none: `σ_ξ`;
    Gaussian noise of std s: `sqrt(σ_ξ² + s²)`; independent masks (no factor 2): `σ_ξ/√2`.

    **Arguments:** `data`; `augmentation`; `aug_noise_std` s (for `"noise"`).

    **Returns:** a scalar array (the `bias_scale` of `QuenchedFlow`).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    data = check_data(data)
    check_augmentation(augmentation)
    sig = data.noise_std
    if augmentation == "mask":
        return jnp.sqrt(2.0) * sig
    if augmentation == "none":
        return sig
    if augmentation == "noise":
        return jnp.sqrt(sig**2 + jnp.asarray(aug_noise_std, sig.dtype) ** 2)
    return sig / jnp.sqrt(2.0)

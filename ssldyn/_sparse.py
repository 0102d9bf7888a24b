r"""Contrastive feature learning on sparse-coding data (Wen & Li, ICML 2021).

Everything needed to reproduce the feature-decoupling mechanism: the data model, the augmentations,
the bipolar-ReLU network with its bias schedule, the stop-gradient InfoNCE loss, SGD training
vmapped over seeds, the linearised small-weight flow with its closed form and eigen-rates, the
frozen-sample ("quenched") ODE of the full nonlinear loss, and the feature-learning metrics.

**Layout.** Data arrays hold one sample per **row**, `X ∈ R^{n×d₁}`; weights hold one neuron per
**column**, `W = [w_1 … w_m] ∈ R^{d₁×m}` (as in the theory file); the representation of a batch is
`F = BReLU_b(X W) ∈ R^{n×m}`. The dictionary `M ∈ R^{d₁×d}` has orthonormal columns (atoms).

**Data** (theory §1). `x = M z + ξ` with `z_j ∈ {−1, 0, +1}` independent, `Pr(z_j ≠ 0) = p`, symmetric
signs, and `ξ ~ N(0, σ_ξ² I)`; `E[xxᵀ] = p MMᵀ + σ_ξ² I`.

**Augmentations** (theory §2). Complementary masking `x⁽¹⁾ = 2Dx`, `x⁽²⁾ = 2(I − D)x`, `D_aa ~ Bern(½)`
i.i.d.; controls: no augmentation (`x⁽¹⁾ = x⁽²⁾ = x`), Gaussian noise (`x⁽ᵛ⁾ = x + ε_v`,
`ε_v ~ N(0, s² I)` independent) and two independent masks without the factor 2. The
**feature-decoupling identity** (exact, conditional on x):

    E[x⁽¹⁾x⁽²⁾ᵀ | x] = xxᵀ − Diag(xxᵀ),     E[x⁽¹⁾x⁽¹⁾ᵀ | x] = xxᵀ + Diag(xxᵀ),

so under masking `C+ = p(MMᵀ − Diag(MMᵀ))`: the dense noise cancels exactly from the cross-view moment.

**Network and loss** (theory §3). `h_i(x) = ReLU(⟨w_i,x⟩ − b_i) − ReLU(−⟨w_i,x⟩ − b_i)`, with the bias
`b_i(t) = β(t) s_view σ_ξ ‖w_i‖` (stop-gradient; `β` rises linearly from 0 to `β_max` over the first
`ramp_fraction` of the horizon; `s_view σ_ξ` is the std of the noise part of `⟨w, x⁽ᵛ⁾⟩` per unit
`‖w‖`). With in-batch negatives (batches of B anchors, `|𝒩| = B − 1`) and `S_ij = ⟨f(x⁽¹⁾_i), SG f(x⁽²⁾_j)⟩/τ`,

    L(W) = mean_i [ logsumexp_j S_ij − S_ii ] + (ω/2)‖W‖_F²,

and the flow is `dW/dt = −∇_W L`, `t = η·steps`.

**Linearised flow** (theory §4, derived). At `b = 0` and small weights the softmax is uniform and

    dW/dt = (κ/τ) C+ W − ω W,     κ = |𝒩|/(|𝒩| + 1) = 1 − 1/B,
    W(t) = exp(t(κ C+/τ − ω I)) W(0),

which is the core's naive flow `dW/dt = 2SW − ωW` with `S = κ C+/(2τ)` (`linearised_flow`,
`linearised_solution`). Without the stop-gradient `C+` is replaced by `2C+`. Eigen-rates
(`linearised_rates`, with `Diag(MMᵀ) ≈ (d/d₁)I`): masking — atoms `κp(1 − d/d₁)/τ − ω`, dense
`−κpd/(d₁τ) − ω`; no augmentation — atoms `κ(p + σ_ξ²)/τ − ω`, dense `κσ_ξ²/τ − ω`.

**Next order** (derived here, `cubic_correction`): expanding the softmax to first order in the logits,

    dW/dt = (κ/τ) C+ W − ωW − (κ/τ²) C0 W (Wᵀ C0 W) + O(‖W‖⁵) + O(‖W‖³/B),

with `C0` the same-view moment. "Small weights" therefore means that this contraction is small against
the rate gap κp/τ — not merely `|Sim| ≪ 1`: under masking `C0 ⊇ 2σ_ξ² I` while `C+` is only of order p,
so at σ₀ = 0.02 (theory §7) the cubic term is already about a quarter of the linear field at
σ_ξ²/p = 1.225 and larger than it at σ_ξ²/p = 4.

**Frozen-sample flow** (theory §5). `QuenchedFlow` integrates `dW/dt = −∇_W L̂(W; b(t, W))` for a fixed
set of view pairs partitioned into fixed batches; it is an `AbstractFlow` (non-autonomous through
`β(t)`), so `ssldyn.solve` integrates it with diffrax. Two caveats (see `QuenchedFlow`): with b > 0 the
field is discontinuous (loose solver tolerances), and a finite frozen sample memorises dense,
sample-specific directions unless N_f is very large (≈ 4·10⁴ pairs at the §7 configuration).

**Metrics** (theory §7). Energy in span(M) `‖Mᵀw_i‖²/‖w_i‖²`, single-atom alignment
`s_i = max_j |⟨w_i, M_j⟩|/‖w_i‖`, atoms covered, and a ridge probe recovering the sparse code.

References:
- Z. Wen, Y. Li. *Toward Understanding the Feature Learning Process of Self-supervised Contrastive
  Learning.* ICML 2021 (PMLR 139). arXiv:2105.15134.
- `shared/theory/wen_li2021_feature_learning.md` (the exact definitions implemented here; the bias
  schedule, masking and loss details are reconstructions).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._closed_form import NaiveSolution
from ._flows import AbstractFlow, QuadraticFlow, naive_flow
from ._stats import ViewStats, sym
from ._validation import as_array, check_positive, check_symmetric, is_concrete

__all__ = [
    "AUGMENTATIONS",
    "LinearRates",
    "QuenchedFlow",
    "SGDResult",
    "SparseCoding",
    "atom_alignment",
    "atoms_covered",
    "bias_schedule",
    "brelu",
    "code_probe",
    "cubic_correction",
    "feature_decoupling",
    "info_nce_vector_field",
    "init_neurons",
    "linearised_flow",
    "linearised_rates",
    "linearised_solution",
    "make_views",
    "neuron_bias",
    "quenched_flow",
    "simulate_quenched_gd",
    "single_atom_alignment",
    "sparse_features",
    "sparse_metrics",
    "sparse_view_stats",
    "span_energy",
    "train_sgd",
    "view_noise_scale",
    "wen_li_info_nce",
]

Augmentation = Literal["mask", "none", "noise", "independent_mask"]
AUGMENTATIONS: tuple[str, ...] = ("mask", "none", "noise", "independent_mask")


def _check_augmentation(augmentation) -> str:
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"`augmentation` must be one of {AUGMENTATIONS}, got {augmentation!r}.")
    return augmentation


def _check_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got {value}.")
    return int(value)


def _check_probability(value, name: str) -> None:
    if is_concrete(value):
        v = float(np.asarray(value))
        if not (0.0 <= v <= 1.0) or not math.isfinite(v):
            raise ValueError(f"`{name}` must be a probability in [0, 1], got {value}.")


# ----------------------------------------------------------------------------------------------
# data model
# ----------------------------------------------------------------------------------------------


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

    M: jax.Array
    p: jax.Array
    noise_std: jax.Array

    def __init__(self, M, *, p, noise_std):
        M = as_array(M, "M", ndim=2)
        d1, d = M.shape
        if d > d1:
            raise ValueError(f"`M` must be (d1, d) with d <= d1 (orthonormal columns), got shape {(d1, d)}.")
        if is_concrete(M):
            err = float(jnp.max(jnp.abs(M.T @ M - jnp.eye(d, dtype=M.dtype))))
            tol = 1e-8 if M.dtype == jnp.float64 else 1e-4
            if err > tol:
                raise ValueError(f"`M` must have orthonormal columns: max |MᵀM − I| = {err:.3g} > {tol:g}.")
        _check_probability(p, "p")
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
        d1 = _check_int(d1, "d1")
        d = _check_int(d, "d")
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
        n = _check_int(n, "n")
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


def _check_data(data) -> SparseCoding:
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
    _check_augmentation(augmentation)
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


def _views_switch(key, X, aug_index, aug_noise_std):
    """Views with the augmentation chosen by a (possibly traced) index into `AUGMENTATIONS`."""
    s = jnp.asarray(aug_noise_std, X.dtype)
    return jax.lax.switch(aug_index, _VIEW_FNS, key, X, s)


_views_switch_jit = jax.jit(_views_switch)
_CHUNK = 1024  # rows per block for large draws outside jit (one compilation serves every size)


def _make_views(key, X, augmentation, aug_noise_std):
    # one compilation per block shape serves every augmentation (traced index) and every size
    index = jnp.asarray(AUGMENTATIONS.index(augmentation), jnp.int32)
    n = X.shape[0]
    if n <= _CHUNK or not is_concrete(X):
        return _views_switch_jit(key, X, index, aug_noise_std)
    pad = -n % _CHUNK
    Xp = jnp.concatenate([X, jnp.zeros((pad, X.shape[1]), X.dtype)]) if pad else X
    parts = [_views_switch_jit(jax.random.fold_in(key, i), Xp[i * _CHUNK:(i + 1) * _CHUNK], index, aug_noise_std)
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
    data = _check_data(data)
    _check_augmentation(augmentation)
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
    data = _check_data(data)
    _check_augmentation(augmentation)
    sig = data.noise_std
    if augmentation == "mask":
        return jnp.sqrt(2.0) * sig
    if augmentation == "none":
        return sig
    if augmentation == "noise":
        return jnp.sqrt(sig**2 + jnp.asarray(aug_noise_std, sig.dtype) ** 2)
    return sig / jnp.sqrt(2.0)


# ----------------------------------------------------------------------------------------------
# network, bias schedule, loss
# ----------------------------------------------------------------------------------------------


def brelu(u, b=0.0):
    r"""Bipolar ReLU (soft threshold) `BReLU_b(u) = ReLU(u − b) − ReLU(−u − b) = sign(u)·max(|u| − b, 0)`.

    Odd in u; the identity for b = 0; derivative `1[|u| > b]`.

    **Arguments:** `u` array; `b` threshold(s) ≥ 0, broadcast against `u` (per neuron: shape (m,)).

    **Returns:** an array shaped like `u`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    return jax.nn.relu(u - b) - jax.nn.relu(-u - b)


def init_neurons(key, d1: int, m: int, *, sigma0=0.02, dtype=None) -> jax.Array:
    r"""Initial weights `w_i(0) ~ N(0, σ₀² I_{d₁})`, stacked as columns of `W` (d₁, m).

    **Arguments:** `key`; `d1` input dimension; `m` number of neurons; `sigma0` σ₀ > 0; `dtype`.

    **Returns:** `W` (d₁, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    d1 = _check_int(d1, "d1")
    m = _check_int(m, "m")
    check_positive(sigma0, "sigma0")
    dtype = jnp.result_type(float) if dtype is None else dtype
    return sigma0 * jax.random.normal(key, (d1, m), dtype=dtype)


def bias_schedule(t, *, horizon, beta_max, ramp_fraction=0.5):
    r"""The bias multiplier `β(t) = β_max · min(1, t/(ramp_fraction · horizon))` (theory §3; a library
    choice, the paper's schedule is unknown): a linear ramp from 0 over the first `ramp_fraction` of
    training, then constant. `ramp_fraction = 0` gives the constant `β_max`.

    **Arguments:** `t` (effective time `lr·steps`); `horizon` T > 0; `beta_max` ≥ 0; `ramp_fraction` in [0, 1].

    **Returns:** β(t), shaped like `t`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3 (the schedule is a library choice).
    """
    if is_concrete(horizon):
        check_positive(horizon, "horizon")
    check_positive(beta_max, "beta_max", allow_zero=True)
    _check_probability(ramp_fraction, "ramp_fraction")
    return _beta(t, horizon, beta_max, ramp_fraction)


def _beta(t, horizon, beta_max, ramp_fraction):
    ramp = ramp_fraction * horizon
    safe = jnp.where(ramp > 0, ramp, 1.0)
    frac = jnp.where(ramp > 0, jnp.clip(t / safe, 0.0, 1.0), 1.0)
    return beta_max * frac


def neuron_bias(W, beta, scale):
    r"""Per-neuron thresholds `b_i = β · scale · ‖w_i‖` with a stop-gradient (not trained).

    **Arguments:** `W` (d₁, m); `beta` (e.g. `bias_schedule(t, ...)`); `scale = s_view σ_ξ`
    (`view_noise_scale`).

    **Returns:** `b` (m,).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    W = as_array(W, "W", ndim=2)
    return _neuron_bias(W, beta, scale)


def _neuron_bias(W, beta, scale):
    return jax.lax.stop_gradient(beta * scale * jnp.sqrt(jnp.sum(W**2, axis=0)))


def sparse_features(W, X, bias=0.0):
    r"""Representations `F = BReLU_b(X W)` (n, m): `F_{ki} = h_i(x_k)`.

    **Arguments:** `W` (d₁, m); `X` (n, d₁); `bias` scalar or (m,).

    **Returns:** `F` (n, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    W = as_array(W, "W", ndim=2)
    X = as_array(X, "X", ndim=2)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"`X` must have {W.shape[0]} columns to match `W` (d1, m), got shape {tuple(X.shape)}.")
    return brelu(X @ W, bias)


def _batches(X, batch_size):
    n, d1 = X.shape
    return X.reshape(n // batch_size, batch_size, d1)


def _check_pairs(W, X1, X2, batch_size):
    W = as_array(W, "W", ndim=2)
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    if X1.shape != X2.shape:
        raise ValueError(f"`X1` and `X2` must have the same shape, got {tuple(X1.shape)} and {tuple(X2.shape)}.")
    if X1.shape[1] != W.shape[0]:
        raise ValueError(f"`X1` must have {W.shape[0]} columns to match `W` (d1, m), got shape {tuple(X1.shape)}.")
    n = X1.shape[0]
    batch_size = n if batch_size is None else _check_int(batch_size, "batch_size")
    if batch_size < 2 or n % batch_size:
        raise ValueError(
            f"`batch_size` must be >= 2 and divide the number of pairs {n} (in-batch negatives), got {batch_size}."
        )
    return W, X1, X2, batch_size


def wen_li_info_nce(W, X1, X2, *, temperature=0.5, bias=0.0, batch_size=None, stop_gradient: bool = True,
                    weight_decay=0.0):
    r"""The Wen & Li InfoNCE with inner-product similarity, in-batch negatives and a stop-gradient branch:

    $$L(W) = \frac1n\sum_i\Big[\log\sum_{j\in\mathcal B(i)} e^{S_{ij}} - S_{ii}\Big] + \frac\omega2\|W\|_F^2,
      \qquad S_{ij} = \frac{\langle f(x^{(1)}_i),\ \mathrm{SG}\,f(x^{(2)}_j)\rangle}{\tau},$$

    `f(x) = BReLU_b(Wᵀx)`; the sum over j runs over the anchor's batch (B pairs in consecutive rows:
    the positive plus `|𝒩| = B − 1` negatives). Unlike `info_nce_loss` there is no normalisation of
    the representations and only one direction. The bias is never differentiated.

    **Arguments:**
    - `W` (d₁, m); `X1`, `X2` (n, d₁) the anchor and positive views (row i of `X2` is the positive of
      row i of `X1`).
    - `temperature` τ > 0; `bias` b (scalar or (m,)).
    - `batch_size` B (divides n; default n: one batch).
    - `stop_gradient`: treat the `X2` branch as a constant (default, the theory's loss).
    - `weight_decay` ω ≥ 0.

    **Returns:** a scalar.

    References: Wen & Li, ICML 2021, §2 (loss reconstructed); van den Oord et al. 2018.
    """
    W, X1, X2, batch_size = _check_pairs(W, X1, X2, batch_size)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    return _info_nce(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay)


@partial(jax.jit, static_argnames=("batch_size", "stop_gradient"))
def _info_nce(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay):
    b = jax.lax.stop_gradient(jnp.asarray(bias, W.dtype))
    Wt = jax.lax.stop_gradient(W) if stop_gradient else W
    H1 = brelu(_batches(X1, batch_size) @ W, b)
    H2 = brelu(_batches(X2, batch_size) @ Wt, b)
    logits = jnp.einsum("bim,bjm->bij", H1, H2) / temperature
    diag = jnp.diagonal(logits, axis1=-2, axis2=-1)
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - diag)
    return loss + 0.5 * weight_decay * jnp.sum(W**2)


def info_nce_vector_field(W, X1, X2, *, temperature=0.5, bias=0.0, batch_size=None, stop_gradient: bool = True,
                          weight_decay=0.0):
    r"""The flow `−∇_W L` of `wen_li_info_nce`, in closed form (no autodiff).

    With `U_v = X_v W`, `H_v = BReLU_b(U_v)`, `G_v = 1[|U_v| > b]`, the row-softmax `Π` of the logits
    in each batch and n anchors in all,

    $$-\nabla_W L = -\frac{1}{n\tau}\sum_{\text{batches}} X_1^\top\big[G_1 \odot ((\Pi - I) H_2)\big]
      \;\Big[-\frac{1}{n\tau}\sum X_2^\top\big[G_2\odot((\Pi-I)^\top H_1)\big]\ \text{without SG}\Big] - \omega W.$$

    At `b = 0` and `W → 0` (uniform `Π = 11ᵀ/B`) this is `(1/τ) A W − ωW` with
    `A = (1/n) Σ_batches X_1ᵀ (I − 11ᵀ/B) X_2`, whose expectation is `κ C+`, `κ = 1 − 1/B`.

    **Arguments:** as `wen_li_info_nce`.

    **Returns:** an array (d₁, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3–4.
    """
    W, X1, X2, batch_size = _check_pairs(W, X1, X2, batch_size)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    return _vector_field(W, X1, X2, temperature, jnp.asarray(bias, W.dtype), batch_size, stop_gradient, weight_decay)


@partial(jax.jit, static_argnames=("batch_size", "stop_gradient"))
def _vector_field(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay):
    n = X1.shape[0]
    X1b, X2b = _batches(X1, batch_size), _batches(X2, batch_size)
    U1, U2 = X1b @ W, X2b @ W
    H1, H2 = brelu(U1, bias), brelu(U2, bias)
    logits = jnp.einsum("bim,bjm->bij", H1, H2) / temperature
    P = jax.nn.softmax(logits, axis=-1) - jnp.eye(batch_size, dtype=W.dtype)
    G1 = (jnp.abs(U1) > bias).astype(W.dtype)
    grad = jnp.einsum("bid,bim->dm", X1b, G1 * (P @ H2))
    if not stop_gradient:
        G2 = (jnp.abs(U2) > bias).astype(W.dtype)
        grad = grad + jnp.einsum("bjd,bjm->dm", X2b, G2 * jnp.einsum("bij,bim->bjm", P, H1))
    return -grad / (n * temperature) - weight_decay * W


# ----------------------------------------------------------------------------------------------
# frozen-sample ("quenched") flow
# ----------------------------------------------------------------------------------------------


class QuenchedFlow(AbstractFlow):
    r"""Frozen-sample flow of the full nonlinear loss (theory §5), non-autonomous through the bias:

    $$\frac{dW}{dt} = -\nabla_W \hat L(W; b)\big|_{b = b(t, W)},\qquad
      b_i(t, W) = \beta(t)\, s_{\rm view}\sigma_\xi\, \|w_i\|,$$

    where `L̂` is `wen_li_info_nce` on fixed view pairs `(X1, X2)` in fixed consecutive batches of size
    B (in-batch negatives mimic SGD) plus `(ω/2)‖W‖²`. As the number of frozen pairs grows at fixed B
    it tends to the expected-SGD flow. With `beta_max = 0` it is autonomous and equals
    `GradientFlow(wen_li_info_nce, args=(X1, X2), weight_decay=ω)`.

    **Arguments:**
    - `X1`, `X2`: frozen views (N_f, d₁); `batch_size` B dividing N_f.
    - `temperature` τ; `weight_decay` ω.
    - `beta_max`, `horizon`, `ramp_fraction`: the bias schedule (`bias_schedule`); `bias_scale`:
      `s_view σ_ξ` (`view_noise_scale`).
    - `stop_gradient`: the theory's loss (default True).

    Build one from the data model with `quenched_flow`. `loss(W)` is the loss at the final bias level
    `β_max`; `loss_at(t, W)` at time t. `ssldyn.simulate_gd` calls the vector field with `t = None`,
    so use `simulate_quenched_gd` for gradient descent on the frozen sample.

    **Smoothness.** For `b > 0` the vector field jumps where some `|⟨w_i, x⁽¹⁾_k⟩|` crosses `b_i` (the
    BReLU derivative is an indicator), and it can slide along such surfaces: adaptive solves then need
    loose tolerances (`rtol ≈ 1e-3`); at tight tolerances they stall on the jumps. At `b = 0` the
    field is smooth.

    **Finite frozen samples memorise.** `L̂` has sample-specific directions. Under masking the
    symmetric part of the fluctuation `A − κC+` of the linear matrix (`linear_matrix`) has spectral
    norm ≈ `2 sqrt(2d₁/N_f) E[x_a²]` (entries of std `2E[x_a²]/sqrt(N_f)`; at the library defaults with
    N_f = 4096: 0.060 measured, 0.063 predicted), while the dense eigenvalue of `κC+` is only `−κpd/d₁`. Unless
    `N_f ≳ 8 d₁ E[x_a²]² (d₁/(pd))²` (≈ 4·10⁴ at the defaults) the frozen-sample flow grows dense,
    sample-specific components that SGD on fresh samples never sees.

    References: Wen & Li, ICML 2021; theory file §5 (frozen-sample flow, a library construction).
    """

    X1: jax.Array
    X2: jax.Array
    temperature: jax.Array
    weight_decay: jax.Array
    beta_max: jax.Array
    horizon: jax.Array
    ramp_fraction: jax.Array
    bias_scale: jax.Array
    batch_size: int = eqx.field(static=True)
    stop_gradient: bool = eqx.field(static=True)

    def __init__(self, X1, X2, *, batch_size: int | None = None, temperature=0.5, weight_decay=0.0, beta_max=0.0,
                 horizon=1.0, ramp_fraction=0.5, bias_scale=1.0, stop_gradient: bool = True):
        X1 = as_array(X1, "X1", ndim=2)
        X2 = as_array(X2, "X2", ndim=2)
        if X1.shape != X2.shape:
            raise ValueError(f"`X1` and `X2` must have the same shape, got {tuple(X1.shape)} and {tuple(X2.shape)}.")
        n = X1.shape[0]
        batch_size = n if batch_size is None else _check_int(batch_size, "batch_size")
        if batch_size < 2 or n % batch_size:
            raise ValueError(f"`batch_size` must be >= 2 and divide the number of pairs {n}, got {batch_size}.")
        check_positive(temperature, "temperature")
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        check_positive(beta_max, "beta_max", allow_zero=True)
        check_positive(horizon, "horizon")
        _check_probability(ramp_fraction, "ramp_fraction")
        check_positive(bias_scale, "bias_scale", allow_zero=True)
        dt = X1.dtype
        self.X1, self.X2 = X1, X2
        self.temperature = jnp.asarray(temperature, dt)
        self.weight_decay = jnp.asarray(weight_decay, dt)
        self.beta_max = jnp.asarray(beta_max, dt)
        self.horizon = jnp.asarray(horizon, dt)
        self.ramp_fraction = jnp.asarray(ramp_fraction, dt)
        self.bias_scale = jnp.asarray(bias_scale, dt)
        self.batch_size = batch_size
        self.stop_gradient = bool(stop_gradient)

    @property
    def manifold(self):
        from ._manifolds import Euclidean

        return Euclidean()

    def bias(self, t, W) -> jax.Array:
        """The thresholds `b(t, W)` (m,)."""
        beta = _beta(t, self.horizon, self.beta_max, self.ramp_fraction)
        return _neuron_bias(W, beta, self.bias_scale)

    def vector_field(self, t, W):
        t = self.horizon if t is None else t
        return _vector_field(W, self.X1, self.X2, self.temperature, self.bias(t, W), self.batch_size,
                             self.stop_gradient, self.weight_decay)

    def loss_at(self, t, W) -> jax.Array:
        return _info_nce(W, self.X1, self.X2, self.temperature, self.bias(t, W), self.batch_size,
                         self.stop_gradient, self.weight_decay)

    def loss(self, W) -> jax.Array:
        return self.loss_at(self.horizon, W)

    def check_initial(self, y0):
        W = as_array(y0, "y0", ndim=2)
        if W.shape[0] != self.X1.shape[1]:
            raise ValueError(f"`y0` must have {self.X1.shape[1]} rows (d1), got shape {tuple(W.shape)}.")
        return W.astype(self.X1.dtype)

    def cubic_term(self, W) -> jax.Array:
        r"""The third-order term of the frozen-sample field at `b = 0` (SG):

        $$v(W) = \tfrac1\tau A W - \omega W - \frac{1}{n\tau^2}\sum_{\text{batches}} X_1^\top X_1\, W\,
          W^\top \Big(\tfrac1B X_2^\top (I - \tfrac1B \mathbf 1\mathbf 1^\top) X_2\Big) W + O(\|W\|^5),$$

        from `π_ij = (1/B)(1 + S_ij − S̄_i) + O(S²)`: the negatives most similar to the anchor are pushed
        away, `Σ_j (S_ij − S̄_i) c_j = (B/τ) Σ̂_c u_i` with `Σ̂_c` the in-batch covariance of `c_j = Wᵀx⁽²⁾_j`.
        Its population form is `cubic_correction`.
        """
        W = as_array(W, "W", ndim=2)
        X1b, X2b = _batches(self.X1, self.batch_size), _batches(self.X2, self.batch_size)
        C = X2b @ W
        C = C - jnp.mean(C, axis=1, keepdims=True)
        cov = jnp.einsum("bjm,bjl->bml", C, C) / self.batch_size
        U = X1b @ W
        return -jnp.einsum("bid,bim,bml->dl", X1b, U, cov) / (self.X1.shape[0] * self.temperature**2)

    def linear_matrix(self) -> jax.Array:
        r"""`A = (1/n) Σ_batches X_1ᵀ (I − 11ᵀ/B) X_2` (d₁, d₁): at `b = 0` and small W the flow is
        `dW/dt = (A/τ) W − ωW` (not symmetric on a finite sample; `E A = κ C+`)."""
        X1b, X2b = _batches(self.X1, self.batch_size), _batches(self.X2, self.batch_size)
        X2c = X2b - jnp.mean(X2b, axis=1, keepdims=True)
        return jnp.einsum("bid,bie->de", X1b, X2c) / self.X1.shape[0]


def quenched_flow(key, data: SparseCoding, *, n_samples: int, batch_size: int, augmentation: Augmentation = "mask",
                  aug_noise_std=0.0, temperature=0.5, weight_decay=0.0, beta_max=0.0, horizon=1.0,
                  ramp_fraction=0.5, stop_gradient: bool = True) -> QuenchedFlow:
    r"""Draw a frozen sample (`n_samples` underlying samples and their two views, in fixed batches of
    `batch_size` consecutive rows) and return its `QuenchedFlow`, with the bias scale
    `view_noise_scale(data, augmentation)`.

    **Arguments:** `key`; `data`; `n_samples` N_f (a multiple of `batch_size`); the rest as in
    `QuenchedFlow` and `make_views`.

    **Returns:** a `QuenchedFlow`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §5.
    """
    data = _check_data(data)
    _check_augmentation(augmentation)
    n_samples = _check_int(n_samples, "n_samples")
    k1, k2 = jax.random.split(key)
    X = data.sample(k1, n_samples)
    X1, X2 = make_views(k2, X, augmentation, aug_noise_std=aug_noise_std)
    scale = view_noise_scale(data, augmentation, aug_noise_std=aug_noise_std)
    return QuenchedFlow(X1, X2, batch_size=batch_size, temperature=temperature, weight_decay=weight_decay,
                        beta_max=beta_max, horizon=horizon, ramp_fraction=ramp_fraction, bias_scale=scale,
                        stop_gradient=stop_gradient)


def simulate_quenched_gd(flow: QuenchedFlow, W0, lr, n_steps: int, *, save_every: int | None = None):
    r"""Full-batch gradient descent on the frozen sample, `W ← W + η · v(t_k, W)`, `t_k = kη`.

    It tracks the frozen-sample ODE at `t = ηN` with an O(η) error (theory README §5).

    **Arguments:** `flow` a `QuenchedFlow`; `W0` (d₁, m); `lr` η > 0; `n_steps` N ≥ 0; `save_every`.

    **Returns:** the final W, or `(final, saved)` with iterates `save_every, 2·save_every, …` stacked.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §8.8.
    """
    if not isinstance(flow, QuenchedFlow):
        raise TypeError(f"`flow` must be a QuenchedFlow, got {type(flow).__name__}.")
    W0 = flow.check_initial(W0)
    check_positive(lr, "lr")
    n_steps = _check_int(n_steps, "n_steps", minimum=0)
    if save_every is not None:
        save_every = _check_int(save_every, "save_every")
    return _quenched_gd(flow, W0, jnp.asarray(lr, W0.dtype), n_steps, save_every)


def _quenched_step(flow, lr):
    def step(k, W):
        return W + lr * flow.vector_field(k * lr, W)

    return step


@eqx.filter_jit
def _quenched_gd_final(flow, W0, lr, n_steps):
    step = _quenched_step(flow, lr)
    return jax.lax.fori_loop(0, n_steps, lambda k, W: step(jnp.asarray(k, W.dtype), W), W0)


@eqx.filter_jit
def _quenched_gd_saved(flow, W0, lr, n_steps, save_every):
    step = _quenched_step(flow, lr)

    def block(W, start):
        W = jax.lax.fori_loop(0, save_every, lambda j, W: step(jnp.asarray(start + j, W.dtype), W), W)
        return W, W

    starts = jnp.arange(n_steps // save_every) * save_every
    W, saved = jax.lax.scan(block, W0, starts)
    rest = n_steps % save_every
    W = jax.lax.fori_loop(0, rest, lambda j, W: step(jnp.asarray(starts.size * save_every + j, W.dtype), W), W)
    return W, saved


def _quenched_gd(flow, W0, lr, n_steps, save_every):
    if save_every is None:
        return _quenched_gd_final(flow, W0, lr, jnp.asarray(n_steps))
    return _quenched_gd_saved(flow, W0, lr, n_steps, save_every)


# ----------------------------------------------------------------------------------------------
# linearised flow
# ----------------------------------------------------------------------------------------------


def _kappa(batch_size) -> float:
    if batch_size is None:
        return 1.0
    B = _check_int(batch_size, "batch_size", minimum=2)
    return 1.0 - 1.0 / B


def _linear_S(Cp, temperature, batch_size, stop_gradient):
    Cp = as_array(Cp, "Cp", ndim=2)
    check_symmetric(Cp, "Cp")
    check_positive(temperature, "temperature")
    factor = _kappa(batch_size) * (2.0 if not stop_gradient else 1.0)
    return factor * sym(Cp) / (2.0 * temperature)


def linearised_flow(Cp, *, temperature=0.5, batch_size: int | None = None, weight_decay=0.0,
                    stop_gradient: bool = True) -> QuadraticFlow:
    r"""The linearised small-weight flow `dW/dt = (κ/τ) C+ W − ωW` as the core's naive flow
    `dW/dt = 2SW − ωW` with `S = κ C+/(2τ)` (`S = κ C+/τ` without the stop-gradient).

    **Arguments:**
    - `Cp`: symmetric cross-view moment `C+` (d₁, d₁), e.g. `sparse_view_stats(...).Cp`.
    - `temperature` τ > 0.
    - `batch_size` B: in-batch negatives `|𝒩| = B − 1`, `κ = |𝒩|/(|𝒩| + 1) = 1 − 1/B`; None for κ = 1
      (infinitely many negatives).
    - `weight_decay` ω ≥ 0; `stop_gradient` (default True).

    **Returns:** a `QuadraticFlow` (Euclidean) to integrate with `ssldyn.solve`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §4.
    """
    S = _linear_S(Cp, temperature, batch_size, stop_gradient)
    return naive_flow(S, weight_decay=weight_decay)


def linearised_solution(Cp, W0, *, temperature=0.5, batch_size: int | None = None, weight_decay=0.0,
                        stop_gradient: bool = True) -> NaiveSolution:
    r"""Closed form of the linearised flow:

    $$W(t) = \exp\big(t(\kappa C_+/\tau - \omega I)\big)\, W(0) = e^{-\omega t} e^{2tS} W(0),\quad S = \kappa C_+/(2\tau).$$

    **Arguments:** as `linearised_flow`, plus `W0` (d₁, m).

    **Returns:** a `NaiveSolution`; call it with t to get W(t).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §4.
    """
    S = _linear_S(Cp, temperature, batch_size, stop_gradient)
    return NaiveSolution(S, W0, weight_decay=weight_decay)


def cubic_correction(C0, W, *, temperature=0.5, batch_size: int | None = None) -> jax.Array:
    r"""Leading correction to the linearised flow (b = 0, stop-gradient, zero-mean data):

    $$\frac{dW}{dt} = \frac{\kappa}{\tau} C_+ W - \omega W \;\underbrace{-\; \frac{\kappa}{\tau^2}\, C_0 W\,(W^\top C_0 W)}_{\texttt{cubic\_correction}}
      \; + O(\|W\|^5) + O(\|W\|^3/B),$$

    with `C0` the same-view moment (anchors and negatives are views with this second moment). It is a
    contraction on directions of large view variance: the linearisation of theory §4 holds while its
    size is small against the rate gap, roughly `σ₀² c (tr C0 + m c)/τ² ≪ p/τ` for a view-variance
    eigenvalue c at initial scale σ₀ (e.g. masking at σ_ξ²/p = 4 and σ₀ = 0.02 violates it). Derived
    here; the exact frozen-sample version is `QuenchedFlow.cubic_term`.

    **Arguments:** `C0` symmetric (d₁, d₁) (`sparse_view_stats(...).C0`); `W` (d₁, m); `temperature` τ;
    `batch_size` B (κ = 1 − 1/B; None: κ = 1).

    **Returns:** (d₁, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §4 (the correction is not in the theory file).
    """
    C0 = as_array(C0, "C0", ndim=2)
    check_symmetric(C0, "C0")
    W = as_array(W, "W", ndim=2)
    if W.shape[0] != C0.shape[0]:
        raise ValueError(f"`W` must have {C0.shape[0]} rows to match `C0`, got shape {tuple(W.shape)}.")
    check_positive(temperature, "temperature")
    kappa = _kappa(batch_size)
    CW = C0 @ W
    return -(kappa / temperature**2) * CW @ (W.T @ CW)


class LinearRates(NamedTuple):
    """Eigen-rates of the linearised flow (per unit time; `‖P W(t)‖ ∝ e^{rate·t}`).

    **Fields:** `atoms` (rate in span(M)), `dense` (rate in M⊥), `exact` (all eigenvalues of
    `κC+/τ − ωI`, descending).
    """

    atoms: jax.Array
    dense: jax.Array
    exact: jax.Array


def linearised_rates(data: SparseCoding, augmentation: Augmentation = "mask", *, temperature=0.5,
                     batch_size: int | None = None, weight_decay=0.0, aug_noise_std=0.0,
                     stop_gradient: bool = True) -> LinearRates:
    r"""Eigen-rates of the linearised flow (theory §4), with κ = 1 − 1/B kept and
    `Diag(MMᵀ) ≈ (d/d₁) I` (exact when the dictionary's rows have equal norms):

    | direction | `"mask"` | `"none"`/`"noise"` | `"independent_mask"` |
    |---|---|---|---|
    | atoms | `κp(1 − d/d₁)/τ − ω` | `κ(p + σ²)/τ − ω` | `κ(p + σ²)/(4τ) − ω` |
    | dense | `−κpd/(d₁τ) − ω` | `κσ²/τ − ω` | `κσ²/(4τ) − ω` |

    (doubled κ without the stop-gradient). `exact` holds the eigenvalues of `κC+/τ − ωI` with the
    exact `C+` of `sparse_view_stats`. These are the growth rates of the small-weight flow only while
    `cubic_correction` is small against the gap κp/τ.

    **Arguments:** `data`; `augmentation`; `temperature` τ; `batch_size` B (None: κ = 1); `weight_decay`
    ω; `aug_noise_std` (enters only `exact`, through C+ it does not change); `stop_gradient`.

    **Returns:** a `LinearRates`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §4.
    """
    data = _check_data(data)
    _check_augmentation(augmentation)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    k = _kappa(batch_size) * (1.0 if stop_gradient else 2.0) / temperature
    p, s2, ratio = data.p, data.noise_std**2, data.d / data.d1
    if augmentation == "mask":
        atoms, dense = k * p * (1.0 - ratio), -k * p * ratio
    elif augmentation == "independent_mask":
        atoms, dense = k * (p + s2) / 4.0, k * s2 / 4.0
    else:
        atoms, dense = k * (p + s2), k * s2
    Cp = sparse_view_stats(data, augmentation, aug_noise_std=aug_noise_std).Cp
    exact = jnp.linalg.eigvalsh(k * Cp)[::-1] - weight_decay
    return LinearRates(atoms=atoms - weight_decay, dense=dense - weight_decay, exact=exact)


# ----------------------------------------------------------------------------------------------
# SGD training (vmapped over seeds)
# ----------------------------------------------------------------------------------------------


class SGDResult(NamedTuple):
    """Result of `train_sgd`.

    **Fields:** `W` final weights (S, d₁, m); `ts` save times (n_save,) including t = 0; `Ws` saved
    weights (S, n_save, d₁, m); `betas` the bias multipliers at the save times (n_save,); `losses`
    (S, n_save) the mean minibatch loss over the steps since the previous save (NaN at t = 0).
    """

    W: jax.Array
    ts: jax.Array
    Ws: jax.Array
    betas: jax.Array
    losses: jax.Array


def train_sgd(keys, data: SparseCoding, W0, *, augmentation: Augmentation = "mask", aug_noise_std=0.0, lr=0.05,
              n_steps: int = 3000, batch_size: int = 512, temperature=0.5, weight_decay=1e-3, beta_max=0.0,
              ramp_fraction=0.5, save_every: int | None = None, stop_gradient: bool = True) -> SGDResult:
    r"""Online SGD on the Wen & Li InfoNCE, vmapped over seeds (optax; gradients by `jax.grad`).

    Each step draws B fresh samples, their two views, and applies
    `W ← W − η (∇_W L_batch(W; b_k) + ωW)` with in-batch negatives and the bias
    `b_k = β(kη) s_view σ_ξ ‖w_i‖` (horizon `T = η·n_steps`; `beta_max = 0` gives b ≡ 0).
    Time is `t = η·steps`.

    **Arguments:**
    - `keys`: a key, or S keys (leading axis) for S seeds (sampling only).
    - `data`: the `SparseCoding` model (shared by all seeds).
    - `W0`: initial weights (d₁, m), or (S, d₁, m) one per seed (`init_neurons`).
    - `augmentation`, `aug_noise_std`: see `make_views`.
    - `lr` η > 0; `n_steps`; `batch_size` B ≥ 2; `temperature` τ; `weight_decay` ω.
    - `beta_max`, `ramp_fraction`: bias schedule (`bias_schedule`).
    - `save_every`: save every this many steps (default: n_steps); must divide `n_steps`. Runs with
      the same number of saves `n_steps/save_every` (and shapes) share one compilation.
    - `stop_gradient`: the theory's loss (default True).

    **Returns:** an `SGDResult` (seed axis always present).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3, §7.
    """
    data = _check_data(data)
    _check_augmentation(augmentation)
    check_positive(lr, "lr")
    n_steps = _check_int(n_steps, "n_steps")
    batch_size = _check_int(batch_size, "batch_size", minimum=2)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(beta_max, "beta_max", allow_zero=True)
    _check_probability(ramp_fraction, "ramp_fraction")
    check_positive(aug_noise_std, "aug_noise_std", allow_zero=True)
    save_every = n_steps if save_every is None else _check_int(save_every, "save_every")
    if n_steps % save_every:
        raise ValueError(f"`save_every` must divide `n_steps` = {n_steps}, got {save_every}.")
    keys = _check_keys(keys)
    single = keys.ndim == (0 if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key) else 1)
    if single:
        keys = keys[None]
    n_seeds = keys.shape[0]
    W0 = as_array(W0, "W0", ndim=(2, 3)).astype(data.M.dtype)
    if W0.shape[-2] != data.d1:
        raise ValueError(f"`W0` must have {data.d1} rows (d1), got shape {tuple(W0.shape)}.")
    if W0.ndim == 2:
        W0 = jnp.broadcast_to(W0, (n_seeds,) + W0.shape)
    elif W0.shape[0] != n_seeds:
        raise ValueError(f"`W0` must have one initial matrix per key ({n_seeds}), got shape {tuple(W0.shape)}.")
    dt = data.M.dtype
    hyper = dict(lr=jnp.asarray(lr, dt), temperature=jnp.asarray(temperature, dt),
                 weight_decay=jnp.asarray(weight_decay, dt), beta_max=jnp.asarray(beta_max, dt),
                 ramp_fraction=jnp.asarray(ramp_fraction, dt), aug_noise_std=jnp.asarray(aug_noise_std, dt),
                 scale=view_noise_scale(data, augmentation, aug_noise_std=aug_noise_std).astype(dt))
    hyper["aug_index"] = jnp.asarray(AUGMENTATIONS.index(augmentation), jnp.int32)
    W, Ws, losses = _train_seeds(keys, data, W0, hyper, n_steps // save_every, jnp.asarray(save_every, jnp.int32),
                                 batch_size, bool(stop_gradient))
    k = jnp.arange(0, n_steps + 1, save_every)
    ts = k * jnp.asarray(lr, dt)
    betas = _beta(ts, n_steps * jnp.asarray(lr, dt), hyper["beta_max"], hyper["ramp_fraction"])
    return SGDResult(W=W, ts=ts, Ws=Ws, betas=betas, losses=losses)


def _check_keys(keys):
    try:
        keys = keys if isinstance(keys, jax.Array) else jnp.asarray(keys)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`keys` must be a jax.random key or a stack of keys, got {type(keys).__name__}.") from err
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    raw = keys.dtype == jnp.uint32 and keys.ndim in (1, 2) and keys.shape[-1] == 2
    if not (typed and keys.ndim in (0, 1)) and not raw:
        raise TypeError(
            "`keys` must be a jax.random key (jax.random.PRNGKey(0) or jax.random.key(0)) or a stack of keys "
            f"(jax.random.split(key, S)), got dtype {keys.dtype} and shape {tuple(keys.shape)}."
        )
    return keys


@partial(jax.jit, static_argnames=("n_saves", "batch_size", "stop_gradient"))
def _train_seeds(keys, data, W0, hyper, n_saves, save_every, batch_size, stop_gradient):
    # Only the number of saves is static: runs of different lengths (traced `save_every`) share one
    # compilation.
    horizon = n_saves * save_every * hyper["lr"]

    def one(key, W_init):
        opt = optax.chain(optax.add_decayed_weights(hyper["weight_decay"]), optax.sgd(hyper["lr"]))

        def loss_fn(W, X1, X2, b):
            return _info_nce(W, X1, X2, hyper["temperature"], b, batch_size, stop_gradient, 0.0)

        def step(k, carry):
            W, state, acc = carry
            kx, kv = jax.random.split(jax.random.fold_in(key, k))
            X = data.sample(kx, batch_size)
            X1, X2 = _views_switch(kv, X, hyper["aug_index"], hyper["aug_noise_std"])
            beta = _beta(k * hyper["lr"], horizon, hyper["beta_max"], hyper["ramp_fraction"])
            b = _neuron_bias(W, beta, hyper["scale"])
            loss, g = jax.value_and_grad(loss_fn)(W, X1, X2, b)
            updates, state = opt.update(g, state, W)
            return optax.apply_updates(W, updates), state, acc + loss

        def block(carry, start):
            W, state = carry
            W, state, acc = jax.lax.fori_loop(start, start + save_every, step, (W, state, jnp.zeros((), W.dtype)))
            return (W, state), (W, acc / save_every)

        starts = jnp.arange(n_saves) * save_every
        (W, _), (Ws, losses) = jax.lax.scan(block, (W_init, opt.init(W_init)), starts)
        Ws = jnp.concatenate([W_init[None], Ws], axis=0)
        losses = jnp.concatenate([jnp.full((1,), jnp.nan, losses.dtype), losses])
        return W, Ws, losses

    return jax.vmap(one)(keys, W0)


# ----------------------------------------------------------------------------------------------
# metrics
# ----------------------------------------------------------------------------------------------


def _check_WM(W, M):
    W = as_array(W, "W")
    if W.ndim < 2:
        raise ValueError(f"`W` must be (..., d1, m) with neurons as columns, got shape {tuple(W.shape)}.")
    M = as_array(M, "M", ndim=2)
    if W.shape[-2] != M.shape[0]:
        raise ValueError(f"`W` must have {M.shape[0]} rows to match `M` (d1, d), got shape {tuple(W.shape)}.")
    return W, M


def _norms(W):
    return jnp.sqrt(jnp.sum(W**2, axis=-2))


def span_energy(W, M) -> jax.Array:
    r"""Per-neuron energy in span(M): `‖Mᵀw_i‖² / ‖w_i‖²` (M with orthonormal columns).

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m), in [0, 1]; about `d/d₁` for random weights.
    """
    W, M = _check_WM(W, M)
    return _span_energy(W, M)


@jax.jit
def _span_energy(W, M):
    return jnp.sum((M.T @ W) ** 2, axis=-2) / jnp.sum(W**2, axis=-2)


def atom_alignment(W, M) -> jax.Array:
    r"""The neuron–atom alignment matrix `|cos(w_i, M_j)| = |⟨w_i, M_j⟩| / ‖w_i‖` (atoms have unit norm).

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m, d).
    """
    W, M = _check_WM(W, M)
    return _atom_alignment(W, M)


@jax.jit
def _atom_alignment(W, M):
    return jnp.abs(jnp.swapaxes(W, -1, -2) @ M) / _norms(W)[..., None]


def single_atom_alignment(W, M) -> jax.Array:
    r"""Single-atom alignment `s_i = max_j |⟨w_i, M_j⟩| / ‖w_i‖` per neuron.

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m), in [0, 1].

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    return jnp.max(atom_alignment(W, M), axis=-1)


def atoms_covered(W, M, *, threshold=0.9) -> jax.Array:
    r"""Number of atoms j for which some neuron has `|cos(w_i, M_j)| ≥ threshold`.

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d); `threshold` in [0, 1] (the "close to 1" cut-off).

    **Returns:** an int array (...).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    _check_probability(threshold, "threshold")
    return jnp.sum(jnp.max(atom_alignment(W, M), axis=-2) >= threshold, axis=-1)


def sparse_metrics(W, M, *, threshold=0.9) -> dict:
    r"""All weight metrics at once (theory §7), each with the batch shape of `W` (..., d₁, m):

    - `energy`: mean over neurons of `span_energy`;
    - `alignment`: mean single-atom alignment `s_i`;
    - `single_atom_share`: share of neurons with `s_i ≥ threshold`;
    - `atoms_covered`: `atoms_covered(W, M, threshold)`;
    - `dense_norm`: `‖P_{M⊥} W‖_F`; `atom_norm`: `‖MᵀW‖_F` (for growth rates).

    **Arguments:** `W`; `M`; `threshold` in [0, 1] (the "close to 1" cut-off).

    **Returns:** a dict of arrays.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    W, M = _check_WM(W, M)
    _check_probability(threshold, "threshold")
    return _sparse_metrics(W, M, jnp.asarray(threshold, W.dtype))


@jax.jit
def _sparse_metrics(W, M, threshold):
    A = _atom_alignment(W, M)
    s = jnp.max(A, axis=-1)
    proj = M.T @ W
    total = jnp.sum(W**2, axis=(-2, -1))
    atom2 = jnp.sum(proj**2, axis=(-2, -1))
    return {
        "energy": jnp.mean(_span_energy(W, M), axis=-1),
        "alignment": jnp.mean(s, axis=-1),
        "single_atom_share": jnp.mean((s >= threshold).astype(W.dtype), axis=-1),
        "atoms_covered": jnp.sum(jnp.max(A, axis=-2) >= threshold, axis=-1),
        "atom_norm": jnp.sqrt(atom2),
        "dense_norm": jnp.sqrt(jnp.clip(total - atom2, 0.0)),
    }


def code_probe(F_train, Z_train, F_test, Z_test, *, reg=1e-3) -> jax.Array:
    r"""Linear (ridge) probe recovering the sparse code from representations; returns the test R².

    Features are standardised with the training statistics; the probe solves
    `min_{V,c} (1/n)‖F̃V + 1cᵀ − Z‖² + λ‖V‖²` and reports
    `R² = 1 − Σ‖Ẑ − Z‖² / Σ‖Z − Z̄_train‖²` on the test set (1 is perfect; 0 is predicting the mean).

    **Arguments:** `F_train` (n, m); `Z_train` (n, d); `F_test` (n', m); `Z_test` (n', d); `reg` λ > 0.

    **Returns:** a scalar R². For the raw input `F = X` its population value is `p/(p + σ_ξ²)` (the
    best linear predictor of z is `(p/(p + σ_ξ²)) Mᵀx`).
    """
    Ftr = as_array(F_train, "F_train", ndim=2)
    Ztr = as_array(Z_train, "Z_train", ndim=2)
    Fte = as_array(F_test, "F_test", ndim=2)
    Zte = as_array(Z_test, "Z_test", ndim=2)
    if Ftr.shape[0] != Ztr.shape[0] or Fte.shape[0] != Zte.shape[0]:
        raise ValueError("`F_train`/`Z_train` and `F_test`/`Z_test` must have matching numbers of rows.")
    if Ftr.shape[1] != Fte.shape[1] or Ztr.shape[1] != Zte.shape[1]:
        raise ValueError("train and test arrays must have matching numbers of columns.")
    check_positive(reg, "reg")
    return _code_probe(Ftr, Ztr, Fte, Zte, reg)


@jax.jit
def _code_probe(Ftr, Ztr, Fte, Zte, reg):
    mean, std = jnp.mean(Ftr, axis=0), jnp.std(Ftr, axis=0)
    scale = jnp.where(std > 0, std, 1.0)
    x, xt = (Ftr - mean) / scale, (Fte - mean) / scale
    zm = jnp.mean(Ztr, axis=0)
    n, k = x.shape
    V = jnp.linalg.solve(x.T @ x / n + reg * jnp.eye(k, dtype=x.dtype), x.T @ (Ztr - zm) / n)
    pred = xt @ V + zm
    return 1.0 - jnp.sum((pred - Zte) ** 2) / jnp.sum((Zte - zm) ** 2)

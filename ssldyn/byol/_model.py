r"""The linear BYOL/SimSiam model: states, aligned (per-mode) states, the closed-form predictor map, Gaussian views.

Row layout throughout: the online encoder is `f(x) = W x` with `W ∈ R^{k×d}`, the predictor
`W_p ∈ R^{k×k}`, the target `W_a ∈ R^{k×d}`; data arrays hold one sample per row, `X ∈ R^{n×d}`.

- `BYOLState(W, Wp, Wa)`: the full-matrix state; `ModeState(p, w, wa)`: the per-mode state in the
  smooth amplitudes (`s = w²`, `τ = w_a/w`).
- `aligned_byol_state` builds `W = U diag(√s) Vᵀ`, `W_p = U diag(p) Uᵀ`, `W_a = U diag(τ√s) Vᵀ`;
  `byol_mode_coordinates` reads the mode values back.
- `closed_form_predictor`: DirectPred / Halvagal et al.'s `W_p = U diag(g(μ)) Uᵀ` for `F = U diag(μ) Uᵀ`.
- `gaussian_views`, `gaussian_view_stats`: views `x̄ + ε_v` with `x̄ ~ N(0, diag λ)`,
  `ε_v ~ N(0, diag λ')`, so `C+ = diag λ` and `C0 = diag(λ + λ')`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._linalg import sym, symmetric_pair
from .._stats import ViewStats
from .._training import fast_key
from .._validation import as_array, check_int, check_positive, check_symmetric, is_concrete

LOSSES = ("byol", "isoloss")
CORRELATIONS = ("weights", "outputs")


class BYOLState(NamedTuple):
    """State of the full linear BYOL flow (row layout).

    **Fields:** `W` (k, d) online encoder; `Wp` (k, k) predictor; `Wa` (k, d) target encoder (a
    leading time or seed axis along a trajectory).
    """

    W: Float[Array, "*batch k d"]
    Wp: Float[Array, "*batch k k"]
    Wa: Float[Array, "*batch k d"]


class ModeState(NamedTuple):
    """Per-mode state in smooth coordinates, each field of shape (k,) (or (T, k) along a trajectory).

    **Fields:** `p` predictor eigenvalues; `w` online mode amplitudes (`W = U diag(w) V_kᵀ`, so the
    eigenvalues of `W Wᵀ` are `s = w²`); `wa` target amplitudes (`W_a = U diag(wa) V_kᵀ`).

    **Properties:** `s = w²` and `tau = wa / w` (Tian et al.'s variables; τ is singular when w = 0).
    Build from (p, s, τ) with `ModeState.from_s_tau`.
    """

    p: Float[Array, "*batch k"]
    w: Float[Array, "*batch k"]
    wa: Float[Array, "*batch k"]

    @property
    def s(self):
        return self.w**2

    @property
    def tau(self):
        return self.wa / self.w

    @classmethod
    def from_s_tau(cls, p, s, tau=1.0) -> ModeState:
        """The state with predictor eigenvalues `p`, `W Wᵀ` eigenvalues `s ≥ 0` and ratios `tau` (w = √s ≥ 0)."""
        s = nonnegative(s, "s", "eigenvalues of W Wᵀ")
        p = jnp.broadcast_to(as_array(p, "p"), s.shape)
        w = jnp.sqrt(s)
        return cls(p, w, jnp.broadcast_to(as_array(tau, "tau"), s.shape) * w)


def nonnegative(x, name: str, what: str, ndim=None) -> jax.Array:
    """`x` as an array, raising unless its concrete values are ≥ 0 (`what` names them in the message)."""
    x = as_array(x, name, ndim=ndim)
    if is_concrete(x) and bool(np.any(np.asarray(x) < 0)):
        raise ValueError(f"`{name}` must be non-negative ({what}).")
    return x


def as_state(y, cls, name: str, ndim: int):
    """`y`, a `cls` NamedTuple or a tuple of as many arrays, as a `cls` of validated arrays of rank `ndim`."""
    n = len(cls._fields)
    if not (isinstance(y, (tuple, list)) and len(y) == n):
        raise TypeError(f"`{name}` must be a {cls.__name__} ({', '.join(cls._fields)}) or a {n}-tuple of arrays.")
    return cls(*(as_array(v, f"{name}.{field}", ndim=ndim) for v, field in zip(y, cls._fields)))


def check_simsiam_target(beta, online, target, message: str) -> None:
    """Raise `message` when β encodes SimSiam (target = online) but concrete `target` differs from `online`."""
    if is_simsiam(beta) and is_concrete(online) and is_concrete(target) and not np.allclose(
            np.asarray(online), np.asarray(target)):
        raise ValueError(message)


def moments(C0, Cp) -> tuple[jax.Array, jax.Array]:
    """Validated, symmetrised `(C0, C+)` of equal shape (d, d)."""
    return symmetric_pair(C0, Cp, ("C0", "Cp"))


def flag(value: bool) -> jax.Array:
    """A boolean option as a float array flag (1.0 / 0.0), so both settings share one compilation."""
    return jnp.asarray(1.0 if value else 0.0, dtype=jnp.result_type(float))


def ema_rate(beta) -> jax.Array:
    """EMA rate as an array; SimSiam (target = online) is encoded as β = ∞ so that both share a compilation."""
    if beta is None:
        return jnp.asarray(jnp.inf, dtype=jnp.result_type(float))
    if is_concrete(beta):
        b = np.asarray(beta, dtype=float)
        if np.any(np.isnan(b)) or np.any(b <= 0):
            raise ValueError(f"`beta` must be positive (or None / inf for SimSiam), got {beta}.")
    return jnp.asarray(beta, dtype=jnp.result_type(float))


def is_simsiam(beta) -> bool:
    """True when a concrete EMA rate encodes SimSiam (β = ∞)."""
    return is_concrete(beta) and bool(np.all(np.isinf(np.asarray(beta))))


def ema(beta) -> tuple[jax.Array, jax.Array]:
    """(SimSiam flag, finite rate) of an `ema_rate`, for use inside vector fields and training steps."""
    simsiam = jnp.isinf(beta)
    return simsiam, jnp.where(simsiam, 0.0, beta)


def aligned_byol_state(p, s, tau=1.0, *, U=None, V=None) -> BYOLState:
    r"""An aligned full-matrix state with prescribed mode values:

        W = U diag(√s) Vᵀ,   W_p = U diag(p) Uᵀ,   W_a = U diag(τ √s) Vᵀ.

    **Arguments:** `p`, `s` ≥ 0, `tau` (k,) or scalars broadcast; `U` (k, k) orthogonal (default I);
    `V` (d, k) orthonormal eigenvectors of the data moments (default the first k standard basis
    vectors of R^k, i.e. d = k).

    **Returns:** a `BYOLState`.
    """
    s = nonnegative(s, "s", "eigenvalues of W Wᵀ", ndim=1)
    k = s.shape[0]
    p = jnp.broadcast_to(as_array(p, "p"), (k,))
    tau = jnp.broadcast_to(as_array(tau, "tau"), (k,))
    U = jnp.eye(k, dtype=s.dtype) if U is None else as_array(U, "U", ndim=2)
    V = jnp.eye(k, dtype=s.dtype) if V is None else as_array(V, "V", ndim=2)
    if U.shape != (k, k) or V.shape[1] != k:
        raise ValueError(f"`U` must be ({k}, {k}) and `V` (d, {k}), got {tuple(U.shape)} and {tuple(V.shape)}.")
    r = jnp.sqrt(s)
    return BYOLState((U * r) @ V.T, (U * p) @ U.T, (U * (tau * r)) @ V.T)


def byol_mode_coordinates(state, U=None) -> ModeState:
    r"""Mode values of a full-matrix state in the output basis `U`:

        p = diag(Uᵀ W_p U),   w = ‖row_j(Uᵀ W)‖ (s = w² = diag(Uᵀ W Wᵀ U)),   w_a = diag(Uᵀ W_a Wᵀ U) / w.

    Works on single states and on trajectories (leading time axis). Here w ≥ 0; a per-mode solution
    whose w changed sign agrees up to the joint sign of (w, w_a): compare `s` and `w·w_a`.

    **Arguments:** `state` a `BYOLState`; `U` (k, k) orthogonal (default I).

    **Returns:** a `ModeState`.
    """
    W, Wp, Wa = state
    k = W.shape[-2]
    U = jnp.eye(k, dtype=W.dtype) if U is None else as_array(U, "U", ndim=2)
    UW = jnp.swapaxes(U, 0, 1) @ W
    UWa = jnp.swapaxes(U, 0, 1) @ Wa
    p = jnp.einsum("ij,...jk,ki->...i", U.T, Wp, U)
    w = jnp.sqrt(jnp.sum(UW**2, axis=-1))
    wa = jnp.sum(UWa * UW, axis=-1) / w
    return ModeState(p, w, wa)


# ----------------------------------------------------------------------------------------------
# Closed-form predictors (DirectPred, Halvagal et al.)
# ----------------------------------------------------------------------------------------------


def predictor_eigenvalues(mu, exponent, eps, normalize):
    """g(μ) = (μ/max μ)^a + ε or μ^a + ε; `normalize` may be a bool or a (traced) array flag."""
    mu = jnp.clip(mu, 0.0)
    scaled = mu / jnp.maximum(jnp.max(mu, axis=-1, keepdims=True), jnp.finfo(mu.dtype).tiny)
    return jnp.where(normalize, scaled, mu) ** exponent + eps


def predictor_matrix(F, exponent, eps, normalize):
    """`U diag(g(μ)) Uᵀ` for a symmetric `F = U diag(μ) Uᵀ` (no validation; see `closed_form_predictor`)."""
    mu, U = jnp.linalg.eigh(F)
    return (U * predictor_eigenvalues(mu, exponent, eps, normalize)) @ U.T


def closed_form_predictor(F, *, exponent=0.5, eps=0.01, normalize: bool = True) -> Float[Array, "k k"]:
    r"""DirectPred / Halvagal predictor `W_p = U diag(g(μ)) Uᵀ` from a correlation `F = U diag(μ) Uᵀ`:

        g(μ) = (μ / max μ)^{exponent} + ε   (`normalize=True`: DirectPred; reference ε = 0.01)
        g(μ) = μ^{exponent} + ε             (`normalize=False`: Halvagal et al.'s g(s) = s^α)

    Negative eigenvalues (round-off) are clipped to 0.

    **Arguments:** `F` (k, k) symmetric PSD (e.g. an EMA of `E[f fᵀ]`); `exponent` > 0; `eps` ≥ 0;
    `normalize`.

    **Returns:** the (k, k) symmetric predictor.

    References: Tian, Chen & Ganguli, ICML 2021 (DirectPred); Halvagal, Laborieux & Zenke, NeurIPS 2023.
    """
    F = as_array(F, "F", ndim=2)
    check_symmetric(F, "F")
    check_positive(exponent, "exponent")
    check_positive(eps, "eps", allow_zero=True)
    return predictor_matrix(sym(F), exponent, eps, normalize)


# ----------------------------------------------------------------------------------------------
# Gaussian views
# ----------------------------------------------------------------------------------------------


def gaussian_views(key, n: int, lam, lam_aug) -> tuple[Float[Array, "n d"], Float[Array, "n d"]]:
    r"""Two views of Gaussian data with independent additive augmentation noise:

        x̄ ~ N(0, diag(λ)),   x^{(v)} = x̄ + ε_v,   ε_v ~ N(0, diag(λ')),

    so `C+ = diag(λ)` and `C0 = diag(λ + λ')` (see `gaussian_view_stats`).

    **Arguments:** `key`; `n` samples; `lam` (d,) > 0; `lam_aug` (d,) ≥ 0 (or scalars broadcast to
    the length of the other).

    **Returns:** `(X1, X2)`, each (n, d), one row per sample. The draws use an `rbg` generator seeded
    from `key` (`ssldyn._training.fast_key`: fast to compile; deterministic per backend).
    """
    n = check_int(n, "n", minimum=1)
    lam, lam_aug = jnp.broadcast_arrays(as_array(lam, "lam", ndim=(0, 1), nonempty=True), as_array(lam_aug, "lam_aug", ndim=(0, 1)))
    check_positive(lam, "lam", allow_zero=True)
    check_positive(lam_aug, "lam_aug", allow_zero=True)
    d = lam.shape[0] if lam.ndim else 1
    k0, k1, k2 = jax.random.split(fast_key(key), 3)
    base = jax.random.normal(k0, (n, d), dtype=lam.dtype) * jnp.sqrt(lam)
    noise = jnp.sqrt(lam_aug)
    return (base + jax.random.normal(k1, (n, d), dtype=lam.dtype) * noise,
            base + jax.random.normal(k2, (n, d), dtype=lam.dtype) * noise)


def gaussian_view_stats(lam, lam_aug) -> ViewStats:
    """Population `ViewStats` of `gaussian_views`: `C0 = diag(λ+λ')`, `C+ = diag(λ)`, `D+ = 2 diag(λ')`."""
    lam, lam_aug = jnp.broadcast_arrays(as_array(lam, "lam", ndim=1, nonempty=True), as_array(lam_aug, "lam_aug", ndim=(0, 1)))
    check_positive(lam, "lam", allow_zero=True)
    check_positive(lam_aug, "lam_aug", allow_zero=True)
    return ViewStats(C0=jnp.diag(lam + lam_aug), Cp=jnp.diag(lam), Dp=jnp.diag(2.0 * lam_aug))

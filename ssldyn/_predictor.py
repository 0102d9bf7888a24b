r"""Non-contrastive learning with a linear predictor: BYOL/SimSiam, DirectPred and IsoLoss.

**Layout.** Row layout throughout (theory file `peers_eigenmode_dynamics.md`): the online encoder is
`f(x) = W x` with `W ∈ R^{k×d}`, the predictor `W_p ∈ R^{k×k}`, the target `W_a ∈ R^{k×d}`. Data
arrays hold one sample per row, `X ∈ R^{n×d}`, so a batch of representations is `X Wᵀ ∈ R^{n×k}`.
Moments are those of `ViewStats`: `C0` (same view) and `C+` (cross view); Tian et al.'s data and
augmentation covariances are `X = C+` and `X' = C0 − C+`.

**1. Linear BYOL with a trained predictor** (Tian, Chen & Ganguli, ICML 2021). Loss, symmetrised over
the two views (a mean over samples, with the explicit ½ of the paper):

    L = ½ E ‖W_p W x₁ − SG(W_a x₂)‖²
      = ½ tr(W_p W C0 Wᵀ W_pᵀ) − tr(W_p W C+ W_aᵀ) + ½ tr(W_a C0 W_aᵀ).

With time `t = η·steps`, predictor rate `α_p η`, weight decay ω on `W` and `W_p` (acting at the base
rate, Tian's convention, which is what makes the invariant below exact) and an EMA target
(`dW_a/dt = β(W − W_a)`, README §5):

    dW_p/dt = −α_p (W_p W C0 − W_a C+) Wᵀ − ω W_p
    dW/dt   = −W_pᵀ (W_p W C0 − W_a C+)   − ω W
    dW_a/dt = β (W − W_a)                     (β = None: SimSiam, W_a ≡ W)

**Per-mode reduction** (derived). Let `C+ = V diag(λ) Vᵀ`, `C0 − C+ = V diag(λ') Vᵀ` share
eigenvectors V and start aligned: `W = U diag(√s) V_kᵀ`, `W_p = U diag(p) Uᵀ`,
`W_a = U diag(τ√s) V_kᵀ` with U orthogonal. The form is preserved and, per mode j,

    g_j  = τ_j λ_j − p_j (λ_j + λ'_j)
    ṗ_j  = α_p s_j g_j − ω p_j
    ṡ_j  = 2 p_j s_j g_j − 2 ω s_j
    τ̇_j  = β (1 − τ_j) − τ_j (p_j g_j − ω)            (= β(1 − τ) − τ ṡ/(2s))

For `λ = 1`, `λ' = σ²` this is the theory file's system. `TianModeFlow` integrates it in the smooth
amplitudes `w = ±√s`, `w_a = τ w` (`ṗ = α_p w h − ωp`, `ẇ = p h − ωw`, `ẇ_a = β(w − w_a)` with
`h = λ w_a − (λ+λ') p w`): under an EMA target a collapsing mode can drive w through 0 while w_a ≠ 0,
where τ = w_a/w blows up in finite time, so the (p, s, τ) form is singular there (a correction to the
theory file, which states the (p, s, τ) system without this caveat). **Invariant** (exact for any τ(t)):
`ṡ − 2pṗ/α_p = −2ω (s − p²/α_p)`, so `(s − p²/α_p) e^{2ωt}` is conserved.
**Fixed points** with τ = 1 (any λ): the collapsed point (0, 0) and, on the parabola `s = p²/α_p`,

    p± = [ λ ± sqrt(λ² − 4ω(λ + λ')) ] / ( 2(λ + λ') ),   existing iff ω ≤ λ²/(4(λ + λ')).

On the parabola the flow reduces to `ṗ = −p((λ+λ')p² − λp + ω)`, so p+ attracts and p− separates
collapse from non-collapse; `mode_jacobian` shows that p− is a saddle.

**2. Closed-form predictors: DirectPred and Halvagal et al.** The predictor is a function of a
correlation matrix `F` (`F = W Wᵀ` "weights", or the online output correlation `F = W C0 Wᵀ`
"outputs"): `W_p = U diag(g(μ)) Uᵀ` for `F = U diag(μ) Uᵀ`, with

    g(μ) = (μ / max μ)^{exponent} + ε      (DirectPred, `normalize=True`, exponent ½, ε = 0.01)
    g(μ) = μ^{exponent} + ε                (Halvagal et al.'s `s^α`, `normalize=False`)

No gradient flows through the predictor. Euclidean BYOL/SimSiam and **IsoLoss** then give

    BYOL:    dW/dt = −W_pᵀ (W_p W C0 − W_a C+) − ω W,   per mode  ṡ = 2 s p (λ − p(λ+λ')) − 2ωs
    IsoLoss: dW/dt = −     (W_p W C0 − W_a C+) − ω W,   per mode  ṡ = 2 s   (λ − p(λ+λ')) − 2ωs

IsoLoss is `½ E‖W x₁ − SG(W_a x₂ + W x₁ − W_p W x₁)‖²`: its value equals the BYOL loss, its gradient
with respect to the online output is the BYOL residual without the `W_pᵀ` factor. For `g(s) = s^α`
(`λ = 1`, `c = 1 + σ²`, `p* = 1/c`) the per-mode predictor eigenvalue obeys

    IsoLoss: ṗ = 2α p (1 − cp),    p(t) = p* / (1 + (p*/p₀ − 1) e^{−2αt})           (logistic)
    BYOL:    ṗ = 2α p² (1 − cp),   2αt = c ln[ p(1 − cp₀) / (p₀(1 − cp)) ] + 1/p₀ − 1/p

(for general λ replace t by λt and c by (λ+λ')/λ). IsoLoss escapes from small `p₀` in a time
`≈ ln(1/(c p₀))/(2α)`, equal for all modes; BYOL needs `≈ 1/(2α p₀)`: the eigenvalue acts as a
learning-rate multiplier.

**3. Networks.** `euclidean_byol_loss` and `isoloss` are the batch losses on representations;
`linear_byol_loss` is the linear model's batch loss; `train_linear_byol` trains the linear network
with optax SGD on fresh Gaussian views (`gaussian_views`), per-step EMA `W_a ← m W_a + (1−m) W` with
`m = 1 − βη`, and either a trained predictor or a closed-form one computed from an EMA estimate `F̂`.

References:
- Y. Tian, X. Chen, S. Ganguli. *Understanding Self-Supervised Learning Dynamics without Contrastive
  Pairs.* ICML 2021. arXiv:2102.06810.
- M. S. Halvagal, A. Laborieux, F. Zenke. *Implicit variance regularization in non-contrastive SSL.*
  NeurIPS 2023. arXiv:2212.04858.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._flows import AbstractFlow, _hyper
from ._training import scan_with_saves
from ._solve import solve
from ._stats import ViewStats, sym
from ._validation import as_array, check_positive, check_symmetric, is_concrete

__all__ = [
    "BYOLState",
    "ModeState",
    "LinearBYOLFlow",
    "linear_byol_flow",
    "linear_byol_loss",
    "TianModeFlow",
    "tian_invariant",
    "TianFixedPoints",
    "tian_fixed_points",
    "mode_jacobian",
    "aligned_byol_state",
    "byol_mode_coordinates",
    "PhasePortrait",
    "tian_phase_portrait",
    "closed_form_predictor",
    "ClosedFormPredictorFlow",
    "PredictorModeFlow",
    "isoloss_mode_solution",
    "byol_mode_time",
    "byol_mode_solution",
    "euclidean_byol_loss",
    "isoloss",
    "gaussian_views",
    "gaussian_view_stats",
    "train_linear_byol",
]

_LOSSES = ("byol", "isoloss")
_CORRELATIONS = ("weights", "outputs")


class BYOLState(NamedTuple):
    """State of the full linear BYOL flow (row layout).

    **Fields:** `W` (k, d) online encoder; `Wp` (k, k) predictor; `Wa` (k, d) target encoder.
    """

    W: jax.Array
    Wp: jax.Array
    Wa: jax.Array


class ModeState(NamedTuple):
    """Per-mode state in smooth coordinates, each field of shape (k,) (or (T, k) along a trajectory).

    **Fields:** `p` predictor eigenvalues; `w` online mode amplitudes (`W = U diag(w) V_kᵀ`, so the
    eigenvalues of `W Wᵀ` are `s = w²`); `wa` target amplitudes (`W_a = U diag(wa) V_kᵀ`).

    **Properties:** `s = w²` and `tau = wa / w` (Tian et al.'s variables; τ is singular when w = 0).
    Build from (p, s, τ) with `ModeState.from_s_tau`.
    """

    p: jax.Array
    w: jax.Array
    wa: jax.Array

    @property
    def s(self):
        return self.w**2

    @property
    def tau(self):
        return self.wa / self.w

    @classmethod
    def from_s_tau(cls, p, s, tau=1.0) -> ModeState:
        """The state with predictor eigenvalues `p`, `W Wᵀ` eigenvalues `s ≥ 0` and ratios `tau` (w = √s ≥ 0)."""
        s = as_array(s, "s")
        if is_concrete(s) and bool(np.any(np.asarray(s) < 0)):
            raise ValueError("`s` must be non-negative (eigenvalues of W Wᵀ).")
        p = jnp.broadcast_to(as_array(p, "p"), s.shape)
        w = jnp.sqrt(s)
        return cls(p, w, jnp.broadcast_to(as_array(tau, "tau"), s.shape) * w)


def _fast_key(key):
    """An `rbg` key carrying the bits of `key` (a threefry key from `jax.random.PRNGKey`/`key`).

    XLA's RngBitGenerator compiles in a fraction of the time of the threefry hash, which dominates the
    compilation of the training loops on CPU. Draws are deterministic given `key` on a given backend.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if "rbg" in str(key.dtype):
            return key
        key = jax.random.key_data(key)
    data = jnp.ravel(key).astype(jnp.uint32)
    if data.shape[0] == 2:
        data = jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)])
    return jax.random.wrap_key_data(data[:4], impl="rbg")


def _moments(C0, Cp):
    C0 = as_array(C0, "C0", ndim=2)
    Cp = as_array(Cp, "Cp", ndim=2)
    check_symmetric(C0, "C0")
    check_symmetric(Cp, "Cp")
    if C0.shape != Cp.shape:
        raise ValueError(f"`C0` and `Cp` must have the same shape, got {tuple(C0.shape)} and {tuple(Cp.shape)}.")
    return sym(C0), sym(Cp)


def _flag(value: bool) -> jax.Array:
    return jnp.asarray(1.0 if value else 0.0, dtype=jnp.result_type(float))


def _beta(beta):
    """EMA rate as an array; SimSiam (target = online) is encoded as β = ∞ so that both share a compilation."""
    if beta is None:
        return jnp.asarray(jnp.inf, dtype=jnp.result_type(float))
    if is_concrete(beta):
        b = np.asarray(beta, dtype=float)
        if np.any(np.isnan(b)) or np.any(b <= 0):
            raise ValueError(f"`beta` must be positive (or None / inf for SimSiam), got {beta}.")
    return jnp.asarray(beta, dtype=jnp.result_type(float))


def _is_simsiam(beta) -> bool:
    return is_concrete(beta) and bool(np.all(np.isinf(np.asarray(beta))))


def _ema(beta):
    """(simsiam flag, finite rate) for use inside vector fields."""
    simsiam = jnp.isinf(beta)
    return simsiam, jnp.where(simsiam, 0.0, beta)


# ----------------------------------------------------------------------------------------------
# 1. Trained linear predictor: full-matrix flow
# ----------------------------------------------------------------------------------------------


class LinearBYOLFlow(AbstractFlow):
    r"""Full-matrix gradient flow of linear BYOL/SimSiam with a trained linear predictor.

        dW_p/dt = −α_p (W_p W C0 − W_a C+) Wᵀ − ω W_p
        dW/dt   = −W_pᵀ (W_p W C0 − W_a C+) − ω W
        dW_a/dt = β (W − W_a)          (EMA target; with `beta=None` the target is W itself)

    This is `dθ/dt = −(rate)·∇_θ L − ωθ` for the symmetrised loss
    `L = ½ E‖W_p W x₁ − SG(W_a x₂)‖²` (see `linear_byol_loss`), with rate 1 for W and `α_p` for `W_p`.

    **Arguments:**
    - `C0`: same-view moment (d, d), Tian's `X + X'`.
    - `Cp`: cross-view moment `C+` (d, d), Tian's `X`.
    - `alpha_p`: predictor learning-rate multiplier α_p > 0.
    - `weight_decay`: ω ≥ 0 (on W and W_p, at the base rate).
    - `beta`: EMA rate β > 0 of the target (`β = (1 − m)/η`), or None (equivalently `inf`) for SimSiam
      (`W_a ≡ W`; the state's `Wa` must then equal `W` initially and is carried along with it). Both
      cases share one compilation (β is an array).

    **State:** `BYOLState(W, Wp, Wa)` with shapes (k, d), (k, k), (k, d).

    References: Tian, Chen & Ganguli, ICML 2021, eq. (3)–(5) (reconstructed; see the module docstring).
    """

    C0: jax.Array
    Cp: jax.Array
    alpha_p: jax.Array
    weight_decay: jax.Array
    beta: jax.Array

    def __init__(self, C0, Cp, *, alpha_p=1.0, weight_decay=0.0, beta=None):
        self.C0, self.Cp = _moments(C0, Cp)
        check_positive(alpha_p, "alpha_p")
        self.alpha_p = _hyper(alpha_p, "alpha_p")
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        self.beta = _beta(beta)

    def _residual(self, W, Wp, Wa):
        return Wp @ W @ self.C0 - Wa @ self.Cp

    def vector_field(self, t, y):
        W, Wp, Wa = y
        simsiam, rate = _ema(self.beta)
        target = jnp.where(simsiam, W, Wa)
        R = self._residual(W, Wp, target)
        dW = -Wp.T @ R - self.weight_decay * W
        dWp = -self.alpha_p * (R @ W.T) - self.weight_decay * Wp
        dWa = jnp.where(simsiam, dW, rate * (W - Wa))
        return BYOLState(dW, dWp, dWa)

    def loss(self, y):
        W, Wp, Wa = y
        target = jnp.where(jnp.isinf(self.beta), W, Wa)
        PW = Wp @ W
        value = (0.5 * jnp.sum(PW * (PW @ self.C0)) - jnp.sum(PW * (target @ self.Cp))
                 + 0.5 * jnp.sum(target * (target @ self.C0)))
        return value + 0.5 * self.weight_decay * (jnp.sum(W**2) + jnp.sum(Wp**2))

    def check_initial(self, y0):
        if not (isinstance(y0, (tuple, list)) and len(y0) == 3):
            raise TypeError("`y0` must be a BYOLState (W, Wp, Wa) or a 3-tuple of arrays.")
        W = as_array(y0[0], "y0.W", ndim=2)
        Wp = as_array(y0[1], "y0.Wp", ndim=2)
        Wa = as_array(y0[2], "y0.Wa", ndim=2)
        k, d = W.shape
        if d != self.C0.shape[0]:
            raise ValueError(f"`y0.W` must be (k, {self.C0.shape[0]}) to match `C0`, got {tuple(W.shape)}.")
        if Wp.shape != (k, k):
            raise ValueError(f"`y0.Wp` must be ({k}, {k}), got {tuple(Wp.shape)}.")
        if Wa.shape != W.shape:
            raise ValueError(f"`y0.Wa` must have the shape of `y0.W` {tuple(W.shape)}, got {tuple(Wa.shape)}.")
        if _is_simsiam(self.beta) and is_concrete(W) and is_concrete(Wa) and not np.allclose(np.asarray(W), np.asarray(Wa)):
            raise ValueError("`y0.Wa` must equal `y0.W` when `beta=None` (SimSiam: the target is the online encoder).")
        return BYOLState(W, Wp, Wa)


def linear_byol_flow(stats: ViewStats, *, alpha_p=1.0, weight_decay=0.0, beta=None) -> LinearBYOLFlow:
    """`LinearBYOLFlow` from a `ViewStats` (its `C0` and `Cp`). See `LinearBYOLFlow`."""
    if not isinstance(stats, ViewStats):
        raise TypeError(f"`stats` must be a ViewStats, got {type(stats).__name__}.")
    return LinearBYOLFlow(stats.C0, stats.Cp, alpha_p=alpha_p, weight_decay=weight_decay, beta=beta)


def linear_byol_loss(W, Wp, Wa, X1, X2, *, symmetric: bool = True) -> jax.Array:
    r"""Batch loss of linear BYOL with a stop-gradient target:

        L = ½ (1/n) Σ_i ‖W_p W x₁ᵢ − SG(W_a x₂ᵢ)‖²,

    averaged over the two view orders when `symmetric` (then its gradients are those of
    `LinearBYOLFlow` with the batch `ViewStats`). Mean over samples, sum over coordinates, explicit ½.

    **Arguments:** `W` (k, d), `Wp` (k, k), `Wa` (k, d); `X1`, `X2` (n, d) the two views, one row per
    sample; `symmetric`: average over both view orders.

    **Returns:** a scalar.
    """
    W = as_array(W, "W", ndim=2)
    Wp = as_array(Wp, "Wp", ndim=2)
    Wa = as_array(Wa, "Wa", ndim=2)
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    if X1.shape != X2.shape or X1.shape[1] != W.shape[1]:
        raise ValueError(f"`X1` and `X2` must both be (n, {W.shape[1]}), got {tuple(X1.shape)} and {tuple(X2.shape)}.")

    def one(A, B):
        return euclidean_byol_loss(A @ W.T @ Wp.T, B @ Wa.T)

    return 0.5 * (one(X1, X2) + one(X2, X1)) if symmetric else one(X1, X2)


# ----------------------------------------------------------------------------------------------
# 1b. Per-mode reduction, invariant, fixed points, phase portrait
# ----------------------------------------------------------------------------------------------


class TianModeFlow(AbstractFlow):
    r"""Per-eigenmode reduction of `LinearBYOLFlow` (derived in the module docstring), integrated in the
    smooth amplitudes `w` (`s = w²`) and `w_a` (`τ = w_a/w`):

        h  = λ w_a − (λ + λ') p w          (= w g with g = τλ − p(λ+λ'))
        ṗ  = α_p w h − ω p                  (= α_p s g − ω p)
        ẇ  = p h − ω w                      (⇒ ṡ = 2 p s g − 2 ω s)
        ẇ_a = β (w − w_a)                   (⇒ τ̇ = β(1 − τ) − τ(p g − ω));   SimSiam: w_a ≡ w.

    Tian et al.'s (p, s, τ) system is the same flow in singular coordinates: under an EMA target a
    collapsing mode drives w through 0 while w_a ≠ 0, where τ = w_a/w blows up in finite time (and s = w²
    bounces back). The (p, w, w_a) form stays polynomial.

    Modes are independent, so one flow with k "modes" can also integrate k separate initial
    conditions of a single mode at once (used by `tian_phase_portrait`).

    **Arguments:**
    - `lam`: data eigenvalues λ_j of `C+` (scalar or (k,); default 1).
    - `lam_aug`: augmentation eigenvalues λ'_j of `C0 − C+` (Tian's σ² for isotropic data), ≥ 0.
    - `alpha_p`, `weight_decay`, `beta`: as in `LinearBYOLFlow` (`beta=None`: SimSiam, `w_a ≡ w`).

    **State:** `ModeState(p, w, wa)`, each (k,); build it with `ModeState.from_s_tau(p, s, tau)`.
    """

    lam: jax.Array
    lam_aug: jax.Array
    alpha_p: jax.Array
    weight_decay: jax.Array
    beta: jax.Array

    def __init__(self, lam=1.0, lam_aug=0.0, *, alpha_p=1.0, weight_decay=0.0, beta=None):
        self.lam = _hyper(lam, "lam")
        self.lam_aug = _hyper(lam_aug, "lam_aug")
        check_positive(alpha_p, "alpha_p")
        self.alpha_p = _hyper(alpha_p, "alpha_p")
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        self.beta = _beta(beta)

    def vector_field(self, t, y):
        p, w, wa = y
        simsiam, rate = _ema(self.beta)
        target = jnp.where(simsiam, w, wa)
        h = self.lam * target - (self.lam + self.lam_aug) * p * w
        dp = self.alpha_p * w * h - self.weight_decay * p
        dw = p * h - self.weight_decay * w
        dwa = jnp.where(simsiam, dw, rate * (w - wa))
        return ModeState(dp, dw, dwa)

    def loss(self, y):
        p, w, wa = y
        wa = jnp.where(jnp.isinf(self.beta), w, wa)
        c0 = self.lam + self.lam_aug
        value = 0.5 * jnp.sum(c0 * (p * w) ** 2 - 2.0 * self.lam * p * w * wa + c0 * wa**2)
        return value + 0.5 * self.weight_decay * (jnp.sum(w**2) + jnp.sum(p**2))

    def check_initial(self, y0):
        if not (isinstance(y0, (tuple, list)) and len(y0) == 3):
            raise TypeError("`y0` must be a ModeState (p, w, wa) or a 3-tuple of arrays.")
        p = as_array(y0[0], "y0.p", ndim=1)
        w = as_array(y0[1], "y0.w", ndim=1)
        wa = as_array(y0[2], "y0.wa", ndim=1)
        if not (p.shape == w.shape == wa.shape):
            raise ValueError(f"`y0.p`, `y0.w`, `y0.wa` must have equal shapes, got {p.shape}, {w.shape}, {wa.shape}.")
        if _is_simsiam(self.beta) and is_concrete(w) and is_concrete(wa) and not np.allclose(np.asarray(w), np.asarray(wa)):
            raise ValueError("`y0.wa` must equal `y0.w` (τ = 1) when `beta=None` (the target is the online encoder).")
        for name, val in (("lam", self.lam), ("lam_aug", self.lam_aug)):
            if jnp.ndim(val) == 1 and val.shape[0] != p.shape[0]:
                raise ValueError(f"`{name}` has {val.shape[0]} entries but the state has {p.shape[0]} modes.")
        return ModeState(p, w, wa)


def tian_invariant(p, s, t, *, alpha_p=1.0, weight_decay=0.0) -> jax.Array:
    r"""The conserved quantity of each mode, `(s − p²/α_p) e^{2ωt}` (exact for any τ(t)).

    **Arguments:** `p`, `s`: mode values (any matching shapes, e.g. a trajectory (T, k)); `t`: times
    broadcastable against them (e.g. `ts[:, None]`); `alpha_p` > 0; `weight_decay` ω ≥ 0.

    **Returns:** the invariant, same shape as `s`.
    """
    check_positive(alpha_p, "alpha_p")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    return (jnp.asarray(s) - jnp.asarray(p) ** 2 / alpha_p) * jnp.exp(2.0 * weight_decay * jnp.asarray(t))


class TianFixedPoints(NamedTuple):
    """Non-collapsed fixed points of one mode (τ = 1) on the parabola `s = p²/α_p`.

    **Fields:** `p_plus`, `s_plus` (attractor), `p_minus`, `s_minus` (saddle), `exists` (bool: the
    discriminant `λ² − 4ω(λ+λ')` is non-negative; otherwise only the collapsed point (0, 0) remains
    and the other fields are NaN).
    """

    p_plus: jax.Array
    s_plus: jax.Array
    p_minus: jax.Array
    s_minus: jax.Array
    exists: jax.Array


def tian_fixed_points(*, lam=1.0, lam_aug=0.0, alpha_p=1.0, weight_decay=0.0) -> TianFixedPoints:
    r"""Non-trivial fixed points of the per-mode flow at τ = 1:

        p± = [ λ ± sqrt(λ² − 4ω(λ+λ')) ] / ( 2(λ+λ') ),     s± = p±² / α_p.

    For ω = 0, `p+ = λ/(λ+λ')` and every `s` is stationary there (the returned `s+` is the point on the
    invariant parabola through the origin) and `p− = 0`.

    **Arguments:** `lam` (λ > 0), `lam_aug` (λ' ≥ 0; Tian's σ²), `alpha_p` > 0, `weight_decay` ω ≥ 0;
    arrays broadcast.

    **Returns:** a `TianFixedPoints`.
    """
    check_positive(lam, "lam")
    check_positive(lam_aug, "lam_aug", allow_zero=True)
    check_positive(alpha_p, "alpha_p")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    lam, lam_aug, alpha_p, omega = (jnp.asarray(v, dtype=jnp.result_type(float)) for v in (lam, lam_aug, alpha_p, weight_decay))
    c0 = lam + lam_aug
    disc = lam**2 - 4.0 * omega * c0
    exists = disc >= 0
    root = jnp.sqrt(jnp.where(exists, disc, jnp.nan))
    p_plus = (lam + root) / (2.0 * c0)
    p_minus = (lam - root) / (2.0 * c0)
    return TianFixedPoints(p_plus, p_plus**2 / alpha_p, p_minus, p_minus**2 / alpha_p, exists)


def mode_jacobian(flow: TianModeFlow, state: ModeState) -> jax.Array:
    r"""Per-mode Jacobians of the `TianModeFlow` vector field at `state`.

    **Arguments:** `flow`; `state` a `ModeState` with (k,) fields.

    **Returns:** (k, 3, 3) Jacobians in the variables (p, w, w_a) (modes are decoupled). Away from
    w = 0 this is similar to the Jacobian in (p, s, τ), so the eigenvalues classify fixed points. For
    `beta=None` the field does not depend on w_a (its column is zero, adding an eigenvalue 0): use the
    (p, w) block `J[:, :2, :2]`.
    """
    if not isinstance(flow, TianModeFlow):
        raise TypeError(f"`flow` must be a TianModeFlow, got {type(flow).__name__}.")
    if not (isinstance(state, (tuple, list)) and len(state) == 3):
        raise TypeError("`state` must be a ModeState (p, w, wa).")
    state = ModeState(*(as_array(v, f"state.{n}", ndim=1) for v, n in zip(state, ModeState._fields)))
    k = state.p.shape[0]
    lam = jnp.broadcast_to(flow.lam, (k,))
    lam_aug = jnp.broadcast_to(flow.lam_aug, (k,))

    def one(x, lam_j, lam_aug_j):
        single = eqx.tree_at(lambda f: (f.lam, f.lam_aug), flow, (lam_j, lam_aug_j))
        out = single.vector_field(None, ModeState(x[0], x[1], x[2]))
        return jnp.stack([out.p, out.w, out.wa])

    x = jnp.stack([state.p, state.w, state.wa], axis=1)
    return jax.vmap(jax.jacfwd(one))(x, lam, lam_aug)


def aligned_byol_state(p, s, tau=1.0, *, U=None, V=None) -> BYOLState:
    r"""An aligned full-matrix state with prescribed mode values:

        W = U diag(√s) Vᵀ,   W_p = U diag(p) Uᵀ,   W_a = U diag(τ √s) Vᵀ.

    **Arguments:** `p`, `s` ≥ 0, `tau` (k,) or scalars broadcast; `U` (k, k) orthogonal (default I);
    `V` (d, k) orthonormal eigenvectors of the data moments (default the first k standard basis
    vectors of R^k, i.e. d = k).

    **Returns:** a `BYOLState`.
    """
    s = as_array(s, "s", ndim=1)
    if is_concrete(s) and bool(np.any(np.asarray(s) < 0)):
        raise ValueError("`s` must be non-negative.")
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


class PhasePortrait(NamedTuple):
    """Result of `tian_phase_portrait`.

    **Fields:** `ts` (T,); `ys` a `ModeState` with fields (T, N) (one column per initial point; use
    `ys.s`, `ys.p`); `collapsed` (N,) bool: `s(t1) < collapse_tol · s_ref`; `s_ref` the reference scale (s+ where the
    non-trivial fixed points exist, else the largest initial s).
    """

    ts: jax.Array
    ys: ModeState
    collapsed: jax.Array
    s_ref: jax.Array


def tian_phase_portrait(flow: TianModeFlow, p0, s0, t1, *, tau0=1.0, ts=64, collapse_tol=1e-3,
                        rtol=1e-8, atol=1e-10, max_steps=100_000) -> PhasePortrait:
    r"""Integrate many initial points `(p0_i, s0_i)` of one mode and classify collapse.

    All points are integrated in one solve (each as its own decoupled mode). A point is
    **collapsed** when `s(t1) < collapse_tol · s_ref`; for ω > 0 inside the existence region the other
    points converge to `(p+, s+)`.

    **Arguments:**
    - `flow`: a `TianModeFlow` with scalar `lam`, `lam_aug`.
    - `p0`, `s0`: initial values, equal shapes (flattened), `s0 ≥ 0`.
    - `t1`: horizon (> 0).
    - `tau0`: initial τ (must be 1 for `beta=None`).
    - `ts`: number of save times; `collapse_tol`: relative threshold; `rtol`, `atol`, `max_steps`: solver.

    **Returns:** a `PhasePortrait`.
    """
    if not isinstance(flow, TianModeFlow):
        raise TypeError(f"`flow` must be a TianModeFlow, got {type(flow).__name__}.")
    if jnp.ndim(flow.lam) != 0 or jnp.ndim(flow.lam_aug) != 0:
        raise ValueError("`flow` must describe a single mode (scalar `lam` and `lam_aug`).")
    p0 = as_array(p0, "p0").ravel()
    s0 = as_array(s0, "s0").ravel()
    if p0.shape != s0.shape:
        raise ValueError(f"`p0` and `s0` must have the same number of points, got {p0.size} and {s0.size}.")
    check_positive(t1, "t1")
    check_positive(collapse_tol, "collapse_tol")
    tau = jnp.full_like(p0, tau0)
    fp = tian_fixed_points(lam=flow.lam, lam_aug=flow.lam_aug, alpha_p=flow.alpha_p,
                           weight_decay=flow.weight_decay)
    n = p0.shape[0]  # one decoupled mode per initial point
    flow = eqx.tree_at(lambda f: (f.lam, f.lam_aug), flow, (jnp.broadcast_to(flow.lam, (n,)),
                                                           jnp.broadcast_to(flow.lam_aug, (n,))))
    traj = solve(flow, ModeState.from_s_tau(p0, s0, tau), 0.0, t1, ts=ts, rtol=rtol, atol=atol,
                 max_steps=max_steps)
    s_ref = jnp.where(fp.exists & (flow.weight_decay > 0), fp.s_plus, jnp.max(s0))
    collapsed = traj.ys.s[-1] < collapse_tol * s_ref
    return PhasePortrait(traj.ts, traj.ys, collapsed, s_ref)


# ----------------------------------------------------------------------------------------------
# 2. Closed-form predictors (DirectPred, Halvagal et al.) and IsoLoss
# ----------------------------------------------------------------------------------------------


def _g(mu, exponent, eps, normalize):
    """g(μ) = (μ/max μ)^a + ε or μ^a + ε; `normalize` may be a bool or a (traced) array flag."""
    mu = jnp.clip(mu, 0.0)
    scaled = mu / jnp.maximum(jnp.max(mu, axis=-1, keepdims=True), jnp.finfo(mu.dtype).tiny)
    return jnp.where(normalize, scaled, mu) ** exponent + eps


def closed_form_predictor(F, *, exponent=0.5, eps=0.01, normalize: bool = True) -> jax.Array:
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
    return _predictor_matrix(sym(F), exponent, eps, normalize)


def _predictor_matrix(F, exponent, eps, normalize):
    mu, U = jnp.linalg.eigh(F)
    return (U * _g(mu, exponent, eps, normalize)) @ U.T


class ClosedFormPredictorFlow(AbstractFlow):
    r"""Linear non-contrastive flow with a closed-form predictor `W_p = g(F)` (no gradient through it).

        R = W_p W C0 − W_a C+
        BYOL/SimSiam: dW/dt = −W_pᵀ R − ω W
        IsoLoss:      dW/dt = −R − ω W
        target:       W_a = W (`beta=None`, stop-gradient) or dW_a/dt = β (W − W_a) (EMA)

    with `F = W Wᵀ` (`correlation="weights"`, Halvagal et al.) or `F = W C0 Wᵀ`
    (`correlation="outputs"`, DirectPred's output correlation, here without EMA lag: the limit of a
    fast `F̂` average).

    **Arguments:**
    - `C0`, `Cp`: view moments (d, d).
    - `loss`: `"byol"` or `"isoloss"`.
    - `exponent`, `eps`, `normalize`: the map g (see `closed_form_predictor`).
    - `correlation`: `"weights"` or `"outputs"`.
    - `weight_decay`: ω ≥ 0; `beta`: EMA rate or None.

    **State:** `W` (k, d) when `beta=None`, else the tuple `(W, Wa)`.

    The loss, `normalize` and `correlation` choices are stored as array flags (`byol`, `normalized`,
    `outputs`), so all variants with the same state structure share one compilation (e.g. `jax.vmap`
    over `eqx.tree_at(lambda f: f.byol, flow, flags)`).
    """

    C0: jax.Array
    Cp: jax.Array
    exponent: jax.Array
    eps: jax.Array
    weight_decay: jax.Array
    beta: jax.Array | None
    byol: jax.Array
    normalized: jax.Array
    outputs: jax.Array

    def __init__(self, C0, Cp, *, loss="byol", exponent=0.5, eps=0.0, normalize=False,
                 correlation="weights", weight_decay=0.0, beta=None):
        self.C0, self.Cp = _moments(C0, Cp)
        if loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {_LOSSES}, got {loss!r}.")
        if correlation not in _CORRELATIONS:
            raise ValueError(f"`correlation` must be one of {_CORRELATIONS}, got {correlation!r}.")
        check_positive(exponent, "exponent")
        self.exponent = _hyper(exponent, "exponent")
        self.eps = _hyper(eps, "eps")
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        self.beta = None if beta is None else _beta(beta)
        self.byol = _flag(loss == "byol")
        self.normalized = _flag(normalize)
        self.outputs = _flag(correlation == "outputs")

    @property
    def loss_kind(self) -> str:
        return "byol" if float(self.byol) > 0.5 else "isoloss"

    def predictor(self, W) -> jax.Array:
        """The predictor `g(F)` at online weights `W`."""
        F = jnp.where(self.outputs > 0.5, W @ self.C0 @ W.T, W @ W.T)
        return _predictor_matrix(sym(F), self.exponent, self.eps, self.normalized > 0.5)

    def vector_field(self, t, y):
        W, Wa = (y, y) if self.beta is None else y
        Wp = self.predictor(W)
        R = Wp @ W @ self.C0 - Wa @ self.Cp
        dW = jnp.where(self.byol > 0.5, -Wp.T @ R, -R) - self.weight_decay * W
        return dW if self.beta is None else (dW, self.beta * (W - Wa))

    def loss(self, y):
        """The common value of the BYOL and IsoLoss objectives, `½E‖W_p W x₁ − W_a x₂‖²` (+ decay)."""
        W, Wa = (y, y) if self.beta is None else y
        PW = self.predictor(W) @ W
        value = 0.5 * jnp.sum(PW * (PW @ self.C0)) - jnp.sum(PW * (Wa @ self.Cp)) + 0.5 * jnp.sum(Wa * (Wa @ self.C0))
        return value + 0.5 * self.weight_decay * jnp.sum(W**2)

    def check_initial(self, y0):
        d = self.C0.shape[0]
        if self.beta is None:
            W = as_array(y0, "y0", ndim=2)
            if W.shape[1] != d:
                raise ValueError(f"`y0` must be (k, {d}), got {tuple(W.shape)}.")
            return W
        if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
            raise TypeError("`y0` must be a tuple (W, Wa) when `beta` is given.")
        W = as_array(y0[0], "y0[0]", ndim=2)
        Wa = as_array(y0[1], "y0[1]", ndim=2)
        if W.shape[1] != d or Wa.shape != W.shape:
            raise ValueError(f"`y0` must be two (k, {d}) arrays, got {tuple(W.shape)} and {tuple(Wa.shape)}.")
        return (W, Wa)


class PredictorModeFlow(AbstractFlow):
    r"""Per-mode reduction of `ClosedFormPredictorFlow` (target = online, aligned start):

        p_j = g(κ_j s_j)    (κ = 1 for "weights", λ + λ' for "outputs"; normalised by the max over modes)
        BYOL:    ṡ_j = 2 s_j p_j (λ_j − p_j(λ_j + λ'_j)) − 2ω s_j
        IsoLoss: ṡ_j = 2 s_j     (λ_j − p_j(λ_j + λ'_j)) − 2ω s_j

    **Arguments:** `lam`, `lam_aug` (scalars or (k,)); `loss`; `exponent`, `eps`, `normalize`,
    `correlation`, `weight_decay` as in `ClosedFormPredictorFlow`.

    **State:** `s` (k,), eigenvalues of `W Wᵀ`.
    """

    lam: jax.Array
    lam_aug: jax.Array
    exponent: jax.Array
    eps: jax.Array
    weight_decay: jax.Array
    byol: jax.Array
    normalized: jax.Array
    outputs: jax.Array

    def __init__(self, lam=1.0, lam_aug=0.0, *, loss="byol", exponent=0.5, eps=0.0, normalize=False,
                 correlation="weights", weight_decay=0.0):
        if loss not in _LOSSES:
            raise ValueError(f"`loss` must be one of {_LOSSES}, got {loss!r}.")
        if correlation not in _CORRELATIONS:
            raise ValueError(f"`correlation` must be one of {_CORRELATIONS}, got {correlation!r}.")
        self.lam = _hyper(lam, "lam")
        self.lam_aug = _hyper(lam_aug, "lam_aug")
        check_positive(exponent, "exponent")
        self.exponent = _hyper(exponent, "exponent")
        self.eps = _hyper(eps, "eps")
        self.weight_decay = _hyper(weight_decay, "weight_decay")
        self.byol = _flag(loss == "byol")
        self.normalized = _flag(normalize)
        self.outputs = _flag(correlation == "outputs")

    @property
    def loss_kind(self) -> str:
        return "byol" if float(self.byol) > 0.5 else "isoloss"

    def predictor(self, s) -> jax.Array:
        """Predictor eigenvalues `p = g(κ s)`."""
        kappa = jnp.where(self.outputs > 0.5, self.lam + self.lam_aug, 1.0)
        return _g(kappa * s, self.exponent, self.eps, self.normalized > 0.5)

    def vector_field(self, t, s):
        p = self.predictor(s)
        g = self.lam - p * (self.lam + self.lam_aug)
        rate = jnp.where(self.byol > 0.5, p * g, g)
        return 2.0 * s * (rate - self.weight_decay)

    def loss(self, s):
        p = self.predictor(s)
        c0 = self.lam + self.lam_aug
        return 0.5 * jnp.sum(s * (p**2 * c0 - 2.0 * p * self.lam + c0)) + 0.5 * self.weight_decay * jnp.sum(s)

    def check_initial(self, y0):
        s = as_array(y0, "y0", ndim=1)
        if is_concrete(s) and bool(np.any(np.asarray(s) < 0)):
            raise ValueError("`y0` must be non-negative (eigenvalues of W Wᵀ).")
        return s


def _closed_form_args(p0, exponent, c, lam):
    check_positive(exponent, "exponent")
    check_positive(lam, "lam")
    if is_concrete(c) and np.any(np.asarray(c) < 1.0):
        raise ValueError(f"`c` = (λ + λ')/λ must be >= 1, got {c}.")
    p0 = as_array(p0, "p0")
    if is_concrete(p0) and bool(np.any(np.asarray(p0) <= 0)):
        raise ValueError("`p0` must be positive.")
    return p0


def isoloss_mode_solution(t, p0, *, exponent=0.5, c=1.0, lam=1.0) -> jax.Array:
    r"""Closed-form IsoLoss mode (`g(s) = s^α`, no ε, no normalisation, ω = 0):

        p(t) = p* / (1 + (p*/p₀ − 1) e^{−2αλt}),    p* = 1/c,   c = (λ + λ')/λ.

    **Arguments:** `t` times; `p0` > 0 initial predictor eigenvalue(s) (broadcast with `t`);
    `exponent` α > 0; `c` ≥ 1; `lam` λ > 0 (time scale).

    **Returns:** p(t); the weight eigenvalue is `s = p^{1/α}`.
    """
    p0 = _closed_form_args(p0, exponent, c, lam)
    pstar = 1.0 / c
    return pstar / (1.0 + (pstar / p0 - 1.0) * jnp.exp(-2.0 * exponent * lam * jnp.asarray(t)))


def byol_mode_time(p, p0, *, exponent=0.5, c=1.0, lam=1.0) -> jax.Array:
    r"""Closed-form time at which a Euclidean-BYOL mode (`g(s) = s^α`, ω = 0) reaches `p` from `p₀`:

        2αλ t = c ln[ p (1 − c p₀) / (p₀ (1 − c p)) ] + 1/p₀ − 1/p.

    `p` must lie between `p₀` and `p* = 1/c` (the mode moves monotonically towards p*).

    **Arguments:** `p`, `p0` > 0 (broadcast); `exponent` α; `c` ≥ 1; `lam` λ.

    **Returns:** the time(s).
    """
    p0 = _closed_form_args(p0, exponent, c, lam)
    return _byol_time(as_array(p, "p"), p0, exponent, c, lam)


def _byol_time(p, p0, exponent, c, lam):
    val = c * jnp.log(p * (1.0 - c * p0) / (p0 * (1.0 - c * p))) + 1.0 / p0 - 1.0 / p
    return val / (2.0 * exponent * lam)


def byol_mode_solution(t, p0, *, exponent=0.5, c=1.0, lam=1.0, iterations: int = 200) -> jax.Array:
    r"""Euclidean-BYOL mode `p(t)`, by bisection of `byol_mode_time` between `p₀` and `p* = 1/c`
    (the time is monotone in p). Accuracy ≈ |p* − p₀| 2^{−iterations}.

    **Arguments:** as `byol_mode_time`, with `t` ≥ 0 the times; `iterations` bisection steps.

    **Returns:** p(t), broadcast shape of `t` and `p0`.
    """
    p0 = _closed_form_args(p0, exponent, c, lam)
    t = jnp.asarray(t, dtype=p0.dtype)
    pstar = 1.0 / c
    p0b, tb = jnp.broadcast_arrays(p0, t)
    lo, hi = p0b, jnp.full_like(p0b, pstar)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        tm = _byol_time(mid, p0b, exponent, c, lam)
        before = tm < tb  # mid is reached before t: p(t) lies beyond mid (towards p*)
        return jnp.where(before, mid, lo), jnp.where(before, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------------------------
# 3. Networks: losses, data, SGD training
# ----------------------------------------------------------------------------------------------


def euclidean_byol_loss(z_pred, z_target) -> jax.Array:
    r"""Euclidean BYOL/SimSiam loss on a batch, `½ (1/n) Σ_i ‖z_pred,i − SG(z_target,i)‖²`.

    **Arguments:** `z_pred` (n, k) predictor outputs of the online branch; `z_target` (n, k) target
    representations of the other view (stop-gradient applied here).

    **Returns:** a scalar.
    """
    z_pred = as_array(z_pred, "z_pred", ndim=2)
    z_target = as_array(z_target, "z_target", ndim=2)
    if z_pred.shape != z_target.shape:
        raise ValueError(f"`z_pred` and `z_target` must have equal shapes, got {z_pred.shape} and {z_target.shape}.")
    return 0.5 * jnp.mean(jnp.sum((z_pred - jax.lax.stop_gradient(z_target)) ** 2, axis=-1))


def isoloss(z_online, z_pred, z_target) -> jax.Array:
    r"""IsoLoss (Halvagal, Laborieux & Zenke 2023) on a batch:

        L = ½ (1/n) Σ_i ‖ z_i − SG( z⁺_i + z_i − P(z_i) ) ‖²,

    with `z` the online representation, `P(z)` the predictor output and `z⁺` the target of the other
    view. Its value equals `euclidean_byol_loss(P(z), z⁺)`; its gradient with respect to `z` is
    `(P(z) − z⁺)/n` — the predictor is bypassed in the backward pass, which equalises the per-mode
    convergence rates. No gradient reaches the predictor (use a closed-form predictor).

    **Arguments:** `z_online`, `z_pred`, `z_target`: (n, k) arrays.

    **Returns:** a scalar.
    """
    z = as_array(z_online, "z_online", ndim=2)
    zp = as_array(z_pred, "z_pred", ndim=2)
    zt = as_array(z_target, "z_target", ndim=2)
    if not (z.shape == zp.shape == zt.shape):
        raise ValueError(f"`z_online`, `z_pred`, `z_target` must have equal shapes, got {z.shape}, {zp.shape}, {zt.shape}.")
    anchor = jax.lax.stop_gradient(zt + z - zp)
    return 0.5 * jnp.mean(jnp.sum((z - anchor) ** 2, axis=-1))


def gaussian_views(key, n: int, lam, lam_aug) -> tuple[jax.Array, jax.Array]:
    r"""Two views of Gaussian data with independent additive augmentation noise:

        x̄ ~ N(0, diag(λ)),   x^{(v)} = x̄ + ε_v,   ε_v ~ N(0, diag(λ')),

    so `C+ = diag(λ)` and `C0 = diag(λ + λ')` (see `gaussian_view_stats`).

    **Arguments:** `key`; `n` samples; `lam` (d,) > 0; `lam_aug` (d,) ≥ 0 (or scalars broadcast to
    the length of the other).

    **Returns:** `(X1, X2)`, each (n, d), one row per sample. The draws use an `rbg` generator seeded
    from `key` (fast to compile; deterministic per backend).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}.")
    lam, lam_aug = jnp.broadcast_arrays(as_array(lam, "lam", ndim=(0, 1)), as_array(lam_aug, "lam_aug", ndim=(0, 1)))
    check_positive(lam, "lam", allow_zero=True)
    check_positive(lam_aug, "lam_aug", allow_zero=True)
    d = lam.shape[0] if lam.ndim else 1
    k0, k1, k2 = jax.random.split(_fast_key(key), 3)
    base = jax.random.normal(k0, (n, d), dtype=lam.dtype) * jnp.sqrt(lam)
    noise = jnp.sqrt(lam_aug)
    return (base + jax.random.normal(k1, (n, d), dtype=lam.dtype) * noise,
            base + jax.random.normal(k2, (n, d), dtype=lam.dtype) * noise)


def gaussian_view_stats(lam, lam_aug) -> ViewStats:
    """Population `ViewStats` of `gaussian_views`: `C0 = diag(λ+λ')`, `C+ = diag(λ)`, `D+ = 2 diag(λ')`."""
    lam, lam_aug = jnp.broadcast_arrays(as_array(lam, "lam", ndim=1), as_array(lam_aug, "lam_aug", ndim=(0, 1)))
    check_positive(lam, "lam", allow_zero=True)
    check_positive(lam_aug, "lam_aug", allow_zero=True)
    return ViewStats(C0=jnp.diag(lam + lam_aug), Cp=jnp.diag(lam), Dp=jnp.diag(2.0 * lam_aug))


def train_linear_byol(key, state0: BYOLState, *, lam, lam_aug, lr, n_steps: int, batch_size: int,
                      alpha_p=1.0, weight_decay=0.0, beta=None, predictor: str = "trained",
                      loss: str = "byol", exponent=0.5, eps=0.01, normalize: bool = True,
                      correlation: str = "outputs", fhat_momentum=0.3, save_every: int | None = None):
    r"""Train the linear BYOL/SimSiam network with optax SGD on fresh Gaussian views (`gaussian_views`).

    Per step (η = `lr`, `t = η·step`), on a batch with the symmetrised loss (`linear_byol_loss`):

        W   ← W   − η (∇_W L + ω W)
        W_p ← W_p − η (α_p ∇_{W_p} L + ω W_p)                    (`predictor="trained"`)
        W_p = g(F̂),  F̂ ← μ F̂ + (1 − μ) F_batch                  (`predictor="closed_form"`)
        W_a ← m W_a + (1 − m) W,   m = 1 − βη                      (EMA after the online step)

    With `loss="isoloss"` the gradient of W is that of `isoloss` (closed-form predictor only).
    `F_batch` is `W Wᵀ` for `correlation="weights"` and the batch mean of `f fᵀ` over both views for
    `"outputs"`. Pure function of its inputs: `jax.vmap` it over `key` (seeds) or `state0`.

    **Arguments:**
    - `key`; `state0`: `BYOLState` (with `predictor="closed_form"` its `Wp` is ignored; its `Wa`
      must equal `W` when `beta=None`).
    - `lam`, `lam_aug`: data and augmentation variances (d,).
    - `lr` > 0, `n_steps`, `batch_size`; `alpha_p`, `weight_decay`, `beta` as in `LinearBYOLFlow`
      (requires `β·lr ≤ 1`).
    - `predictor`: `"trained"` or `"closed_form"`; `loss`: `"byol"` or `"isoloss"`.
    - `exponent`, `eps`, `normalize`, `correlation`: closed-form predictor map; `fhat_momentum` μ.
    - `save_every`: also return every `save_every`-th state.

    **Returns:** the final `BYOLState`, or `(final, saved)` with saved states stacked (steps
    `save_every, 2·save_every, …`). For the closed-form predictor the returned `Wp` is `g(F̂)`.
    """
    if predictor not in ("trained", "closed_form"):
        raise ValueError(f"`predictor` must be 'trained' or 'closed_form', got {predictor!r}.")
    if loss not in _LOSSES:
        raise ValueError(f"`loss` must be one of {_LOSSES}, got {loss!r}.")
    if loss == "isoloss" and predictor == "trained":
        raise ValueError("`loss='isoloss'` sends no gradient to the predictor: use `predictor='closed_form'`.")
    if correlation not in _CORRELATIONS:
        raise ValueError(f"`correlation` must be one of {_CORRELATIONS}, got {correlation!r}.")
    for name, val in (("n_steps", n_steps), ("batch_size", batch_size)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < (0 if name == "n_steps" else 1):
            raise ValueError(f"`{name}` must be a {'non-negative' if name == 'n_steps' else 'positive'} int, got {val!r}.")
    if save_every is not None and (not isinstance(save_every, (int, np.integer)) or save_every < 1):
        raise ValueError(f"`save_every` must be a positive int or None, got {save_every!r}.")
    check_positive(lr, "lr")
    check_positive(alpha_p, "alpha_p")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(fhat_momentum, "fhat_momentum", allow_zero=True)
    if beta is not None:
        check_positive(beta, "beta")
        if is_concrete(beta) and is_concrete(lr) and float(beta) * float(lr) > 1.0:
            raise ValueError(f"`beta * lr` must be <= 1 (EMA momentum m = 1 - beta*lr >= 0), got {float(beta) * float(lr)}.")
    W0, Wp0, Wa0 = (as_array(v, n, ndim=2) for v, n in zip(state0, ("state0.W", "state0.Wp", "state0.Wa")))
    lam = as_array(lam, "lam", ndim=1)
    lam_aug = jnp.broadcast_to(as_array(lam_aug, "lam_aug"), lam.shape)
    if W0.shape[1] != lam.shape[0]:
        raise ValueError(f"`state0.W` must be (k, {lam.shape[0]}) to match `lam`, got {tuple(W0.shape)}.")
    dt = W0.dtype
    hp = dict(lr=jnp.asarray(lr, dt), alpha_p=jnp.asarray(alpha_p, dt), omega=jnp.asarray(weight_decay, dt),
              beta=jnp.asarray(jnp.inf if beta is None else beta, dt), exponent=jnp.asarray(exponent, dt),
              eps=jnp.asarray(eps, dt), mu=jnp.asarray(fhat_momentum, dt), byol=_flag(loss == "byol").astype(dt),
              normalized=_flag(normalize).astype(dt), outputs=_flag(correlation == "outputs").astype(dt))
    static = dict(n_steps=int(n_steps), batch_size=int(batch_size), closed=predictor == "closed_form",
                  save_every=None if save_every is None else int(save_every))
    return _train_linear_byol(key, (W0, Wp0, Wa0), lam, lam_aug, hp, **static)


@eqx.filter_jit
def _train_linear_byol(key, state0, lam, lam_aug, hp, *, n_steps, batch_size, closed, save_every):
    # Loss, predictor map, correlation and SimSiam-vs-EMA are array flags: one compilation per
    # (shapes, n_steps, batch_size, trained/closed-form predictor).
    W0, Wp0, Wa0 = state0
    opt = optax.sgd(hp["lr"])
    params0 = {"W": W0, "Wp": Wp0}
    opt_state0 = opt.init(params0)
    simsiam, rate = _ema(hp["beta"])
    m = 1.0 - rate * hp["lr"]

    def batch_corr(W, X1, X2):
        Z = jnp.concatenate([X1, X2]) @ W.T
        return jnp.where(hp["outputs"] > 0.5, Z.T @ Z / Z.shape[0], W @ W.T)

    def loss_fn(params, Wa, X1, X2, Wp_fixed, byol):
        W = params["W"]
        Wp = Wp_fixed if closed else params["Wp"]
        target = jnp.where(simsiam, jax.lax.stop_gradient(W), Wa)

        def one(A, B):
            z = A @ W.T
            zt = B @ target.T
            if not byol:
                return isoloss(z, z @ jax.lax.stop_gradient(Wp).T, zt)
            return euclidean_byol_loss(z @ Wp.T, zt)

        return 0.5 * (one(X1, X2) + one(X2, X1))

    def step(carry, skey):
        params, opt_state, Wa, Fhat = carry
        X1, X2 = gaussian_views(skey, batch_size, lam, lam_aug)
        if closed:
            Fhat = hp["mu"] * Fhat + (1.0 - hp["mu"]) * batch_corr(params["W"], X1, X2)
            Wp_fixed = _predictor_matrix(sym(Fhat), hp["exponent"], hp["eps"], hp["normalized"] > 0.5)
            g_byol = jax.grad(loss_fn)(params, Wa, X1, X2, Wp_fixed, True)
            g_iso = jax.grad(loss_fn)(params, Wa, X1, X2, Wp_fixed, False)
            gW = jnp.where(hp["byol"] > 0.5, g_byol["W"], g_iso["W"])
            grads = {"W": gW + hp["omega"] * params["W"], "Wp": jnp.zeros_like(params["Wp"])}
        else:
            g = jax.grad(loss_fn)(params, Wa, X1, X2, params["Wp"], True)
            grads = {"W": g["W"] + hp["omega"] * params["W"],
                     "Wp": hp["alpha_p"] * g["Wp"] + hp["omega"] * params["Wp"]}
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if closed:
            params = {"W": params["W"], "Wp": Wp_fixed}
        Wa = jnp.where(simsiam, params["W"], m * Wa + (1.0 - m) * params["W"])
        return params, opt_state, Wa, Fhat

    def out(carry):
        params, _, Wa, _ = carry
        return BYOLState(params["W"], params["Wp"], Wa)

    if closed:
        key, init_key = jax.random.split(key)
        X1, X2 = gaussian_views(init_key, batch_size, lam, lam_aug)
        F0 = batch_corr(W0, X1, X2)
    else:
        F0 = jnp.zeros((W0.shape[0], W0.shape[0]), W0.dtype)
    carry = (params0, opt_state0, Wa0, F0)
    keys = jax.random.split(key, n_steps)
    carry, saved = scan_with_saves(step, carry, n_steps, save_every, out, xs=keys)
    return out(carry) if save_every is None else (out(carry), saved)

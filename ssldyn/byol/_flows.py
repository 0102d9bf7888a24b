r"""Vector fields of linear BYOL/SimSiam (trained and closed-form predictors) and the closed-form mode solutions.

- `LinearBYOLFlow`: the full-matrix flow with a trained predictor and an EMA (or SimSiam) target;
  `TianModeFlow`: its per-mode reduction in the smooth amplitudes (p, w, w_a); `tian_invariant`,
  `tian_fixed_points`, `mode_jacobian`: its invariant, fixed points and their stability.
- `ClosedFormPredictorFlow`: the flow with `W_p = g(F)` (DirectPred / Halvagal et al.), under the
  BYOL or the IsoLoss gradient; `PredictorModeFlow`: its per-mode reduction.
- `IsoLossModeSolution`, `BYOLModeSolution`: the closed forms of one mode under `g(s) = s^α`
  (`AbstractSolution`s, evaluated at any t); `isoloss_mode_solution`, `byol_mode_solution`,
  `byol_mode_time`: the same as functions.

Integration (`ssldyn.solve`) is not called here: the phase portrait lives in `_analysis`.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .._flows import AbstractFlow
from .._linalg import as_hyper, sym
from .._solution import AbstractSolution
from .._stats import ViewStats
from .._validation import as_array, check_choice, check_positive, check_time, is_concrete
from ._model import (
    CORRELATIONS,
    LOSSES,
    BYOLState,
    ModeState,
    as_state,
    check_simsiam_target,
    ema,
    ema_rate,
    flag,
    moments,
    nonnegative,
    predictor_eigenvalues,
    predictor_matrix,
)

# ----------------------------------------------------------------------------------------------
# 1. Trained linear predictor
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

    References: Tian, Chen & Ganguli, ICML 2021, eq. (3)–(5) (reconstructed; see `ssldyn.byol`).
    """

    C0: Float[Array, "d d"]
    Cp: Float[Array, "d d"]
    alpha_p: Float[Array, ""]
    weight_decay: Float[Array, ""]
    beta: Float[Array, ""]

    def __init__(self, C0, Cp, *, alpha_p=1.0, weight_decay=0.0, beta=None):
        self.C0, self.Cp = moments(C0, Cp)
        self.alpha_p = as_hyper(alpha_p, "alpha_p", allow_zero=False)
        self.weight_decay = as_hyper(weight_decay, "weight_decay")
        self.beta = ema_rate(beta)

    def _residual(self, W, Wp, Wa):
        return Wp @ W @ self.C0 - Wa @ self.Cp

    def vector_field(self, t, y):
        W, Wp, Wa = y
        simsiam, rate = ema(self.beta)
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
        W, Wp, Wa = as_state(y0, BYOLState, "y0", 2)
        k, d = W.shape
        if d != self.C0.shape[0]:
            raise ValueError(f"`y0.W` must be (k, {self.C0.shape[0]}) to match `C0`, got {tuple(W.shape)}.")
        if Wp.shape != (k, k):
            raise ValueError(f"`y0.Wp` must be ({k}, {k}), got {tuple(Wp.shape)}.")
        if Wa.shape != W.shape:
            raise ValueError(f"`y0.Wa` must have the shape of `y0.W` {tuple(W.shape)}, got {tuple(Wa.shape)}.")
        check_simsiam_target(self.beta, W, Wa, "`y0.Wa` must equal `y0.W` when `beta=None` (SimSiam: the target is "
                             "the online encoder).")
        return BYOLState(W, Wp, Wa)


def linear_byol_flow(stats: ViewStats, *, alpha_p=1.0, weight_decay=0.0, beta=None) -> LinearBYOLFlow:
    """`LinearBYOLFlow` from a `ViewStats` (its `C0` and `Cp`). See `LinearBYOLFlow`."""
    if not isinstance(stats, ViewStats):
        raise TypeError(f"`stats` must be a ViewStats, got {type(stats).__name__}.")
    return LinearBYOLFlow(stats.C0, stats.Cp, alpha_p=alpha_p, weight_decay=weight_decay, beta=beta)


class TianModeFlow(AbstractFlow):
    r"""Per-eigenmode reduction of `LinearBYOLFlow` (derived in the `ssldyn.byol` docstring), integrated in
    the smooth amplitudes `w` (`s = w²`) and `w_a` (`τ = w_a/w`):

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

    lam: Float[Array, "*k"]
    lam_aug: Float[Array, "*k"]
    alpha_p: Float[Array, ""]
    weight_decay: Float[Array, ""]
    beta: Float[Array, ""]

    def __init__(self, lam=1.0, lam_aug=0.0, *, alpha_p=1.0, weight_decay=0.0, beta=None):
        self.lam = as_hyper(lam, "lam")
        self.lam_aug = as_hyper(lam_aug, "lam_aug")
        self.alpha_p = as_hyper(alpha_p, "alpha_p", allow_zero=False)
        self.weight_decay = as_hyper(weight_decay, "weight_decay")
        self.beta = ema_rate(beta)

    def vector_field(self, t, y):
        p, w, wa = y
        simsiam, rate = ema(self.beta)
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
        p, w, wa = as_state(y0, ModeState, "y0", 1)
        if not (p.shape == w.shape == wa.shape):
            raise ValueError(f"`y0.p`, `y0.w`, `y0.wa` must have equal shapes, got {p.shape}, {w.shape}, {wa.shape}.")
        check_simsiam_target(self.beta, w, wa, "`y0.wa` must equal `y0.w` (τ = 1) when `beta=None` (the target is "
                             "the online encoder).")
        for name, val in (("lam", self.lam), ("lam_aug", self.lam_aug)):
            if jnp.ndim(val) == 1 and val.shape[0] != p.shape[0]:
                raise ValueError(f"`{name}` has {val.shape[0]} entries but the state has {p.shape[0]} modes.")
        return ModeState(p, w, wa)


def tian_invariant(p, s, t, *, alpha_p=1.0, weight_decay=0.0) -> Float[Array, "*shape"]:
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

    p_plus: Float[Array, "*shape"]
    s_plus: Float[Array, "*shape"]
    p_minus: Float[Array, "*shape"]
    s_minus: Float[Array, "*shape"]
    exists: Bool[Array, "*shape"]


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


def mode_jacobian(flow: TianModeFlow, state: ModeState) -> Float[Array, "k 3 3"]:
    r"""Per-mode Jacobians of the `TianModeFlow` vector field at `state`.

    **Arguments:** `flow`; `state` a `ModeState` with (k,) fields.

    **Returns:** (k, 3, 3) Jacobians in the variables (p, w, w_a) (modes are decoupled). Away from
    w = 0 this is similar to the Jacobian in (p, s, τ), so the eigenvalues classify fixed points. For
    `beta=None` the field does not depend on w_a (its column is zero, adding an eigenvalue 0): use the
    (p, w) block `J[:, :2, :2]`.
    """
    if not isinstance(flow, TianModeFlow):
        raise TypeError(f"`flow` must be a TianModeFlow, got {type(flow).__name__}.")
    state = as_state(state, ModeState, "state", 1)
    k = state.p.shape[0]
    lam = jnp.broadcast_to(flow.lam, (k,))
    lam_aug = jnp.broadcast_to(flow.lam_aug, (k,))

    def one(x, lam_j, lam_aug_j):
        single = eqx.tree_at(lambda f: (f.lam, f.lam_aug), flow, (lam_j, lam_aug_j))
        out = single.vector_field(None, ModeState(x[0], x[1], x[2]))
        return jnp.stack([out.p, out.w, out.wa])

    x = jnp.stack([state.p, state.w, state.wa], axis=1)
    return jax.vmap(jax.jacfwd(one))(x, lam, lam_aug)


# ----------------------------------------------------------------------------------------------
# 2. Closed-form predictors (DirectPred, Halvagal et al.) and IsoLoss
# ----------------------------------------------------------------------------------------------


class _PredictorMapFlow(AbstractFlow):
    """The options shared by the closed-form-predictor flows: the map g, the loss, the decay.

    The loss, `normalize` and `correlation` choices are array flags (`byol`, `normalized`,
    `outputs`), so all variants with the same state structure share one compilation.
    """

    exponent: Float[Array, ""]
    eps: Float[Array, ""]
    weight_decay: Float[Array, ""]
    byol: Float[Array, ""]
    normalized: Float[Array, ""]
    outputs: Float[Array, ""]

    def _set_options(self, loss, exponent, eps, normalize, correlation, weight_decay):
        check_choice(loss, "loss", LOSSES)
        check_choice(correlation, "correlation", CORRELATIONS)
        self.exponent = as_hyper(exponent, "exponent", allow_zero=False)
        self.eps = as_hyper(eps, "eps")
        self.weight_decay = as_hyper(weight_decay, "weight_decay")
        self.byol = flag(loss == "byol")
        self.normalized = flag(normalize)
        self.outputs = flag(correlation == "outputs")

    @property
    def loss_kind(self) -> str:
        return "byol" if float(self.byol) > 0.5 else "isoloss"


class ClosedFormPredictorFlow(_PredictorMapFlow):
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

    C0: Float[Array, "d d"]
    Cp: Float[Array, "d d"]
    beta: Float[Array, ""] | None

    def __init__(self, C0, Cp, *, loss="byol", exponent=0.5, eps=0.0, normalize=False,
                 correlation="weights", weight_decay=0.0, beta=None):
        self.C0, self.Cp = moments(C0, Cp)
        self._set_options(loss, exponent, eps, normalize, correlation, weight_decay)
        self.beta = None if beta is None else ema_rate(beta)

    def predictor(self, W) -> Float[Array, "k k"]:
        """The predictor `g(F)` at online weights `W`."""
        F = jnp.where(self.outputs > 0.5, W @ self.C0 @ W.T, W @ W.T)
        return predictor_matrix(sym(F), self.exponent, self.eps, self.normalized > 0.5)

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


class PredictorModeFlow(_PredictorMapFlow):
    r"""Per-mode reduction of `ClosedFormPredictorFlow` (target = online, aligned start):

        p_j = g(κ_j s_j)    (κ = 1 for "weights", λ + λ' for "outputs"; normalised by the max over modes)
        BYOL:    ṡ_j = 2 s_j p_j (λ_j − p_j(λ_j + λ'_j)) − 2ω s_j
        IsoLoss: ṡ_j = 2 s_j     (λ_j − p_j(λ_j + λ'_j)) − 2ω s_j

    **Arguments:** `lam`, `lam_aug` (scalars or (k,)); `loss`; `exponent`, `eps`, `normalize`,
    `correlation`, `weight_decay` as in `ClosedFormPredictorFlow`.

    **State:** `s` (k,), eigenvalues of `W Wᵀ`.
    """

    lam: Float[Array, "*k"]
    lam_aug: Float[Array, "*k"]

    def __init__(self, lam=1.0, lam_aug=0.0, *, loss="byol", exponent=0.5, eps=0.0, normalize=False,
                 correlation="weights", weight_decay=0.0):
        self._set_options(loss, exponent, eps, normalize, correlation, weight_decay)
        self.lam = as_hyper(lam, "lam")
        self.lam_aug = as_hyper(lam_aug, "lam_aug")

    def predictor(self, s) -> Float[Array, " k"]:
        """Predictor eigenvalues `p = g(κ s)`."""
        kappa = jnp.where(self.outputs > 0.5, self.lam + self.lam_aug, 1.0)
        return predictor_eigenvalues(kappa * s, self.exponent, self.eps, self.normalized > 0.5)

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
        return nonnegative(y0, "y0", "eigenvalues of W Wᵀ", ndim=1)


# ----------------------------------------------------------------------------------------------
# 3. Closed-form mode solutions under g(s) = s^α (ε = 0, no normalisation, ω = 0)
# ----------------------------------------------------------------------------------------------


class _ModeSolution(AbstractSolution):
    """Initial predictor eigenvalue(s) `p0` and the constants (α, c, λ) of one closed-form mode."""

    p0: Float[Array, "*modes"]
    exponent: Float[Array, ""]
    c: Float[Array, "*modes"]
    lam: Float[Array, "*modes"]

    def __init__(self, p0, *, exponent=0.5, c=1.0, lam=1.0):
        check_positive(exponent, "exponent")
        check_positive(lam, "lam")
        if is_concrete(c) and np.any(np.asarray(c) < 1.0):
            raise ValueError(f"`c` = (λ + λ')/λ must be >= 1, got {c}.")
        p0 = as_array(p0, "p0")
        if is_concrete(p0) and bool(np.any(np.asarray(p0) <= 0)):
            raise ValueError("`p0` must be positive.")
        self.p0 = p0
        self.exponent, self.c, self.lam = (jnp.asarray(v, dtype=p0.dtype) for v in (exponent, c, lam))

    @property
    def p_star(self) -> Float[Array, "*modes"]:
        """The fixed point `p* = 1/c` every mode converges to."""
        return 1.0 / self.c


class IsoLossModeSolution(_ModeSolution):
    r"""Closed-form IsoLoss mode (`g(s) = s^α`, no ε, no normalisation, ω = 0), a logistic curve:

        p(t) = p* / (1 + (p*/p₀ − 1) e^{−2αλt}),    p* = 1/c,   c = (λ + λ')/λ.

    **Arguments:** `p0` > 0 initial predictor eigenvalue(s); `exponent` α > 0; `c` ≥ 1; `lam` λ > 0
    (time scale).

    `solution(t)` is `p(t)`, broadcast over `t` and `p0` (e.g. `t` of shape (T, 1) against `p0` (1, k));
    the weight eigenvalue is `s = p^{1/α}`. `solution.trajectory(ts)` stacks p(t) along a time axis.

    Reference: Halvagal, Laborieux & Zenke, NeurIPS 2023.
    """

    def evaluate(self, t) -> Float[Array, "*shape"]:
        t = check_time(t)  # finite and >= 0 (concrete values)
        pstar = self.p_star
        return pstar / (1.0 + (pstar / self.p0 - 1.0) * jnp.exp(-2.0 * self.exponent * self.lam * jnp.asarray(t)))


class BYOLModeSolution(_ModeSolution):
    r"""Closed-form Euclidean-BYOL mode (`g(s) = s^α`, ω = 0), given implicitly by its time

        2αλ t(p) = c ln[ p (1 − c p₀) / (p₀ (1 − c p)) ] + 1/p₀ − 1/p      (`time(p)`),

    and evaluated by bisection of `t(p)` between `p₀` and `p* = 1/c` (t is monotone in p), to an
    accuracy ≈ |p* − p₀| 2^{−iterations}.

    **Arguments:** `p0` > 0 initial predictor eigenvalue(s); `exponent` α > 0; `c` ≥ 1; `lam` λ > 0;
    `iterations`: bisection steps (static).

    `solution(t)` is `p(t)`, broadcast over `t` and `p0`; `solution.trajectory(ts)` stacks it.

    Reference: Halvagal, Laborieux & Zenke, NeurIPS 2023 (BYOL's eigenvalue acts as a learning-rate
    multiplier: escape from small p₀ takes ≈ 1/(2α p₀)).
    """

    iterations: int = eqx.field(static=True)

    def __init__(self, p0, *, exponent=0.5, c=1.0, lam=1.0, iterations: int = 200):
        super().__init__(p0, exponent=exponent, c=c, lam=lam)
        self.iterations = iterations

    def time(self, p) -> Float[Array, "*shape"]:
        """The time at which the mode reaches `p` (between `p₀` and `p*`), broadcast over `p` and `p0`."""
        return self._time(as_array(p, "p"), self.p0)

    def _time(self, p, p0):
        c = self.c
        val = c * jnp.log(p * (1.0 - c * p0) / (p0 * (1.0 - c * p))) + 1.0 / p0 - 1.0 / p
        return val / (2.0 * self.exponent * self.lam)

    def evaluate(self, t) -> Float[Array, "*shape"]:
        t = check_time(t).astype(self.p0.dtype)  # finite and >= 0 (concrete values)
        p0b, tb = jnp.broadcast_arrays(self.p0, t)
        lo, hi = p0b, jnp.full_like(p0b, self.p_star)

        def body(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            before = self._time(mid, p0b) < tb  # mid is reached before t: p(t) lies beyond mid (towards p*)
            return jnp.where(before, mid, lo), jnp.where(before, hi, mid)

        lo, hi = jax.lax.fori_loop(0, self.iterations, body, (lo, hi))
        return 0.5 * (lo + hi)


def isoloss_mode_solution(t, p0, *, exponent=0.5, c=1.0, lam=1.0) -> Float[Array, "*shape"]:
    r"""`IsoLossModeSolution(p0, exponent=..., c=..., lam=...)(t)`: the logistic IsoLoss mode

        p(t) = p* / (1 + (p*/p₀ − 1) e^{−2αλt}),    p* = 1/c,   c = (λ + λ')/λ.

    **Arguments:** `t` times; `p0` > 0 initial predictor eigenvalue(s) (broadcast with `t`);
    `exponent` α > 0; `c` ≥ 1; `lam` λ > 0 (time scale).

    **Returns:** p(t); the weight eigenvalue is `s = p^{1/α}`.
    """
    return IsoLossModeSolution(p0, exponent=exponent, c=c, lam=lam)(t)


def byol_mode_time(p, p0, *, exponent=0.5, c=1.0, lam=1.0) -> Float[Array, "*shape"]:
    r"""Closed-form time at which a Euclidean-BYOL mode (`g(s) = s^α`, ω = 0) reaches `p` from `p₀`:

        2αλ t = c ln[ p (1 − c p₀) / (p₀ (1 − c p)) ] + 1/p₀ − 1/p.

    `p` must lie between `p₀` and `p* = 1/c` (the mode moves monotonically towards p*).

    **Arguments:** `p`, `p0` > 0 (broadcast); `exponent` α; `c` ≥ 1; `lam` λ.

    **Returns:** the time(s) (`BYOLModeSolution(p0, ...).time(p)`).
    """
    return BYOLModeSolution(p0, exponent=exponent, c=c, lam=lam).time(p)


def byol_mode_solution(t, p0, *, exponent=0.5, c=1.0, lam=1.0, iterations: int = 200) -> Float[Array, "*shape"]:
    r"""`BYOLModeSolution(p0, exponent=..., c=..., lam=..., iterations=...)(t)`: the Euclidean-BYOL mode
    `p(t)`, by bisection of `byol_mode_time` between `p₀` and `p* = 1/c`. Accuracy ≈ |p* − p₀| 2^{−iterations}.

    **Arguments:** as `byol_mode_time`, with `t` ≥ 0 the times; `iterations` bisection steps.

    **Returns:** p(t), broadcast shape of `t` and `p0`.
    """
    return BYOLModeSolution(p0, exponent=exponent, c=c, lam=lam, iterations=iterations)(t)

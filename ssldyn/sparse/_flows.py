r"""Stage 3 of `ssldyn.sparse`: the flows of the InfoNCE objective and the linearised closed form.

- `info_nce_vector_field`: `−∇_W L` of `wen_li_info_nce` in closed form;
- `QuenchedFlow` / `quenched_flow` (theory §5): the frozen-sample flow of the full nonlinear loss,
  `dW/dt = −∇_W L̂(W; b(t, W))`, an `AbstractFlow` non-autonomous through the bias schedule `β(t)`
  (`ssldyn.solve` integrates it, `ssldyn.simulate_gd` runs full-batch GD on it);
- `linearised_flow` / `linearised_solution` (theory §4): at b = 0 and small weights
  `dW/dt = (κ/τ) C+ W − ωW`, `κ = 1 − 1/B`, i.e. the core naive flow with `S = κC+/(2τ)` and its
  closed form `W(t) = exp(t(κC+/τ − ωI)) W(0)` (a `NaiveSolution`, an `AbstractSolution`);
- `cubic_correction`: the next order `−(κ/τ²) C0 W (Wᵀ C0 W)`; `linearised_rates`: the eigen-rates.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._closed_form import NaiveSolution
from .._flows import AbstractFlow, QuadraticFlow, naive_flow
from .._linalg import sym
from .._manifolds import Euclidean
from .._validation import as_array, check_int, check_positive, check_probability, check_symmetric
from ._loss import batches, beta_ramp, brelu, check_pairs, check_views, info_nce, thresholds
from ._model import (Augmentation, SparseCoding, check_augmentation, check_data, make_views, sparse_view_stats,
                     view_noise_scale)


def info_nce_vector_field(W: Float[Array, "d1 m"], X1: Float[Array, "n d1"], X2: Float[Array, "n d1"], *,
                          temperature=0.5, bias=0.0, batch_size=None, stop_gradient: bool = True,
                          weight_decay=0.0) -> Float[Array, "d1 m"]:
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
    W, X1, X2, batch_size = check_pairs(W, X1, X2, batch_size)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    return _vector_field(W, X1, X2, temperature, jnp.asarray(bias, W.dtype), batch_size, stop_gradient, weight_decay)


@partial(jax.jit, static_argnames=("batch_size", "stop_gradient"))
def _vector_field(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay):
    n = X1.shape[0]
    X1b, X2b = batches(X1, batch_size), batches(X2, batch_size)
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
    `β_max`; `loss_at(t, W)` at time t. Full-batch gradient descent on the frozen sample,
    `W ← W + η v(kη, W)`, is `ssldyn.simulate_gd(flow, W0, η, N)` (time-aware: step k sees the bias
    at `t = kη`); it tracks this ODE at `t = ηN` with an O(η) error (theory §8.8).

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

    X1: Float[Array, "n d1"]
    X2: Float[Array, "n d1"]
    temperature: Float[Array, ""]
    weight_decay: Float[Array, ""]
    beta_max: Float[Array, ""]
    horizon: Float[Array, ""]
    ramp_fraction: Float[Array, ""]
    bias_scale: Float[Array, ""]
    batch_size: int = eqx.field(static=True)
    stop_gradient: bool = eqx.field(static=True)

    def __init__(self, X1, X2, *, batch_size: int | None = None, temperature=0.5, weight_decay=0.0, beta_max=0.0,
                 horizon=1.0, ramp_fraction=0.5, bias_scale=1.0, stop_gradient: bool = True):
        X1, X2, batch_size = check_views(X1, X2, batch_size)
        check_positive(temperature, "temperature")
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        check_positive(beta_max, "beta_max", allow_zero=True)
        check_positive(horizon, "horizon")
        check_probability(ramp_fraction, "ramp_fraction")
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
    def manifold(self) -> Euclidean:
        return Euclidean()

    def bias(self, t, W: Float[Array, "d1 m"]) -> Float[Array, " m"]:
        """The thresholds `b(t, W)` (m,)."""
        beta = beta_ramp(t, self.horizon, self.beta_max, self.ramp_fraction)
        return thresholds(W, beta, self.bias_scale)

    def vector_field(self, t, W: Float[Array, "d1 m"]) -> Float[Array, "d1 m"]:
        """`−∇_W L̂(W; b(t, W))` at effective time `t`."""
        return _vector_field(W, self.X1, self.X2, self.temperature, self.bias(t, W), self.batch_size,
                             self.stop_gradient, self.weight_decay)

    def loss_at(self, t, W: Float[Array, "d1 m"]) -> Float[Array, ""]:
        """The frozen-sample loss at time `t` (bias level `β(t)`)."""
        return info_nce(W, self.X1, self.X2, self.temperature, self.bias(t, W), self.batch_size,
                         self.stop_gradient, self.weight_decay)

    def loss(self, W: Float[Array, "d1 m"]) -> Float[Array, ""]:
        """The loss at the final bias level `β_max`."""
        return self.loss_at(self.horizon, W)

    def check_initial(self, y0):
        W = as_array(y0, "y0", ndim=2)
        if W.shape[0] != self.X1.shape[1]:
            raise ValueError(f"`y0` must have {self.X1.shape[1]} rows (d1), got shape {tuple(W.shape)}.")
        return W.astype(self.X1.dtype)

    def cubic_term(self, W: Float[Array, "d1 m"]) -> Float[Array, "d1 m"]:
        r"""The third-order term of the frozen-sample field at `b = 0` (SG):

        $$v(W) = \tfrac1\tau A W - \omega W - \frac{1}{n\tau^2}\sum_{\text{batches}} X_1^\top X_1\, W\,
          W^\top \Big(\tfrac1B X_2^\top (I - \tfrac1B \mathbf 1\mathbf 1^\top) X_2\Big) W + O(\|W\|^5),$$

        from `π_ij = (1/B)(1 + S_ij − S̄_i) + O(S²)`: the negatives most similar to the anchor are pushed
        away, `Σ_j (S_ij − S̄_i) c_j = (B/τ) Σ̂_c u_i` with `Σ̂_c` the in-batch covariance of `c_j = Wᵀx⁽²⁾_j`.
        Its population form is `cubic_correction`.
        """
        W = as_array(W, "W", ndim=2)
        X1b, X2b = batches(self.X1, self.batch_size), batches(self.X2, self.batch_size)
        C = X2b @ W
        C = C - jnp.mean(C, axis=1, keepdims=True)
        cov = jnp.einsum("bjm,bjl->bml", C, C) / self.batch_size
        U = X1b @ W
        return -jnp.einsum("bid,bim,bml->dl", X1b, U, cov) / (self.X1.shape[0] * self.temperature**2)

    def linear_matrix(self) -> Float[Array, "d1 d1"]:
        r"""`A = (1/n) Σ_batches X_1ᵀ (I − 11ᵀ/B) X_2` (d₁, d₁): at `b = 0` and small W the flow is
        `dW/dt = (A/τ) W − ωW` (not symmetric on a finite sample; `E A = κ C+`)."""
        X1b, X2b = batches(self.X1, self.batch_size), batches(self.X2, self.batch_size)
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
    data = check_data(data)
    check_augmentation(augmentation)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    k1, k2 = jax.random.split(key)
    X = data.sample(k1, n_samples)
    X1, X2 = make_views(k2, X, augmentation, aug_noise_std=aug_noise_std)
    scale = view_noise_scale(data, augmentation, aug_noise_std=aug_noise_std)
    return QuenchedFlow(X1, X2, batch_size=batch_size, temperature=temperature, weight_decay=weight_decay,
                        beta_max=beta_max, horizon=horizon, ramp_fraction=ramp_fraction, bias_scale=scale,
                        stop_gradient=stop_gradient)


# ----------------------------------------------------------------------------------------------
# linearised flow
# ----------------------------------------------------------------------------------------------


def _kappa(batch_size) -> float:
    if batch_size is None:
        return 1.0
    B = check_int(batch_size, "batch_size", minimum=2)
    return 1.0 - 1.0 / B


def _linear_S(Cp, temperature, batch_size, stop_gradient):
    Cp = as_array(Cp, "Cp", ndim=2)
    check_symmetric(Cp, "Cp")
    check_positive(temperature, "temperature")
    factor = _kappa(batch_size) * (2.0 if not stop_gradient else 1.0)
    return factor * sym(Cp) / (2.0 * temperature)


def linearised_flow(Cp: Float[Array, "d1 d1"], *, temperature=0.5, batch_size: int | None = None, weight_decay=0.0,
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


def linearised_solution(Cp: Float[Array, "d1 d1"], W0: Float[Array, "d1 m"], *, temperature=0.5,
                        batch_size: int | None = None, weight_decay=0.0, stop_gradient: bool = True) -> NaiveSolution:
    r"""Closed form of the linearised flow:

    $$W(t) = \exp\big(t(\kappa C_+/\tau - \omega I)\big)\, W(0) = e^{-\omega t} e^{2tS} W(0),\quad S = \kappa C_+/(2\tau).$$

    **Arguments:** as `linearised_flow`, plus `W0` (d₁, m).

    **Returns:** a `NaiveSolution` (an `AbstractSolution`): `sol(t)` is W(t) (d₁, m), `sol.trajectory(ts)`
    a `Trajectory`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §4.
    """
    S = _linear_S(Cp, temperature, batch_size, stop_gradient)
    return NaiveSolution(S, W0, weight_decay=weight_decay)


def cubic_correction(C0: Float[Array, "d1 d1"], W: Float[Array, "d1 m"], *, temperature=0.5,
                     batch_size: int | None = None) -> Float[Array, "d1 m"]:
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

    atoms: Float[Array, ""]
    dense: Float[Array, ""]
    exact: Float[Array, " d1"]


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
    data = check_data(data)
    check_augmentation(augmentation)
    check_positive(temperature, "temperature", scalar=True)
    check_positive(weight_decay, "weight_decay", allow_zero=True, scalar=True)
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

r"""Gradient flows of the linear SimVAE (theory §4, derived again in docs/simvae.md).

With `α = J/σ_x²`, `β = (J−1)/σ² + κ/J`, `G = ((J−1)/σ²) Σ_a + κ M` and time `t = η·steps`:

    dW/dt = α Vᵀ(I − VW) C0 − W G
    dV/dt = α [C0 Wᵀ − V (W C0 Wᵀ + Λ)]
    dΛ/dt = −ρ [ (α/2) VᵀV + (β/2) I − (eJ/2) Λ⁻¹ ]                (ρ = `variance_rate`, 1: gradient flow)

- `LinearFlow(data, knobs, parametrisation="full")`: the three-matrix flow; with
  `parametrisation="logvar"` the state holds `ℓ` with `Λ = diag(e^ℓ)` and `dℓ_i/dt = Λ_ii (dΛ/dt)_ii`
  (the gradient flow in ℓ).
- `AdiabaticFlow(data, knobs)`: Λ eliminated at its optimum `Λ*(V) = e [VᵀV/σ_x² + (β/J) I]⁻¹`
  (`optimal_variance`); because `∂L/∂Λ = 0` there, this is the gradient flow of `L(W, V, Λ*(V))`.
- `ModeFlow(lam, gamma, knobs)`: the per-mode reduction for commuting `C0`, `Σ_a` (eigenvalues
  `λ_i = c_i + a_i`, `a_i`; `γ_i` from `mode_parameters`):
  `dw = αλv(1 − vw) − γw`, `dv = α[λw(1 − vw) − vΛ]`, `dΛ = −ρ[αv²/2 + β/2 − eJ/(2Λ)]`.

Survival (`survives`, `survival_margin`): at the origin Λ relaxes to `Λ₀ = eJ/β`; the origin of mode i
is unstable iff `λ_i² β/σ_x² > e γ_i`; its growth rate is `growth_rate`. For non-commuting covariances
the linearisation at the origin is the symmetric matrix `[[−G, αC0], [αC0, −αΛ₀ I]]` per latent unit;
by Haynsworth's inertia theorem its number of unstable directions is the number of positive
eigenvalues of `survival_matrix = β C0²/σ_x² − e G` (`n_surviving`), which reduces to the per-mode
condition when the covariances commute.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._flows import AbstractFlow
from .._linalg import sym
from .._validation import as_array, check_choice, check_positive, is_concrete
from ._loss import _linear_loss
from ._model import (
    LinearGaussianData,
    LinearState,
    ModeState,
    SimVAEKnobs,
    check_data,
    check_knobs,
    check_state,
    mode_parameters,
)


def _G(data, k):
    return (k.J - 1.0) / k.sigma2 * data.Sigma_a + k.kappa * data.M(k.J)


def _dW(W, V, data, k):
    # αVᵀ(I − VW)C0 − WG, ordered as α(VᵀC0 − (VᵀV)(WC0)) − WG: no D×D intermediate (I − VW)
    C0 = data.C0
    return k.alpha * (V.T @ C0 - (V.T @ V) @ (W @ C0)) - W @ _G(data, k)


def _dV(W, V, Lam, data, k):
    WC0 = W @ data.C0  # C0 symmetric: C0 Wᵀ = (W C0)ᵀ
    return k.alpha * (WC0.T - V @ (WC0 @ W.T + Lam))


def _grad_Lam(V, Lam_inv, k):
    L = V.shape[1]
    return 0.5 * k.alpha * V.T @ V + 0.5 * k.beta * jnp.eye(L, dtype=V.dtype) - 0.5 * k.e * k.J * Lam_inv


class LinearFlow(AbstractFlow):
    r"""Gradient flow of the exact linear-Gaussian SimVAE loss in `(W, V, Λ)` (module docstring).

    **Arguments:**
    - `data`: `LinearGaussianData` (Σ_c, Σ_a).
    - `knobs`: `SimVAEKnobs`.
    - `parametrisation`: `"full"` (Λ an (L, L) positive-definite matrix) or `"logvar"` (the state's
      third field is ℓ (L,), `Λ = diag(e^ℓ)`).
    - `variance_rate`: ρ > 0, the rate of the variance relative to the gradient flow (1: the gradient
      flow; ρ → ∞: the adiabatic flow).

    State: `LinearState(W, V, Lam)`.
    """

    data: LinearGaussianData
    knobs: SimVAEKnobs
    variance_rate: jax.Array
    parametrisation: str = eqx.field(static=True, default="full")

    def __init__(self, data, knobs, *, parametrisation: str = "full", variance_rate=1.0):
        self.data = check_data(data)
        self.knobs = check_knobs(knobs)
        self.parametrisation = check_choice(parametrisation, "parametrisation", ("full", "logvar"))
        check_positive(variance_rate, "variance_rate")
        self.variance_rate = jnp.asarray(variance_rate, jnp.result_type(float))

    def vector_field(self, t, y):
        W, V, Lam = y
        k, data = self.knobs, self.data
        if self.parametrisation == "full":
            Lam = sym(Lam)
            dLam = -self.variance_rate * _grad_Lam(V, jnp.linalg.inv(Lam), k)
            return LinearState(_dW(W, V, data, k), _dV(W, V, Lam, data, k), sym(dLam))
        lam = jnp.exp(Lam)
        g = jnp.diagonal(_grad_Lam(V, jnp.diag(1.0 / lam), k))
        return LinearState(_dW(W, V, data, k), _dV(W, V, jnp.diag(lam), data, k), -self.variance_rate * lam * g)

    def loss(self, y):
        return _linear_loss(y, self.data, self.knobs)

    def check_initial(self, y0):
        return check_state(y0, self.data.dim, parametrisation=self.parametrisation, name="y0")


def optimal_variance(V, knobs: SimVAEKnobs) -> jax.Array:
    r"""`Λ*(V) = e [VᵀV/σ_x² + (β/J) I]⁻¹`, the minimiser of the loss over Λ (`∂L/∂Λ = 0`)."""
    k = check_knobs(knobs)
    V = as_array(V, "V", ndim=2)
    return _optimal_variance(V, k)


def _optimal_variance(V, k):
    L = V.shape[1]
    return sym(k.e * jnp.linalg.inv(V.T @ V / k.sigma_x2 + k.beta / k.J * jnp.eye(L, dtype=V.dtype)))


class AdiabaticFlow(AbstractFlow):
    r"""The (W, V) flow with Λ held at `Λ*(V)` (state: a tuple `(W, V)`); the gradient flow of
    `L(W, V, Λ*(V))`."""

    data: LinearGaussianData
    knobs: SimVAEKnobs

    def __init__(self, data, knobs):
        self.data = check_data(data)
        self.knobs = check_knobs(knobs)

    def vector_field(self, t, y):
        W, V = y
        Lam = _optimal_variance(V, self.knobs)
        return _dW(W, V, self.data, self.knobs), _dV(W, V, Lam, self.data, self.knobs)

    def loss(self, y):
        W, V = y
        return _linear_loss(LinearState(W, V, _optimal_variance(V, self.knobs)), self.data, self.knobs)

    def check_initial(self, y0):
        if not (isinstance(y0, tuple) and len(y0) == 2):
            raise TypeError(f"`y0` must be a tuple (W, V), got {type(y0).__name__}.")
        W, V = y0
        L = as_array(W, "W", ndim=2).shape[0]
        s = check_state(LinearState(W, V, jnp.eye(L)), self.data.dim, name="y0")
        return (s.W, s.V)


class ModeFlow(AbstractFlow):
    r"""The per-mode system (module docstring), vectorised over modes; state `ModeState(w, v, lam)`.

    **Arguments:** `lam` λ_i > 0 and `gamma` γ_i ≥ 0 per mode (`mode_parameters(c, a, knobs)`);
    `knobs`; `variance_rate` ρ > 0.
    """

    lam: jax.Array
    gamma: jax.Array
    knobs: SimVAEKnobs
    variance_rate: jax.Array

    def __init__(self, lam, gamma, knobs, *, variance_rate=1.0):
        lam = as_array(lam, "lam", ndim=(0, 1))
        gamma = as_array(gamma, "gamma", ndim=(0, 1))
        check_positive(lam, "lam")
        check_positive(gamma, "gamma", allow_zero=True)
        if lam.shape != gamma.shape:
            raise ValueError(f"`lam` and `gamma` must have the same shape, got {lam.shape} and {gamma.shape}.")
        check_positive(variance_rate, "variance_rate")
        self.lam, self.gamma = lam, gamma
        self.knobs = check_knobs(knobs)
        self.variance_rate = jnp.asarray(variance_rate, jnp.result_type(float))

    @classmethod
    def from_variances(cls, c, a, knobs, *, variance_rate=1.0) -> ModeFlow:
        """The per-mode flow of content variances `c_i` and style variances `a_i`."""
        lam, gamma = mode_parameters(c, a, knobs)
        return cls(lam, gamma, knobs, variance_rate=variance_rate)

    def vector_field(self, t, y):
        w, v, L = y
        k = self.knobs
        r = 1.0 - v * w
        dw = k.alpha * self.lam * v * r - self.gamma * w
        dv = k.alpha * (self.lam * w * r - v * L)
        dL = -self.variance_rate * (0.5 * k.alpha * v**2 + 0.5 * k.beta - 0.5 * k.e * k.J / L)
        return ModeState(dw, dv, dL)

    def loss(self, y):
        """The per-mode loss, summed over modes (the aligned full-matrix loss up to a constant)."""
        w, v, L = y
        k = self.knobs
        J = k.J
        rec = self.lam * (1.0 - v * w) ** 2 + v**2 * L
        return jnp.sum(0.5 * k.alpha * rec + 0.5 * self.gamma * w**2 + 0.5 * k.beta * L - 0.5 * k.e * J * jnp.log(L))

    def check_initial(self, y0):
        if not (isinstance(y0, tuple) and len(y0) == 3):
            raise TypeError(f"`y0` must be a ModeState(w, v, lam), got {type(y0).__name__}.")
        w, v, L = (as_array(a, n) for a, n in zip(y0, ("w", "v", "lam")))
        if not (w.shape == v.shape == L.shape == self.lam.shape):
            raise ValueError(f"`y0` fields must all have the modes' shape {self.lam.shape}, got "
                             f"{w.shape}, {v.shape}, {L.shape}.")
        if is_concrete(L) and np.any(np.asarray(L) <= 0):
            raise ValueError("`y0.lam` (the posterior variances) must be positive.")
        return ModeState(w, v, L)


def origin_variance(knobs: SimVAEKnobs) -> jax.Array:
    r"""`Λ₀ = eJ/β`, the equilibrium of the variance at the origin W = V = 0."""
    k = check_knobs(knobs)
    return k.e * k.J / k.beta


def survival_margin(c, a, knobs: SimVAEKnobs) -> jax.Array:
    r"""`λ² β/σ_x² − e γ` per mode: positive iff the origin of the mode is unstable (it is learned)."""
    k = check_knobs(knobs)
    lam, gamma = mode_parameters(c, a, k)
    return lam**2 * k.beta / k.sigma_x2 - k.e * gamma


def survives(c, a, knobs: SimVAEKnobs) -> jax.Array:
    r"""Whether each mode survives: `λ_i² β/σ_x² > e γ_i` (boolean array)."""
    return survival_margin(c, a, knobs) > 0


def growth_rate(c, a, knobs: SimVAEKnobs) -> jax.Array:
    r"""Initial growth rate of each mode at the origin (Λ = Λ₀):
    `r = [−(γ + αΛ₀) + sqrt((γ − αΛ₀)² + 4α²λ²)]/2` (negative: the mode decays)."""
    k = check_knobs(knobs)
    lam, gamma = mode_parameters(c, a, k)
    aL = k.alpha * k.e * k.J / k.beta
    return 0.5 * (-(gamma + aL) + jnp.sqrt((gamma - aL) ** 2 + 4.0 * k.alpha**2 * lam**2))


def survival_matrix(data: LinearGaussianData, knobs: SimVAEKnobs) -> jax.Array:
    r"""`S = β C0²/σ_x² − e G`, `G = ((J−1)/σ²) Σ_a + κ M`: its positive eigen-directions are the
    directions that grow from the origin (any covariances, commuting or not)."""
    data = check_data(data)
    k = check_knobs(knobs)
    C0 = data.C0
    return sym(k.beta * C0 @ C0 / k.sigma_x2 - k.e * _G(data, k))


def n_surviving(data: LinearGaussianData, knobs: SimVAEKnobs, latent_dim: int | None = None) -> int:
    """Number of directions learned from a small start: positive eigenvalues of `survival_matrix`,
    capped at `latent_dim` when given."""
    S = np.asarray(survival_matrix(data, knobs))
    ev = np.linalg.eigvalsh(S)
    n = int(np.sum(ev > 1e-12 * max(1.0, float(np.max(np.abs(ev))))))
    return n if latent_dim is None else min(n, int(latent_dim))


def origin_jacobian(data: LinearGaussianData, knobs: SimVAEKnobs) -> jax.Array:
    r"""The symmetric linearisation `[[−G, αC0], [αC0, −αΛ₀ I]]` of one latent unit's (w, v) at the
    origin; its largest eigenvalue is the initial growth rate of the fastest direction."""
    data = check_data(data)
    k = check_knobs(knobs)
    D = data.dim
    aL = k.alpha * k.e * k.J / k.beta
    top = jnp.concatenate([-_G(data, k), k.alpha * data.C0], axis=1)
    bot = jnp.concatenate([k.alpha * data.C0, -aL * jnp.eye(D, dtype=data.C0.dtype)], axis=1)
    return sym(jnp.concatenate([top, bot], axis=0))

r"""The SimVAE model's knobs, the linear-Gaussian data model and the states of the linear theory.

Knobs of the objective (theory `simvae2024.md` §2), held by `SimVAEKnobs`:

- `J ≥ 1`: views per instance;
- `sigma_x2` σ_x² > 0: the likelihood variance, in the convention `rec = ‖x − x̂‖² / (2σ_x²)` (the paper's
  "0.02" is `2σ_x²` in this convention, i.e. σ_x² = 0.01);
- `sigma2` σ² > 0: the prior variance of a view's latent around the instance latent y;
- `kappa` κ ≥ 0: weight on the standard-normal prior of the mean latent (0: Algorithm 1 as printed,
  1: the released implementation, J/(J+σ²): the exact Gaussian marginal);
- `e` > 0: the entropy scale (1: the Gaussian entropy; 2π: the released implementation).

J = 1 with κ = 0 is refused: the objective then has no term that bounds the posterior variance
(β = (J−1)/σ² + κ/J = 0) and Λ has no equilibrium.

Linear-Gaussian data (§4): `x_j = c + a_j`, content `c ~ N(0, Σ_c)` shared by the J views, style
`a_j ~ N(0, Σ_a)` i.i.d. across views, so `C0 = Σ_c + Σ_a` and the view mean has covariance
`M = Σ_c + Σ_a/J`. Layout: rows are samples; the encoder is `W ∈ R^{L×D}` (`z = W x`), the decoder
`V ∈ R^{D×L}` (`x̂ = V z`), the posterior covariance `Λ ∈ R^{L×L}` (input-independent).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import sym, symmetric_pair
from .._validation import as_array, check_int, check_positive, check_symmetric, is_concrete


class SimVAEKnobs(eqx.Module):
    r"""The knobs `(J, σ_x², σ², κ, e)` of the SimVAE objective (see the module docstring).

    All knobs, J included, are stored as arrays, so a sweep over them compiles once; `n_views` gives J
    as a Python int (the number of views of a network batch).

    **Arguments:** `J` (int ≥ 1), `sigma_x2` (> 0), `sigma2` (> 0), `kappa` (≥ 0), `e` (> 0).

    **Derived:** `alpha = J/σ_x²`, `beta = (J−1)/σ² + κ/J`.
    """

    J: jax.Array
    sigma_x2: jax.Array
    sigma2: jax.Array
    kappa: jax.Array
    e: jax.Array

    def __init__(self, J: int = 10, sigma_x2=0.01, sigma2=0.15, kappa=0.0, e=1.0):
        n_views = check_int(J, "J", minimum=1)
        for name, value in (("sigma_x2", sigma_x2), ("sigma2", sigma2), ("e", e)):
            check_positive(value, name)
        check_positive(kappa, "kappa", allow_zero=True)
        if n_views == 1 and is_concrete(kappa) and float(np.max(np.asarray(kappa))) == 0.0:
            raise ValueError("`kappa` must be > 0 when `J` = 1: with one view and no prior on the mean "
                             "(β = (J−1)/σ² + κ/J = 0) the posterior variance Λ has no equilibrium.")
        dt = jnp.result_type(float)
        self.sigma_x2 = jnp.asarray(sigma_x2, dt)
        self.sigma2 = jnp.asarray(sigma2, dt)
        self.kappa = jnp.asarray(kappa, dt)
        self.e = jnp.asarray(e, dt)
        self.J = jnp.asarray(n_views, dt)

    @classmethod
    def algorithm1(cls, J: int = 10, sigma_x2=0.01, sigma2=0.15) -> SimVAEKnobs:
        """Algorithm 1 as printed: flat prior on the mean (κ = 0), Gaussian entropy (e = 1)."""
        return cls(J, sigma_x2, sigma2, kappa=0.0, e=1.0)

    @classmethod
    def released(cls, J: int = 2, sigma_x2=math.exp(-4.6), sigma2=0.15) -> SimVAEKnobs:
        """The released implementation's defaults: J = 2, σ_x² = e^{−4.6}, κ = 1, e = 2π."""
        return cls(J, sigma_x2, sigma2, kappa=1.0, e=2.0 * math.pi)

    @property
    def n_views(self) -> int:
        """J as a Python int (needs concrete knobs: outside `jit`)."""
        return int(np.asarray(self.J))

    @property
    def alpha(self) -> jax.Array:
        return self.J / self.sigma_x2

    @property
    def beta(self) -> jax.Array:
        return (self.J - 1.0) / self.sigma2 + self.kappa / self.J


def check_knobs(knobs) -> SimVAEKnobs:
    if not isinstance(knobs, SimVAEKnobs):
        raise TypeError(f"`knobs` must be a SimVAEKnobs, got {type(knobs).__name__}.")
    return knobs


def _check_psd(S, name: str) -> None:
    if is_concrete(S):
        ev = np.linalg.eigvalsh(np.asarray(S, dtype=float))
        if ev.size and ev[0] < -1e-10 * max(1.0, float(np.max(np.abs(ev)))):
            raise ValueError(f"`{name}` must be positive semi-definite, smallest eigenvalue {ev[0]:.3g}.")


class LinearGaussianData(eqx.Module):
    r"""Content/style covariances of the linear-Gaussian view model `x_j = c + a_j` (§4).

    **Arguments:** `Sigma_c` (D, D) content covariance (= C+), `Sigma_a` (D, D) style covariance
    (= C0 − C+), both symmetric positive semi-definite.

    **Derived:** `C0 = Σ_c + Σ_a`; `M(J) = Σ_c + Σ_a/J` (covariance of the mean of J views).
    """

    Sigma_c: jax.Array
    Sigma_a: jax.Array

    def __init__(self, Sigma_c, Sigma_a):
        Sc, Sa = symmetric_pair(Sigma_c, Sigma_a, ("Sigma_c", "Sigma_a"))
        _check_psd(Sc, "Sigma_c")
        _check_psd(Sa, "Sigma_a")
        self.Sigma_c, self.Sigma_a = Sc, Sa

    @classmethod
    def from_view_stats(cls, C0, C_plus) -> LinearGaussianData:
        """From the view covariance `C0` and the cross-view covariance `C+` (`Σ_c = C+`, `Σ_a = C0 − C+`)."""
        C0 = as_array(C0, "C0", ndim=2)
        Cp = as_array(C_plus, "C_plus", ndim=2)
        return cls(sym(Cp), sym(C0 - Cp))

    @classmethod
    def diagonal(cls, c, a) -> LinearGaussianData:
        """Commuting (diagonal) covariances with content variances `c` and style variances `a` per axis."""
        c = as_array(c, "c", ndim=1)
        a = as_array(a, "a", ndim=1)
        if c.shape != a.shape:
            raise ValueError(f"`c` and `a` must have the same length, got {c.shape[0]} and {a.shape[0]}.")
        return cls(jnp.diag(c), jnp.diag(a))

    @property
    def dim(self) -> int:
        return self.Sigma_c.shape[0]

    @property
    def C0(self) -> jax.Array:
        return self.Sigma_c + self.Sigma_a

    def M(self, J) -> jax.Array:
        return self.Sigma_c + self.Sigma_a / J


def check_data(data) -> LinearGaussianData:
    if not isinstance(data, LinearGaussianData):
        raise TypeError(f"`data` must be a LinearGaussianData, got {type(data).__name__}.")
    return data


class LinearState(NamedTuple):
    r"""State of the linear SimVAE: encoder `W` (L, D), decoder `V` (D, L) and the posterior covariance
    as a full matrix `Lam` (L, L), or as a log-variance vector (L,) (`Λ = diag(exp ℓ)`)."""

    W: jax.Array
    V: jax.Array
    Lam: jax.Array


class ModeState(NamedTuple):
    """State of the per-mode reduction: gains `w`, `v` and variances `lam`, one entry per mode."""

    w: jax.Array
    v: jax.Array
    lam: jax.Array


def covariance(Lam) -> jax.Array:
    """The posterior covariance Λ of a state's third field (a matrix, or a log-variance vector)."""
    return jnp.diag(jnp.exp(Lam)) if Lam.ndim == 1 else Lam


def check_state(state, dim: int | None = None, *, parametrisation: str | None = None, name: str = "state") -> LinearState:
    r"""Validate a `LinearState`: shapes `W` (L, D), `V` (D, L), Λ (L, L) symmetric positive definite
    (or a log-variance vector (L,)); errors name the field (`W`, `V`, `Lam`)."""
    if not (isinstance(state, tuple) and len(state) == 3):
        raise TypeError(f"`{name}` must be a LinearState(W, V, Lam), got {type(state).__name__}.")
    W = as_array(state[0], "W", ndim=2)
    V = as_array(state[1], "V", ndim=2)
    Lam = as_array(state[2], "Lam", ndim=(1, 2))
    L, D = W.shape
    if dim is not None and D != dim:
        raise ValueError(f"`W` must have {dim} columns (the data dimension), got shape {tuple(W.shape)}.")
    if V.shape != (D, L):
        raise ValueError(f"`V` must have shape (D, L) = {(D, L)} to match `W` {tuple(W.shape)}: mismatched "
                         f"latent sizes, got {tuple(V.shape)}.")
    if parametrisation == "full" and Lam.ndim != 2:
        raise ValueError(f"`Lam` must be an (L, L) covariance matrix for the full parametrisation, got shape {Lam.shape}.")
    if parametrisation == "logvar" and Lam.ndim != 1:
        raise ValueError(f"`Lam` must be a log-variance vector (L,) for the logvar parametrisation, got shape {Lam.shape}.")
    if Lam.shape[0] != L or (Lam.ndim == 2 and Lam.shape != (L, L)):
        raise ValueError(f"`Lam` must be ({L}, {L}) or ({L},) to match the latent size L = {L} of `W`, got "
                         f"{tuple(Lam.shape)}: mismatched latent sizes.")
    if Lam.ndim == 2:
        check_symmetric(Lam, "Lam")
        if is_concrete(Lam):
            ev = np.linalg.eigvalsh(np.asarray(Lam, dtype=float))
            if ev[0] <= 0:
                raise ValueError(f"`Lam` must be positive definite (a covariance), smallest eigenvalue {ev[0]:.3g}.")
        Lam = sym(Lam)
    return LinearState(W, V, Lam)


def mode_parameters(c, a, knobs: SimVAEKnobs) -> tuple[jax.Array, jax.Array]:
    r"""Per-mode constants of §4: `λ_i = c_i + a_i` and `γ_i = ((J−1)/σ²) a_i + κ (c_i + a_i/J)`."""
    c = as_array(c, "c")
    a = as_array(a, "a")
    check_positive(c, "c", allow_zero=True)
    check_positive(a, "a", allow_zero=True)
    k = check_knobs(knobs)
    lam = c + a
    gamma = (k.J - 1.0) / k.sigma2 * a + k.kappa * (c + a / k.J)
    return lam, gamma


def sample_linear_views(key, data: LinearGaussianData, n: int, J: int) -> jax.Array:
    r"""Sample `n` groups of `J` views `x_j = c + a_j` (shape (n, J, D)) from the linear-Gaussian model."""
    data = check_data(data)
    n = check_int(n, "n", minimum=1)
    J = check_int(J, "J", minimum=1)
    kc, ka = jax.random.split(key)
    D = data.dim
    Rc = _psd_root(data.Sigma_c)
    Ra = _psd_root(data.Sigma_a)
    c = jax.random.normal(kc, (n, 1, D), data.Sigma_c.dtype) @ Rc.T
    a = jax.random.normal(ka, (n, J, D), data.Sigma_c.dtype) @ Ra.T
    return c + a


def _psd_root(S):
    ev, U = jnp.linalg.eigh(S)
    return U * jnp.sqrt(jnp.clip(ev, 0.0))[None, :]

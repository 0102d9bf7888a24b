r"""The SimVAE objective (Algorithm 1 with the knobs κ, e), its exact linear-Gaussian expectation, and
the baseline objectives of the small-network experiment.

**Per-group loss** (theory §2; one instance with J views, latents sampled by reparameterisation):

    ℓ = Σ_j ‖x_j − x̂_j‖²/(2σ_x²) − (e/2) Σ_j log det Σ_j + (1/(2σ²)) Σ_j ‖z_j − z̄‖² + (κ/2)‖z̄‖²,

`z̄ = (1/J) Σ_j z_j`. The batch loss is the **mean** over groups (`reduction="mean"`, the library
default) or the sum (`"sum"`, the released code): the sum is N times the mean, i.e. the same flow with
time rescaled by N.

**Exact expectation for the linear-Gaussian model** (§4, `linear_loss`):

    L(W, V, Λ) = (J/(2σ_x²)) [tr((I − VW) C0 (I − VW)ᵀ) + tr(VΛVᵀ)] + ((J−1)/(2σ²)) [tr(W Σ_a Wᵀ) + tr Λ]
               + (κ/2) [tr(W M Wᵀ) + tr(Λ)/J] − (eJ/2) log det Λ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._validation import as_array, check_choice, check_positive, is_concrete
from ._model import LinearGaussianData, SimVAEKnobs, check_data, check_knobs, check_state, covariance


def _reduce(per_group, reduction):
    return jnp.mean(per_group) if reduction == "mean" else jnp.sum(per_group)


def simvae_loss(x, x_hat, z, logdet, knobs: SimVAEKnobs, *, reduction: str = "mean") -> jax.Array:
    r"""The Algorithm-1 loss of a batch of groups (see the module docstring), Gaussian likelihood.

    **Arguments:**
    - `x`, `x_hat`: views and their reconstructions, (N, J, D).
    - `z`: sampled latents, (N, J, L).
    - `logdet`: `log det Σ_j` of each view's posterior, (N, J) (for a diagonal posterior, the sum of
      the log-variances).
    - `knobs`: `SimVAEKnobs` (its `J` must equal the number of views).
    - `reduction`: `"mean"` (default) or `"sum"` over groups.

    **Returns:** a scalar.

    References: Bizeul, Schölkopf & Allen, TMLR 2024, Algorithm 1.
    """
    k = check_knobs(knobs)
    check_choice(reduction, "reduction", ("mean", "sum"))
    x = as_array(x, "x", ndim=3)
    x_hat = as_array(x_hat, "x_hat", ndim=3)
    z = as_array(z, "z", ndim=3)
    logdet = as_array(logdet, "logdet", ndim=2)
    if x_hat.shape != x.shape:
        raise ValueError(f"`x_hat` must have the shape of `x` {tuple(x.shape)}, got {tuple(x_hat.shape)}.")
    if is_concrete(k.J) and x.shape[1] != k.n_views:
        raise ValueError(f"`x` has {x.shape[1]} views per group but `knobs.J` = {k.n_views}.")
    if z.shape[:2] != x.shape[:2] or logdet.shape != x.shape[:2]:
        raise ValueError(f"`z` (N, J, L) and `logdet` (N, J) must match the groups of `x` {tuple(x.shape[:2])}, "
                         f"got {tuple(z.shape)} and {tuple(logdet.shape)}.")
    return _simvae_loss(x, x_hat, z, logdet, k, reduction)


def _simvae_loss(x, x_hat, z, logdet, k, reduction="mean"):
    rec = jnp.sum((x - x_hat) ** 2, axis=(1, 2)) / (2.0 * k.sigma_x2)
    ent = -0.5 * k.e * jnp.sum(logdet, axis=1)
    zbar = jnp.mean(z, axis=1, keepdims=True)
    prior = jnp.sum((z - zbar) ** 2, axis=(1, 2)) / (2.0 * k.sigma2) + 0.5 * k.kappa * jnp.sum(zbar[:, 0] ** 2, axis=-1)
    return _reduce(rec + ent + prior, reduction)


def linear_loss(state, data: LinearGaussianData, knobs: SimVAEKnobs) -> jax.Array:
    r"""Exact expected per-group loss `L(W, V, Λ)` of the linear SimVAE (module docstring, theory §4).

    **Arguments:** `state` a `LinearState(W, V, Lam)` (Λ a positive-definite matrix or a log-variance
    vector); `data` a `LinearGaussianData`; `knobs`.
    """
    data = check_data(data)
    k = check_knobs(knobs)
    state = check_state(state, data.dim)
    return _linear_loss(state, data, k)


def _linear_loss(state, data, k):
    W, V, Lam = state
    Lam = covariance(Lam)
    J = k.J
    R = jnp.eye(data.dim, dtype=W.dtype) - V @ W
    rec = jnp.sum((R @ data.C0) * R) + jnp.sum((V @ Lam) * V)
    spread = jnp.sum((W @ data.Sigma_a) * W) + jnp.trace(Lam)
    mean = jnp.sum((W @ data.M(J)) * W) + jnp.trace(Lam) / J
    _, logdet = jnp.linalg.slogdet(Lam)
    return J / (2 * k.sigma_x2) * rec + (J - 1) / (2 * k.sigma2) * spread + 0.5 * k.kappa * mean - 0.5 * k.e * J * logdet


def gaussian_kl(mu, logvar) -> jax.Array:
    r"""`KL(N(μ, diag e^{logvar}) ‖ N(0, I))` per row: `½ Σ (μ² + e^{logvar} − logvar − 1)`."""
    return 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - logvar - 1.0, axis=-1)


def vae_loss(x, x_hat, mu, logvar, *, sigma_x2, beta=1.0) -> jax.Array:
    r"""(β-)VAE loss, mean over samples: `‖x − x̂‖²/(2σ_x²) + β KL(q(z|x) ‖ N(0, I))` (β = 1: the VAE).

    `x`, `x_hat` (N, D); `mu`, `logvar` (N, L). References: Kingma & Welling 2014; Higgins et al. 2017.
    """
    check_positive(sigma_x2, "sigma_x2")
    check_positive(beta, "beta")
    rec = jnp.sum((x - x_hat) ** 2, axis=-1) / (2.0 * sigma_x2)
    return jnp.mean(rec + beta * gaussian_kl(mu, logvar))


def cr_vae_loss(x, x_hat, mu, logvar, *, sigma_x2, lam=0.1) -> jax.Array:
    r"""Consistency-regularised VAE (Sinha & Dieng, NeurIPS 2021) on two views, mean over samples:
    the VAE loss of both views plus `λ KL(q(z|x₂) ‖ q(z|x₁))`. Arrays have a view axis of length 2:
    `x`, `x_hat` (N, 2, D), `mu`, `logvar` (N, 2, L)."""
    check_positive(lam, "lam", allow_zero=True)
    if x.shape[1] != 2:
        raise ValueError(f"`x` must hold 2 views per sample for CR-VAE, got {x.shape[1]}.")
    base = sum(vae_loss(x[:, j], x_hat[:, j], mu[:, j], logvar[:, j], sigma_x2=sigma_x2) for j in range(2))
    m1, m2, l1, l2 = mu[:, 0], mu[:, 1], logvar[:, 0], logvar[:, 1]
    kl = 0.5 * jnp.sum(l1 - l2 + (jnp.exp(l2) + (m2 - m1) ** 2) / jnp.exp(l1) - 1.0, axis=-1)
    return base + lam * jnp.mean(kl)


def vicreg_loss(z1, z2, *, inv=25.0, var=25.0, cov=1.0, eps=1e-4) -> jax.Array:
    r"""VICReg (Bardes, Ponce & LeCun, ICLR 2022): `inv · mean‖z₁ − z₂‖²/L + var · Σ_views mean_d
    relu(1 − sqrt(Var z_d + ε)) + cov · Σ_views Σ_{d≠d'} Cov(z)²_{dd'}/L`. The paper's μ = 25 is `var`."""
    n, L = z1.shape

    def v(z):
        return jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(jnp.var(z, axis=0) + eps)))

    def c(z):
        zc = z - jnp.mean(z, axis=0)
        C = zc.T @ zc / (n - 1)
        return (jnp.sum(C**2) - jnp.sum(jnp.diagonal(C) ** 2)) / L

    return inv * jnp.mean(jnp.sum((z1 - z2) ** 2, axis=-1)) / L + var * (v(z1) + v(z2)) + cov * (c(z1) + c(z2))

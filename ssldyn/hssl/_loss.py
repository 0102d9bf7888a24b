r"""Linear H-SSL objectives on fiber statistics (theory note §3.3–3.4), column layout `f = Wᵀ P_g x`.

Both defaults have the form `L(W) = −α tr(Wᵀ C+ W) + β ‖Wᵀ C0 W‖_F²`:

- `"spectral"` (HaoChen et al. 2021): `−2 E[f(x)ᵀf(x+)] + E[(f(x)ᵀf(x−))²]`, α = 2, β = 1 (the
  negative term is `tr(E[ffᵀ] E[f₋f₋ᵀ]) = ‖WᵀC0W‖²` for independent negatives).
- `"infonce"` in the infinite-negative, small-feature (Gaussian) limit with dot-product logits at
  temperature τ: `−E[f·f₊]/τ + log E exp(f·f₋/τ) ≈ −tr(WᵀC+W)/τ + ‖WᵀC0W‖²/(2τ²)`, α = 1/τ,
  β = 1/(2τ²).

**Untied towers** (`untied_loss`, weights `W_g`, one per position, stacked `(L, r, k)`):

    L = −α Σ_{g,g'} p(g,g') tr(W_gᵀ C_{gg'} W_{g'}) + β Σ_{g,g''} q(g,g'') tr(A_g A_{g''}),
    A_g = W_gᵀ C_{gg} W_g,

with `p(g, g')` the symmetric joint law of positive positions and `q` that of anchor–negative
positions (default independent uniform `1/L²`).
"""

from __future__ import annotations

import jax.numpy as jnp

from .._stats import ViewStats
from .._validation import as_array, check_choice, check_positive

OBJECTIVES = ("spectral", "infonce")


def objective_coefficients(objective: str = "spectral", temperature: float = 0.1) -> tuple[float, float]:
    """`(α, β)` of `L = −α tr(WᵀC+W) + β‖WᵀC0W‖²`."""
    check_choice(objective, "objective", OBJECTIVES)
    if objective == "spectral":
        return 2.0, 1.0
    check_positive(temperature, "temperature")
    return 1.0 / temperature, 1.0 / (2.0 * temperature ** 2)


def quartic_loss(W, C0, Cp, alpha, beta):
    """`−α tr(WᵀC+W) + β‖WᵀC0W‖_F²` (no validation; used inside flows)."""
    A = W.T @ C0 @ W
    return -alpha * jnp.trace(W.T @ Cp @ W) + beta * jnp.sum(A * A)


def linear_loss(W, stats: ViewStats, objective: str = "spectral", *, temperature: float = 0.1):
    """The tied (equivariant) linear objective at `W (r, k)` on fiber `stats`."""
    W = as_array(W, "W", ndim=2)
    if W.shape[0] != stats.dim:
        raise ValueError(f"`W` must have {stats.dim} rows (the receptive field of `stats`), got shape {W.shape}.")
    alpha, beta = objective_coefficients(objective, temperature)
    return quartic_loss(W, stats.C0, stats.Cp, alpha, beta)


def untied_quartic_loss(Ws, Cgg, pj, q, alpha, beta):
    """Untied-tower loss (no validation): `Ws (L, r, k)`, `Cgg (L, L, r, r)`, `pj`, `q` (L, L)."""
    pos = jnp.einsum("gh,gak,ghab,hbk->", pj, Ws, Cgg, Ws)
    diag = Cgg[jnp.arange(Cgg.shape[0]), jnp.arange(Cgg.shape[0])]        # C_gg, (L, r, r)
    A = jnp.einsum("gak,gab,gbl->gkl", Ws, diag, Ws)                        # (L, k, k)
    neg = jnp.einsum("gh,gkl,hlk->", q, A, A)
    return -alpha * pos + beta * neg


def untied_loss(Ws, Cgg, pj, q=None, objective: str = "spectral", *, temperature: float = 0.1):
    """Locally connected (untied) linear objective; see the module docstring."""
    Ws = as_array(Ws, "Ws", ndim=3)
    Cgg = as_array(Cgg, "Cgg", ndim=4)
    L, r = Ws.shape[0], Ws.shape[1]
    if Cgg.shape != (L, L, r, r):
        raise ValueError(f"Mismatched fiber shapes: `Cgg` must be (L, L, r, r) = {(L, L, r, r)} for `Ws` of shape "
                         f"{tuple(Ws.shape)}, got {tuple(Cgg.shape)}.")
    pj = as_array(pj, "pj", ndim=2)
    q = jnp.full((L, L), 1.0 / L ** 2, Ws.dtype) if q is None else as_array(q, "q", ndim=2)
    for name, m in (("pj", pj), ("q", q)):
        if m.shape != (L, L):
            raise ValueError(f"`{name}` must be ({L}, {L}), got {tuple(m.shape)}.")
    alpha, beta = objective_coefficients(objective, temperature)
    return untied_quartic_loss(Ws, Cgg, pj, q, alpha, beta)

r"""Gradient flows of the linear H-SSL objectives and the closed form of the commuting case.

- `tied_flow(stats, objective)`: the equivariant (tied) encoder, `GradientFlow` of `linear_loss`
  through the core's generic autodiff flow; `tied_field` is the hand-written field

      dW/dt = 2α C+ W − 4β C0 W (Wᵀ C0 W)        (spectral: α = 2, β = 1; 4C+W − 4C0W WᵀC0W)

- `untied_flow(Cgg, pj, q)`: the locally connected towers `W_g`; `untied_field` is

      dW_g/dt = 2α Σ_{g'} p(g,g') C_{gg'} W_{g'} − 4β Σ_{g''} q(g,g'') C_{gg} W_g A_{g''}.

- `CommutingSolution`: when C0 and C+ commute (eigenvalues `λ_i`, `c_i` in a shared basis `u_i`)
  and the columns of `W0` lie on distinct eigen-directions, each column `w u_i` obeys
  `dw/dt = a w − b w³` with `a = 2α c_i`, `b = 4β λ_i²`:

      w(t)² = a / (b + (a/w0² − b) e^{−2at})    (a ≠ 0),      w(t)² = w0² / (1 + 2b w0² t)   (a = 0).

  Stationary `w² = a/b` = `c_i/λ_i²` (spectral), `τ c_i/λ_i²` (InfoNCE limit).
- `commuting_minimiser(stats, k)`: the minimisers (top-k directions by `c_i/λ_i` among `c_i > 0`)
  and the minimum `−(α²/4β) Σ_selected (c_i/λ_i)²` (spectral: `−Σ (c_i/λ_i)²`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._flows import GradientFlow
from .._solution import AbstractSolution
from .._stats import ViewStats
from .._validation import as_array, check_int
from ._loss import objective_coefficients, quartic_loss, untied_quartic_loss


def _tied_loss(W, args):
    C0, Cp, alpha, beta = args
    return quartic_loss(W, C0, Cp, alpha, beta)


def _untied_loss(Ws, args):
    Cgg, pj, q, alpha, beta = args
    return untied_quartic_loss(Ws, Cgg, pj, q, alpha, beta)


def tied_flow(stats: ViewStats, objective: str = "spectral", *, temperature: float = 0.1) -> GradientFlow:
    """Gradient flow of the tied linear objective on fiber `stats` (state `W (r, k)`)."""
    if not isinstance(stats, ViewStats):
        raise TypeError(f"`stats` must be a ViewStats, got {type(stats).__name__}.")
    alpha, beta = objective_coefficients(objective, temperature)
    dt = stats.C0.dtype
    return GradientFlow(_tied_loss, args=(stats.C0, stats.Cp, jnp.asarray(alpha, dt), jnp.asarray(beta, dt)))


def tied_field(W, stats: ViewStats, objective: str = "spectral", *, temperature: float = 0.1) -> jax.Array:
    """Hand-written `dW/dt = 2α C+ W − 4β C0 W (Wᵀ C0 W)`."""
    W = as_array(W, "W", ndim=2)
    alpha, beta = objective_coefficients(objective, temperature)
    return 2 * alpha * stats.Cp @ W - 4 * beta * stats.C0 @ W @ (W.T @ stats.C0 @ W)


def untied_flow(Cgg, pj, q=None, objective: str = "spectral", *, temperature: float = 0.1) -> GradientFlow:
    """Gradient flow of the untied (locally connected) objective, state `Ws (L, r, k)`."""
    Cgg = as_array(Cgg, "Cgg", ndim=4)
    L, L2, r, r2 = Cgg.shape
    if L != L2 or r != r2:
        raise ValueError(f"`Cgg` must be (L, L, r, r), got {tuple(Cgg.shape)}.")
    pj = as_array(pj, "pj", ndim=2)
    if pj.shape != (L, L):
        raise ValueError(f"Mismatched fiber shapes: `pj` must be ({L}, {L}), got {tuple(pj.shape)}.")
    q = jnp.full((L, L), 1.0 / L ** 2, Cgg.dtype) if q is None else as_array(q, "q", ndim=2)
    if q.shape != (L, L):
        raise ValueError(f"Mismatched fiber shapes: `q` must be ({L}, {L}), got {tuple(q.shape)}.")
    alpha, beta = objective_coefficients(objective, temperature)
    dt = Cgg.dtype
    return GradientFlow(_untied_loss, args=(Cgg, pj, q, jnp.asarray(alpha, dt), jnp.asarray(beta, dt)))


def untied_field(Ws, Cgg, pj, q=None, objective: str = "spectral", *, temperature: float = 0.1) -> jax.Array:
    """Hand-written untied field (see module docstring)."""
    L = Ws.shape[0]
    q = jnp.full((L, L), 1.0 / L ** 2, Ws.dtype) if q is None else q
    alpha, beta = objective_coefficients(objective, temperature)
    diag = Cgg[jnp.arange(L), jnp.arange(L)]
    A = jnp.einsum("gak,gab,gbl->gkl", Ws, diag, Ws)
    pos = jnp.einsum("gh,ghab,hbk->gak", pj, Cgg, Ws)
    Abar = jnp.einsum("gh,hkl->gkl", q, A)
    neg = jnp.einsum("gab,gbk,gkl->gal", diag, Ws, Abar)
    return 2 * alpha * pos - 4 * beta * neg


def shared_eigenbasis(stats: ViewStats, *, atol: float = 1e-8):
    """`(U, λ, c)` with `C0 = U diag(λ) Uᵀ`, `C+ = U diag(c) Uᵀ`; raises unless C0 and C+ commute."""
    C0, Cp = np.asarray(stats.C0), np.asarray(stats.Cp)
    comm = np.max(np.abs(C0 @ Cp - Cp @ C0))
    scale = max(np.max(np.abs(C0)) * np.max(np.abs(Cp)), 1e-300)
    if comm > atol * scale:
        raise ValueError(f"`stats` must have commuting C0 and C+ for the closed form: max |[C0, C+]| = {comm:.3g}.")
    # eigenvectors of C0; inside each (near-)degenerate eigenspace of C0, those of C+ restricted to it
    lam0, V = np.linalg.eigh(C0)
    tol = 1e-9 * max(np.max(np.abs(lam0)), 1e-300)
    U = np.zeros_like(V)
    start = 0
    while start < len(lam0):
        stop = start + 1
        while stop < len(lam0) and lam0[stop] - lam0[stop - 1] <= tol:
            stop += 1
        Vg = V[:, start:stop]
        _, Q = np.linalg.eigh(Vg.T @ Cp @ Vg)
        U[:, start:stop] = Vg @ Q
        start = stop
    lam = np.einsum("ai,ab,bi->i", U, C0, U)
    c = np.einsum("ai,ab,bi->i", U, Cp, U)
    return jnp.asarray(U), jnp.asarray(lam), jnp.asarray(c)


class CommutingSolution(AbstractSolution):
    """Closed-form trajectory `W(t) = U[:, modes] diag(w(t))` of the tied flow from an aligned start."""

    U: jax.Array
    a: jax.Array
    b: jax.Array
    w0: jax.Array

    def __init__(self, stats: ViewStats, modes, w0, objective: str = "spectral", *, temperature: float = 0.1):
        U, lam, c = shared_eigenbasis(stats)
        modes = np.asarray(modes)
        if modes.ndim != 1 or not np.issubdtype(modes.dtype, np.integer) or len(set(modes.tolist())) != len(modes):
            raise ValueError(f"`modes` must be distinct integer eigen-direction indices, got {modes!r}.")
        if modes.min() < 0 or modes.max() >= stats.dim:
            raise ValueError(f"`modes` must lie in [0, {stats.dim - 1}].")
        w0 = as_array(w0, "w0", ndim=1)
        if w0.shape[0] != len(modes):
            raise ValueError(f"`w0` must have one entry per mode ({len(modes)}), got {w0.shape[0]}.")
        alpha, beta = objective_coefficients(objective, temperature)
        self.U = U[:, modes]
        self.a = 2 * alpha * c[modes]
        self.b = 4 * beta * lam[modes] ** 2
        self.w0 = w0

    def evaluate(self, t):
        a, b, w0 = self.a, self.b, self.w0
        small = jnp.abs(a) < 1e-14
        a_safe = jnp.where(small, 1.0, a)
        # a > 0: a / (b + (a/w0² − b) e^{−2at}); a < 0: w0² e^{2at} / (1 + b w0² (e^{2at} − 1)/a)
        e_neg = jnp.exp(-2 * jnp.abs(a_safe) * t)
        pos = a_safe / (b + (a_safe / w0 ** 2 - b) * e_neg)
        neg = w0 ** 2 * e_neg / (1 + b * w0 ** 2 * (e_neg - 1) / a_safe)
        zero = w0 ** 2 / (1 + 2 * b * w0 ** 2 * t)
        w2 = jnp.where(small, zero, jnp.where(a > 0, pos, neg))
        return self.U * (jnp.sign(w0) * jnp.sqrt(w2))[None, :]


def commuting_minimiser(stats: ViewStats, k: int, objective: str = "spectral", *, temperature: float = 0.1):
    """`(W*, loss*, modes)`: a minimiser of the tied objective in the commuting case (§3.3)."""
    U, lam, c = shared_eigenbasis(stats)
    k = check_int(k, "k", minimum=1, maximum=stats.dim)
    alpha, beta = objective_coefficients(objective, temperature)
    ratio = np.where(np.asarray(c) > 0, np.asarray(c) / np.asarray(lam), -np.inf)
    modes = np.argsort(-ratio)[:k]
    modes = modes[np.isfinite(ratio[modes])]
    w2 = (2 * alpha * np.asarray(c)[modes]) / (4 * beta * np.asarray(lam)[modes] ** 2)
    W = np.zeros((stats.dim, k))
    W[:, :len(modes)] = np.asarray(U)[:, modes] * np.sqrt(w2)[None, :]
    loss = -(alpha ** 2 / (4 * beta)) * float(np.sum(ratio[modes] ** 2))
    return jnp.asarray(W), loss, modes

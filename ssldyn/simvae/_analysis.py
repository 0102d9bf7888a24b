r"""Integrating the linear SimVAE flows: explicit or implicit (stiff) solvers, loud failures.

The per-mode and full-matrix flows are stiff when σ_x² is small: `α = J/σ_x²` sets the fast rates of
the decoder and the variance, while the slow modes evolve at rates of order γ. `solver="implicit"`
uses `diffrax.Kvaerno5()` (an ESDIRK method with its Newton-chord root finder taking the PID
controller's tolerances), passed through `ssldyn.solve`'s `solver=` argument; `"explicit"` uses
`diffrax.Tsit5()`. A failed solve raises `SimVAESolveError` naming the cause (step budget exhausted,
non-finite state) and the stiffness ratio, never returning NaNs silently.
"""

from __future__ import annotations

import diffrax
import jax.numpy as jnp
import numpy as np

from .._solution import SolveError
from .._solve import solve
from .._validation import as_array, check_choice
from ._flows import LinearFlow, ModeFlow, origin_variance
from ._model import ModeState, SimVAEKnobs, check_knobs

SOLVERS = ("explicit", "implicit")


class SimVAESolveError(SolveError):
    """A linear-SimVAE integration that failed, with its cause and the stiffness of the problem."""


def make_solver(solver) -> diffrax.AbstractSolver:
    """`"explicit"` → `diffrax.Tsit5()`, `"implicit"` → `diffrax.Kvaerno5()`; a diffrax solver passes through."""
    if isinstance(solver, diffrax.AbstractSolver):
        return solver
    check_choice(solver, "solver", SOLVERS)
    return diffrax.Tsit5() if solver == "explicit" else diffrax.Kvaerno5()


def stiffness(lam, gamma, knobs: SimVAEKnobs) -> float:
    """A stiffness ratio of the per-mode system at the origin: fastest over slowest linear rate."""
    k = check_knobs(knobs)
    lam, gamma = np.asarray(lam, float), np.asarray(gamma, float)
    alpha, L0 = float(k.alpha), float(origin_variance(k))
    fast = max(alpha * L0, float(np.max(gamma)), float(k.beta) ** 2 / (2 * float(k.e) * float(k.J)))
    slow = max(float(np.min(np.abs(gamma))), 1e-12)
    return fast / slow


def _solve(flow, y0, t1, ts, solver, rtol, atol, max_steps, ratio):
    try:
        return solve(flow, y0, 0.0, t1, ts=ts, solver=make_solver(solver), rtol=rtol, atol=atol, max_steps=max_steps)
    except SolveError as err:
        name = solver if isinstance(solver, str) else type(solver).__name__
        hint = (" The system is stiff (α = J/σ_x² is large); use solver='implicit'." if name in ("explicit", "Tsit5")
                else "")
        raise SimVAESolveError(f"{name} solve of the linear SimVAE failed: {err} (stiffness ratio ≈ {ratio:.3g}).{hint}") \
            from err


def integrate_modes(c, a, knobs: SimVAEKnobs, t1, *, y0: ModeState | None = None, ts=None, solver="implicit",
                    rtol=1e-6, atol=1e-9, max_steps: int = 100_000, init_scale=1e-3, variance_rate=1.0):
    r"""Integrate the per-mode flow of content variances `c` and style variances `a` to time `t1`.

    **Arguments:** `c`, `a` (n,) per-mode variances; `knobs`; `t1`; `y0` (default: `w = v =
    init_scale`, Λ = Λ₀ = eJ/β, the variance's equilibrium at the origin); `ts` save times or their
    number; `solver` `"implicit"` (Kvaerno5, default), `"explicit"` (Tsit5) or a diffrax solver;
    tolerances; `max_steps`; `variance_rate`.

    **Returns:** a `Trajectory` of `ModeState`s. Raises `SimVAESolveError` (with the cause) on failure.
    """
    flow = ModeFlow.from_variances(c, a, knobs, variance_rate=variance_rate)
    if y0 is None:
        n = flow.lam.shape
        s = jnp.full(n, float(init_scale), flow.lam.dtype)
        y0 = ModeState(s, s, jnp.full(n, 1.0, flow.lam.dtype) * origin_variance(knobs))
    ratio = stiffness(flow.lam, flow.gamma, flow.knobs)
    return _solve(flow, y0, t1, ts, solver, rtol, atol, max_steps, ratio)


def integrate_linear(data, knobs: SimVAEKnobs, y0, t1, *, ts=None, parametrisation="logvar", solver="implicit",
                     rtol=1e-6, atol=1e-9, max_steps: int = 100_000):
    """Integrate the full-matrix `LinearFlow` from `y0` to `t1` (see `integrate_modes` for options)."""
    flow = LinearFlow(data, knobs, parametrisation=parametrisation)
    ev = np.linalg.eigvalsh(np.asarray(data.C0))
    k = flow.knobs
    ratio = float(k.alpha) * float(origin_variance(k)) / max(float(ev[0]), 1e-12)
    as_array(t1, "t1", ndim=0)
    return _solve(flow, y0, t1, ts, solver, rtol, atol, max_steps, ratio)

r"""Analyses that integrate the per-mode flow: the (p, s) phase portrait of one mode and its collapse region.

This stage sits after the flows because it calls `ssldyn.solve` on `TianModeFlow`.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._solve import solve
from .._validation import as_array, check_positive
from ._flows import TianModeFlow, tian_fixed_points
from ._model import ModeState


class PhasePortrait(NamedTuple):
    """Result of `tian_phase_portrait`.

    **Fields:** `ts` (T,); `ys` a `ModeState` with fields (T, N) (one column per initial point; use
    `ys.s`, `ys.p`); `collapsed` (N,) bool: `s(t1) < collapse_tol · s_ref`; `s_ref` the reference scale (s+ where the
    non-trivial fixed points exist, else the largest initial s).
    """

    ts: Float[Array, " T"]
    ys: ModeState
    collapsed: Bool[Array, " N"]
    s_ref: Float[Array, ""]


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

r"""ODE predictions for a network family, and how to compare them with trained networks.

For a one-hidden-layer network `f(x) = Wᵀ c_h φ(Vx)` with V frozen, the constrained output ODE
(`OutputFlow`) predicts the representations of the stacked training views **and** of any evaluation
inputs from kernels alone:

- **empirical kernel** of that very network: `K = ΦΦᵀ`, `K_eval = Φ_eval Φᵀ`, `R(0) = Φ W(0)`;
  the prediction equals the network trained by Riemannian GD up to O(η) at every width;
- **infinite-width kernel**: `K = h c_h² K_∞` (K_∞ the NNGP kernel), `R(0)` sampled from
  `N(0, K/h)` per column (§7.5 of the theory); no h-dimensional object is ever formed.

Comparisons use rotation-invariant quantities only (the flow is defined up to `W ↦ WQ`).

**Any trainer against any ODE.** `compare_along(a, b, invariant=...)` takes two of: a `TrainResult`
(any trainer, saves at `t = lr × steps`), a `Trajectory` (`solve`, `solve_ensemble`) or an
`AbstractSolution` (closed forms, evaluated at the other side's save times), maps both through the
invariant the caller names (`"gram"` `RRᵀ`, `"projector"` `W(WᵀW)⁻¹Wᵀ`, `"state"` or any function of a
state) and returns the relative gap at every shared time. `lr_order(lrs, gaps)` fits the order of the
GD-vs-flow gap in the learning rate (1 for full-batch GD against its flow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Array, Float

from ._flows import OutputFlow, sample_initial_outputs
from ._kernels import infinite_width_kernel
from ._metrics import linear_cka, subspace_distance
from ._networks import NetworkSpec, network_features
from ._solution import AbstractSolution, Trajectory
from ._solve import solve
from ._training import TrainResult
from ._validation import as_array, check_int, check_time, is_concrete


def empirical_setup(spec: NetworkSpec, params: dict, Z, X_eval):
    """Kernels and initial outputs of one network: `(K, K_eval, R0, R0_eval)`.

    `K = ΦΦᵀ` (m, m), `K_eval = Φ_eval Φᵀ` (m_eval, m), `R0 = Φ W(0)`, `R0_eval = Φ_eval W(0)`.
    `Z` (m, d) and `X_eval` (m_eval, d) are real, finite, non-empty matrices with the spec's d columns.
    """
    Z = as_array(Z, "Z", ndim=2, nonempty=True)
    X_eval = as_array(X_eval, "X_eval", ndim=2, nonempty=True)
    for name, A in (("Z", Z), ("X_eval", X_eval)):
        if isinstance(spec, NetworkSpec) and A.shape[1] != spec.d:
            raise ValueError(f"`{name}` must have {spec.d} columns (the input dimension d of the spec), got shape "
                             f"{tuple(A.shape)}.")
    Phi = network_features(spec, params, Z)
    Phi_eval = network_features(spec, params, X_eval)
    K = Phi @ Phi.T
    return 0.5 * (K + K.T), Phi_eval @ Phi.T, Phi @ params["W"], Phi_eval @ params["W"]


def infinite_width_setup(key, Z, X_eval, activation, *, width: int, k: int, feature_scale=1.0, order: int = 32):
    r"""Infinite-width kernels and sampled initial outputs: `(K, K_eval, R0, R0_eval)`.

    `K_all = h c_h² K_∞([Z; X_eval])`; `[R0; R0_eval]` has i.i.d. columns `N(0, K_all / h)`.
    `Z`, `X_eval`: real, finite, non-empty matrices with the same number of columns; `width`, `k`, `order`:
    ints ≥ 1; `feature_scale` a positive number or `"1/sqrt(h)"`.
    """
    Z = as_array(Z, "Z", ndim=2, nonempty=True)
    X_eval = as_array(X_eval, "X_eval", ndim=2, nonempty=True)
    if X_eval.shape[1] != Z.shape[1]:
        raise ValueError(f"`X_eval` must have the {Z.shape[1]} columns of `Z`, got shape {tuple(X_eval.shape)}.")
    width = check_int(width, "width", minimum=1)
    check_int(k, "k", minimum=1)
    check_int(order, "order", minimum=1)
    if feature_scale != "1/sqrt(h)":
        if isinstance(feature_scale, (str, bytes, bool)) or not isinstance(feature_scale, (int, float, np.number)) \
                or not np.isfinite(feature_scale) or feature_scale <= 0:
            raise ValueError(f"`feature_scale` must be a positive number or '1/sqrt(h)', got {feature_scale!r}.")
    c2 = 1.0 / width if feature_scale == "1/sqrt(h)" else float(feature_scale) ** 2
    A = jnp.concatenate([Z, X_eval], axis=0)
    K_all = width * c2 * infinite_width_kernel(A, activation=activation, order=order)
    return split_joint(K_all, sample_initial_outputs(key, K_all, k, width=width), Z.shape[0])


def split_joint(K_all, R0_all, m: int):
    """Split a joint kernel and joint initial outputs over `[train; eval]` at row `m`."""
    return K_all[:m, :m], K_all[m:, :m], R0_all[:m], R0_all[m:]


def predict_outputs(B, K, K_eval, R0, R0_eval, t1, *, constrained: bool = True, rtol=1e-6, atol=1e-8,
                    max_steps: int = 100_000):
    """Solve the output ODE from 0 to `t1` and return `(R(t1), R_eval(t1))`. Vmap it over seeds.

    `B`, `K` (m, m); `K_eval` (m_eval, m); `R0` (m, k); `R0_eval` (m_eval, k); `t1` a finite time ≥ 0."""
    K_eval = as_array(K_eval, "K_eval", ndim=2)
    R0 = as_array(R0, "R0", ndim=2, nonempty=True)
    R0_eval = as_array(R0_eval, "R0_eval", ndim=2)
    if K_eval.shape[1] != R0.shape[0]:
        raise ValueError(f"`K_eval` must have {R0.shape[0]} columns (the rows of `R0`), got shape {tuple(K_eval.shape)}.")
    if R0_eval.shape != (K_eval.shape[0], R0.shape[1]):
        raise ValueError(f"`R0_eval` must have shape {(K_eval.shape[0], R0.shape[1])} (rows of `K_eval`, columns of "
                         f"`R0`), got {tuple(R0_eval.shape)}.")
    check_time(t1, "t1")
    flow = OutputFlow(B, K, K_test=K_eval, constrained=constrained)
    traj = solve(flow, (R0, R0_eval), 0.0, t1, ts=1, rtol=rtol, atol=atol, max_steps=max_steps)
    R, R_eval = traj.ys
    return R[-1], R_eval[-1]


def _relative_gap(x, y):
    """`‖x − y‖_F / ‖y‖_F` over all axes after the first (one value per leading index)."""
    x, y = x.reshape(x.shape[0], -1), y.reshape(y.shape[0], -1)
    return jnp.linalg.norm(x - y, axis=1) / jnp.linalg.norm(y, axis=1)


def _max_abs_gap(x, y):
    """`max |x − y|` over all axes after the first (one value per leading index)."""
    return jnp.max(jnp.abs(x - y).reshape(x.shape[0], -1), axis=1)


GAPS: dict[str, Callable] = {"relative": _relative_gap, "max_abs": _max_abs_gap}
"""How `compare_along` measures the distance of two invariants at one time."""


def gram_gap(R_a, R_b) -> jax.Array:
    """Relative Gram gap `‖R_a R_aᵀ − R_b R_bᵀ‖_F / ‖R_b R_bᵀ‖_F` (rotation invariant).

    `R_a`, `R_b`: real, finite matrices with the same number of rows n; `R_b` not zero (the reference)."""
    R_a, R_b = _check_pair(R_a, R_b)
    if is_concrete(R_b) and not np.any(np.asarray(R_b)):
        raise ValueError("gram_gap is undefined: the reference `R_b` is zero (the gap is relative to its Gram).")
    return _relative_gap(_gram(R_a)[None], _gram(R_b)[None])[0]


def _check_pair(R_a, R_b):
    R_a = as_array(R_a, "R_a", ndim=2, nonempty=True)
    R_b = as_array(R_b, "R_b", ndim=2, nonempty=True)
    if R_a.shape[0] != R_b.shape[0]:
        raise ValueError(f"`R_a` and `R_b` must have the same number of rows (inputs), got shapes "
                         f"{tuple(R_a.shape)} and {tuple(R_b.shape)}.")
    return R_a, R_b


def agreement(R_a, R_b) -> dict:
    """Rotation-invariant agreement of two representation matrices (n, k): Gram gap, subspace
    distance of their column spaces (chordal, `ssldyn.subspace_distance`), and linear CKA.
    `R_a`, `R_b`: real, finite (n, k) matrices with the same n."""
    R_a, R_b = _check_pair(R_a, R_b)
    return {
        "gram_gap": gram_gap(R_a, R_b),
        "subspace_distance": subspace_distance(R_a, R_b),
        "cka": linear_cka(R_a, R_b),
    }


def _gram(R):
    return R @ jnp.swapaxes(R, -1, -2)


def _projector(W):
    return W @ jnp.linalg.solve(jnp.swapaxes(W, -1, -2) @ W, jnp.swapaxes(W, -1, -2))


def _state(y):
    return y


INVARIANTS: dict[str, Callable[[Any], Any]] = {"gram": _gram, "projector": _projector, "state": _state}
"""Named invariants for `compare_along`: Gram of outputs `RRᵀ`, projector onto the column span, raw state."""


class Comparison(NamedTuple):
    """Result of `compare_along`: the shared times `ts`, the gap at each time (by default
    `‖f(a) − f(b)‖_F / ‖f(b)‖_F`, summed over the leaves of a pytree state) and its maximum."""

    ts: Float[Array, " n_save"]
    gaps: Float[Array, " n_save"]
    max_gap: Float[Array, ""]


def _shared_times(ta, tb, atol):
    """Indices `(ia, ib)` with `ta[ia] ≈ tb[ib]` covering every time of the shorter grid, or `(None, None)`."""
    if ta.ndim != 1 or tb.ndim != 1 or ta.size == 0 or tb.size == 0:
        return None, None
    short, long_ = (ta, tb) if ta.size <= tb.size else (tb, ta)
    j = np.clip(np.searchsorted(long_, short), 0, long_.size - 1)
    j = np.where((j > 0) & (np.abs(long_[np.maximum(j - 1, 0)] - short) < np.abs(long_[j] - short)), j - 1, j)
    if not np.all(np.abs(long_[j] - short) <= atol):
        return None, None
    i = np.arange(short.size)
    return (i, j) if ta.size <= tb.size else (j, i)


def _times_states(obj, name: str):
    if isinstance(obj, TrainResult):
        if obj.saved is None:
            raise ValueError(f"`{name}` is a TrainResult without saves: train with `save_every`.")
        return obj.ts, obj.saved
    if isinstance(obj, Trajectory):
        return obj.ts, obj.ys
    raise TypeError(f"`{name}` must be a TrainResult, a Trajectory or an AbstractSolution, got {type(obj).__name__}.")


def compare_along(a, b, *, invariant: str | Callable = "gram", gap: str = "relative", ts=None,
                  atol_time: float = 1e-9) -> Comparison:
    r"""Compare two dynamics on the same time grid through a rotation-invariant quantity.

    `gap(t) = ‖f(y_a(t)) − f(y_b(t))‖_F / ‖f(y_b(t))‖_F` for each shared save time t (or
    `max |f(y_a(t)) − f(y_b(t))|` with `gap="max_abs"`, for invariants on a fixed scale such as
    cosines or eigenvalues that may pass through zero).

    **Arguments:**
    - `a`, `b`: each a `TrainResult` (times `lr × steps`), a `Trajectory` or an `AbstractSolution`.
      A solution is evaluated at the other argument's times (or at `ts` when both are solutions).
    - `invariant`: `"gram"`, `"projector"`, `"state"` or a function of one state (unbatched; it is
      vmapped over time). States that are pytrees are compared leaf by leaf and the gaps summed
      (`"relative"`) or maximised (`"max_abs"`).
    - `gap`: `"relative"` (default) or `"max_abs"`.
    - `ts`: times, needed only when both are solutions.
    - `atol_time`: how far two save times may differ (absolute) and still count as the same time. The
      grids must be equal, or one must contain every time of the other (e.g. an ODE saved at
      `t = 0` too); the comparison is made at the times of the shorter grid.

    **Returns:** a `Comparison(ts, gaps, max_gap)`.
    """
    f = INVARIANTS.get(invariant) if isinstance(invariant, str) else invariant
    if f is None or not callable(f):
        raise ValueError(f"`invariant` must be one of {tuple(INVARIANTS)} or a function, got {invariant!r}.")
    distance = GAPS.get(gap) if isinstance(gap, str) else None
    if distance is None:
        raise ValueError(f"`gap` must be one of {tuple(GAPS)}, got {gap!r}.")
    sol_a, sol_b = isinstance(a, AbstractSolution), isinstance(b, AbstractSolution)
    if sol_a and sol_b:
        if ts is None:
            raise ValueError("`ts` is required when both `a` and `b` are closed-form solutions.")
        ta, ya = ts, a.trajectory(ts).ys
        tb, yb = ts, b.trajectory(ts).ys
    elif sol_a:
        tb, yb = _times_states(b, "b")
        ta, ya = tb, a.trajectory(tb).ys
    elif sol_b:
        ta, ya = _times_states(a, "a")
        tb, yb = ta, b.trajectory(ta).ys
    else:
        ta, ya = _times_states(a, "a")
        tb, yb = _times_states(b, "b")
    ta_n, tb_n = np.asarray(ta), np.asarray(tb)
    ia, ib = _shared_times(ta_n, tb_n, atol_time)
    if ia is None:
        raise ValueError(f"`a` and `b` are saved at different times ({ta_n.shape[0]} vs {tb_n.shape[0]} saves, "
                         f"ranges [{ta_n.min() if ta_n.size else 'none'}, {ta_n.max() if ta_n.size else 'none'}] and "
                         f"[{tb_n.min() if tb_n.size else 'none'}, {tb_n.max() if tb_n.size else 'none'}]); "
                         "save both on one grid (solve with `ts=result.ts`), or one on a superset of the other's.")
    ta = ta_n[ia]
    ya = jax.tree_util.tree_map(lambda y: y[ia], ya)
    yb = jax.tree_util.tree_map(lambda y: y[ib], yb)
    fa = jax.vmap(f)(ya)
    fb = jax.vmap(f)(yb)
    leaves_a, leaves_b = jax.tree_util.tree_leaves(fa), jax.tree_util.tree_leaves(fb)
    per_leaf = [distance(x, y) for x, y in zip(leaves_a, leaves_b)]
    gaps = sum(per_leaf) if gap == "relative" else jnp.max(jnp.stack(per_leaf), axis=0)
    return Comparison(ts=jnp.asarray(ta), gaps=gaps, max_gap=jnp.max(gaps))


def lr_order(lrs, gaps) -> float:
    r"""Order p of a gap in the learning rate, fitted as the slope of `log gap` against `log lr`.

    Full-batch GD tracks its gradient flow at `t = lr × steps` with an O(lr) error, so p ≈ 1 (the
    gap halves when lr halves); SGD against a population ODE adds a sampling floor and p < 1.

    **Arguments:** `lrs`, `gaps`: at least two positive learning rates and the gaps at a fixed t.
    """
    lrs = np.asarray(as_array(lrs, "lrs", finite=False), dtype=float)
    gaps = np.asarray(as_array(gaps, "gaps", finite=False), dtype=float)
    if not np.all(np.isfinite(lrs)):
        raise ValueError(f"`lrs` must be finite, got {lrs}.")
    if lrs.ndim != 1 or lrs.shape != gaps.shape or lrs.size < 2:
        raise ValueError(f"`lrs` and `gaps` must be 1-D of the same length >= 2, got {lrs.shape} and {gaps.shape}.")
    if np.any(lrs <= 0) or np.any(gaps <= 0) or not np.all(np.isfinite(gaps)):
        raise ValueError("`lrs` and `gaps` must be positive and finite.")
    return float(np.polyfit(np.log(lrs), np.log(gaps), 1)[0])

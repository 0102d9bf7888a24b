r"""The result types every solver, closed form and trainer agrees on.

- `Status`: the outcome of a solve, an `eqx.Enumeration` (as diffrax's `RESULTS`).
- `Trajectory`: states `ys` at save times `ts`, with a status per solve; returned by `solve`,
  `solve_ensemble` and `AbstractSolution.trajectory`.
- `AbstractSolution`: the contract of every closed form. It is an `eqx.Module` built once (the
  expensive factorisation happens in `__init__`) and evaluated at any effective time `t` by
  `solution(t)`, in the style of neural-tangents' `predict` functions. `trajectory(ts)` evaluates it
  on a grid and returns a `Trajectory`, so a closed form can stand wherever a solve does.
- `SolveError`: raised when a solve fails outside a trace.

This module sits below the flows: closed forms and `solve` both build on it, neither on the other.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._validation import all_finite, as_array, check_time, in_trace


class Status(eqx.Enumeration):
    """Outcome of a solve. `Trajectory.status` holds the integer code of one of these items."""

    success = "success"
    max_steps_reached = (
        "max_steps was reached before t1: increase `max_steps`, loosen the tolerances, or shorten the horizon"
    )
    nonfinite = (
        "the state became non-finite (NaN/Inf): the flow diverged; check its hyperparameters (e.g. an "
        "unconstrained flow with a large horizon overflows) or use a constrained flow"
    )
    solver_failed = (
        "the solver failed (step size collapsed or another diffrax error): the problem may be stiff; try "
        "an implicit solver or other tolerances"
    )


STATUS_MESSAGES: tuple[str, ...] = tuple(Status[getattr(Status, n)] for n in
                                         ("success", "max_steps_reached", "nonfinite", "solver_failed"))
"""The message of each status code (index = `int(Trajectory.status)`)."""


class SolveError(RuntimeError):
    """A solve that did not reach `t1` with a finite state."""


class Trajectory(eqx.Module):
    """States of a flow at save times: the result of `solve`, `solve_ensemble` and of a closed form's
    `trajectory(ts)`.

    **Fields:**
    - `ts`: save times, shape (n_save,) (a leading batch axis is added by `vmap`).
    - `ys`: states at `ts`, a pytree with leading axis n_save, in the flow's external coordinates.
    - `stats`: solver statistics (`num_steps`, `num_accepted_steps`, `num_rejected_steps`; empty
      for closed forms).
    - `status`: int array of `Status` codes, 0 for success (`Trajectory.result` gives the item).
    """

    ts: Float[Array, "*batch n_save"]
    ys: Any
    stats: dict
    status: Int[Array, "*batch"]

    @property
    def ok(self) -> bool:
        return bool(np.all(np.asarray(self.status) == 0))

    @property
    def result(self):
        """The worst status as a `Status` item (for a single solve: its status)."""
        return _status_item(int(np.max(np.asarray(self.status))))

    @property
    def final(self):
        """The state at the last save time (batch axes added by `vmap` are kept)."""
        index = (slice(None),) * (jnp.ndim(self.ts) - 1) + (-1,)
        return jax.tree_util.tree_map(lambda y: y[index], self.ys)

    def message(self) -> str:
        codes = np.unique(np.asarray(self.status))
        return "; ".join(f"status {c}: {STATUS_MESSAGES[int(c)]}" for c in codes)

    def check(self) -> Trajectory:
        """Raise `SolveError` if any solve in this trajectory failed; return self otherwise."""
        if not self.ok:
            raise SolveError(self.message())
        return self


def _status_item(code: int):
    names = ("success", "max_steps_reached", "nonfinite", "solver_failed")
    return getattr(Status, names[code])


def _check_time(t, name: str = "t") -> jax.Array:
    return check_time(t, name)


class AbstractSolution(eqx.Module):
    r"""A closed-form solution `y(t)` of a flow, built once and evaluated at any effective time `t`.

    Subclasses do the expensive work (eigendecompositions, factorisations) in `__init__` and
    implement `evaluate(t)`, which returns the state at time `t` in the same layout as the flow's
    state (so `solution(t)` and `solve(flow, ...).ys` can be compared directly). Evaluation works
    under `jit`, `vmap` (over `t` or over the solution's own arrays) and `grad`.

    - `solution(t)` is `solution.evaluate(t)` (subclasses may add keyword options to `__call__`);
    - `solution.trajectory(ts)` evaluates on a grid and returns a `Trajectory` (status success).
    """

    @abc.abstractmethod
    def evaluate(self, t):
        """The state at effective time `t ≥ 0` (a scalar)."""

    def __call__(self, t):
        t = _check_time(t)  # real, finite, >= 0 (concrete values), whatever the subclass's `evaluate` checks
        y = self.evaluate(t)
        if not in_trace(y, t) and not all_finite(y):
            raise self.nonfinite_error(t)
        return y

    def nonfinite_error(self, t) -> ArithmeticError:
        """The exception raised (outside a trace) when the state at a valid time `t` is not finite;
        subclasses name the cause (e.g. the overflow of a diverging flow)."""
        return FloatingPointError(f"{type(self).__name__}: the state at `t` = {float(np.max(np.asarray(t)))} "
                                  "is not finite (NaN/Inf).")

    def trajectory(self, ts) -> Trajectory:
        """The solution at the times `ts` (1-D, non-negative) as a `Trajectory`."""
        ts = _check_time(as_array(ts, "ts", ndim=1), "ts")
        ys = jax.vmap(self.evaluate)(ts)
        if not in_trace(ys, ts) and not all_finite(ys):
            leaves = [np.asarray(y).reshape(np.asarray(ts).shape[0], -1) for y in jax.tree_util.tree_leaves(ys)]
            bad = np.flatnonzero(~np.all(np.stack([np.all(np.isfinite(y), axis=1) for y in leaves]), axis=0))
            raise self.nonfinite_error(np.asarray(ts)[bad[0]])
        return Trajectory(ts=ts, ys=ys, stats={}, status=jnp.zeros((), jnp.int32))

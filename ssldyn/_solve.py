r"""One entry point over diffrax: `solve(flow, y0, t0, t1, ...) -> Trajectory`.

Time is effective time `t = learning_rate × steps` (theory README §5). Numeric inputs (`t0`, `t1`,
save times, tolerances and the flow's hyperparameters) are passed as arrays, so one compilation
serves every value; only shapes, dtypes, the solver and static options trigger a new compilation.

Failures are loud: the trajectory carries a `status` (0 success, 1 `max_steps` reached, 2 non-finite
state, 3 another solver failure) and, with `throw=True` (default), a failed solve raises — also
inside `jit` and `vmap`, through `equinox`'s runtime errors. A diverging state is caught early: a
diffrax event stops the solve as soon as the state is non-finite or beyond `finfo.max ** 0.9`
(before the step-size controller would reject step after step until `max_steps`), and the status
is 2 (`Status.nonfinite`). `simulate_gd` raises a `FloatingPointError` naming `lr` and the steps
between which its iterates become non-finite (outside a trace).
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ._flows import AbstractFlow, OutputFlow, QuadraticFlow
from ._manifolds import Sphere, Stiefel
from ._solution import STATUS_MESSAGES, SolveError, Trajectory
from ._training import TrainResult, check_finite_result, check_loop, run_steps
from ._validation import all_finite, as_array, check_int, check_positive, in_trace, is_concrete

def _status(result, ys) -> jax.Array:
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(y)) for y in jax.tree_util.tree_leaves(ys)]))
    success = result == diffrax.RESULTS.successful
    max_steps = result == diffrax.RESULTS.max_steps_reached
    diverged = result == diffrax.RESULTS.event_occurred  # only event: the state blew up (`_diverged`)
    code = jnp.where(success, jnp.where(finite, 0, 2), jnp.where(max_steps, 1, jnp.where(diverged, 2, 3)))
    return code.astype(jnp.int32)


def _blowup_threshold(dtype) -> float:
    """A state entry beyond this magnitude counts as diverged: `finfo.max ** 0.9` (~1e277 in float64,
    ~1e34 in float32), far above any meaningful state and just below where the steps start to overflow
    (the step-size controller would then reject every step and crawl on until `max_steps`)."""
    return float(np.finfo(np.dtype(dtype)).max) ** 0.9


def _diverged(t, y, args, **kwargs):
    """Event condition: the state is non-finite or about to overflow (stops the solve at once)."""
    bad = [jnp.any(~jnp.isfinite(a) | (jnp.abs(a) > _blowup_threshold(a.dtype)))
           for a in jax.tree_util.tree_leaves(y) if jnp.issubdtype(a.dtype, jnp.inexact)]
    return jnp.any(jnp.stack(bad)) if bad else jnp.asarray(False)


def _like(dy, y):
    """The vector field in the state's dtype (a float64 hyperparameter must not promote a float32 state)."""
    return jax.tree_util.tree_map(lambda d, a: d.astype(a.dtype), dy, y)


def _flow_dtype(flow):
    """The floating dtype of a flow's arrays (of rank >= 1: matrices, not scalar hyperparameters), or None."""
    leaves = [a for a in jax.tree_util.tree_leaves(eqx.filter(flow, eqx.is_array))
              if jnp.ndim(a) >= 1 and jnp.issubdtype(a.dtype, jnp.floating)]
    return jnp.result_type(*leaves) if leaves else None


def _promote_initial(flow, y0):
    """Cast a lower-precision initial state up to the flow's dtype (a float32 `y0` with a float64 flow).

    Only for the linear flows (`QuadraticFlow`, `OutputFlow`), whose vector field `S @ W` would be of
    the higher precision and make the solve fail; a `GradientFlow` keeps the dtype of its `y0` (its
    gradient has the state's dtype), as before."""
    if not isinstance(flow, (QuadraticFlow, OutputFlow)):
        return y0
    dtype = _flow_dtype(flow)
    if dtype is None:
        return y0
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.promote_types(a.dtype, dtype)) if jnp.issubdtype(a.dtype, jnp.floating) else a, y0)


class _Restored(diffrax.AbstractWrappedSolver):
    """A solver whose every step ends with `flow.restore` (the flow is the solve's `args`): the standard
    projection method, which keeps a constrained state on its manifold (`AbstractFlow.restore`).

    The error estimate and the dense output are the wrapped solver's, of the step before the
    projection (which moves the state by less than the step's local error); saved states are
    restored again in external coordinates by `solve`."""

    solver: diffrax.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    @property
    def root_finder(self):  # read by diffeqsolve for implicit solvers
        return self.solver.root_finder

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y1, y_error, dense_info, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump)
        return args.restore(y1), y_error, dense_info, solver_state, result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


def _constrained(flow) -> bool:
    """Whether `flow` keeps its state on a constraint set that `restore` pulls it back to."""
    return isinstance(flow.manifold, (Sphere, Stiefel))


def _check_nonempty(y0, name: str = "y0") -> None:
    """Raise naming `name` when the state (any pytree) has a leaf with no entries: an empty state
    (a shape (d, 0) or (0, k)) has no dynamics and would otherwise return empty or NaN arrays."""
    if y0 is None:  # refused as a wrong type by the flow's `check_initial`
        return
    leaves = jax.tree_util.tree_leaves(y0)
    empty = [leaf for leaf in leaves if np.size(leaf) == 0]
    if not leaves or empty:
        shape = tuple(jnp.shape(empty[0])) if empty else (np.shape(y0) if isinstance(y0, (list, tuple)) else ())
        raise ValueError(f"`{name}` must not be empty (a state with no entries), got shape {shape}.")


def _supports_event(adjoint) -> bool:
    return isinstance(adjoint, (diffrax.RecursiveCheckpointAdjoint, diffrax.DirectAdjoint))


@eqx.filter_jit
def _solve_jit(flow, y0, t0, t1, ts, rtol, atol, dt0, solver, max_steps, throw, adjoint):
    term = diffrax.ODETerm(lambda t, y, args: _like(args.vector_field(t, y), y))
    constrained = _constrained(flow)
    if constrained:
        solver = _Restored(solver)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    sol = diffrax.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        dt0,
        flow.to_internal(y0),
        args=flow,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint,
        event=diffrax.Event(_diverged) if _supports_event(adjoint) else None,
        throw=False,
    )
    ys = jax.vmap(flow.from_internal)(sol.ys)
    if constrained:  # the saved states are interpolated (off the manifold by up to the local error) and rotated
        ys = jax.vmap(flow.restore)(ys)
    status = _status(sol.result, ys)
    if throw:
        ys = eqx.error_if(ys, status == 1, STATUS_MESSAGES[1])
        ys = eqx.error_if(ys, status == 2, STATUS_MESSAGES[2])
        ys = eqx.error_if(ys, status == 3, STATUS_MESSAGES[3])
    stats = {k: sol.stats[k] for k in ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    return Trajectory(ts=sol.ts, ys=ys, stats=stats, status=status)


def _save_times(t0, t1, ts):
    if ts is None:
        ts = 2
    if isinstance(ts, (int, np.integer)) and not isinstance(ts, bool):
        if ts < 1:
            raise ValueError(f"`ts` as a number of save times must be >= 1, got {ts}.")
        return t1[None] if ts == 1 else jnp.linspace(t0, t1, int(ts))
    ts = as_array(ts, "ts", ndim=1)
    if is_concrete(ts) and is_concrete(t0) and is_concrete(t1):
        tsn, a, b = np.asarray(ts), float(t0), float(t1)
        if tsn.size == 0:
            raise ValueError("`ts` must contain at least one save time.")
        if np.any(np.diff(tsn) < 0):
            raise ValueError("`ts` must be non-decreasing.")
        if tsn[0] < a - 1e-12 * max(1.0, abs(a)) or tsn[-1] > b + 1e-12 * max(1.0, abs(b)):
            raise ValueError(f"`ts` must lie in [t0, t1] = [{a}, {b}], got [{tsn[0]}, {tsn[-1]}].")
    return ts


def _check_solve_options(dtype, t0, t1, ts, rtol, atol, dt0, solver, max_steps, adjoint):
    """Validate and convert the options shared by `solve` and `solve_ensemble` (numbers become arrays
    of the state's dtype, so new values do not recompile)."""
    t0 = as_array(t0, "t0", ndim=0, dtype=dtype)
    t1 = as_array(t1, "t1", ndim=0, dtype=dtype)
    if is_concrete(t0) and is_concrete(t1) and float(t1) < float(t0):
        raise ValueError(f"`t1` must be >= `t0`, got t0 = {float(t0)} and t1 = {float(t1)}.")
    ts = _save_times(t0, t1, ts).astype(dtype)
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    if dt0 is not None:
        check_positive(dt0, "dt0")
        dt0 = jnp.asarray(dt0, dtype=dtype)
    max_steps = check_int(max_steps, "max_steps", minimum=1)
    solver = diffrax.Tsit5() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"`solver` must be a diffrax solver, got {type(solver).__name__}.")
    adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    return t0, t1, ts, jnp.asarray(rtol, dtype), jnp.asarray(atol, dtype), dt0, solver, adjoint


def solve(
    flow: AbstractFlow,
    y0: PyTree[Float[Array, "..."]],
    t0: float | Float[Array, ""] = 0.0,
    t1: float | Float[Array, ""] = 1.0,
    *,
    ts=None,
    rtol=1e-7,
    atol=1e-9,
    dt0=None,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> Trajectory:
    r"""Integrate a flow `dy/dt = flow.vector_field(t, y)` from `t0` to `t1` with diffrax.

    **Arguments:**
    - `flow`: any `AbstractFlow` (`QuadraticFlow`, `GradientFlow`, `OutputFlow`, ...).
    - `y0`: the initial state (validated by `flow.check_initial`: e.g. `W0ᵀW0 = I` for constrained flows).
    - `t0`, `t1`: start and end of the time interval (effective time `lr × steps`), `t1 ≥ t0`.
    - `ts`: save times in [t0, t1] (array), or an int number of evenly spaced times (default 2:
      `t0` and `t1`).
    - `rtol`, `atol`: tolerances of the PID step-size controller (positive).
    - `dt0`: initial step; None lets diffrax choose.
    - `solver`: a diffrax solver, default `diffrax.Tsit5()`.
    - `max_steps`: maximum number of solver steps.
    - `throw`: raise on failure (default). With `False` the failure is only reported in `status`.
    - `adjoint`: a diffrax adjoint for differentiating through the solve (default: recursive
      checkpointing).

    **Returns:** a `Trajectory` with `ts`, `ys` (external coordinates), `stats` and `status`.

    Works under `jax.jit` and `jax.vmap` (over `y0`, hyperparameters inside `flow`, or times).
    """
    if not isinstance(flow, AbstractFlow):
        raise TypeError(f"`flow` must be an ssldyn flow (AbstractFlow), got {type(flow).__name__}.")
    _check_nonempty(y0)
    y0 = _promote_initial(flow, flow.check_initial(y0))
    t0, t1, ts, rtol, atol, dt0, solver, adjoint = _check_solve_options(
        jax.tree_util.tree_leaves(y0)[0].dtype, t0, t1, ts, rtol, atol, dt0, solver, max_steps, adjoint)
    # Outside any trace we check the status in Python and raise a plain SolveError; inside jit/vmap
    # the check is compiled in as an equinox runtime error.
    traced = in_trace(flow, y0, t0, t1, ts)
    traj = _solve_jit(flow, y0, t0, t1, ts, rtol, atol, dt0, solver, int(max_steps), bool(throw and traced), adjoint)
    if throw and not traced and not traj.ok:
        steps = int(np.max(np.asarray(traj.stats["num_steps"])))
        raise SolveError(f"solve failed after {steps} steps: {traj.message()}")
    return traj


def simulate_gd(flow: AbstractFlow, y0: PyTree[Float[Array, "..."]], lr: float | Float[Array, ""], n_steps: int, *,
                save_every: int | None = None, include_initial: bool = False,
                check_finite: bool = True) -> TrainResult:
    r"""Gradient descent (Riemannian, with the flow's retraction) simulated step by step:

        y_{k+1} = retract_{y_k}( lr · vector_field(t_k, y_k) ),   t_k = k · lr,

    i.e. plain GD on the Euclidean manifold and retraction GD (QR by default) on the Stiefel and
    Grassmann manifolds; time-dependent flows (e.g. a bias schedule) see the effective time `t_k`.
    After N steps it tracks the flow at `t = lr·N` with an O(lr) error. For output-space flows (no
    manifold) it is the explicit Euler method.

    **Arguments:** `flow`; `y0`; `lr` > 0; `n_steps` ≥ 0; `save_every`: also save every
    `save_every`-th iterate (None: only the last); `include_initial`: save `y0` at t = 0 too;
    `check_finite`: outside a trace, raise `FloatingPointError` naming `lr` and the steps between which
    the iterates became non-finite (located by a second run with saves when `save_every` is None);
    `check_finite=False` returns the raw arrays.

    **Returns:** a `TrainResult`: `final` the state after N steps, `saved` the iterates `save_every,
    2·save_every, …` stacked along a leading axis (None without `save_every`), `ts` their times
    `lr × steps`. It unpacks as `final, saved = simulate_gd(...)`.
    """
    if not isinstance(flow, AbstractFlow):
        raise TypeError(f"`flow` must be an ssldyn flow (AbstractFlow), got {type(flow).__name__}.")
    _check_nonempty(y0)
    y0 = _promote_initial(flow, flow.check_initial(y0))
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    dtype = jax.tree_util.tree_leaves(y0)[0].dtype
    if not isinstance(check_finite, (bool, np.bool_)):
        raise TypeError(f"`check_finite` must be a bool, got {type(check_finite).__name__}.")
    lr_arr = jnp.asarray(lr, dtype)
    result = _simulate_gd_jit(flow, y0, lr_arr, n_steps, save_every, bool(include_initial))
    if check_finite and not in_trace(result, lr) and not all_finite(result.final):
        # locate the divergence: the saves bracket it; without saves, rerun once with ~100 of them
        located = result if save_every is not None else _simulate_gd_jit(
            flow, y0, lr_arr, n_steps, max(1, -(-n_steps // 100)), False)
        advice = ("Explicit steps are stable only for lr well below 1/(largest rate of the flow); "
                  "a constrained flow helps too.")
        try:
            check_finite_result(located, lr=lr, n_steps=n_steps, where="simulate_gd")
        except FloatingPointError as err:
            raise FloatingPointError(f"{err} {advice}") from None
        raise FloatingPointError(
            f"simulate_gd: the iterates became non-finite (NaN/Inf) within `n_steps` = {n_steps} steps at "
            f"`lr` = {float(lr):g}: gradient descent diverged. {advice}")
    return result


@eqx.filter_jit
def _simulate_gd_jit(flow, y0, lr, n_steps, save_every, include_initial):
    manifold = flow.manifold  # the projections are equivariant under the flow's change of coordinates

    def step(y, k):
        t = k.astype(lr.dtype) * lr
        step_ = jax.tree_util.tree_map(lambda a: lr * a, _like(flow.vector_field(t, y), y))
        if manifold is None:
            return jax.tree_util.tree_map(jnp.add, y, step_)
        return manifold.retract(y, step_)

    def save(y):  # a retraction keeps y on the manifold; the rotation back from an eigenbasis may not
        return flow.restore(flow.from_internal(y)) if manifold is not None and _constrained(flow) else \
            flow.from_internal(y)

    return run_steps(step, flow.to_internal(y0), lr=lr, n_steps=n_steps, save_every=save_every,
                     save_fn=save, xs=jnp.arange(n_steps), include_initial=include_initial)

r"""Ensembles of ODEs (seeds × hyperparameters × ...) in one jitted, vmapped (and optionally sharded) call.

An ensemble is E independent initial-value problems

    dy_e/dt = flow_e.vector_field(t, y_e),   y_e(t0) = y0s[e],   flow_e = make_flow(params[e]),

sharing the save times, tolerances and solver. `solve_ensemble` builds every flow *inside* the
vmapped function from a pytree of batched numeric parameters, so the whole sweep is a single XLA
program: one compilation per (shapes, dtypes, `make_flow`, solver, static options), reused for any
new parameter values, initial conditions, horizons or tolerances, and for any new ensemble of the
same size. Under `vmap` each member keeps its own adaptive step size (a member that has finished
is masked while the others go on), so the results equal separate `solve` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from ._lowrank import FactoredOutputFlow, LowRankOutputFlow
from ._sharding import (
    _leading_size,
    _shard_map,
    ensemble_mesh,
    gather_to_host,
    pad_ensemble,
    replicate,
    shard_ensemble,
    unpad_ensemble,
)
from .._solve import STATUS_MESSAGES, SolveError, Trajectory, _check_solve_options, solve
from .._manifolds import Sphere, Stiefel
from .._validation import as_array, in_trace, recording_checks, to_jax

__all__ = ["solve_ensemble"]


def _as_leaf_array(x, name: str):
    a = to_jax(x, name, "a pytree of numeric arrays (a leaf is not)")
    if not (jnp.issubdtype(a.dtype, jnp.number) or jnp.issubdtype(a.dtype, jnp.bool_)
            or jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)):
        raise TypeError(f"`{name}` must hold numeric arrays, got dtype {a.dtype}.")
    return a


def _arrays(tree, name: str):
    """Every leaf as a jax array: Python numbers would otherwise be static (one compile per value)."""
    return jax.tree_util.tree_map(lambda x: _as_leaf_array(x, name), tree)


@eqx.filter_jit
def _ensemble_jit(make_flow, params, y0s, shared, t0, t1, ts, rtol, atol, dt0, solver, max_steps, adjoint,
                  mesh, raise_inside):
    found: list = []

    def one(p, y0, sh):
        # The constructor's value checks (symmetric statistics, finite entries) meet tracers here: record them
        # (`recording_checks`) so that every member is checked on its concrete values after this call.
        with recording_checks() as records:
            flow = make_flow(p) if sh is None else make_flow(p, sh)
        found[:] = [(name, tol, message) for name, _, tol, message in records]
        checks = [jnp.asarray(v) for _, v, _, _ in records]
        # throw=False: failures are reported per member in `status` and raised once, below or in Python.
        traj = solve(flow, y0, t0, t1, ts=ts, rtol=rtol, atol=atol, dt0=dt0, solver=solver,
                     max_steps=max_steps, throw=False, adjoint=adjoint)
        return traj, _constraint_violation(flow, y0), checks

    batched = jax.vmap(one, in_axes=(0, 0, None))
    if mesh is None:
        traj, violation, checks = batched(params, y0s, shared)
    else:
        # One block of members per device, each with its own while loop: no communication while solving.
        axis = PartitionSpec(mesh.axis_names[0])
        traj, violation, checks = _shard_map(batched, mesh, in_specs=(axis, axis, PartitionSpec()), out_specs=axis)(
            params, y0s, shared)
    if raise_inside:
        ys = traj.ys
        for code in (1, 2, 3):
            ys = eqx.error_if(ys, jnp.any(traj.status == code), f"solve_ensemble: {STATUS_MESSAGES[code]}")
        traj = eqx.tree_at(lambda tr: tr.ys, traj, ys)
    # `found` (names, tolerances, messages) is a static output: filter_jit returns it on every cached call too
    return traj, violation, checks, tuple(found)


def _members(bad: np.ndarray) -> str:
    return ", ".join(str(i) for i in bad[:20]) + (", ..." if bad.size > 20 else "")


def _check_members(violation, values, found, dtype, size: int) -> None:
    """Check every member on its concrete values (the members are built inside `vmap`, where value checks
    only record a traced violation): the initial state on its flow's manifold, then the value checks of
    the flow's constructor (symmetric statistics, finite entries). Raises ValueError naming the failed
    member indices; runs before any member's solver status is looked at."""
    viol = np.asarray(gather_to_host(violation), dtype=np.float64)
    tol = 1e-10 if dtype == jnp.float64 else 1e-5
    bad = np.flatnonzero(~(viol <= tol))
    if bad.size:
        raise ValueError(
            f"`y0s`: {bad.size} of {size} members are not on their flow's manifold (members {_members(bad)}; largest "
            f"violation {np.max(viol[bad]):.3g} > {tol:g}, e.g. max |W^T W - I| for a constrained flow). Use "
            "`ssldyn.stiefel_init` or orthonormalise each member with QR.")
    for (name, rtol, message), value in zip(found, values):
        v = np.asarray(gather_to_host(value), dtype=np.float64).reshape(size, -1).max(axis=1)
        bad = np.flatnonzero(~(v <= rtol))
        if bad.size:
            worst = int(bad[np.argmax(np.nan_to_num(v[bad], nan=np.inf))])
            why = message.format(name=name, value=v[worst], tol=rtol)
            raise ValueError(f"`make_flow(params[e])`: {bad.size} of {size} members are invalid (members "
                             f"{_members(bad)}): member {worst}: {why}.")


def _constraint_violation(flow, y0):
    """How far a member's initial state is from its flow's manifold (0 for unconstrained flows):
    `max |WᵀW − I|` on the Stiefel/Grassmann manifolds, `|‖W‖_F − 1|` on the sphere. The members are
    built inside the trace, where `check_initial` cannot look at values: this is returned by the same
    compiled call (no second trace of `make_flow`) and `_check_members` judges it on concrete values."""
    manifold = getattr(flow, "manifold", None)
    if isinstance(manifold, Stiefel) and isinstance(y0, jax.Array) and y0.ndim == 2:
        return jnp.max(jnp.abs(y0.T @ y0 - jnp.eye(y0.shape[1], dtype=y0.dtype)))
    if isinstance(manifold, Sphere) and isinstance(y0, jax.Array):
        return jnp.abs(jnp.linalg.norm(y0) - 1.0)
    return jnp.zeros((), jnp.result_type(float))


def solve_ensemble(
    make_flow: Callable,
    params,
    y0s,
    t0=0.0,
    t1=1.0,
    *,
    ts=None,
    shared: Any = None,
    rtol=1e-7,
    atol=1e-9,
    dt0=None,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
    adjoint: diffrax.AbstractAdjoint | None = None,
    sharded: bool = False,
    devices=None,
) -> Trajectory:
    r"""Solve an ensemble of E flows in one compiled call: member e integrates

        dy_e/dt = f_e(t, y_e),  y_e(t0) = y0s[e],   f_e = make_flow(params[e]).vector_field

    from `t0` to `t1` (effective time), all saved at the same times `ts`.

    The flows are built inside a `jax.vmap` from the batched `params`, so a sweep over seeds and
    hyperparameters is one XLA program. It compiles once per problem *shape*: new parameter values,
    initial conditions, `t0`, `t1`, save times, `rtol`/`atol` and a new ensemble of the same size
    reuse the compilation. A new compilation is triggered by new shapes or dtypes, a different
    `make_flow` object, solver or static option (`max_steps`, `sharded`, devices). Pass the *same*
    `make_flow` function every time (a fresh `lambda` per call is a new object: it recompiles),
    and pass data through `params` or `shared` rather than capturing it in a closure (captured
    arrays are compiled in as constants).

    With `sharded=True` the ensemble axis is split over `devices` (default: all devices,
    `jax.devices()`) with `jax.shard_map`: E is padded to a multiple of the device count with copies
    of the last member, each device integrates its block independently, and the padding is
    stripped. Results equal the unsharded call.

    **Arguments:**
    - `make_flow`: `make_flow(p) -> AbstractFlow`, or `make_flow(p, shared)` when `shared` is given;
      `p` is one member's slice of `params` (arrays without the leading axis). Must be traceable:
      it is called on tracers, so build flows from `p` with jnp operations only.
    - `params`: pytree of arrays, each with leading ensemble axis E (seeds, hyperparameters, ...).
      Python numbers are converted to arrays so that their values are not compiled in. May be
      None (or empty) for an ensemble over initial conditions only.
    - `y0s`: pytree of initial conditions with leading axis E (e.g. `R0s` (E, m, k), or the tuple
      `(R0s, R0_tests)` for an `OutputFlow` with `K_test`).
    - `t0`, `t1`: common start and end time.
    - `ts`: save times in [t0, t1] (1-D array) or an int number of evenly spaced times
      (default 2: `t0` and `t1`).
    - `shared`: optional pytree of arrays common to all members (e.g. `B` and `K`), passed unbatched
      to `make_flow(p, shared)`; with `sharded=True` it is replicated on every device.
    - `rtol`, `atol`, `dt0`, `solver`, `max_steps`, `adjoint`: as in `ssldyn.solve`.
    - `throw`: raise `SolveError` naming the failed members if any member fails (default). Inside
      a `jit` the check is compiled in as an equinox runtime error; with `False` failures are only
      reported in `status`.
    - `sharded`: split the ensemble over devices (see above).
    - `devices`: devices for `sharded=True` (a sequence or a 1-D `Mesh`); default all devices.

    **Returns:** a `Trajectory` whose fields have a leading ensemble axis E: `ts` (E, n_save), `ys`
    (leaves (E, n_save, ...)), `stats` (E,) and `status` (E,). With `sharded=True` outside a trace
    the arrays stay distributed over the devices (`.sharding`); `gather_to_host` fetches them.

    **Example** (10 seeds × 3 horizons of the constrained output ODE, one compilation):

        def make(p, sh):
            return ssldyn.OutputFlow(sh["B"], p["scale"] * sh["K"])

        params = {"scale": jnp.repeat(jnp.array([0.5, 1.0, 2.0]), 10)}
        traj = ssldyn.solve_ensemble(make, params, R0s, 0.0, 1.0, ts=5, shared={"B": B, "K": K})
    """
    if not callable(make_flow):
        raise TypeError(f"`make_flow` must be callable (params -> flow), got {type(make_flow).__name__}.")
    if not isinstance(sharded, bool):
        raise TypeError(f"`sharded` must be a bool, got {type(sharded).__name__}.")
    params = _arrays(params, "params")
    y0s = jax.tree_util.tree_map(lambda a: as_array(a, "y0s"), y0s)
    size_y0 = _leading_size(y0s, "y0s")
    size = _leading_size(params, "params") if jax.tree_util.tree_leaves(params) else size_y0
    if size_y0 != size:
        raise ValueError(f"`y0s` must have the ensemble size E = {size} of `params` as leading axis, got {size_y0}.")
    shared = None if shared is None else _arrays(shared, "shared")
    t0, t1, ts, rtol, atol, dt0, solver, adjoint = _check_solve_options(
        jax.tree_util.tree_leaves(y0s)[0].dtype, t0, t1, ts, rtol, atol, dt0, solver, max_steps, adjoint)
    traced = in_trace(params, y0s, shared, t0, t1, ts)

    mesh = None
    if sharded:
        mesh = ensemble_mesh(devices)
        (params, y0s), size = pad_ensemble((params, y0s), mesh.devices.size)
        if not traced:
            params, y0s = shard_ensemble((params, y0s), mesh)
    elif devices is not None:
        raise ValueError("`devices` is only used with `sharded=True`.")

    if mesh is not None and not traced:  # everything else replicated over the mesh (needed across hosts)
        shared, t0, t1, ts, rtol, atol, dt0 = replicate((shared, t0, t1, ts, rtol, atol, dt0), mesh)
    traj, violation, checks, found = _ensemble_jit(make_flow, params, y0s, shared, t0, t1, ts, rtol, atol, dt0,
                                                   solver, int(max_steps), adjoint, mesh, bool(throw and traced))
    traj, violation, checks = unpad_ensemble((traj, violation, checks), size)
    if not traced:
        _check_members(violation, checks, found, jax.tree_util.tree_leaves(y0s)[0].dtype, size)
    if throw and not traced:
        status = gather_to_host(traj.status)
        bad = np.flatnonzero(status != 0)
        if bad.size:
            shown = _members(bad)
            codes = "; ".join(f"status {c}: {STATUS_MESSAGES[int(c)]}" for c in np.unique(status[bad]))
            raise SolveError(f"solve_ensemble: {bad.size} of {size} members failed (members {shown}): {codes}")
    return traj


def lowrank_predict(flow, y0, t1, *, rtol=1e-6, atol=1e-8, max_steps: int = 100_000):
    """Solve a low-rank output flow from 0 to `t1` and return the final outputs.

    **Arguments:**
    - `flow`: a `LowRankOutputFlow` (then `y0` is `W̃(0)`, (r, k)) or a `FactoredOutputFlow` (then
      `y0` is `R(0)`, or `(R(0), R_eval(0))` when F has evaluation rows).
    - `y0`: the initial state.
    - `t1`: the horizon (effective time).
    - `rtol`, `atol`, `max_steps`: as in `ssldyn.solve`.

    **Returns:** `R(t1)` (m, k), or `(R(t1), R_eval(t1))` when the factor has evaluation rows.
    Works under `jax.vmap` over seeds (or use `solve_ensemble`).
    """
    if not isinstance(flow, (LowRankOutputFlow, FactoredOutputFlow)):
        raise TypeError(f"`flow` must be a LowRankOutputFlow or FactoredOutputFlow, got {type(flow).__name__}.")
    traj = solve(flow, y0, 0.0, t1, ts=1, rtol=rtol, atol=atol, max_steps=max_steps)
    final = jax.tree_util.tree_map(lambda a: a[-1], traj.ys)
    return flow.outputs(final) if isinstance(flow, LowRankOutputFlow) else final

r"""One training loop for every trainer: keyed steps under `jax.lax.scan`, periodic saves, one result type.

Every step-by-step trainer in ssldyn (`train_network`, `simulate_gd`, the paper packages' SGD
trainers) is the same loop: `n_steps` updates `carry ← step(carry, x)` with an optional per-step
input `x` (a PRNG key, a step index), recording `save_fn(carry)` after steps `save_every,
2·save_every, …`. `run_steps` runs it and returns a `TrainResult` whose save times are the
effective times `t = lr × steps`, the time axis of every `Trajectory` and closed form, so any
trainer's output can be compared with any ODE by `ssldyn.compare_along`.

- `fast_key(key)`: an `rbg` key carrying the bits of a threefry key (fast to compile);
- `step_keys(key, n_steps)`: the per-step keys `jax.random.split(key, n_steps)`;
- `scan_with_saves`: the raw loop; `run_steps`: the loop plus the time axis;
- `check_finite_result` / `@finite_result`: a trainer's result is checked once, outside `jit`, and a
  non-finite one raises `FloatingPointError` naming the learning rate and the steps where the run
  diverged (`check_finite=False` returns the raw arrays).
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._validation import all_finite, check_int, check_keys, check_positive, check_save_every, in_trace


def _run(step, carry, xs, length):
    return jax.lax.scan(lambda c, x: (step(c, x), None), carry, xs, length=length)[0]


def scan_with_saves(step: Callable[[Any, Any], Any], carry, n_steps: int, save_every: int | None = None,
                    save_fn: Callable[[Any], Any] | None = None, *, xs=None):
    r"""Run `carry ← step(carry, x)` for `n_steps` steps, saving `save_fn(carry)` every `save_every` steps.

    **Arguments:**
    - `step`: `step(carry, x) -> carry`, one update. `x` is the step's slice of `xs` (e.g. its PRNG
      key), or None without `xs`. The returned carry must have the structure, shapes and dtypes of
      the input carry (as for `jax.lax.scan`).
    - `carry`: the initial state (any pytree of arrays).
    - `n_steps`: number of steps N ≥ 0 (a static Python int).
    - `save_every`: save after steps `save_every, 2·save_every, …` (a static int ≥ 1), or None for
      no saves. It need not divide N: the last `N mod save_every` steps are run but not saved, so
      there are `N // save_every` saves (zero when `save_every > N`).
    - `save_fn`: what to save from the carry after a block of steps (default: the carry itself).
    - `xs`: optional per-step inputs, a pytree of arrays with leading axis N (as `jax.lax.scan`'s `xs`).

    **Returns:** `(carry, saved)`: the state after N steps and the saves stacked along a new leading
    axis (length `N // save_every`); `saved` is None when `save_every` is None.

    The saving loop is a scan over blocks of `save_every` steps, each an inner scan over steps,
    plus a scan over the remainder (skipped when empty, so the step is not compiled a second time).
    Works under `jit` and `vmap` (the step counts are static).
    """
    if not callable(step):
        raise TypeError(f"`step` must be a function step(carry, x) -> carry, got {type(step).__name__}.")
    try:
        n_steps = operator.index(n_steps)
    except TypeError as err:
        raise TypeError(f"`n_steps` must be a non-negative int, got {type(n_steps).__name__} {n_steps!r}.") from err
    if n_steps < 0:
        raise ValueError(f"`n_steps` must be a non-negative int, got {n_steps!r}.")
    if save_every is None:
        return _run(step, carry, xs, n_steps), None
    try:
        every = operator.index(save_every)
    except TypeError:
        every = 0
    if every < 1:
        raise ValueError(f"`save_every` must be a positive int or None, got {save_every!r}.")
    save_every = every
    if save_fn is None:
        save_fn = _identity
    n_blocks, rest = divmod(n_steps, save_every)
    head = n_blocks * save_every
    if xs is None:
        block_xs = rest_xs = None
    else:
        block_xs = jax.tree_util.tree_map(lambda a: a[:head].reshape((n_blocks, save_every) + a.shape[1:]), xs)
        rest_xs = jax.tree_util.tree_map(lambda a: a[head:], xs)

    def block(c, bx):
        c = _run(step, c, bx, save_every)
        return c, save_fn(c)

    carry, saved = jax.lax.scan(block, carry, block_xs, length=n_blocks)
    if rest:
        carry = _run(step, carry, rest_xs, rest)
    return carry, saved


def _identity(carry):
    return carry


def fast_key(key) -> jax.Array:
    """An `rbg` key carrying the bits of `key` (a threefry key from `jax.random.PRNGKey`/`key`).

    XLA's RngBitGenerator compiles in a fraction of the time of the threefry hash, which dominates the
    compilation of the training loops on CPU. Draws are deterministic given `key` on a given backend.
    """
    key, _ = check_keys(key, "key")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if "rbg" in str(key.dtype):
            return key
        key = jax.random.key_data(key)
    data = jnp.ravel(key).astype(jnp.uint32)
    if data.shape[0] == 2:
        data = jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)])
    return jax.random.wrap_key_data(data[:4], impl="rbg")


def step_keys(key, n_steps: int) -> jax.Array:
    """The per-step keys of a keyed loop: `jax.random.split(key, n_steps)`."""
    return jax.random.split(key, n_steps)


class TrainResult(eqx.Module):
    r"""The result of every trainer: the final state and the saved states on the time axis `t = lr × steps`.

    **Fields:**
    - `final`: the state after all steps (a pytree; for `train_network` the parameter dict).
    - `saved`: the saved quantities stacked along a time axis (after any seed axis), or None when
      nothing was saved.
    - `ts`: the effective times of the saves, `lr × (save_every, 2·save_every, …)` (with a leading
      0 when the initial state is saved too); empty when nothing was saved.

    `params` is an alias of `final`. For code written against the older tuple results, a
    `TrainResult` unpacks as `final, saved = result`.
    """

    final: Any
    saved: Any
    ts: Float[Array, "*batch n_save"]

    @property
    def params(self):
        return self.final

    def __iter__(self):
        return iter((self.final, self.saved))

    def __getitem__(self, index):
        return (self.final, self.saved)[index]


def save_times(lr, n_steps: int, save_every: int | None, *, include_initial: bool = False, dtype=None) -> jax.Array:
    """The effective times `t = lr × k` of the saves of `scan_with_saves` (steps k = save_every, 2·save_every, …)."""
    if save_every is None:
        return jnp.zeros((0,), dtype or jnp.result_type(float))
    k = jnp.arange(0 if include_initial else save_every, n_steps + 1, save_every)
    return k * jnp.asarray(lr, dtype or jnp.result_type(float))


def run_steps(step: Callable[[Any, Any], Any], carry, *, lr, n_steps: int | None = None,
              save_every: int | jax.Array | None = None, save_fn: Callable[[Any], Any] | None = None,
              final_fn: Callable[[Any], Any] | None = None, xs=None, include_initial: bool = False,
              n_saves: int | None = None, check_finite: bool = True) -> TrainResult:
    r"""Run a training loop and return a `TrainResult` on the effective-time axis `t = lr × steps`.

    **Arguments:**
    - `step`, `carry`, `n_steps`, `save_every`, `save_fn`, `xs`: as in `scan_with_saves` (`xs` holds the
      per-step inputs, e.g. `step_keys(key, n_steps)`).
    - `lr`: the learning rate η that converts steps to time (a scalar, may be traced).
    - `final_fn`: maps the final carry to `TrainResult.final` (default: `save_fn`, else the carry).
    - `include_initial`: also save `save_fn(carry)` before the first step, at t = 0.
    - `n_saves`: the *traced-length* mode. Give the number of saves (static) instead of `n_steps`;
      `save_every` may then be a traced integer, so runs of any length with the same number of saves
      share one compilation (`n_steps = n_saves × save_every`). The step receives the step index
      k (int32) as its `x`; `xs` is not allowed (its length would be static).
    - `check_finite`: called outside a trace (concrete result), raise `FloatingPointError` when the
      result is not finite (`check_finite_result`). Inside `jit` the check cannot run; decorate the
      public trainer with `@finite_result` so that it runs once on the returned result.

    Call it inside `jit`/`vmap`: the step counts are static Python ints (except `save_every` in the
    traced-length mode).
    """
    if check_finite and not in_trace(carry, lr):
        result = run_steps(step, carry, lr=lr, n_steps=n_steps, save_every=save_every, save_fn=save_fn,
                           final_fn=final_fn, xs=xs, include_initial=include_initial, n_saves=n_saves,
                           check_finite=False)
        return check_finite_result(result, lr=lr, n_steps=n_steps, where="run_steps")
    if n_saves is not None:
        return _run_traced(step, carry, lr, n_saves, save_every, save_fn or _identity,
                           final_fn or save_fn or _identity, xs, include_initial, n_steps)
    if save_fn is None:
        save_fn = _identity
    if final_fn is None:
        final_fn = save_fn
    carry0 = carry
    carry, saved = scan_with_saves(step, carry, n_steps, save_every, save_fn, xs=xs)
    if saved is not None and include_initial:
        saved = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), save_fn(carry0), saved)
    dtype = jnp.result_type(lr) if jnp.issubdtype(jnp.result_type(lr), jnp.floating) else None
    ts = save_times(lr, n_steps, save_every, include_initial=include_initial, dtype=dtype)
    return TrainResult(final=final_fn(carry), saved=saved, ts=ts)


def _run_traced(step, carry, lr, n_saves, save_every, save_fn, final_fn, xs, include_initial, n_steps):
    if xs is not None or n_steps is not None:
        raise ValueError("with `n_saves`, give neither `xs` nor `n_steps` (the step receives its index).")
    every = jnp.asarray(save_every, jnp.int32)

    def block(c, start):
        c = jax.lax.fori_loop(start, start + every, lambda k, cc: step(cc, k), c)
        return c, save_fn(c)

    carry0 = carry
    carry, saved = jax.lax.scan(block, carry, jnp.arange(n_saves, dtype=jnp.int32) * every)
    k = jnp.arange(0 if include_initial else 1, n_saves + 1) * every
    if include_initial:
        saved = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), save_fn(carry0), saved)
    lr = jnp.asarray(lr)
    return TrainResult(final=final_fn(carry), saved=saved, ts=k.astype(lr.dtype) * lr)


def check_loop(lr, n_steps, save_every, *, lr_name: str = "lr", min_steps: int = 0) -> tuple[int, int | None]:
    """Validate the arguments every trainer shares: `lr > 0`, `n_steps` an int ≥ `min_steps`, `save_every`."""
    check_positive(lr, lr_name, scalar=True)
    return check_int(n_steps, "n_steps", minimum=min_steps), check_save_every(save_every)


def _first_bad_save(result: TrainResult) -> int | None:
    """Index of the save from which every later save holds a non-finite value (None: the last save is finite,
    or nothing was saved). The time axis of a saved leaf is the one of length `n_save` after any seed axis."""
    ts = np.asarray(result.ts)
    n = ts.shape[-1] if ts.ndim else 0
    if result.saved is None or n == 0:
        return None
    bad = np.zeros(n, dtype=bool)
    for leaf in jax.tree_util.tree_leaves(result.saved):
        a = np.asarray(leaf)
        if not np.issubdtype(a.dtype, np.inexact) or a.ndim == 0:
            continue
        if ts.ndim >= 2:
            axis = ts.ndim - 1
        elif a.ndim >= 2 and a.shape[1] == n and a.shape[0] != n:
            axis = 1  # a seed axis first, `ts` shared by the seeds
        else:
            axis = 0
        if a.ndim <= axis or a.shape[axis] != n:
            continue
        bad |= ~np.isfinite(np.moveaxis(a, axis, 0).reshape(n, -1)).all(axis=1)
    if not bad[-1]:
        return None
    good = np.flatnonzero(~bad)
    return int(good[-1]) + 1 if good.size else 0


def check_finite_result(result, *, lr, n_steps: int | None = None, where: str = "training",
                        lr_name: str = "lr") -> Any:
    """Raise `FloatingPointError` when a concrete `TrainResult` holds non-finite values; return it otherwise.

    The result counts as diverged when its final state or its last save has a NaN/Inf entry (an
    intentional NaN in an earlier save, e.g. a loss "before the first step", is ignored). The message
    names the learning rate and the range of steps in which the saves turned non-finite (from the
    save times `ts = lr × steps`). Results that are traced (inside `jit`/`vmap`) or not a
    `TrainResult` are returned unchecked.
    """
    if not isinstance(result, TrainResult) or in_trace(result, lr):
        return result
    first = _first_bad_save(result)
    if first is None and all_finite(result.final):
        return result
    try:
        lr_value = float(np.max(np.asarray(lr)))
    except (TypeError, ValueError):
        lr_value = None
    where_steps = f"within the {n_steps} steps" if isinstance(n_steps, int) else "during training"
    ts = np.asarray(result.ts)
    t = ts.reshape(-1, ts.shape[-1])[0] if first is not None and ts.ndim and ts.size else None
    # (save times that overflowed, e.g. lr × steps beyond float32, cannot locate the steps)
    if t is not None and lr_value and np.all(np.isfinite(t[max(first - 1, 0):first + 1])):
        t_hi = float(t[first])
        t_lo = float(t[first - 1]) if first > 0 else 0.0
        k_hi = int(round(t_hi / lr_value))
        k_lo = int(round(t_lo / lr_value))
        where_steps = f"between steps {k_lo} and {k_hi} (t = {t_lo:g} to {t_hi:g})"
    lr_text = f"`{lr_name}` = {lr_value:g}" if lr_value is not None else f"the given `{lr_name}`"
    raise FloatingPointError(
        f"{where}: the parameters became non-finite (NaN/Inf) {where_steps} at {lr_text}: gradient descent "
        f"diverged. Lower `{lr_name}` or shorten the run; pass check_finite=False to get the raw arrays.")


def finite_result(*, lr: str = "lr", n_steps: str | None = "n_steps"):
    """Decorator for a public trainer returning a `TrainResult` (its loop runs inside `jit`): adds the
    keyword argument `check_finite=True` and, when true, checks the returned result once, outside the
    trace, with `check_finite_result` (the learning rate is the argument named `lr`)."""

    def deco(fn):
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        extra = inspect.Parameter("check_finite", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool)
        if params and params[-1].kind == inspect.Parameter.VAR_KEYWORD:
            params.insert(len(params) - 1, extra)
        else:
            params.append(extra)

        @functools.wraps(fn)
        def wrapper(*args, check_finite: bool = True, **kwargs):
            if not isinstance(check_finite, (bool, np.bool_)):
                raise TypeError(f"`check_finite` must be a bool, got {type(check_finite).__name__}.")
            result = fn(*args, **kwargs)
            if check_finite:
                bound = sig.bind(*args, **kwargs)
                bound.apply_defaults()
                steps = bound.arguments.get(n_steps) if n_steps else None
                steps = int(steps) if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) else None
                check_finite_result(result, lr=bound.arguments.get(lr), n_steps=steps, where=fn.__name__, lr_name=lr)
            return result

        wrapper.__signature__ = sig.replace(parameters=params)
        return wrapper

    return deco

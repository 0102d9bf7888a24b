r"""One training loop for every trainer: keyed steps under `jax.lax.scan`, periodic saves, one result type.

Every step-by-step trainer in ssldyn (`train_network`, `simulate_gd`, the paper packages' SGD
trainers) is the same loop: `n_steps` updates `carry ← step(carry, x)` with an optional per-step
input `x` (a PRNG key, a step index), recording `save_fn(carry)` after steps `save_every,
2·save_every, …`. `run_steps` runs it and returns a `TrainResult` whose save times are the
effective times `t = lr × steps`, the time axis of every `Trajectory` and closed form, so any
trainer's output can be compared with any ODE by `ssldyn.compare_along`.

- `fast_key(key)`: an `rbg` key carrying the bits of a threefry key (fast to compile);
- `step_keys(key, n_steps)`: the per-step keys `jax.random.split(key, n_steps)`;
- `scan_with_saves`: the raw loop; `run_steps`: the loop plus the time axis.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._validation import check_int, check_positive, check_save_every


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
    n_steps = operator.index(n_steps)
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
              n_saves: int | None = None) -> TrainResult:
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

    Call it inside `jit`/`vmap`: the step counts are static Python ints (except `save_every` in the
    traced-length mode).
    """
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
    check_positive(lr, lr_name)
    return check_int(n_steps, "n_steps", minimum=min_steps), check_save_every(save_every)

r"""A fixed number of steps of an update under `jax.lax.scan`, with periodic saves.

Shared by the step-by-step simulators (`simulate_gd`, `train_network`, `train_head_sgd`,
`train_linear_byol`), which all run the same loop: `n_steps` steps of `carry ← step(carry, x)`,
recording `save_fn(carry)` after steps `save_every, 2·save_every, …`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax


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

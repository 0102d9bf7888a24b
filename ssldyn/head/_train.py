r"""The matching network of Wen & Li (2022) trained by optax SGD on fresh batches, through
`ssldyn._training.run_steps` (time axis `t = η·steps`)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Key, UInt32

from .._training import TrainResult, check_loop, finite_result, run_steps, step_keys
from .._validation import as_array, check_int, check_keys, check_positive
from ._loss import head_network_loss
from ._model import HeadData, check_model, sample


@finite_result()
def train_head_sgd(key: Key[Array, "*seeds"] | UInt32[Array, "*seeds 2"], W0: Float[Array, "*seeds d 2"], *,
                   model: HeadData, lr, n_steps: int, batch_size: int, lr_ratio=1.0,
                   e0: Float[Array, "*seeds 2"] | None = None, save_every: int | None = None,
                   stop_gradient: bool = True) -> TrainResult:
    r"""Train the network with optax SGD on fresh samples, vmapped over seeds.

    Per step k: `W ← W − η ∇_W L`, `e ← e − ρη ∇_e L` on a fresh batch (`head_network_loss`) drawn
    with the step key `step_keys(key, n_steps)[k]`; time `t = η·steps`. With `lr_ratio = 0` the
    head stays at `e0` (the no-head arm with `e0 = 0`).

    **Arguments:**
    - `key`: one key, or a batch of keys (S,) for S seeds (then `W0` is (S, d, 2)).
    - `W0`: initial weights (d, 2) or (S, d, 2).
    - `model`; `lr` η > 0; `n_steps`; `batch_size` (≥ 2); `lr_ratio` ρ ≥ 0; `e0` initial head
      off-diagonals (default 0); `save_every` (save the state every this many steps);
      `stop_gradient`.

    **Returns:** a `TrainResult`: `final = (W, e)`, `saved = (W_saved, e_saved)` with the saved
    states stacked on a time axis after the seed axis (after steps `save_every, 2·save_every, …`;
    None without `save_every`), `ts = η × (save_every, 2·save_every, …)` (no seed axis). It unpacks
    as `(W, e), (W_saved, e_saved) = train_head_sgd(...)`.
    """
    check_model(model)
    W0 = as_array(W0, "W0", ndim=(2, 3))
    if W0.shape[-2:] != (model.d, 2):
        raise ValueError(f"`W0` must be ({model.d}, 2) or (S, {model.d}, 2), got {tuple(W0.shape)}.")
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    check_positive(lr_ratio, "lr_ratio", allow_zero=True)
    keys, single = check_keys(key, "key")
    if single != (W0.ndim == 2) or (not single and keys.shape[0] != W0.shape[0]):
        n_keys = 1 if single else keys.shape[0]
        n_seeds = 1 if W0.ndim == 2 else W0.shape[0]
        raise ValueError(f"`key` must hold one key per seed ({n_seeds}, as in `W0`), got {n_keys}.")
    e0 = jnp.zeros(W0.shape[:-2] + (2,), W0.dtype) if e0 is None else as_array(e0, "e0")
    if e0.shape != W0.shape[:-2] + (2,):
        raise ValueError(f"`e0` must have shape {W0.shape[:-2] + (2,)}, got {tuple(e0.shape)}.")
    lr = jnp.asarray(lr, W0.dtype)
    rho = jnp.asarray(lr_ratio, W0.dtype)
    static = dict(n_steps=n_steps, batch_size=batch_size, save_every=save_every, stop_gradient=bool(stop_gradient))
    if single:
        return _train_head(keys, W0, e0, model, lr, rho, **static)
    return _train_head_seeds(keys, W0, e0, model, lr, rho, **static)


@eqx.filter_jit
def _train_head_seeds(keys, W0, e0, model, lr, rho, **static):
    # the save times do not depend on the seed: no seed axis on `ts`
    out_axes = TrainResult(final=0, saved=0, ts=None)
    return jax.vmap(lambda k, W, e: _train_head_impl(k, W, e, model, lr, rho, **static),
                    out_axes=out_axes)(keys, W0, e0)


@eqx.filter_jit
def _train_head(key, W0, e0, model, lr, rho, **static):
    return _train_head_impl(key, W0, e0, model, lr, rho, **static)


def _train_head_impl(key, W0, e0, model, lr, rho, *, n_steps, batch_size, save_every, stop_gradient):
    opt = optax.multi_transform({"W": optax.sgd(lr), "e": optax.sgd(lr * rho)}, {"W": "W", "e": "e"})
    params0 = {"W": W0, "e": e0}

    def step(carry, skey):
        params, opt_state = carry
        X1, X2, _ = sample(skey, model, batch_size)  # `fast_key(skey)` inside
        grads = jax.grad(lambda p: head_network_loss(p["W"], p["e"], X1, X2, stop_gradient=stop_gradient))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def weights(carry):
        return carry[0]["W"], carry[0]["e"]

    return run_steps(step, (params0, opt.init(params0)), lr=lr, n_steps=n_steps, save_every=save_every,
                     save_fn=weights, xs=step_keys(key, n_steps))

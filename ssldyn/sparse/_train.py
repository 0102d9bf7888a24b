r"""Stage 4 of `ssldyn.sparse`: the matching networks, trained by online SGD through `ssldyn._training`.

`train_sgd` runs `W ← W − η (∇_W L_batch(W; b_k) + ωW)` on B fresh samples per step, vmapped over
seeds, as one `run_steps` loop per seed; it returns a `TrainResult` on the effective-time axis
`t = η × steps` (with t = 0 included), so it compares directly with `QuenchedFlow` solves and the
linearised closed form.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from .._training import TrainResult, check_loop, finite_result, run_steps
from .._validation import as_array, check_int, check_keys, check_positive, check_probability
from ._loss import beta_ramp, info_nce, thresholds
from ._model import (AUGMENTATIONS, Augmentation, SparseCoding, check_augmentation, check_data, view_noise_scale,
                     views_by_index)


class SGDSaves(NamedTuple):
    """What `train_sgd` saves (`TrainResult.saved`), with a leading seed axis S and a time axis.

    **Fields:** `W` the weights (S, n_save, d₁, m); `loss` (S, n_save) the mean minibatch loss over the
    steps since the previous save (NaN at t = 0); `beta` (S, n_save) the bias multiplier `β(t)` at
    the save times (the same for every seed).
    """

    W: Float[Array, "seeds n_save d1 m"]
    loss: Float[Array, "seeds n_save"]
    beta: Float[Array, "seeds n_save"]


SGDResult = TrainResult
"""The result type of `train_sgd`: a `TrainResult` with `final` the weights (S, d₁, m), `saved` an
`SGDSaves` and `ts` (n_save,) the save times `η × steps`, starting at t = 0."""


@finite_result()
def train_sgd(keys, data: SparseCoding, W0: Float[Array, "*seeds d1 m"], *, augmentation: Augmentation = "mask",
              aug_noise_std=0.0, lr=0.05, n_steps: int = 3000, batch_size: int = 512, temperature=0.5,
              weight_decay=1e-3, beta_max=0.0, ramp_fraction=0.5, save_every: int | None = None,
              stop_gradient: bool = True) -> TrainResult:
    r"""Online SGD on the Wen & Li InfoNCE, vmapped over seeds (optax; gradients by `jax.grad`).

    Each step k draws B fresh samples, their two views, and applies
    `W ← W − η (∇_W L_batch(W; b_k) + ωW)` with in-batch negatives and the bias
    `b_k = β(kη) s_view σ_ξ ‖w_i‖` (horizon `T = η·n_steps`; `beta_max = 0` gives b ≡ 0).
    Time is `t = η·steps`.

    **Arguments:**
    - `keys`: a key, or S keys (leading axis) for S seeds (sampling only; step k uses `fold_in(key, k)`).
    - `data`: the `SparseCoding` model (shared by all seeds).
    - `W0`: initial weights (d₁, m), or (S, d₁, m) one per seed (`init_neurons`).
    - `augmentation`, `aug_noise_std`: see `make_views`.
    - `lr` η > 0; `n_steps` ≥ 1; `batch_size` B ≥ 2; `temperature` τ; `weight_decay` ω.
    - `beta_max`, `ramp_fraction`: bias schedule (`bias_schedule`).
    - `save_every`: save every this many steps (default: n_steps); must divide `n_steps`.
    - `stop_gradient`: the theory's loss (default True).

    **Returns:** a `TrainResult` (seed axis always present): `final` the weights (S, d₁, m); `saved` an
    `SGDSaves` (`W`, `loss`, `beta`, each with axes (S, n_save, ...)); `ts` (n_save,) the save times
    `η × (0, save_every, 2·save_every, …, n_steps)`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3, §7.
    """
    data = check_data(data)
    check_augmentation(augmentation)
    n_steps, save_every = check_loop(lr, n_steps, save_every, min_steps=1)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(beta_max, "beta_max", allow_zero=True)
    check_probability(ramp_fraction, "ramp_fraction")
    check_positive(aug_noise_std, "aug_noise_std", allow_zero=True)
    save_every = n_steps if save_every is None else save_every
    if n_steps % save_every:
        raise ValueError(f"`save_every` must divide `n_steps` = {n_steps}, got {save_every}.")
    keys, single = check_keys(keys)
    if single:
        keys = keys[None]
    n_seeds = keys.shape[0]
    W0 = as_array(W0, "W0", ndim=(2, 3)).astype(data.M.dtype)
    if W0.shape[-2] != data.d1:
        raise ValueError(f"`W0` must have {data.d1} rows (d1), got shape {tuple(W0.shape)}.")
    if W0.ndim == 2:
        W0 = jnp.broadcast_to(W0, (n_seeds,) + W0.shape)
    elif W0.shape[0] != n_seeds:
        raise ValueError(f"`W0` must have one initial matrix per key ({n_seeds}), got shape {tuple(W0.shape)}.")
    dt = data.M.dtype
    hyper = dict(lr=jnp.asarray(lr, dt), temperature=jnp.asarray(temperature, dt),
                 weight_decay=jnp.asarray(weight_decay, dt), beta_max=jnp.asarray(beta_max, dt),
                 ramp_fraction=jnp.asarray(ramp_fraction, dt), aug_noise_std=jnp.asarray(aug_noise_std, dt),
                 scale=view_noise_scale(data, augmentation, aug_noise_std=aug_noise_std).astype(dt))
    hyper["aug_index"] = jnp.asarray(AUGMENTATIONS.index(augmentation), jnp.int32)
    res = _train_seeds(keys, data, W0, hyper, jnp.asarray(save_every, jnp.int32), n_steps // save_every, batch_size,
                       bool(stop_gradient))
    ts = res.ts[0]
    Ws, losses = res.saved
    betas = beta_ramp(ts, n_steps * jnp.asarray(lr, dt), hyper["beta_max"], hyper["ramp_fraction"])
    saved = SGDSaves(W=Ws, loss=losses, beta=jnp.broadcast_to(betas, losses.shape))
    return TrainResult(final=res.final, saved=saved, ts=ts)


@partial(jax.jit, static_argnames=("n_saves", "batch_size", "stop_gradient"))
def _train_seeds(keys, data, W0, hyper, every, n_saves, batch_size, stop_gradient):
    # Only the number of saves is static: runs of any length with the same number of saves share one
    # compilation (`run_steps`' traced-length mode, `save_every = every` traced).
    lr = hyper["lr"]
    horizon = n_saves * every * lr
    opt = optax.chain(optax.add_decayed_weights(hyper["weight_decay"]), optax.sgd(lr))

    def one(key, W_init):
        def loss_fn(W, X1, X2, b):
            return info_nce(W, X1, X2, hyper["temperature"], b, batch_size, stop_gradient, 0.0)

        def step(carry, k):
            W, state, acc = carry
            kx, kv = jax.random.split(jax.random.fold_in(key, k))
            X = data.sample(kx, batch_size)
            X1, X2 = views_by_index(kv, X, hyper["aug_index"], hyper["aug_noise_std"])
            beta = beta_ramp(k * lr, horizon, hyper["beta_max"], hyper["ramp_fraction"])
            b = thresholds(W, beta, hyper["scale"])
            loss, g = jax.value_and_grad(loss_fn)(W, X1, X2, b)
            updates, state = opt.update(g, state, W)
            acc = jnp.where(k % every == 0, jnp.zeros_like(acc), acc)  # a save block starts: reset the sum
            return optax.apply_updates(W, updates), state, acc + loss

        def save(carry):
            W, _, acc = carry
            return W, acc / every

        # the loss sum starts at NaN, so the save at t = 0 (before any step) records NaN
        carry = (W_init, opt.init(W_init), jnp.full((), jnp.nan, W_init.dtype))
        return run_steps(step, carry, lr=lr, n_saves=n_saves, save_every=every, save_fn=save,
                         final_fn=lambda c: c[0], include_initial=True)

    return jax.vmap(one)(keys, W0)

r"""SGD (optax) on the dimensional-collapse toy, and frozen minibatch ensembles for its ODE counterpart.

- `epoch_batches(key, n_pool, batch_size, n_steps)`: minibatch indices drawn without replacement,
  epoch by epoch (a fresh permutation of the pool per epoch);
- `train_collapse_sgd`: plain SGD (`optax.sgd`, no momentum, no weight decay) on `dot_info_nce` with
  fresh augmentation noise each step; vmapped over seeds; saves W on `t = η·steps`;
- `sample_frozen_batches`: M batches with their noise, for `frozen_minibatch_flow`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._training import TrainResult, check_loop, fast_key, finite_result, run_steps, step_keys
from .._validation import as_array, check_int, check_keys, check_positive
from ._loss import _ce_rows, dot_logits
from ._model import noised_mask


def epoch_batches(key, n_pool: int, batch_size: int, n_steps: int) -> jax.Array:
    """(n_steps, batch_size) pool indices: consecutive slices of one fresh permutation per epoch."""
    n_pool = check_int(n_pool, "n_pool", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=n_pool)
    per_epoch = n_pool // batch_size
    n_epochs = -(-n_steps // per_epoch)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n_pool))(jax.random.split(key, max(n_epochs, 1)))
    return perms[:, :per_epoch * batch_size].reshape(-1, batch_size)[:n_steps]


@finite_result()
def train_collapse_sgd(keys, params0, pool, *, sigma_aug, temperature, lr, n_steps: int, batch_size: int = 128,
                       n_noised: int = 8, save_every: int | None = None, include_initial: bool = True) -> TrainResult:
    r"""SGD on the toy: each step a minibatch (without replacement, by epochs), two fresh views, one
    `optax.sgd` step on the dot-product InfoNCE (gradients through both views).

    **Arguments:** `keys`: one key per seed (S, …) or a single key; `params0 = (W0, b0)`, with a leading
    seed axis matching `keys` when several; `pool` (n_pool, d) clean inputs; `sigma_aug` ≥ 0;
    `temperature` τ > 0; `lr` η > 0; `n_steps`; `batch_size`; `n_noised`; `save_every`.

    **Returns:** `TrainResult` with `final = (W, b)` and `saved = (W, b)` at `ts = η·steps` (seed axis first).
    """
    keys, single = check_keys(keys)
    pool = as_array(pool, "pool", ndim=2)
    check_positive(sigma_aug, "sigma_aug", allow_zero=True)
    check_positive(temperature, "temperature")
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    batch_size = check_int(batch_size, "batch_size", minimum=2, maximum=pool.shape[0])
    if not (isinstance(params0, (tuple, list)) and len(params0) == 2):
        raise TypeError(f"`params0` must be a pair (W0, b0) (`fanin_uniform_init`), got {type(params0).__name__}.")
    W0, b0 = as_array(params0[0], "params0[0]", ndim=(2, 3)), as_array(params0[1], "params0[1]", ndim=(1, 2))
    lead = () if single else (keys.shape[0],)
    if W0.shape[:-2] != lead or W0.shape[-1] != pool.shape[1] or b0.shape != lead + (W0.shape[-2],):
        raise ValueError(f"`params0` must be (W0 {lead + ('k', pool.shape[1])}, b0 {lead + ('k',)}) for "
                         f"{'one key' if single else f'{lead[0]} keys'} and a pool of dimension {pool.shape[1]}, got "
                         f"shapes {tuple(W0.shape)} and {tuple(b0.shape)}.")
    params0 = (W0, b0)
    mask = noised_mask(pool.shape[1], n_noised).astype(pool.dtype)
    run = jax.vmap(_train, in_axes=(0, 0, None, None, None, None, None, None, None, None, None)) if not single \
        else _train
    return run(keys, params0, pool, mask, jnp.asarray(sigma_aug, pool.dtype), jnp.asarray(temperature, pool.dtype),
               jnp.asarray(lr, pool.dtype), n_steps, batch_size, save_every, bool(include_initial))


@eqx.filter_jit
def _train(key, params0, pool, mask, sigma, tau, lr, n_steps, batch_size, save_every, include_initial):
    k_idx, k_noise = jax.random.split(key)
    k_noise = fast_key(k_noise)  # rbg bits for the per-step noise: much faster to compile and run on CPU
    idx = epoch_batches(k_idx, pool.shape[0], batch_size, n_steps)
    opt = optax.sgd(lr)

    def loss(params, X1, X2):
        return _ce_rows(dot_logits(params, X1, X2, tau))

    grad = jax.grad(loss)

    def step(carry, x):
        params, state = carry
        i, k = x
        k1, k2 = jax.random.split(k)
        X = pool[i]
        X1 = X + sigma * mask * jax.random.normal(k1, X.shape, X.dtype)
        X2 = X + sigma * mask * jax.random.normal(k2, X.shape, X.dtype)
        updates, state = opt.update(grad(params, X1, X2), state, params)
        return optax.apply_updates(params, updates), state

    return run_steps(step, (params0, opt.init(params0)), lr=lr, n_steps=n_steps, save_every=save_every,
                     save_fn=lambda c: c[0], final_fn=lambda c: c[0], xs=(idx, step_keys(k_noise, n_steps)),
                     include_initial=include_initial)


def sample_frozen_batches(key, pool, n_batches: int, batch_size: int, *, sigma_aug, n_noised: int = 8):
    r"""`(X1, X2)`, each (M, B, d): M minibatches of the pool (without replacement within a batch) and
    their two noisy views, frozen for `frozen_minibatch_flow`."""
    pool = as_array(pool, "pool", ndim=2)
    n_batches = check_int(n_batches, "n_batches", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=2, maximum=pool.shape[0])
    check_positive(sigma_aug, "sigma_aug", allow_zero=True)
    k_idx, k1, k2 = jax.random.split(key, 3)
    idx = jax.vmap(lambda k: jax.random.permutation(k, pool.shape[0])[:batch_size])(jax.random.split(k_idx, n_batches))
    X = pool[idx]
    mask = noised_mask(pool.shape[1], n_noised).astype(pool.dtype)
    return (X + sigma_aug * mask * jax.random.normal(k1, X.shape, X.dtype),
            X + sigma_aug * mask * jax.random.normal(k2, X.shape, X.dtype))

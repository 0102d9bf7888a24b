r"""Trainers: the linear SimVAE by full-batch GD on its exact loss, and the small networks of the
experiment (SimVAE and the VAE, β-VAE, CR-VAE, SimCLR and VICReg baselines) by optax Adam, vmapped
over seeds, all through `ssldyn._training.run_steps` (time axis `t = lr × steps`).

**Networks.** One MLP encoder `D → h → … → 2L` (ReLU) gives the posterior mean and log-variance
(clipped to [−12, 6]); the decoder `L → … → h → D` has a linear output (Gaussian likelihood). The
discriminative baselines use the same encoder and its mean output as the representation (no
projection head: a library choice for the small setting). Downstream representations are always the
posterior means of un-augmented inputs (`represent`).

**Per step** (a minibatch of `batch_size` base inputs drawn with replacement by the step key):
- `simvae`: J views from `views_fn`, `simvae_loss` with the knobs (mean over groups);
- `vae` / `beta_vae`: the un-augmented inputs, `vae_loss` with β = 1 / `beta`;
- `cr_vae`: two views, `cr_vae_loss` with λ = `cr_lambda`;
- `simclr`: two views, NT-Xent (`ssldyn._losses.info_nce_loss`, symmetric) at `temperature`;
- `vicreg`: two views, `vicreg_loss` (invariance and variance weights `vicreg_mu`, covariance 1).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .._losses import info_nce_loss
from .._solve import simulate_gd
from .._training import TrainResult, check_loop, finite_result, run_steps, step_keys
from .._validation import as_array, check_choice, check_int, check_keys, check_positive
from ._flows import LinearFlow
from ._loss import _simvae_loss, cr_vae_loss, vae_loss, vicreg_loss
from ._model import SimVAEKnobs, check_knobs

METHODS = ("simvae", "vae", "beta_vae", "cr_vae", "simclr", "vicreg")
GENERATIVE = ("simvae", "vae", "beta_vae", "cr_vae")


def train_linear_gd(data, knobs: SimVAEKnobs, y0, *, lr, n_steps: int, save_every: int | None = None,
                    parametrisation: str = "logvar", check_finite: bool = True) -> TrainResult:
    r"""Full-batch gradient descent on the exact linear loss `L(W, V, Λ)`: `y ← y − lr ∇L(y)` (in ℓ
    for `parametrisation="logvar"`). After N steps it tracks `LinearFlow` at `t = lr·N` up to O(lr).
    A diverging run raises `FloatingPointError` naming `lr` and the steps (`simulate_gd`'s check;
    `check_finite=False` returns the raw arrays)."""
    return simulate_gd(LinearFlow(data, knobs, parametrisation=parametrisation), y0, lr, n_steps,
                       save_every=save_every, check_finite=check_finite)


class NetSpec(eqx.Module):
    """Sizes of the MLP encoder/decoder: input `d`, hidden widths `hidden`, latent `latent`."""

    d: int = eqx.field(static=True)
    hidden: tuple = eqx.field(static=True)
    latent: int = eqx.field(static=True)

    def __init__(self, d: int, hidden=(256, 256), latent: int = 10):
        self.d = check_int(d, "d", minimum=1)
        self.hidden = tuple(check_int(h, "hidden", minimum=1) for h in hidden)
        self.latent = check_int(latent, "latent", minimum=1)


def _dense(key, n_in, n_out, dtype):
    W = jax.random.normal(key, (n_in, n_out), dtype) * jnp.sqrt(2.0 / n_in).astype(dtype)
    return (W, jnp.zeros((n_out,), dtype))


def init_params(key, spec: NetSpec, dtype=jnp.float32) -> dict:
    """He-initialised encoder (`D → hidden → 2L`) and decoder (`L → reversed hidden → D`) layers."""
    enc_sizes = (spec.d,) + spec.hidden + (2 * spec.latent,)
    dec_sizes = (spec.latent,) + spec.hidden[::-1] + (spec.d,)
    ke, kd = jax.random.split(key)
    enc = [_dense(k, a, b, dtype) for k, a, b in zip(jax.random.split(ke, len(enc_sizes) - 1), enc_sizes[:-1], enc_sizes[1:])]
    dec = [_dense(k, a, b, dtype) for k, a, b in zip(jax.random.split(kd, len(dec_sizes) - 1), dec_sizes[:-1], dec_sizes[1:])]
    return {"enc": enc, "dec": dec}


def _mlp(layers, x):
    for W, b in layers[:-1]:
        x = jax.nn.relu(x @ W + b)
    W, b = layers[-1]
    return x @ W + b


def encode(params: dict, X) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and log-variance `(μ(x), log s²(x))` of the rows of `X` (any leading axes)."""
    out = _mlp(params["enc"], X)
    L = out.shape[-1] // 2
    return out[..., :L], jnp.clip(out[..., L:], -12.0, 6.0)


def decode(params: dict, Z) -> jax.Array:
    """Decoder mean `g(z)` of the rows of `Z`."""
    return _mlp(params["dec"], Z)


def represent(params: dict, X) -> jax.Array:
    """Downstream representation: the posterior mean `μ(x)` of un-augmented inputs."""
    return encode(params, X)[0]


def _method_loss(method, params, X, views_fn, key, hp, knobs, n_views):
    kv, ke = jax.random.split(key)
    if method in ("vae", "beta_vae"):
        mu, lv = encode(params, X)
        z = mu + jnp.exp(0.5 * lv) * jax.random.normal(ke, mu.shape, mu.dtype)
        return vae_loss(X, decode(params, z), mu, lv, sigma_x2=hp["sigma_x2"], beta=hp["beta"])
    views = views_fn(kv, X, n_views)  # (B, J, D)
    mu, lv = encode(params, views)
    if method == "simclr":
        return info_nce_loss(mu[:, 0], mu[:, 1], temperature=hp["temperature"])
    if method == "vicreg":
        return vicreg_loss(mu[:, 0], mu[:, 1], inv=hp["vicreg_mu"], var=hp["vicreg_mu"])
    z = mu + jnp.exp(0.5 * lv) * jax.random.normal(ke, mu.shape, mu.dtype)
    x_hat = decode(params, z)
    if method == "cr_vae":
        return cr_vae_loss(views, x_hat, mu, lv, sigma_x2=hp["sigma_x2"], lam=hp["cr_lambda"])
    return _simvae_loss(views, x_hat, z, jnp.sum(lv, axis=-1), knobs)


@finite_result()
def train_networks(key, X, *, spec: NetSpec, method: str, views_fn: Callable, n_steps: int, lr=1e-3,
                   batch_size: int = 128, knobs: SimVAEKnobs | None = None, sigma_x2=0.01, beta=4.0,
                   cr_lambda=0.1, temperature=0.5, vicreg_mu=25.0, save_every: int | None = None) -> TrainResult:
    r"""Train one method's network with optax Adam on minibatches of the rows of `X`, vmapped over seeds.

    **Arguments:**
    - `key`: one key or a stack of S keys (one network per key; the key draws the initialisation,
      the minibatches, the views and the reparameterisation noise).
    - `X`: (n, D) un-augmented training inputs.
    - `spec`: `NetSpec`; `method`: one of `METHODS` (see the module docstring).
    - `views_fn(key, X, J) -> (n, J, D)`: the view augmentation (a static function).
    - `n_steps`, `lr` (Adam), `batch_size`.
    - `knobs`: `SimVAEKnobs` (required for `simvae`; its J is the number of views).
    - `sigma_x2` (VAE-type likelihood variance, same convention), `beta` (β-VAE), `cr_lambda`,
      `temperature` (SimCLR), `vicreg_mu`.

    **Returns:** a `TrainResult` whose `final` is the parameter pytree (a leading seed axis for a stack
    of keys) and `saved` the parameters every `save_every` steps. A non-finite result raises
    `FloatingPointError` naming `lr` and the steps (`@finite_result`; `check_finite=False` opts out).
    """
    check_choice(method, "method", METHODS)
    X = as_array(X, "X", ndim=2)
    if X.shape[1] != spec.d:
        raise ValueError(f"`X` must have {spec.d} columns (spec.d), got {X.shape[1]}.")
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    batch_size = check_int(batch_size, "batch_size", minimum=2)
    if method == "simvae":
        if knobs is None:
            raise ValueError("`knobs` (SimVAEKnobs) are required for method 'simvae'.")
        check_knobs(knobs)
        n_views = knobs.n_views
    else:
        n_views = 2
        knobs = SimVAEKnobs(2)
    for name, v in (("sigma_x2", sigma_x2), ("beta", beta), ("temperature", temperature), ("vicreg_mu", vicreg_mu)):
        check_positive(v, name)
    check_positive(cr_lambda, "cr_lambda", allow_zero=True)
    if not callable(views_fn):
        raise TypeError(f"`views_fn` must be callable, got {type(views_fn).__name__}.")
    keys, single = check_keys(key, "key")
    dt = X.dtype
    knobs = jax.tree_util.tree_map(lambda a: a.astype(dt), knobs)  # the network's precision throughout
    hp = {"sigma_x2": jnp.asarray(sigma_x2, dt), "beta": jnp.asarray(1.0 if method == "vae" else beta, dt),
          "cr_lambda": jnp.asarray(cr_lambda, dt), "temperature": jnp.asarray(temperature, dt),
          "vicreg_mu": jnp.asarray(vicreg_mu, dt)}
    static = dict(spec=spec, method=method, views_fn=views_fn, n_steps=n_steps, batch_size=batch_size,
                  n_views=n_views, save_every=save_every)
    if single:
        return _train_one(keys, X, jnp.asarray(lr, dt), hp, knobs, **static)
    return _train_seeds(keys, X, jnp.asarray(lr, dt), hp, knobs, **static)


@eqx.filter_jit
def _train_seeds(keys, X, lr, hp, knobs, **static):
    out_axes = TrainResult(final=0, saved=0, ts=None)
    return jax.vmap(lambda k: _train_impl(k, X, lr, hp, knobs, **static), out_axes=out_axes)(keys)


@eqx.filter_jit
def _train_one(key, X, lr, hp, knobs, **static):
    return _train_impl(key, X, lr, hp, knobs, **static)


def _train_impl(key, X, lr, hp, knobs, *, spec, method, views_fn, n_steps, batch_size, n_views, save_every):
    k_init, k_steps = jax.random.split(key)
    params = init_params(k_init, spec, X.dtype)
    opt = optax.adam(lr)

    def step(carry, skey):
        p, s = carry
        kb, kl = jax.random.split(skey)
        idx = jax.random.randint(kb, (batch_size,), 0, X.shape[0])
        grads = jax.grad(lambda q: _method_loss(method, q, X[idx], views_fn, kl, hp, knobs, n_views))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    return run_steps(step, (params, opt.init(params)), lr=lr, n_steps=n_steps, save_every=save_every,
                     save_fn=lambda c: c[0], final_fn=lambda c: c[0], xs=step_keys(k_steps, n_steps))

r"""SSL training of the circular CNN and the locally connected control (theory note §4.3).

SimCLR-style: an MLP head `C → head[0] → … → head[-1]` (ReLU between layers), NT-Xent
(`ssldyn._losses.info_nce_loss`, cosine similarity, in-batch negatives, temperature τ), optax Adam,
minibatches drawn inside the compiled loop, `jax.vmap` over seeds, time axis `t = lr × steps`.

**Modes** (`g_1` uniform on `C_L`, `g_2 = g_1 + Δ`, `Δ ~ p(Δ)` uniform on `{−m, …, m}`; `a_1, a_2`
independent draws of the non-group augmentation: a dilation about the centre by a factor in
`[crop_min, 1]` (crop-resize), a shear ramp, Gaussian noise):

- `assl`: ordinary SimCLR: `z_i = head(pool f(a_i(T_{h_i} x)))` with independent uniform shifts
  `h_i` and the non-group augmentation, pooled head;
- `assl_fiber`: `z_i = head(f(T_{g_i} x)[e])` (input shifted, identity fiber);
- `hssl`: one forward pass, `z_i = head(f(x)[g_i^{-1}])`;
- `assl_fiber_aug`, `hssl_aug`: the same with `a_i` applied to the input of each arm;
- `random`: no training.

For the CNN, `f(T_g x)[e] = f(x)[g^{-1}]`: with the same key `assl_fiber` and `hssl` (and their `_aug`
variants) produce identical pairs; for the locally connected control they differ.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._losses import info_nce_loss
from .._training import TrainResult, check_finite_result, fast_key, run_steps, step_keys
from .._validation import as_array, check_choice, check_int, check_keys, check_positive
from ._model import (Backbone2D, BackboneSpec, action_table, apply_backbone, element_compose, element_inverse,
                     fibers2d, init_backbone, init_backbone2d)

MODES = ("assl", "assl_fiber", "hssl", "assl_fiber_aug", "hssl_aug", "random")


class SSLConfig(NamedTuple):
    """Static training options (hashable)."""

    mode: str = "hssl"
    n_steps: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    temperature: float = 0.1
    max_offset: int = 3
    head: tuple = (128, 64)
    crop_min: float = 0.7
    shear_max: float = 0.3
    noise_std: float = 0.1
    save_every: int | None = None


def ssl_config(mode: str = "hssl", **kwargs) -> SSLConfig:
    """Validated `SSLConfig`."""
    check_choice(mode, "mode", MODES)
    cfg = SSLConfig(mode=mode, **kwargs)
    check_int(cfg.n_steps, "n_steps", minimum=0)
    check_int(cfg.batch_size, "batch_size", minimum=2)
    check_positive(cfg.lr, "lr")
    check_positive(cfg.temperature, "temperature")
    check_int(cfg.max_offset, "max_offset", minimum=0)
    if not 0 < cfg.crop_min <= 1:
        raise ValueError(f"`crop_min` must be in (0, 1], got {cfg.crop_min}.")
    check_positive(cfg.shear_max, "shear_max", allow_zero=True)
    check_positive(cfg.noise_std, "noise_std", allow_zero=True)
    return cfg._replace(head=tuple(int(h) for h in cfg.head))


def init_head(key, dims, dtype) -> list[dict]:
    out = []
    for k, (a, b) in zip(jax.random.split(key, len(dims) - 1), zip(dims[:-1], dims[1:])):
        # a Python float scale keeps `dtype` (a NumPy float64 would promote the weights under x64)
        out.append({"w": jax.random.normal(k, (a, b), dtype) * float(np.sqrt(2.0 / a)), "b": jnp.zeros((b,), dtype)})
    return out


def apply_head(head, h):
    for i, layer in enumerate(head):
        h = h @ layer["w"] + layer["b"]
        if i < len(head) - 1:
            h = jax.nn.relu(h)
    return h


def init_model(key, spec: BackboneSpec, cfg: SSLConfig, dtype=jnp.float32) -> dict:
    kb, kh = jax.random.split(key)
    return {"backbone": init_backbone(kb, spec, dtype), "head": init_head(kh, (spec.channels,) + cfg.head, dtype)}


def nongroup_augment(key, x, cfg: SSLConfig):
    """Dilation about the centre (crop-resize), shear ramp and Gaussian noise of one signal `(L,)`."""
    L = x.shape[0]
    k1, k2, k3 = jax.random.split(key, 3)
    s = jax.random.uniform(k1, (), x.dtype, cfg.crop_min, 1.0)
    c = (L - 1) / 2
    pos = c + s * (jnp.arange(L, dtype=x.dtype) - c)
    lo = jnp.floor(pos)
    fr = pos - lo
    lo = lo.astype(jnp.int32)
    y = (1 - fr) * x[lo % L] + fr * x[(lo + 1) % L]
    b = jax.random.uniform(k2, (), x.dtype, -cfg.shear_max, cfg.shear_max)
    y = y + b * (jnp.arange(L, dtype=x.dtype) / L - 0.5)
    return y + cfg.noise_std * jax.random.normal(k3, (L,), x.dtype)


def _branches(params, key, xb, spec: BackboneSpec, cfg: SSLConfig, max_offset, dilations=None):
    """One function per trained mode (in `MODES` order), each returning the two backbone outputs `(B, C)`."""
    B, L = xb.shape
    k_g, k_d, k_a1, k_a2, k_h = jax.random.split(key, 5)
    g1 = jax.random.randint(k_g, (B,), 0, L)
    delta = jax.random.randint(k_d, (B,), -max_offset, max_offset + 1)
    g2 = (g1 + delta) % L
    f = jax.vmap(lambda x: apply_backbone(params["backbone"], x, spec, dilations))
    rows = jnp.arange(B)

    def aug(k, X):
        return jax.vmap(lambda kk, x: nongroup_augment(kk, x, cfg))(jax.random.split(k, B), X)

    def shift(X, g):
        return jax.vmap(lambda x, s: jnp.roll(x, s))(X, g)

    def assl():
        h = jax.random.randint(k_h, (2, B), 0, L)
        return (jnp.mean(f(aug(k_a1, shift(xb, h[0]))), axis=1), jnp.mean(f(aug(k_a2, shift(xb, h[1]))), axis=1))

    def assl_fiber():
        return f(shift(xb, g1))[:, 0], f(shift(xb, g2))[:, 0]

    # H-SSL reads the fibers at g^{-1}: with the same draws, f(T_g x)[e] = f(x)[g^{-1}] makes
    # `hssl` and `assl_fiber` produce identical pairs for the CNN (tested), not only equal in law
    i1, i2 = (-g1) % L, (-g2) % L

    def hssl():
        F = f(xb)
        return F[rows, i1], F[rows, i2]

    def assl_fiber_aug():
        return f(shift(aug(k_a1, xb), g1))[:, 0], f(shift(aug(k_a2, xb), g2))[:, 0]

    def hssl_aug():
        return f(aug(k_a1, xb))[rows, i1], f(aug(k_a2, xb))[rows, i2]

    return [assl, assl_fiber, hssl, assl_fiber_aug, hssl_aug]


def pair_embeddings(params, key, xb, spec: BackboneSpec, cfg: SSLConfig, *, mode_index=None, max_offset=None,
                    dilations=None):
    """`(z_1, z_2)` `(B, head[-1])` of a batch `xb (B, L)` in the configured mode.

    `mode_index` (index into `MODES`, may be traced) and `max_offset` (may be traced) override
    `cfg.mode` / `cfg.max_offset`, so that one compilation serves every mode.
    """
    if mode_index is None:
        mode_index = MODES.index(cfg.mode)
    max_offset = cfg.max_offset if max_offset is None else max_offset
    fns = _branches(params, key, xb, spec, cfg, max_offset, dilations)
    if isinstance(mode_index, int):
        u1, u2 = fns[mode_index]()
    else:
        u1, u2 = jax.lax.switch(mode_index, fns)
    return apply_head(params["head"], u1), apply_head(params["head"], u2)


def ssl_loss(params, key, xb, spec: BackboneSpec, cfg: SSLConfig, *, mode_index=None, max_offset=None,
             dilations=None):
    z1, z2 = pair_embeddings(params, key, xb, spec, cfg, mode_index=mode_index, max_offset=max_offset,
                             dilations=dilations)
    return info_nce_loss(z1, z2, temperature=cfg.temperature)


def _train_one(key, X, mode_index, max_offset, lr, dilations, spec, cfg):
    k_init, k_loop = jax.random.split(key)
    params = init_model(k_init, spec, cfg, X.dtype)
    opt = optax.adam(lr)
    state = (params, opt.init(params), jnp.zeros((), X.dtype))

    def step(carry, k):
        p, s, _ = carry
        k = fast_key(k)
        kb, kl = jax.random.split(k)
        idx = jax.random.randint(kb, (cfg.batch_size,), 0, X.shape[0])
        loss, grads = jax.value_and_grad(ssl_loss)(p, kl, X[idx], spec, cfg, mode_index=mode_index,
                                                   max_offset=max_offset, dilations=dilations)
        upd, s = opt.update(grads, s, p)
        return optax.apply_updates(p, upd), s, loss.astype(X.dtype)

    res = run_steps(step, state, lr=lr, n_steps=cfg.n_steps, save_every=cfg.save_every,
                    save_fn=lambda c: c[2], final_fn=lambda c: c[0], xs=step_keys(k_loop, cfg.n_steps))
    return res.final, res.saved, res.ts


# mode, offset range and learning rate are traced: one compilation per (spec, static options)
_train_many = jax.jit(jax.vmap(_train_one, in_axes=(0, None, None, None, None, None, None, None)),
                      static_argnums=(6, 7))
_init_many = jax.jit(jax.vmap(init_model, in_axes=(0, None, None, None)), static_argnums=(1, 2, 3))


def train_ssl(keys, X_train, spec: BackboneSpec, cfg: SSLConfig, *, dtype=jnp.float32, check_finite: bool = True):
    """Train one network per key (vmapped over seeds).

    **Arguments:** `keys` a stack of keys `(S,)`; `X_train (n, L)` signals; `spec`; `cfg` (`ssl_config`);
    `check_finite`: raise `FloatingPointError` naming `lr` (`cfg.lr`) and the steps when the trained
    parameters or the last saved loss are not finite (`check_finite_result`, outside a trace).

    **Returns:** `(params, losses, ts)`: parameters with a leading seed axis, the NT-Xent loss at
    every `save_every`-th step `(S, n_saves)` and the effective times `ts = lr × steps`.
    """
    if not isinstance(check_finite, (bool, np.bool_)):
        raise TypeError(f"`check_finite` must be a bool, got {type(check_finite).__name__}.")
    keys, single = check_keys(keys, "keys")
    if single:
        raise ValueError("`keys` must be a stack of keys (jax.random.split(key, S)); use one per seed.")
    X = as_array(X_train, "X_train", ndim=2).astype(dtype)
    if X.shape[1] != spec.length:
        raise ValueError(f"Mismatched fiber shapes: `X_train` has {X.shape[1]} positions, `spec.length` is {spec.length}.")
    if not isinstance(cfg, SSLConfig):
        raise TypeError(f"`cfg` must be an SSLConfig (use ssl_config), got {type(cfg).__name__}.")
    if cfg.max_offset > spec.length - 1:
        raise ValueError(f"`max_offset` = {cfg.max_offset} lies outside the signal (length {spec.length}).")
    if cfg.mode == "random" or cfg.n_steps == 0:
        params = _init_many(jax.vmap(lambda k: jax.random.split(k)[0])(keys), spec._replace(dilations=(1,)), cfg, X.dtype)
        return params, jnp.zeros((keys.shape[0], 0), X.dtype), jnp.zeros((0,), X.dtype)
    static = cfg._replace(mode="hssl", max_offset=0, lr=1.0)
    # the dilations travel as a traced array, so a receptive-field sweep compiles once per n_layers
    shape_spec = spec._replace(dilations=(1,))
    params, losses, ts = _train_many(keys, X, jnp.asarray(MODES.index(cfg.mode)), jnp.asarray(cfg.max_offset),
                                     jnp.asarray(cfg.lr, X.dtype), jnp.asarray(spec.dilation_vector), shape_spec, static)
    return _finish(params, losses, ts, keys, X.dtype, cfg, check_finite, "train_ssl")


def _finish(params, losses, ts, keys, dtype, cfg, check_finite, where):
    """`(params, losses, ts)` of a vmapped run, checked (outside a trace) with `check_finite_result`."""
    ts = ts[0] if ts.ndim > 1 else ts
    if check_finite:  # the save times in float64 (lr × steps may overflow the training dtype)
        ts64 = np.arange(1, np.shape(ts)[-1] + 1) * (cfg.save_every or 1) * float(cfg.lr)
        check_finite_result(TrainResult(final=params, saved=losses, ts=ts64), lr=cfg.lr, n_steps=cfg.n_steps,
                            where=where)
    if losses is None:
        losses = jnp.zeros((keys.shape[0], 0), dtype)
    return params, losses, ts


# --------------------------------------------------------------------------------------------------
# 2-D images: translations of the torus (fibers = positions) and p4 (fibers = pooled orientations)
# --------------------------------------------------------------------------------------------------
#
# Element coding, action table and fibers: `_model` (`Backbone2D`). Modes, reusing `SSLConfig`
# (`head`, `temperature`, `lr`, `batch_size`, `n_steps`, `max_offset`, `noise_std`; `crop_min` and
# `shear_max` are 1-D only):
#
# - `assl`: SimCLR with a pooled head: each arm an independent uniform group element, then Gaussian
#   pixel noise (σ = noise_std); head on the mean of all fibers;
# - `assl_fiber`: input transformed by `g_1`, `g_2 = g_1 Δ`, head on the identity fiber;
# - `hssl`: one forward pass, head on the fibers at `g_1⁻¹`, `g_2⁻¹`.
#
# `Δ = (Δ_a, Δ_b)` with each component uniform on `{−m..m}` (mod the moduli; `Δ_b = 0` for p4).
# Unlike the 1-D cells, `assl_fiber` draws its group elements from a key independent of `hssl`'s, so
# the two modes are equal in law for the CNN but are separate runs (as in the paper's comparison);
# `fiber_pairs_2d` with the same draws gives identical pairs (tested).

MODES_2D = ("assl", "assl_fiber", "hssl", "random")


def fiber_pairs_2d(backbone_params, xb, g1, g2, spec: Backbone2D, mode: str = "hssl", table=None):
    """Backbone outputs `(u_1, u_2)`, each `(B, C)`, of images `xb (B, S, S)` for the element draws
    `g1, g2 (B,)` in mode "assl_fiber" (transform, identity fiber) or "hssl" (fibers at g⁻¹)."""
    check_choice(mode, "mode", ("assl_fiber", "hssl"))
    return _fiber_pairs(backbone_params, xb, g1, g2, spec, mode, action_table(spec) if table is None else table)


def _fiber_pairs(bp, xb, g1, g2, spec, mode, table):
    f = jax.vmap(lambda x: fibers2d(bp, x, spec))
    if mode == "assl_fiber":
        return f(_act_batch(xb, g1, table))[:, 0], f(_act_batch(xb, g2, table))[:, 0]
    F = f(xb)
    rows = jnp.arange(xb.shape[0])
    return F[rows, element_inverse(g1, spec)], F[rows, element_inverse(g2, spec)]


def _act_batch(xb, g, table):
    B = xb.shape[0]
    return jnp.take_along_axis(xb.reshape(B, -1), jnp.asarray(table)[g], axis=1).reshape(xb.shape)


def _draw_pairs(key, B, spec, max_offset):
    kg, ka, kb = jax.random.split(key, 3)
    ma, mb = spec.moduli
    g1 = jax.random.randint(kg, (B,), 0, spec.n_elements)
    da = jax.random.randint(ka, (B,), -max_offset, max_offset + 1) % ma
    db = jax.random.randint(kb, (B,), -max_offset, max_offset + 1) % mb if mb > 1 else jnp.zeros((B,), jnp.int32)
    return g1, element_compose(g1, da * mb + db, spec)


def _pair_embeddings_2d(params, key, xb, spec, cfg, mode_index, max_offset, table):
    """All three modes as one program (one compilation per backbone; `mode_index` into `MODES_2D` may be
    traced): each arm reads `u = readout(f(T_a x + σ ε))` with `a`, the readout (one fiber or the mean of
    all fibers) and σ chosen by the mode. For `hssl`, `a = e` and σ = 0, so the arm is exactly `f(x)`."""
    B = xb.shape[0]
    k_h, k_n1, k_n2, k_alt, k_g = jax.random.split(key, 5)
    f = jax.vmap(lambda x: fibers2d(params["backbone"], x, spec))
    rows = jnp.arange(B)
    h = jax.random.randint(k_h, (2, B), 0, spec.n_elements)
    ga = _draw_pairs(k_alt, B, spec, max_offset)
    gh = _draw_pairs(k_g, B, spec, max_offset)
    is_assl, is_fiber, is_hssl = mode_index == 0, mode_index == 1, mode_index == 2
    sigma = jnp.where(is_assl, cfg.noise_std, 0.0).astype(xb.dtype)

    def arm(k, i):
        a = jnp.where(is_assl, h[i], jnp.where(is_fiber, ga[i], 0))
        b = jnp.where(is_hssl, element_inverse(gh[i], spec), 0)
        y = _act_batch(xb, a, table)
        F = f(y + sigma * jax.random.normal(k, y.shape, y.dtype))
        return jnp.where(is_assl, jnp.mean(F, axis=1), F[rows, b])

    return apply_head(params["head"], arm(k_n1, 0)), apply_head(params["head"], arm(k_n2, 1))


def _train_one_2d(key, X, mode_index, max_offset, lr, table, spec, cfg):
    k_init, k_loop = jax.random.split(key)
    kb, kh = jax.random.split(k_init)
    params = {"backbone": init_backbone2d(kb, spec, X.dtype), "head": init_head(kh, (spec.channels,) + cfg.head, X.dtype)}
    opt = optax.adam(lr)

    def loss_fn(p, k, xb):
        z1, z2 = _pair_embeddings_2d(p, k, xb, spec, cfg, mode_index, max_offset, table)
        return info_nce_loss(z1, z2, temperature=cfg.temperature)

    def step(carry, k):
        p, s, _ = carry
        k = fast_key(k)
        kb_, kl = jax.random.split(k)
        idx = jax.random.randint(kb_, (cfg.batch_size,), 0, X.shape[0])
        loss, grads = jax.value_and_grad(loss_fn)(p, kl, X[idx])
        upd, s = opt.update(grads, s, p)
        return optax.apply_updates(p, upd), s, loss.astype(X.dtype)

    state = (params, opt.init(params), jnp.zeros((), X.dtype))
    res = run_steps(step, state, lr=lr, n_steps=cfg.n_steps, save_every=cfg.save_every,
                    save_fn=lambda c: c[2], final_fn=lambda c: c[0], xs=step_keys(k_loop, cfg.n_steps))
    return res.final, res.saved, res.ts


_train_many_2d = jax.jit(jax.vmap(_train_one_2d, in_axes=(0, None, None, None, None, None, None, None)),
                         static_argnums=(6, 7))


def train_ssl_2d(keys, X_train, spec: Backbone2D, cfg: SSLConfig, *, dtype=jnp.float32, check_finite: bool = True):
    """Train one 2-D backbone + head per key (vmapped over seeds); mode from `cfg.mode` (`MODES_2D`).

    **Arguments:** `keys` a stack of keys `(S,)`; `X_train (n, side, side)` images; `spec`
    (`backbone2d_spec`); `cfg` (`ssl_config`); `check_finite` as in `train_ssl`.

    **Returns:** `(params, losses, ts)` as `train_ssl`: `params["backbone"]` with a leading seed axis
    (the random-init weights for mode "random", with the same backbone keys as the trained modes).
    """
    if not isinstance(check_finite, (bool, np.bool_)):
        raise TypeError(f"`check_finite` must be a bool, got {type(check_finite).__name__}.")
    keys, single = check_keys(keys, "keys")
    if single:
        raise ValueError("`keys` must be a stack of keys (jax.random.split(key, S)); use one per seed.")
    if not isinstance(spec, Backbone2D):
        raise TypeError(f"`spec` must be a Backbone2D (use backbone2d_spec), got {type(spec).__name__}.")
    if not isinstance(cfg, SSLConfig):
        raise TypeError(f"`cfg` must be an SSLConfig (use ssl_config), got {type(cfg).__name__}.")
    check_choice(cfg.mode, "mode", MODES_2D)
    X = as_array(X_train, "X_train", ndim=3).astype(dtype)
    if X.shape[1:] != (spec.side, spec.side):
        raise ValueError(f"`X_train` must hold ({spec.side}, {spec.side}) images for this backbone, got {tuple(X.shape[1:])}.")
    if cfg.max_offset > spec.moduli[0] - 1:
        raise ValueError(f"`max_offset` = {cfg.max_offset} exceeds the group (moduli {spec.moduli}).")
    if cfg.mode == "random" or cfg.n_steps == 0:
        bkeys = jax.vmap(lambda k: jax.random.split(jax.random.split(k)[0])[0])(keys)
        params = {"backbone": jax.vmap(lambda k: init_backbone2d(k, spec, X.dtype))(bkeys)}
        return params, jnp.zeros((keys.shape[0], 0), X.dtype), jnp.zeros((0,), X.dtype)
    static = cfg._replace(mode="hssl", max_offset=0, lr=1.0)
    params, losses, ts = _train_many_2d(keys, X, jnp.asarray(MODES_2D.index(cfg.mode)), jnp.asarray(cfg.max_offset),
                                        jnp.asarray(cfg.lr, X.dtype),
                                        jnp.asarray(action_table(spec)), spec, static)
    return _finish(params, losses, ts, keys, X.dtype, cfg, check_finite, "train_ssl_2d")

r"""Diagnostics of H-SSL encoders: pooling degeneracy, tiedness of towers, invariance of pooled features."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._stats import ViewStats, view_stats
from .._validation import as_array, check_int, check_keys
from ._data import signal_fibers
from ._model import Backbone2D, BackboneSpec, fibers2d, pooled_features


def pooled_linear_features(Ws, X) -> jax.Array:
    """`z(x) = Σ_g W_gᵀ P_g x` for towers `Ws (L, r, k)` (or one tied `W (r, k)`), rows of `X (n, L)`."""
    X = as_array(X, "X", ndim=2)
    Ws = as_array(Ws, "Ws", ndim=(2, 3))
    r = Ws.shape[-2]
    V = signal_fibers(X, r)                                            # (n, L, r)
    if Ws.ndim == 2:
        return jnp.einsum("nga,ak->nk", V, Ws)
    if Ws.shape[0] != X.shape[1]:
        raise ValueError(f"Mismatched fiber shapes: `Ws` has {Ws.shape[0]} towers, the signals {X.shape[1]} positions.")
    return jnp.einsum("nga,gak->nk", V, Ws)


def group_only_pooled_stats(key, X, features) -> ViewStats:
    """`ViewStats` of pooled features `features(X) -> (n, k)` under group-only augmentation: each
    row is shifted by two independent uniform `g_1, g_2`. For an equivariant encoder `C+ = C0`."""
    key, _ = check_keys(key, "key")
    X = as_array(X, "X", ndim=2)
    L = X.shape[1]
    k1, k2 = jax.random.split(key)
    g1 = jax.random.randint(k1, (X.shape[0],), 0, L)
    g2 = jax.random.randint(k2, (X.shape[0],), 0, L)
    shift = jax.vmap(lambda x, g: jnp.roll(x, g))
    return view_stats(features(shift(X, g1)), features(shift(X, g2)))


def network_pooling_degeneracy(key, params, X, spec: BackboneSpec) -> jax.Array:
    """`max|C+ − C0| / max|C0|` of the pooled backbone features under group-only augmentation."""
    st = group_only_pooled_stats(key, X, lambda Z: pooled_features(params, Z, spec))
    return jnp.max(jnp.abs(st.Cp - st.C0)) / jnp.max(jnp.abs(st.C0))


def tiedness(Ws) -> jax.Array:
    """`max_g ‖W_g − W̄‖_F / ‖W̄‖_F`: 0 for towers that are all equal."""
    Ws = as_array(Ws, "Ws", ndim=3)
    mean = jnp.mean(Ws, axis=0)
    return jnp.max(jnp.linalg.norm((Ws - mean).reshape(Ws.shape[0], -1), axis=1)) / jnp.linalg.norm(mean)


def pooled_invariance_gap(Ws, X, g: int = 1) -> jax.Array:
    """`‖z(T_g X) − z(X)‖_F / ‖z(X)‖_F` of the pooled linear feature (0 for tied towers)."""
    X = as_array(X, "X", ndim=2)
    g = check_int(g, "g", minimum=None)
    z = pooled_linear_features(Ws, X)
    return jnp.linalg.norm(pooled_linear_features(Ws, jnp.roll(X, g, axis=1)) - z) / jnp.linalg.norm(z)


def probe_pooled(backbone_params, spec: BackboneSpec, X_train, y_train, X_test, y_test, *, reg: float = 1e-3,
                 steps: int = 300) -> jax.Array:
    """Held-out accuracy of a logistic probe on globally pooled backbone features, one per seed
    (the leaves of `backbone_params` carry a leading seed axis)."""
    from .._metrics import logistic_probe

    X_train = as_array(X_train, "X_train", ndim=2)
    X_test = as_array(X_test, "X_test", ndim=2)
    leaves = jax.tree_util.tree_leaves(backbone_params)
    S = leaves[0].shape[0]
    accs = []
    for s in range(S):
        p = jax.tree_util.tree_map(lambda a: a[s], backbone_params)
        ztr = pooled_features(p, X_train.astype(leaves[0].dtype), spec)
        zte = pooled_features(p, X_test.astype(leaves[0].dtype), spec)
        accs.append(logistic_probe(ztr.astype(jnp.float64) if jax.config.jax_enable_x64 else ztr, y_train,
                                   zte.astype(ztr.dtype) if not jax.config.jax_enable_x64 else zte.astype(jnp.float64),
                                   y_test, reg=reg, steps=steps, n_classes=10).accuracy)
    return jnp.stack(accs)


def _pooled2d_one(bp, X, spec):
    return jax.lax.map(lambda xb: jax.vmap(lambda x: jnp.mean(fibers2d(bp, x, spec), axis=0))(xb),
                       X.reshape((-1, 100) + X.shape[1:])).reshape(X.shape[0], -1)


# seeds vmapped, images in chunks of 100 (bounded memory for the untied controls); one compile per spec
_pooled2d_many = jax.jit(jax.vmap(_pooled2d_one, in_axes=(0, None, None)), static_argnums=2)


def pooled_features_2d(backbone_params, X, spec: Backbone2D) -> jax.Array:
    """Mean of all fibers (global pooling over positions, and orientations for p4) of images
    `X (n, side, side)` for every seed: `(S, n, C)` (`n` a multiple of 100)."""
    X = as_array(X, "X", ndim=3)
    if X.shape[1:] != (spec.side, spec.side):
        raise ValueError(f"`X` must hold ({spec.side}, {spec.side}) images for this backbone, got {tuple(X.shape[1:])}.")
    if X.shape[0] % 100:
        raise ValueError(f"`X` must hold a multiple of 100 images (features are computed in chunks), got {X.shape[0]}.")
    dtype = jax.tree_util.tree_leaves(backbone_params)[0].dtype
    return _pooled2d_many(backbone_params, X.astype(dtype), spec)


def probe_pooled_2d(backbone_params, spec: Backbone2D, X_train, y_train, X_test, y_test, *, reg: float = 1e-3,
                    steps: int = 300) -> jax.Array:
    """Held-out accuracy of a logistic probe on globally pooled 2-D backbone features, one per seed."""
    from .._metrics import logistic_probe

    Ztr = pooled_features_2d(backbone_params, X_train, spec)
    Zte = pooled_features_2d(backbone_params, X_test, spec)
    return jnp.stack([logistic_probe(Ztr[s], y_train, Zte[s], y_test, reg=reg, steps=steps, n_classes=10).accuracy
                      for s in range(Ztr.shape[0])])

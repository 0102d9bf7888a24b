r"""Small-MLP probes on frozen representations (the paper's second probe next to the linear one).

`mlp_probe` trains a one-hidden-layer ReLU classifier `z ↦ W₂ relu(W₁ z̃ + b₁) + b₂` on standardised
features `z̃ = (z − μ_train)/s_train` (training statistics, as `ssldyn.logistic_probe`) by optax Adam
(default lr 3e-4 and batch 128, the paper's probe optimiser) on the softmax cross-entropy, with one
random permutation of the training rows per epoch (the last incomplete batch is dropped), and
reports the accuracy on held-out rows at the last iterate.

`mlp_probes` fits many probes in one compiled program: a stack of S representations (seeds) times a
stack of P label vectors (content and style labels with their own numbers of classes; logits of the
classes a label does not have are masked), vmapped over both axes. Every call with the same shapes
reuses one compilation.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validation import as_array, check_int, check_keys, check_positive

_MASKED = -1e9  # logit of a class that a label does not have


class MLPProbeResult(NamedTuple):
    """Result of `mlp_probe`/`mlp_probes`: held-out `accuracy` (None without test labels),
    `train_accuracy`, and the held-out `predictions` (leading axes (S, P) for `mlp_probes`)."""

    accuracy: jax.Array | None
    train_accuracy: jax.Array
    predictions: jax.Array


def _standardise(Z):
    mean = jnp.mean(Z, axis=0)
    std = jnp.std(Z, axis=0)
    return mean, jnp.where(std > 0, std, 1.0)


def _forward(params, x):
    (W1, b1), (W2, b2) = params
    return jax.nn.relu(x @ W1 + b1) @ W2 + b2


def _fit_one(key, ztr, ytr, zte, n_valid, *, n_classes, hidden, epochs, batch_size, lr):
    mean, scale = _standardise(ztr)
    xtr, xte = (ztr - mean) / scale, (zte - mean) / scale
    n, k = xtr.shape
    dt = xtr.dtype
    k1, k2, k_ep = jax.random.split(key, 3)
    params = ((jax.random.normal(k1, (k, hidden), dt) * jnp.sqrt(2.0 / k).astype(dt), jnp.zeros((hidden,), dt)),
              (jax.random.normal(k2, (hidden, n_classes), dt) * jnp.sqrt(1.0 / hidden).astype(dt),
               jnp.zeros((n_classes,), dt)))
    mask = jnp.where(jnp.arange(n_classes) < n_valid, 0.0, _MASKED).astype(dt)
    opt = optax.adam(lr)
    n_batches = n // batch_size

    def loss(p, xb, yb):
        logits = _forward(p, xb) + mask
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, yb))

    def step(carry, idx):
        p, s = carry
        g = jax.grad(loss)(p, xtr[idx], ytr[idx])
        upd, s = opt.update(g, s, p)
        return (optax.apply_updates(p, upd), s), None

    def epoch(carry, ek):
        perm = jax.random.permutation(ek, n)[: n_batches * batch_size].reshape(n_batches, batch_size)
        return jax.lax.scan(step, carry, perm)[0], None

    (params, _), _ = jax.lax.scan(epoch, (params, opt.init(params)), jax.random.split(k_ep, epochs))
    pred_tr = jnp.argmax(_forward(params, xtr) + mask, axis=-1)
    pred_te = jnp.argmax(_forward(params, xte) + mask, axis=-1)
    return pred_tr, pred_te


@eqx.filter_jit
def _fit_grid(keys, Ztr, Ytr, Zte, n_valid, *, n_classes, hidden, epochs, batch_size, lr):
    # keys (S, P, 2), Ztr (S, n, k), Ytr (P, n), Zte (S, m, k), n_valid (P,) -> predictions (S, P, ·)
    def one(key, ztr, ytr, zte, nv):
        return _fit_one(key, ztr, ytr, zte, nv, n_classes=n_classes, hidden=hidden, epochs=epochs,
                        batch_size=batch_size, lr=lr)

    over_labels = jax.vmap(one, in_axes=(0, None, 0, None, 0))
    return jax.vmap(over_labels, in_axes=(0, 0, None, 0, None))(keys, Ztr, Ytr, Zte, n_valid)


def _labels(y, name, n):
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != n:
        raise ValueError(f"`{name}` must have shape (P, {n}), got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"`{name}` must hold non-negative integer class labels.")
    return y.astype(np.int32)


def mlp_probes(key, Z_train, Y_train, Z_test, Y_test=None, *, n_classes=None, hidden: int = 128, lr=3e-4,
               epochs: int = 200, batch_size: int = 128) -> MLPProbeResult:
    r"""S × P MLP probes in one compiled program (vmapped over representations and labels).

    **Arguments:**
    - `key`: a PRNG key (split into one key per probe: initialisation and epoch permutations).
    - `Z_train`: (S, n, k) training representations (a stack of S, e.g. seeds); (n, k) is S = 1.
    - `Y_train`: (P, n) integer labels (P label sets); (n,) is P = 1.
    - `Z_test`: (S, m, k); `Y_test`: optional (P, m).
    - `n_classes`: (P,) numbers of classes (default: max label + 1 over the given labels, per set).
    - `hidden` (width of the hidden layer), `lr` (Adam), `epochs`, `batch_size` (≤ n).

    **Returns:** `MLPProbeResult` with `accuracy` and `train_accuracy` of shape (S, P) and
    `predictions` (S, P, m).
    """
    Ztr = as_array(Z_train, "Z_train")
    Zte = as_array(Z_test, "Z_test")
    if Ztr.ndim == 2:
        Ztr = Ztr[None]
    if Zte.ndim == 2:
        Zte = Zte[None]
    if Ztr.ndim != 3 or Zte.ndim != 3:
        raise ValueError(f"`Z_train` and `Z_test` must be (n, k) or (S, n, k), got {Ztr.shape} and {Zte.shape}.")
    if Ztr.shape[0] != Zte.shape[0] or Ztr.shape[2] != Zte.shape[2]:
        raise ValueError(f"`Z_train` {Ztr.shape} and `Z_test` {Zte.shape} must agree in S and k.")
    if not (np.all(np.isfinite(np.asarray(Ztr))) and np.all(np.isfinite(np.asarray(Zte)))):
        raise ValueError("`Z_train` and `Z_test` must be finite.")
    S, n, _ = Ztr.shape
    m = Zte.shape[1]
    ytr = np.asarray(Y_train)
    ytr = _labels(ytr[None] if ytr.ndim == 1 else ytr, "Y_train", n)
    P = ytr.shape[0]
    yte = None
    if Y_test is not None:
        yte = np.asarray(Y_test)
        yte = _labels(yte[None] if yte.ndim == 1 else yte, "Y_test", m)
        if yte.shape[0] != P:
            raise ValueError(f"`Y_test` must hold {P} label sets like `Y_train`, got {yte.shape[0]}.")
    if n_classes is None:
        both = ytr if yte is None else np.concatenate([ytr, yte], axis=1)
        nc = both.max(axis=1) + 1
    else:
        nc = np.atleast_1d(np.asarray(n_classes))
        if nc.shape != (P,) or not np.issubdtype(nc.dtype, np.integer) or np.any(nc < 2):
            raise ValueError(f"`n_classes` must be {P} integers ≥ 2, got {n_classes!r}.")
        if np.any(ytr.max(axis=1) >= nc) or (yte is not None and np.any(yte.max(axis=1) >= nc)):
            raise ValueError("labels must lie in [0, n_classes) for every label set (`n_classes`).")
    nc = np.maximum(nc, 2).astype(np.int32)
    hidden = check_int(hidden, "hidden", minimum=1)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if batch_size > n:
        raise ValueError(f"`batch_size` must be at most the number of training rows {n}, got {batch_size}.")
    check_positive(lr, "lr")
    keys, single = check_keys(key, "key")
    if not single:
        raise ValueError("`key` must be one PRNG key (it is split into one key per probe).")
    keys = jax.random.split(keys, S * P)
    keys = keys.reshape((S, P) + keys.shape[1:])
    pred_tr, pred_te = _fit_grid(keys, Ztr, jnp.asarray(ytr), Zte, jnp.asarray(nc), n_classes=int(nc.max()),
                                 hidden=hidden, epochs=epochs, batch_size=batch_size, lr=lr)
    train_acc = jnp.mean(pred_tr == jnp.asarray(ytr)[None], axis=-1)
    acc = None if yte is None else jnp.mean(pred_te == jnp.asarray(yte)[None], axis=-1)
    return MLPProbeResult(acc, train_acc, pred_te)


def mlp_probe(key, Z_train, y_train, Z_test, y_test=None, *, n_classes: int | None = None, hidden: int = 128,
              lr=3e-4, epochs: int = 200, batch_size: int = 128) -> MLPProbeResult:
    """One MLP probe: `Z_train` (n, k), `y_train` (n,), `Z_test` (m, k), optional `y_test` (m,);
    scalar accuracies (see `mlp_probes` for the arguments)."""
    for name, v in (("Z_train", Z_train), ("Z_test", Z_test)):
        if np.ndim(v) != 2:
            raise ValueError(f"`{name}` must be a 2-D array (n, k), got {np.ndim(v)} dimensions.")
    for name, v in (("y_train", y_train), ("y_test", y_test)):
        if v is not None and np.ndim(v) != 1:
            raise ValueError(f"`{name}` must be a 1-D array of labels, got {np.ndim(v)} dimensions.")
    res = mlp_probes(key, Z_train, y_train, Z_test, y_test, n_classes=None if n_classes is None else [n_classes],
                     hidden=hidden, lr=lr, epochs=epochs, batch_size=batch_size)
    return MLPProbeResult(None if res.accuracy is None else res.accuracy[0, 0], res.train_accuracy[0, 0],
                          res.predictions[0, 0])

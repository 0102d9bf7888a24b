r"""The finite networks that the ODEs describe, trained with optax on the same time axis.

Network (row layout, one sample per row):

    f(x) = Wᵀ c_h φ(V x),     V ∈ R^{h×d},  W ∈ R^{h×k},   representations R = Φ W,  Φ = c_h φ(X Vᵀ).

- `parametrization="standard"`: `V_ij ~ N(0, 1/d)` is the trained parameter.
- `parametrization="ntk"`: `V = V̂/√d` with `V̂_ij ~ N(0, 1)` trained; same function at
  initialisation, gradients of the first layer rescaled by `1/d` (Jacot et al. 2018).
- `hidden_layers=2` inserts a second hidden layer `c_h φ(V₂ ·)`, `V₂ ∈ R^{h×h}`, `N(0, 1/h)`.

Training is full-batch gradient descent on `L(θ) = −tr(Rᵀ B R) + (ω/2)‖θ‖²` over the stacked views
(`pair_matrix`), for `n_steps` steps at learning rate η; time is **t = η × steps**, as for the ODE.

- `constrained=True`: W on the Stiefel manifold, Riemannian GD with a QR (or polar) retraction,
  `W ← qf(W − η (G − W sym(WᵀG)))`; its continuous limit is the Oja flow.
- `constrained=False`: plain GD on W (the naive dynamics, which collapse).
- `train="last"`: V frozen (random-feature model; the output-space ODE is then exact up to O(η));
  `train="all"`: V also trained by plain GD (optax `sgd`).

References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024, §4 and §10.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ._kernels import get_activation
from ._manifolds import Stiefel, stiefel_init
from ._training import TrainResult, check_loop, finite_result, run_steps
from ._validation import as_array, check_choice, check_int, check_keys, check_positive, check_rank_k

TRAIN_MODES = ("last", "all")
PARAMETRIZATIONS = ("standard", "ntk")


class NetworkSpec(eqx.Module):
    """Static description of a network: sizes, activation, scale and parametrisation.

    **Fields:** `d` inputs, `h` width, `k` outputs, `activation` (name or callable), `feature_scale`
    c_h (float, or `"1/sqrt(h)"`), `parametrization` (`"standard"`/`"ntk"`), `hidden_layers` (1 or 2).
    """

    d: int = eqx.field(static=True)
    h: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    activation: object = eqx.field(static=True, default="relu")
    feature_scale: float | str = eqx.field(static=True, default=1.0)
    parametrization: str = eqx.field(static=True, default="standard")
    hidden_layers: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        for name in ("d", "h", "k"):
            check_int(getattr(self, name), name, minimum=1)
        check_rank_k(self.k, self.h, "k")
        get_activation(self.activation)
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"`parametrization` must be one of {PARAMETRIZATIONS}, got {self.parametrization!r}.")
        if self.hidden_layers not in (1, 2):
            raise ValueError(f"`hidden_layers` must be 1 or 2, got {self.hidden_layers!r}.")
        if isinstance(self.feature_scale, str):
            if self.feature_scale != "1/sqrt(h)":
                raise ValueError(f"`feature_scale` must be a positive float or '1/sqrt(h)', got {self.feature_scale!r}.")
        else:
            check_positive(self.feature_scale, "feature_scale")

    @property
    def c_h(self) -> float:
        return self.h**-0.5 if self.feature_scale == "1/sqrt(h)" else float(self.feature_scale)


def init_network(key: jax.Array, spec: NetworkSpec, *, constrained: bool = True, dtype=jnp.float32) -> dict:
    """Initial parameters `{"V": (h, d), "W": (h, k)[, "V2": (h, h)]}`.

    `W` is Haar on `St(h, k)` when `constrained`, otherwise Gaussian `N(0, 1/h)` (same scale).
    The same key always gives the same parameters, so ODE arms can rebuild a network's V and W(0).
    `key`: one PRNG key; `dtype`: a floating dtype.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"`spec` must be a NetworkSpec, got {type(spec).__name__}.")
    key, single = check_keys(key, "key")
    if not single:
        raise ValueError(f"`key` must be a single PRNG key (vmap `init_network` over split keys), got shape "
                         f"{tuple(key.shape)}.")
    try:
        floating = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"`dtype` must be a floating dtype (jnp.float32 or jnp.float64), got {dtype!r}.")
    kv, kw, k2 = jax.random.split(key, 3)
    if spec.parametrization == "standard":
        V = jax.random.normal(kv, (spec.h, spec.d), dtype) / jnp.sqrt(spec.d).astype(dtype)
    else:
        V = jax.random.normal(kv, (spec.h, spec.d), dtype)
    if constrained:
        W = stiefel_init(kw, spec.h, spec.k, dtype=dtype)
    else:
        W = jax.random.normal(kw, (spec.h, spec.k), dtype) / jnp.sqrt(spec.h).astype(dtype)
    params = {"V": V, "W": W}
    if spec.hidden_layers == 2:
        params["V2"] = jax.random.normal(k2, (spec.h, spec.h), dtype) / jnp.sqrt(spec.h).astype(dtype)
    return params


def _check_inputs(spec, params, X, name: str = "X") -> jax.Array:
    check_params(spec, params)
    X = as_array(X, name, ndim=2, nonempty=True)
    if X.shape[1] != spec.d:
        raise ValueError(f"`{name}` must have {spec.d} columns (the input dimension d of the spec), got shape "
                         f"{tuple(X.shape)}.")
    return X


def network_features(spec: NetworkSpec, params: dict, X) -> jax.Array:
    """Hidden features `Φ = c_h φ(X Vᵀ)` (n, h) of the last hidden layer.

    `X` (n, d): a non-empty, finite, real matrix with the spec's input dimension (a nested list works)."""
    X = _check_inputs(spec, params, X)
    return _features(spec, params, X)


def _features(spec, params, X):
    phi = get_activation(spec.activation)
    V = params["V"] if spec.parametrization == "standard" else params["V"] / jnp.sqrt(spec.d)
    H = spec.c_h * phi(X @ V.T)
    if spec.hidden_layers == 2:
        H = spec.c_h * phi(H @ params["V2"].T)
    return H


def network_apply(spec: NetworkSpec, params: dict, X) -> jax.Array:
    """Representations `R = Φ W` (n, k); `X` as in `network_features`."""
    X = _check_inputs(spec, params, X)
    return _features(spec, params, X) @ params["W"]


def check_params(spec: NetworkSpec, params) -> dict:
    """Validate a parameter dict against `spec`: keys `V`, `W` (and `V2` for two hidden layers), each of
    the spec's shape (a leading seed axis, as from `jax.vmap(init_network)`, is allowed). Returns it."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"`spec` must be a NetworkSpec, got {type(spec).__name__}.")
    if not isinstance(params, dict):
        raise TypeError(f"`params` must be a dict of arrays (from `init_network`), got {type(params).__name__}.")
    shapes = {"V": (spec.h, spec.d), "W": (spec.h, spec.k)}
    if spec.hidden_layers == 2:
        shapes["V2"] = (spec.h, spec.h)
    missing = [key for key in shapes if key not in params]
    if missing:
        raise ValueError(f"`params` lacks the key(s) {missing}: a network with this spec needs {sorted(shapes)} "
                         f"(use `init_network(key, spec)`), got keys {sorted(params)}.")
    for key, shape in shapes.items():
        got = tuple(jnp.shape(params[key]))
        if got[-2:] != shape:
            raise ValueError(
                f"`params['{key}']` must have shape {shape} for the spec (d={spec.d}, h={spec.h}, k={spec.k}), got "
                f"{got}: these parameters belong to a network of another size.")
    return params


def _check_train_args(spec, Z, B, lr, n_steps, train, save_every):
    Z = as_array(Z, "Z", ndim=2, nonempty=True)
    if Z.shape[1] != spec.d:
        raise ValueError(f"`Z` must have {spec.d} columns (the input dimension), got {Z.shape[1]}.")
    B = as_array(B, "B", ndim=2)
    if B.shape != (Z.shape[0], Z.shape[0]):
        raise ValueError(f"`B` must be ({Z.shape[0]}, {Z.shape[0]}) to match `Z`, got {tuple(B.shape)}.")
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    check_choice(train, "train", TRAIN_MODES)
    return Z, B, n_steps, save_every


@finite_result()
def train_network(
    spec: NetworkSpec,
    params: dict,
    Z: Float[Array, "m d"],
    B: Float[Array, "m m"],
    *,
    lr: float = 0.01,
    n_steps: int = 100,
    train: str = "last",
    constrained: bool = True,
    weight_decay: float = 0.0,
    retraction: str = "qr",
    X_eval: Float[Array, "m_eval d"] | None = None,
    save_every: int | None = None,
) -> TrainResult:
    r"""Full-batch GD on `−tr(Rᵀ B R) + (ω/2)‖θ‖²` for `n_steps` steps (time `t = lr·n_steps`).

    **Arguments:**
    - `spec`, `params`: the network (`init_network`).
    - `Z`: stacked inputs (m, d) (`stack_views`); `B`: pair matrix (m, m) (`pair_matrix`).
    - `lr`: learning rate η; `n_steps`: number of full-batch steps ("epochs").
    - `train`: `"last"` (V frozen) or `"all"`.
    - `constrained`: Riemannian GD on the Stiefel manifold for W (else plain GD).
    - `weight_decay`: ω ≥ 0 (on trained parameters; on a constrained W it has no effect).
    - `retraction`: `"qr"` or `"polar"`.
    - `X_eval`, `save_every`: record `network_apply(X_eval)` every `save_every` steps.

    **Returns:** a `TrainResult`: `params` (= `final`) the trained parameters, `saved` the
    representations of `X_eval` after steps `save_every, 2·save_every, …` (None without
    `save_every`), `ts` their times `lr × steps`. Vmap over `params` (e.g. initialised from split keys) to train
    several seeds at once.
    """
    params = check_params(spec, params)
    Z, B, n_steps, save_every = _check_train_args(spec, Z, B, lr, n_steps, train, save_every)
    check_choice(retraction, "retraction", ("qr", "polar"))
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    if X_eval is None:
        X_eval = Z
    else:
        X_eval = as_array(X_eval, "X_eval", ndim=2)
        if X_eval.shape[1] != spec.d:
            raise ValueError(f"`X_eval` must have {spec.d} columns (the input dimension), got shape "
                             f"{tuple(X_eval.shape)}.")
    # a non-finite result raises FloatingPointError naming `lr` and the steps (`@finite_result`)
    return _train(spec, params, Z, B, jnp.asarray(lr, Z.dtype), jnp.asarray(weight_decay, Z.dtype), X_eval,
                  n_steps=n_steps, train=train, constrained=constrained, retraction=retraction, save_every=save_every)


@functools.partial(eqx.filter_jit)
def _train(spec, params, Z, B, lr, weight_decay, X_eval, *, n_steps, train, constrained, retraction, save_every):
    manifold = Stiefel(retraction=retraction)
    trainable = {"W"} if train == "last" else set(params)
    opt = optax.sgd(lr)
    inner = {k: v for k, v in params.items() if k != "W" and k in trainable}
    opt_state = opt.init(inner)

    def loss(p):
        R = network_apply(spec, p, Z)
        reg = 0.5 * weight_decay * sum(jnp.sum(p[k] ** 2) for k in trainable)
        return -jnp.sum(R * (B @ R)) + reg

    def step(carry, _):
        p, s = carry
        grads = jax.grad(loss)(p)
        W = p["W"]
        if constrained:
            W = manifold.retract(W, -lr * manifold.project(W, grads["W"]))
        else:
            W = W - lr * grads["W"]
        new = dict(p)
        new["W"] = W
        if inner:
            g_inner = {k: grads[k] for k in inner}
            updates, s = opt.update(g_inner, s, {k: p[k] for k in inner})
            new.update(optax.apply_updates({k: p[k] for k in inner}, updates))
        return new, s

    if train == "last":
        # V frozen: precompute the features once; the step only touches W.
        Phi = network_features(spec, params, Z)

        def step_last(W, _):
            G = -2.0 * Phi.T @ (B @ (Phi @ W)) + weight_decay * W
            if constrained:
                return manifold.retract(W, -lr * manifold.project(W, G))
            return W - lr * G

        def rebuild(W):
            return {**params, "W": W}

        update, state = step_last, params["W"]
    else:

        def rebuild(st):
            return st[0]

        update, state = step, (params, opt_state)

    return run_steps(update, state, lr=lr, n_steps=n_steps, save_every=save_every,
                     save_fn=lambda st: network_apply(spec, rebuild(st), X_eval), final_fn=rebuild)

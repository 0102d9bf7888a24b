r"""The linear BYOL/SimSiam network trained with optax SGD on fresh Gaussian views, through `ssldyn._training`.

`train_linear_byol` is the network of `LinearBYOLFlow` (trained predictor) and of
`ClosedFormPredictorFlow` (DirectPred / IsoLoss): one `run_steps` loop whose per-step keys are
`step_keys(key, n_steps)`, returning a `TrainResult` on the time axis `t = lr × steps`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._linalg import sym
from .._training import TrainResult, check_loop, finite_result, run_steps, step_keys
from .._validation import as_array, check_choice, check_int, check_positive, is_concrete
from ._loss import euclidean_byol_loss, isoloss
from ._model import CORRELATIONS, LOSSES, BYOLState, as_state, ema, flag, gaussian_views, predictor_matrix

PREDICTORS = ("trained", "closed_form")


@finite_result()
def train_linear_byol(key: PRNGKeyArray, state0: BYOLState, *, lam: Float[Array, " d"],
                      lam_aug: float | Float[Array, "*d"], lr: float | Float[Array, ""], n_steps: int,
                      batch_size: int, alpha_p=1.0, weight_decay=0.0, beta=None, predictor: str = "trained",
                      loss: str = "byol", exponent=0.5, eps=0.01, normalize: bool = True,
                      correlation: str = "outputs", fhat_momentum=0.3, save_every: int | None = None) -> TrainResult:
    r"""Train the linear BYOL/SimSiam network with optax SGD on fresh Gaussian views (`gaussian_views`).

    Per step (η = `lr`, `t = η·step`), on a batch with the symmetrised loss (`linear_byol_loss`):

        W   ← W   − η (∇_W L + ω W)
        W_p ← W_p − η (α_p ∇_{W_p} L + ω W_p)                    (`predictor="trained"`)
        W_p = g(F̂),  F̂ ← μ F̂ + (1 − μ) F_batch                  (`predictor="closed_form"`)
        W_a ← m W_a + (1 − m) W,   m = 1 − βη                      (EMA after the online step)

    With `loss="isoloss"` the gradient of W is that of `isoloss` (closed-form predictor only).
    `F_batch` is `W Wᵀ` for `correlation="weights"` and the batch mean of `f fᵀ` over both views for
    `"outputs"`. Pure function of its inputs: `jax.vmap` it over `key` (seeds) or `state0`.

    **Arguments:**
    - `key`; `state0`: `BYOLState` (with `predictor="closed_form"` its `Wp` is ignored; its `Wa`
      must equal `W` when `beta=None`).
    - `lam`, `lam_aug`: data and augmentation variances (d,).
    - `lr` > 0, `n_steps`, `batch_size`; `alpha_p`, `weight_decay`, `beta` as in `LinearBYOLFlow`
      (requires `β·lr ≤ 1`).
    - `predictor`: `"trained"` or `"closed_form"`; `loss`: `"byol"` or `"isoloss"`.
    - `exponent`, `eps`, `normalize`, `correlation`: closed-form predictor map; `fhat_momentum` μ.
    - `save_every`: also save every `save_every`-th state.

    **Returns:** a `TrainResult`: `final` the final `BYOLState`, `saved` the `BYOLState`s after steps
    `save_every, 2·save_every, …` stacked along a leading axis (None without `save_every`), `ts` their
    times `lr × steps`. For the closed-form predictor the returned `Wp` is `g(F̂)`. It unpacks as
    `final, saved = train_linear_byol(...)`.
    """
    check_choice(predictor, "predictor", PREDICTORS)
    check_choice(loss, "loss", LOSSES)
    if loss == "isoloss" and predictor == "trained":
        raise ValueError("`loss='isoloss'` sends no gradient to the predictor: use `predictor='closed_form'`.")
    check_choice(correlation, "correlation", CORRELATIONS)
    n_steps, save_every = check_loop(lr, n_steps, save_every)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_positive(alpha_p, "alpha_p")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    check_positive(fhat_momentum, "fhat_momentum", allow_zero=True)
    if beta is not None:
        check_positive(beta, "beta")
        if is_concrete(beta) and is_concrete(lr) and float(beta) * float(lr) > 1.0:
            raise ValueError(f"`beta * lr` must be <= 1 (EMA momentum m = 1 - beta*lr >= 0), got {float(beta) * float(lr)}.")
    W0, Wp0, Wa0 = as_state(state0, BYOLState, "state0", 2)
    lam = as_array(lam, "lam", ndim=1)
    lam_aug = jnp.broadcast_to(as_array(lam_aug, "lam_aug"), lam.shape)
    if W0.shape[1] != lam.shape[0]:
        raise ValueError(f"`state0.W` must be (k, {lam.shape[0]}) to match `lam`, got {tuple(W0.shape)}.")
    dt = W0.dtype
    hp = dict(lr=jnp.asarray(lr, dt), alpha_p=jnp.asarray(alpha_p, dt), omega=jnp.asarray(weight_decay, dt),
              beta=jnp.asarray(jnp.inf if beta is None else beta, dt), exponent=jnp.asarray(exponent, dt),
              eps=jnp.asarray(eps, dt), mu=jnp.asarray(fhat_momentum, dt), byol=flag(loss == "byol").astype(dt),
              normalized=flag(normalize).astype(dt), outputs=flag(correlation == "outputs").astype(dt))
    return _train_linear_byol(key, (W0, Wp0, Wa0), lam, lam_aug, hp, n_steps=n_steps, batch_size=batch_size,
                              closed=predictor == "closed_form", save_every=save_every)


@eqx.filter_jit
def _train_linear_byol(key, state0, lam, lam_aug, hp, *, n_steps, batch_size, closed, save_every):
    # Loss, predictor map, correlation and SimSiam-vs-EMA are array flags: one compilation per
    # (shapes, n_steps, batch_size, trained/closed-form predictor).
    W0, Wp0, Wa0 = state0
    opt = optax.sgd(hp["lr"])
    params0 = {"W": W0, "Wp": Wp0}
    opt_state0 = opt.init(params0)
    simsiam, rate = ema(hp["beta"])
    m = 1.0 - rate * hp["lr"]

    def batch_corr(W, X1, X2):
        Z = jnp.concatenate([X1, X2]) @ W.T
        return jnp.where(hp["outputs"] > 0.5, Z.T @ Z / Z.shape[0], W @ W.T)

    def loss_fn(params, Wa, X1, X2, Wp_fixed, byol):
        W = params["W"]
        Wp = Wp_fixed if closed else params["Wp"]
        target = jnp.where(simsiam, jax.lax.stop_gradient(W), Wa)

        def one(A, B):
            z = A @ W.T
            zt = B @ target.T
            if not byol:
                return isoloss(z, z @ jax.lax.stop_gradient(Wp).T, zt)
            return euclidean_byol_loss(z @ Wp.T, zt)

        return 0.5 * (one(X1, X2) + one(X2, X1))

    def step(carry, skey):
        params, opt_state, Wa, Fhat = carry
        X1, X2 = gaussian_views(skey, batch_size, lam, lam_aug)
        if closed:
            Fhat = hp["mu"] * Fhat + (1.0 - hp["mu"]) * batch_corr(params["W"], X1, X2)
            Wp_fixed = predictor_matrix(sym(Fhat), hp["exponent"], hp["eps"], hp["normalized"] > 0.5)
            g_byol = jax.grad(loss_fn)(params, Wa, X1, X2, Wp_fixed, True)
            g_iso = jax.grad(loss_fn)(params, Wa, X1, X2, Wp_fixed, False)
            gW = jnp.where(hp["byol"] > 0.5, g_byol["W"], g_iso["W"])
            grads = {"W": gW + hp["omega"] * params["W"], "Wp": jnp.zeros_like(params["Wp"])}
        else:
            g = jax.grad(loss_fn)(params, Wa, X1, X2, params["Wp"], True)
            grads = {"W": g["W"] + hp["omega"] * params["W"],
                     "Wp": hp["alpha_p"] * g["Wp"] + hp["omega"] * params["Wp"]}
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if closed:
            params = {"W": params["W"], "Wp": Wp_fixed}
        Wa = jnp.where(simsiam, params["W"], m * Wa + (1.0 - m) * params["W"])
        return params, opt_state, Wa, Fhat

    def out(carry):
        params, _, Wa, _ = carry
        return BYOLState(params["W"], params["Wp"], Wa)

    if closed:
        key, init_key = jax.random.split(key)
        X1, X2 = gaussian_views(init_key, batch_size, lam, lam_aug)
        F0 = batch_corr(W0, X1, X2)
    else:
        F0 = jnp.zeros((W0.shape[0], W0.shape[0]), W0.dtype)
    carry = (params0, opt_state0, Wa0, F0)
    return run_steps(step, carry, lr=hp["lr"], n_steps=n_steps, save_every=save_every, save_fn=out,
                     xs=step_keys(key, n_steps))

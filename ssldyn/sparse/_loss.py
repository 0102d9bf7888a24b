r"""Stage 2 of `ssldyn.sparse`: the bipolar-ReLU network, its bias schedule and the InfoNCE objective.

**Network** (theory §3). `h_i(x) = BReLU_{b_i}(⟨w_i, x⟩)` with `BReLU_b(u) = ReLU(u − b) − ReLU(−u − b)`,
neurons as columns of `W ∈ R^{d₁×m}`, so a batch's representation is `F = BReLU_b(X W) ∈ R^{n×m}`.
The thresholds `b_i(t) = β(t) s_view σ_ξ ‖w_i‖` are not trained (stop-gradient); `β` ramps linearly
from 0 to `β_max` over the first `ramp_fraction` of the horizon (a library choice).

**Objective.** With batches of B consecutive pairs (in-batch negatives, `|𝒩| = B − 1`) and
`S_ij = ⟨f(x⁽¹⁾_i), SG f(x⁽²⁾_j)⟩/τ`,

    L(W) = mean_i [ logsumexp_{j ∈ batch(i)} S_ij − S_ii ] + (ω/2)‖W‖_F².

Normalisation: a **mean over anchors** (all n rows, every batch alike) of one direction of the
InfoNCE, no normalisation of the representations, and an explicit ½ on the weight decay only, so
`−∇L` contains `−ωW`. Time is `t = η·steps`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validation import as_array, check_int, check_positive, check_probability, check_time


def brelu(u, b=0.0):
    r"""Bipolar ReLU (soft threshold) `BReLU_b(u) = ReLU(u − b) − ReLU(−u − b) = sign(u)·max(|u| − b, 0)`.

    Odd in u; the identity for b = 0; derivative `1[|u| > b]`.

    **Arguments:** `u` array; `b` threshold(s) ≥ 0, broadcast against `u` (per neuron: shape (m,)).

    **Returns:** an array shaped like `u`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    u = as_array(u, "u")
    b = as_array(b, "b")
    check_positive(b, "b", allow_zero=True)
    return jax.nn.relu(u - b) - jax.nn.relu(-u - b)


def init_neurons(key, d1: int, m: int, *, sigma0=0.02, dtype=None) -> Float[Array, "d1 m"]:
    r"""Initial weights `w_i(0) ~ N(0, σ₀² I_{d₁})`, stacked as columns of `W` (d₁, m).

    **Arguments:** `key`; `d1` input dimension; `m` number of neurons; `sigma0` σ₀ > 0; `dtype`.

    **Returns:** `W` (d₁, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    d1 = check_int(d1, "d1", minimum=1)
    m = check_int(m, "m", minimum=1)
    check_positive(sigma0, "sigma0", scalar=True)
    dtype = jnp.result_type(float) if dtype is None else dtype
    return sigma0 * jax.random.normal(key, (d1, m), dtype=dtype)


def bias_schedule(t, *, horizon, beta_max, ramp_fraction=0.5):
    r"""The bias multiplier `β(t) = β_max · min(1, t/(ramp_fraction · horizon))` (theory §3; a library
    choice, the paper's schedule is unknown): a linear ramp from 0 over the first `ramp_fraction` of
    training, then constant. `ramp_fraction = 0` gives the constant `β_max`.

    **Arguments:** `t` (effective time `lr·steps`); `horizon` T > 0; `beta_max` ≥ 0; `ramp_fraction` in [0, 1].

    **Returns:** β(t), shaped like `t`.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3 (the schedule is a library choice).
    """
    t = check_time(t, "t")
    check_positive(horizon, "horizon", scalar=True)
    check_positive(beta_max, "beta_max", allow_zero=True, scalar=True)
    check_probability(ramp_fraction, "ramp_fraction", scalar=True)
    return beta_ramp(t, horizon, beta_max, ramp_fraction)


def beta_ramp(t, horizon, beta_max, ramp_fraction):
    """`β(t)` of `bias_schedule` without validation (for use under `jit`)."""
    ramp = ramp_fraction * horizon
    safe = jnp.where(ramp > 0, ramp, 1.0)
    frac = jnp.where(ramp > 0, jnp.clip(t / safe, 0.0, 1.0), 1.0)
    return beta_max * frac


def neuron_bias(W: Float[Array, "d1 m"], beta, scale) -> Float[Array, " m"]:
    r"""Per-neuron thresholds `b_i = β · scale · ‖w_i‖` with a stop-gradient (not trained).

    **Arguments:** `W` (d₁, m); `beta` (e.g. `bias_schedule(t, ...)`); `scale = s_view σ_ξ`
    (`view_noise_scale`).

    **Returns:** `b` (m,).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    W = as_array(W, "W", ndim=2)
    return thresholds(W, beta, scale)


def thresholds(W, beta, scale):
    """`neuron_bias` without validation: `stop_gradient(β · scale · ‖w_i‖)`."""
    return jax.lax.stop_gradient(beta * scale * jnp.sqrt(jnp.sum(W**2, axis=0)))


def sparse_features(W: Float[Array, "d1 m"], X: Float[Array, "n d1"], bias=0.0) -> Float[Array, "n m"]:
    r"""Representations `F = BReLU_b(X W)` (n, m): `F_{ki} = h_i(x_k)`.

    **Arguments:** `W` (d₁, m); `X` (n, d₁); `bias` scalar or (m,).

    **Returns:** `F` (n, m).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §3.
    """
    W = as_array(W, "W", ndim=2)
    X = as_array(X, "X", ndim=2)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"`X` must have {W.shape[0]} columns to match `W` (d1, m), got shape {tuple(X.shape)}.")
    return brelu(X @ W, bias)


def batches(X, batch_size):
    """Rows of `X` (n, d₁) in consecutive batches: (n/B, B, d₁)."""
    n, d1 = X.shape
    return X.reshape(n // batch_size, batch_size, d1)


def check_views(X1, X2, batch_size):
    """Validate paired views `X1`, `X2` (n, d₁) and the in-batch size B (≥ 2, dividing n; None: B = n)."""
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    if X1.shape != X2.shape:
        raise ValueError(f"`X1` and `X2` must have the same shape, got {tuple(X1.shape)} and {tuple(X2.shape)}.")
    n = X1.shape[0]
    batch_size = n if batch_size is None else check_int(batch_size, "batch_size", minimum=None)
    if batch_size < 2 or n % batch_size:
        raise ValueError(
            f"`batch_size` must be >= 2 and divide the number of pairs {n} (in-batch negatives), got {batch_size}."
        )
    return X1, X2, batch_size


def check_pairs(W, X1, X2, batch_size):
    """Validate `(W, X1, X2)` and the in-batch size B (`check_views`, plus d₁ matching `W`)."""
    W = as_array(W, "W", ndim=2)
    X1, X2, batch_size = check_views(X1, X2, batch_size)
    if X1.shape[1] != W.shape[0]:
        raise ValueError(f"`X1` must have {W.shape[0]} columns to match `W` (d1, m), got shape {tuple(X1.shape)}.")
    return W, X1, X2, batch_size


def wen_li_info_nce(W: Float[Array, "d1 m"], X1: Float[Array, "n d1"], X2: Float[Array, "n d1"], *, temperature=0.5,
                    bias=0.0, batch_size=None, stop_gradient: bool = True, weight_decay=0.0) -> Float[Array, ""]:
    r"""The Wen & Li InfoNCE with inner-product similarity, in-batch negatives and a stop-gradient branch:

    $$L(W) = \frac1n\sum_i\Big[\log\sum_{j\in\mathcal B(i)} e^{S_{ij}} - S_{ii}\Big] + \frac\omega2\|W\|_F^2,
      \qquad S_{ij} = \frac{\langle f(x^{(1)}_i),\ \mathrm{SG}\,f(x^{(2)}_j)\rangle}{\tau},$$

    `f(x) = BReLU_b(Wᵀx)`; the sum over j runs over the anchor's batch (B pairs in consecutive rows:
    the positive plus `|𝒩| = B − 1` negatives). Unlike `info_nce_loss` there is no normalisation of
    the representations and only one direction. The bias is never differentiated.

    **Arguments:**
    - `W` (d₁, m); `X1`, `X2` (n, d₁) the anchor and positive views (row i of `X2` is the positive of
      row i of `X1`).
    - `temperature` τ > 0; `bias` b (scalar or (m,)).
    - `batch_size` B (divides n; default n: one batch).
    - `stop_gradient`: treat the `X2` branch as a constant (default, the theory's loss).
    - `weight_decay` ω ≥ 0.

    **Returns:** a scalar.

    References: Wen & Li, ICML 2021, §2 (loss reconstructed); van den Oord et al. 2018.
    """
    W, X1, X2, batch_size = check_pairs(W, X1, X2, batch_size)
    check_positive(temperature, "temperature")
    check_positive(weight_decay, "weight_decay", allow_zero=True)
    return info_nce(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay)


@partial(jax.jit, static_argnames=("batch_size", "stop_gradient"))
def info_nce(W, X1, X2, temperature, bias, batch_size, stop_gradient, weight_decay):
    """`wen_li_info_nce` without validation (jitted; B and the stop-gradient are static)."""
    b = jax.lax.stop_gradient(jnp.asarray(bias, W.dtype))
    Wt = jax.lax.stop_gradient(W) if stop_gradient else W
    H1 = brelu(batches(X1, batch_size) @ W, b)
    H2 = brelu(batches(X2, batch_size) @ Wt, b)
    logits = jnp.einsum("bim,bjm->bij", H1, H2) / temperature
    diag = jnp.diagonal(logits, axis1=-2, axis2=-1)
    loss = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - diag)
    return loss + 0.5 * weight_decay * jnp.sum(W**2)

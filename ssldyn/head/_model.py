r"""The data model of Wen & Li (2022): patch data with a strong and a weak feature, masked views,
the two-neuron weights and their population coordinates.

**Layout.** Neurons are columns, `W = [w_1, w_2] ∈ R^{d×2}`, in a basis whose first two coordinates
are the features `v_1 = e_1` (strong) and `v_2 = e_2` (weak); the other d − 2 coordinates span 𝒱⊥.
A sample is a set of P patches, stored as an array (P, d); a batch is (n, P, d).

- `HeadData`: the data model; `sample_head_views`: two complementary masked views of fresh samples;
- `HeadState(a, q, e)`: the population coordinates of `(W, e)` (`head_state_from_weights`);
- `head_moments`: the population moments C, D, U of the encoder outputs;
- `controlled_head_init`, `random_head_init`: initial weights.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._training import fast_key
from .._validation import as_array, check_int, check_positive, is_concrete


class HeadData(eqx.Module):
    r"""The data model of Wen & Li (2022) as specified in the theory file (library defaults).

    Each sample carries one feature `v_l`, `l ~ π`, on `s` of its P patches, `X_p = z v_l` with
    `z = ±α_l` (one random sign per sample); the other patches are noise `ξ_p ~ N(0, σ_ξ² P_{𝒱⊥})`.
    The encoder sums over patches, so which patches carry the feature does not matter and the
    sampler puts it on the first s. **Augmentation:** each patch goes to view 1 with probability ½
    and otherwise to view 2 (the other view's copy is zeroed).

    **Arguments:**
    - `d`: input dimension (≥ 3; coordinates 0 and 1 are the features v₁, v₂).
    - `P`: patches per sample; `s`: feature patches (2 ≤ s ≤ P).
    - `sigma_xi`: noise standard deviation σ_ξ > 0 (noise orthogonal to the feature plane).
    - `alpha`: feature strengths (α₁, α₂), α₁ > α₂ > 0 by convention (v₁ strong).
    - `pi`: feature probabilities (π₁, π₂), non-negative, summing to 1.
    """

    sigma_xi: Float[Array, ""]
    alpha: Float[Array, "2"]
    pi: Float[Array, "2"]
    d: int = eqx.field(static=True)
    P: int = eqx.field(static=True)
    s: int = eqx.field(static=True)

    def __init__(self, d: int = 10, P: int = 8, s: int = 4, *, sigma_xi=0.3, alpha=(1.0, 0.8), pi=(0.5, 0.5)):
        d, P, s = check_int(d, "d", minimum=3), check_int(P, "P", minimum=2), check_int(s, "s", minimum=2)
        if s > P:
            raise ValueError(f"`s` (feature patches) must be <= `P` (patches), got s = {s} > P = {P}.")
        check_positive(sigma_xi, "sigma_xi")
        alpha = as_array(alpha, "alpha", ndim=1)
        pi = as_array(pi, "pi", ndim=1)
        if alpha.shape != (2,) or pi.shape != (2,):
            raise ValueError(f"`alpha` and `pi` must have 2 entries (two features), got {alpha.shape} and {pi.shape}.")
        check_positive(alpha, "alpha")
        check_positive(pi, "pi", allow_zero=True)
        if is_concrete(pi) and abs(float(np.sum(np.asarray(pi))) - 1.0) > 1e-6:
            raise ValueError(f"`pi` must sum to 1, got {float(np.sum(np.asarray(pi)))}.")
        self.d, self.P, self.s = d, P, s
        self.sigma_xi = jnp.asarray(sigma_xi, dtype=jnp.result_type(float))
        self.alpha = alpha
        self.pi = pi

    @property
    def cross_count(self) -> float:
        """`E[k₁ k₂] = s(s − 1)/4`."""
        return self.s * (self.s - 1) / 4.0

    @property
    def same_count(self) -> float:
        """`E[k₁²] = s(s + 1)/4`."""
        return self.s * (self.s + 1) / 4.0

    @property
    def noise_count(self) -> float:
        """Mean number of noise patches per view, `n̄ = (P − s)/2`."""
        return (self.P - self.s) / 2.0


class HeadState(NamedTuple):
    """State of the 9-variable population flow (a leading time or seed axis along trajectories).

    **Fields:** `a` (2, 2) overlaps `a[l, j] = ⟨w_j, v_l⟩` (feature l, neuron j); `q` (2, 2) Gram matrix
    of the 𝒱⊥ parts; `e` (2,) head off-diagonals `(E_12, E_21)`.
    """

    a: Float[Array, "*batch 2 2"]
    q: Float[Array, "*batch 2 2"]
    e: Float[Array, "*batch 2"]


def check_model(model) -> None:
    """Raise unless `model` is a `HeadData`."""
    if not isinstance(model, HeadData):
        raise TypeError(f"`model` must be a HeadData, got {type(model).__name__}.")


def sample_head_views(key, model: HeadData, n: int) -> tuple[Float[Array, "n P d"], Float[Array, "n P d"],
                                                              Int[Array, " n"]]:
    r"""Sample n underlying samples and their two complementary masked views.

    **Arguments:** `key`; `model` a `HeadData`; `n` number of samples.

    **Returns:** `(X1, X2, labels)`: views (n, P, d) and the feature label l ∈ {0, 1} of each sample.
    The draws use an `rbg` generator seeded from `key` (`ssldyn._training.fast_key`: fast to compile,
    deterministic per backend).
    """
    check_model(model)
    return _sample_jit(key, model, check_int(n, "n", minimum=1))


def sample(key, model: HeadData, n: int):
    """`sample_head_views` without validation (traceable, `n` static)."""
    kl, kz, kn, km = jax.random.split(fast_key(key), 4)
    dtype = model.alpha.dtype
    labels = jax.random.bernoulli(kl, model.pi[1], (n,)).astype(jnp.int32)
    sign = jnp.where(jax.random.bernoulli(kz, 0.5, (n,)), 1.0, -1.0).astype(dtype)
    z = sign * model.alpha[labels]  # (n,)
    onehot = (jnp.arange(model.d)[None, :] == labels[:, None]).astype(dtype)
    feat = jnp.broadcast_to((z[:, None] * onehot)[:, None, :], (n, model.s, model.d))
    noise = model.sigma_xi * jax.random.normal(kn, (n, model.P - model.s, model.d - 2), dtype)
    noise = jnp.concatenate([jnp.zeros((n, model.P - model.s, 2), dtype), noise], axis=-1)
    X = jnp.concatenate([feat, noise], axis=1)
    mask = jax.random.bernoulli(km, 0.5, (n, model.P, 1)).astype(dtype)
    return X * mask, X * (1.0 - mask), labels


_sample_jit = jax.jit(sample, static_argnums=2)


def _gram_moments(model, a, q):
    w6 = model.pi * model.alpha**6
    feat = jnp.einsum("l,lr,ls->rs", w6, a**3, a**3)
    dq = jnp.diagonal(q)
    noise = 9.0 * dq[:, None] * dq[None, :] * q + 6.0 * q**3
    return model.same_count * feat + model.noise_count * model.sigma_xi**6 * noise


def moments(model, a, q, ab, qb):
    """`head_moments` without validation (traceable)."""
    w6 = model.pi * model.alpha**6
    C = model.cross_count * jnp.einsum("l,lr,lj->rj", w6, a**3, ab**3)
    D = _gram_moments(model, a, q)
    U = jnp.diagonal(_gram_moments(model, ab, qb))
    return C, D, U


def head_moments(model: HeadData, a: Float[Array, "2 2"], q: Float[Array, "2 2"],
                 a_bar: Float[Array, "2 2"] | None = None, q_bar: Float[Array, "2 2"] | None = None
                 ) -> tuple[Float[Array, "2 2"], Float[Array, "2 2"], Float[Array, "2"]]:
    r"""Population moments of the encoder outputs (theory §3). With `k₁ ~ Bin(s, ½)`,
    `E[k₁k₂] = s(s−1)/4`, `E[k₁²] = s(s+1)/4`, `n̄ = (P − s)/2` and the Gaussian identity
    `E[g³h³] = 9σ_g²σ_h²c + 6c³`:

        C_rj = E[k₁k₂] Σ_l π_l α_l⁶ a_{lr}³ ā_{lj}³,
        D_rs = E[k₁²] Σ_l π_l α_l⁶ a_{lr}³ a_{ls}³ + n̄ σ_ξ⁶ (9 q_rr q_ss q_rs + 6 q_rs³),
        U_j  = D_jj(ā, q̄).

    **Arguments:** `model`; `a`, `q` (2, 2) online overlaps and 𝒱⊥ Gram; `a_bar`, `q_bar` the target
    copy (default: the online values).

    **Returns:** `(C, D, U)`: cross-view `E[f_r(X⁽¹⁾) f_j(X⁽²⁾)]` (target neuron j in the column),
    same-view `E[f_r f_s]`, and the target variances (2,).
    """
    check_model(model)
    a = as_array(a, "a", ndim=2)
    q = as_array(q, "q", ndim=2)
    a_bar = a if a_bar is None else as_array(a_bar, "a_bar", ndim=2)
    q_bar = q if q_bar is None else as_array(q_bar, "q_bar", ndim=2)
    for name, x in (("a", a), ("q", q), ("a_bar", a_bar), ("q_bar", q_bar)):
        if x.shape != (2, 2):
            raise ValueError(f"`{name}` must be (2, 2), got {tuple(x.shape)}.")
    return moments(model, a, q, a_bar, q_bar)


def head_state_from_weights(W: Float[Array, "*batch d 2"], e: Float[Array, "*batch 2"]) -> HeadState:
    r"""`HeadState(a = W[:2], q = W[2:]ᵀW[2:], e)` from weights (d, 2) — or batches (..., d, 2) with
    `e` (..., 2)."""
    W = as_array(W, "W")
    if W.ndim < 2 or W.shape[-1] != 2 or W.shape[-2] < 3:
        raise ValueError(f"`W` must be (..., d, 2) with d >= 3, got {tuple(W.shape)}.")
    u = W[..., 2:, :]
    return HeadState(W[..., :2, :], jnp.swapaxes(u, -1, -2) @ u, jnp.asarray(e))


def controlled_head_init(key, model: HeadData, *, a1=(0.4, 0.1), a2=(0.15, 0.15), perp_norm=1.0
                         ) -> Float[Array, "d 2"]:
    r"""The theory file's controlled initialisation: `W[:2, 0] = a1`, `W[:2, 1] = a2` (overlaps of
    neurons 1 and 2 with (v₁, v₂)) plus, for each neuron, a random 𝒱⊥ component of norm `perp_norm`.

    **Arguments:** `key`; `model`; `a1`, `a2` (2,); `perp_norm` > 0.

    **Returns:** `W0` (d, 2).
    """
    check_model(model)
    check_positive(perp_norm, "perp_norm")
    a1 = as_array(a1, "a1", ndim=1)
    a2 = as_array(a2, "a2", ndim=1)
    if a1.shape != (2,) or a2.shape != (2,):
        raise ValueError("`a1` and `a2` must have 2 entries (overlaps with v1 and v2).")
    u = jax.random.normal(key, (model.d - 2, 2), dtype=a1.dtype)
    u = perp_norm * u / jnp.linalg.norm(u, axis=0, keepdims=True)
    return jnp.concatenate([jnp.stack([a1, a2], axis=1), u], axis=0)


def random_head_init(key, model: HeadData) -> Float[Array, "d 2"]:
    """The paper's initialisation `W_ij ~ N(0, 1/d)`, shape (d, 2)."""
    check_model(model)
    return jax.random.normal(key, (model.d, 2), dtype=model.alpha.dtype) / jnp.sqrt(model.d)

r"""Wen & Li (NeurIPS 2022): the mechanism of the prediction head in non-contrastive SSL.

**Layout.** Neurons are columns, `W = [w_1, w_2] ∈ R^{d×2}`, in a basis whose first two coordinates
are the features `v_1 = e_1` (strong) and `v_2 = e_2` (weak); the other d − 2 coordinates span 𝒱⊥.
A sample is a set of P patches, stored as an array (P, d); a batch is (n, P, d).

**Data** (theory file §1; reconstructed, verify numerically). Each sample carries one feature `v_l`,
`l ~ π`, on `s` of its P patches, `X_p = z v_l` with `z = ±α_l` (one random sign per sample); the other
patches are noise `ξ_p ~ N(0, σ_ξ² P_{𝒱⊥})`. The encoder sums over patches, so which patches carry the
feature does not matter and we put it on the first s. **Augmentation:** each patch goes to view 1 with
probability ½ and otherwise to view 2 (the other view's copy is zeroed).

**Network.** `f_j(X) = Σ_p ⟨w_j, X_p⟩³`; online output `F = E f(X⁽¹⁾)` with head
`E = [[1, E_12], [E_21, 1]]` (diagonal frozen, off-diagonals `e = (E_12, E_21)` trained, `E(0) = I`);
target `G = SG(f(X⁽²⁾))` (same weights, no EMA); BatchNorm without affine part on both branches. The
loss is `L = −Σ_j corr_batch(F_j, G_j)` (mean-centred, variance-normalised over the batch; half the
squared BN distance `2m − 2Σcorr`); gradients pass through the online BN statistics.

**Closed population flow** (theory §3, derived exactly for this model). With `a_{lj} = ⟨w_j, v_l⟩`,
`u_j = P_{𝒱⊥} w_j`, `q_{rs} = ⟨u_r, u_s⟩`, `k₁ ~ Bin(s, ½)`, `E[k₁k₂] = s(s−1)/4`,
`E[k₁²] = s(s+1)/4`, `n̄ = (P − s)/2` and the Gaussian identity `E[g³h³] = 9σ_g²σ_h²c + 6c³`:

    C_rj = E[k₁k₂] Σ_l π_l α_l⁶ a_{lr}³ ā_{lj}³                                   E[f_r(X⁽¹⁾) g_j(X⁽²⁾)]
    D_rs = E[k₁²] Σ_l π_l α_l⁶ a_{lr}³ a_{ls}³ + n̄ σ_ξ⁶ (9 q_rr q_ss q_rs + 6 q_rs³)     E[f_r f_s]
    U_j  = D_jj(ā, q̄)                                                            target variance
    J(a, q, E) = Σ_j (Σ_r E_jr C_rj) / sqrt( (E D Eᵀ)_jj U_j )

and, with `t = η·steps` and `ρ = η_E/η`, the flow `dθ/dt = ∇J` with the stop-gradient copy
`(ā, q̄)` evaluated at `(a, q)`:

    da/dt = ∂J/∂a,    dq/dt = q (Γ + Γᵀ) + (Γ + Γᵀ) q  (Γ = ∂J/∂q, entries independent),
    dE_jr/dt = ρ ∂J/∂E_jr  (j ≠ r).

`HeadFlow` integrates these 9 variables; `HeadWeightFlow` integrates `W` itself with `dW/dt = ∇_W J`
by autodiff (the two agree to solver tolerance). BN makes the online part of J invariant to `W → cW`,
so `‖W‖_F²` is conserved (each `‖w_j‖²` separately when the head is frozen).

**Phases** (paper's result): (1) neuron 1 learns v₁; (2) substitution: E₂₁ grows, the head feeds the
v₁ signal to output 2; (3) acceleration: neuron 2 learns v₂; (4) the head returns to I. Without the
head both neurons align with v₁ (dimensional collapse). `head_phase_metrics` measures these.

References:
- Z. Wen, Y. Li. *The Mechanism of Prediction Head in Non-contrastive Self-supervised Learning.*
  NeurIPS 2022. arXiv:2205.06226.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._flows import AbstractFlow, _hyper
from ._training import scan_with_saves
from ._validation import as_array, check_positive, is_concrete

__all__ = [
    "HeadData",
    "HeadState",
    "sample_head_views",
    "head_moments",
    "head_objective",
    "HeadFlow",
    "HeadWeightFlow",
    "head_state_from_weights",
    "controlled_head_init",
    "random_head_init",
    "head_encoder",
    "head_network_loss",
    "train_head_sgd",
    "head_alignment",
    "HeadPhases",
    "head_phase_metrics",
]


class HeadData(eqx.Module):
    r"""The data model of Wen & Li (2022) as specified in the theory file (library defaults).

    **Arguments:**
    - `d`: input dimension (≥ 3; coordinates 0 and 1 are the features v₁, v₂).
    - `P`: patches per sample; `s`: feature patches (2 ≤ s ≤ P).
    - `sigma_xi`: noise standard deviation σ_ξ > 0 (noise orthogonal to the feature plane).
    - `alpha`: feature strengths (α₁, α₂), α₁ > α₂ > 0 by convention (v₁ strong).
    - `pi`: feature probabilities (π₁, π₂), non-negative, summing to 1.
    """

    sigma_xi: jax.Array
    alpha: jax.Array
    pi: jax.Array
    d: int = eqx.field(static=True)
    P: int = eqx.field(static=True)
    s: int = eqx.field(static=True)

    def __init__(self, d: int = 10, P: int = 8, s: int = 4, *, sigma_xi=0.3, alpha=(1.0, 0.8), pi=(0.5, 0.5)):
        for name, val, low in (("d", d, 3), ("P", P, 2), ("s", s, 2)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
                raise ValueError(f"`{name}` must be an int >= {low}, got {val!r}.")
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
        self.d, self.P, self.s = int(d), int(P), int(s)
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
    """State of the 9-variable population flow.

    **Fields:** `a` (2, 2) overlaps `a[l, j] = ⟨w_j, v_l⟩` (feature l, neuron j); `q` (2, 2) Gram matrix
    of the 𝒱⊥ parts; `e` (2,) head off-diagonals `(E_12, E_21)`.
    """

    a: jax.Array
    q: jax.Array
    e: jax.Array


def _fast_key(key):
    """An `rbg` key carrying the bits of `key` (a threefry key from `jax.random.PRNGKey`/`key`).

    XLA's RngBitGenerator compiles in a fraction of the time of the threefry hash, which dominates the
    compilation of the training loops on CPU. Draws are deterministic given `key` on a given backend.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if "rbg" in str(key.dtype):
            return key
        key = jax.random.key_data(key)
    data = jnp.ravel(key).astype(jnp.uint32)
    if data.shape[0] == 2:
        data = jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)])
    return jax.random.wrap_key_data(data[:4], impl="rbg")


def _check_data(model):
    if not isinstance(model, HeadData):
        raise TypeError(f"`model` must be a HeadData, got {type(model).__name__}.")


def sample_head_views(key, model: HeadData, n: int):
    r"""Sample n underlying samples and their two complementary masked views.

    **Arguments:** `key`; `model` a `HeadData`; `n` number of samples.

    **Returns:** `(X1, X2, labels)`: views (n, P, d) and the feature label l ∈ {0, 1} of each sample.
    The draws use an `rbg` generator seeded from `key` (fast to compile; deterministic per backend).
    """
    _check_data(model)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive int, got {n!r}.")
    return _sample_jit(key, model, int(n))


def _sample(key, model, n):
    kl, kz, kn, km = jax.random.split(_fast_key(key), 4)
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


_sample_jit = jax.jit(_sample, static_argnums=2)


def _gram_moments(model, a, q):
    w6 = model.pi * model.alpha**6
    feat = jnp.einsum("l,lr,ls->rs", w6, a**3, a**3)
    dq = jnp.diagonal(q)
    noise = 9.0 * dq[:, None] * dq[None, :] * q + 6.0 * q**3
    return model.same_count * feat + model.noise_count * model.sigma_xi**6 * noise


def head_moments(model: HeadData, a, q, a_bar=None, q_bar=None):
    r"""Population moments of the encoder outputs (theory §3):

        C_rj = E[k₁k₂] Σ_l π_l α_l⁶ a_{lr}³ ā_{lj}³,
        D_rs = E[k₁²] Σ_l π_l α_l⁶ a_{lr}³ a_{ls}³ + n̄ σ_ξ⁶ (9 q_rr q_ss q_rs + 6 q_rs³),
        U_j  = D_jj(ā, q̄).

    **Arguments:** `model`; `a`, `q` (2, 2) online overlaps and 𝒱⊥ Gram; `a_bar`, `q_bar` the target
    copy (default: the online values).

    **Returns:** `(C, D, U)`: cross-view `E[f_r(X⁽¹⁾) f_j(X⁽²⁾)]` (target neuron j in the column),
    same-view `E[f_r f_s]`, and the target variances (2,).
    """
    _check_data(model)
    a = as_array(a, "a", ndim=2)
    q = as_array(q, "q", ndim=2)
    a_bar = a if a_bar is None else as_array(a_bar, "a_bar", ndim=2)
    q_bar = q if q_bar is None else as_array(q_bar, "q_bar", ndim=2)
    for name, x in (("a", a), ("q", q), ("a_bar", a_bar), ("q_bar", q_bar)):
        if x.shape != (2, 2):
            raise ValueError(f"`{name}` must be (2, 2), got {tuple(x.shape)}.")
    return _moments(model, a, q, a_bar, q_bar)


def _moments(model, a, q, ab, qb):
    w6 = model.pi * model.alpha**6
    C = model.cross_count * jnp.einsum("l,lr,lj->rj", w6, a**3, ab**3)
    D = _gram_moments(model, a, q)
    U = jnp.diagonal(_gram_moments(model, ab, qb))
    return C, D, U


def _head_matrix(e):
    one = jnp.ones((), e.dtype)
    return jnp.stack([jnp.stack([one, e[0]]), jnp.stack([e[1], one])])


def _objective(model, a, q, e, ab, qb):
    C, D, U = _moments(model, a, q, ab, qb)
    E = _head_matrix(e)
    num = jnp.diagonal(E @ C)
    var = jnp.diagonal(E @ D @ E.T)
    return jnp.sum(num / jnp.sqrt(var * U))


def head_objective(model: HeadData, a, q, e, a_bar=None, q_bar=None) -> jax.Array:
    r"""Population objective `J = Σ_j (E C)_jj / sqrt((E D Eᵀ)_jj U_j)` (= −L; each term a correlation).

    **Arguments:** `model`; `a`, `q` (2, 2); `e` = (E_12, E_21); `a_bar`, `q_bar` target copy
    (default online values).

    **Returns:** a scalar in [−2, 2].
    """
    C, D, U = head_moments(model, a, q, a_bar, q_bar)
    e = as_array(e, "e", ndim=1)
    if e.shape != (2,):
        raise ValueError(f"`e` must be (E_12, E_21), shape (2,), got {tuple(e.shape)}.")
    E = _head_matrix(e)
    return jnp.sum(jnp.diagonal(E @ C) / jnp.sqrt(jnp.diagonal(E @ D @ E.T) * U))


class _HeadFlowBase(AbstractFlow):
    model: HeadData
    lr_ratio: jax.Array
    stop_gradient: bool = eqx.field(static=True)

    def __init__(self, model: HeadData, *, lr_ratio=1.0, stop_gradient: bool = True):
        _check_data(model)
        self.model = model
        self.lr_ratio = _hyper(lr_ratio, "lr_ratio")
        self.stop_gradient = bool(stop_gradient)

    def _J(self, a, q, e):
        ab, qb = (jax.lax.stop_gradient(a), jax.lax.stop_gradient(q)) if self.stop_gradient else (a, q)
        return _objective(self.model, a, q, e, ab, qb)


class HeadFlow(_HeadFlowBase):
    r"""The closed 9-variable population flow of Wen & Li's two-neuron network (theory §3):

        da/dt = ∂J/∂a,  dq/dt = q(Γ + Γᵀ) + (Γ + Γᵀ)q,  de/dt = ρ ∂J/∂e,

    gradients taken with the target copy (ā, q̄) held fixed (stop-gradient) and then evaluated at
    (a, q). `lr_ratio = 0` freezes the head (the no-head arm, with `e(0) = 0`, i.e. `E = I`).

    **Arguments:**
    - `model`: a `HeadData`.
    - `lr_ratio`: ρ = η_E/η ≥ 0.
    - `stop_gradient`: False differentiates through the target branch too (ablation).

    **State:** `HeadState(a, q, e)`. `loss(y) = −J`.
    """

    def vector_field(self, t, y):
        a, q, e = y
        ga, gq, ge = jax.grad(self._J, argnums=(0, 1, 2))(a, q, e)
        G = gq + gq.T
        return HeadState(ga, q @ G + G @ q, self.lr_ratio * ge)

    def loss(self, y):
        return -_objective(self.model, y[0], y[1], y[2], y[0], y[1])

    def check_initial(self, y0):
        if not (isinstance(y0, (tuple, list)) and len(y0) == 3):
            raise TypeError("`y0` must be a HeadState (a, q, e) or a 3-tuple of arrays.")
        a = as_array(y0[0], "y0.a", ndim=2)
        q = as_array(y0[1], "y0.q", ndim=2)
        e = as_array(y0[2], "y0.e", ndim=1)
        if a.shape != (2, 2) or q.shape != (2, 2) or e.shape != (2,):
            raise ValueError(f"`y0` must hold a (2, 2), q (2, 2), e (2,), got {a.shape}, {q.shape}, {e.shape}.")
        if is_concrete(q):
            if not np.allclose(np.asarray(q), np.asarray(q).T):
                raise ValueError("`y0.q` must be symmetric (a Gram matrix).")
            if float(np.min(np.linalg.eigvalsh(np.asarray(q)))) < -1e-12 * max(1.0, float(np.max(np.abs(np.asarray(q))))):
                raise ValueError("`y0.q` must be positive semi-definite (a Gram matrix).")
        return HeadState(a, q, e)


class HeadWeightFlow(_HeadFlowBase):
    r"""The same population flow integrated in weight space: `dW/dt = ∇_W J`, `de/dt = ρ ∂J/∂e`,
    with `a = W[:2]`, `q = W[2:]ᵀ W[2:]` (the features are the first two coordinates) and the target
    copy held fixed. Equal to `HeadFlow` through `head_state_from_weights`; gradient descent on it
    (`ssldyn.simulate_gd`) is full-population GD on the network.

    **Arguments:** as `HeadFlow`. **State:** `(W, e)` with `W` (d, 2), `e` (2,).
    """

    def _split(self, W):
        return W[:2], W[2:].T @ W[2:]

    def vector_field(self, t, y):
        W, e = y
        gW, ge = jax.grad(lambda W, e: self._J(*self._split(W), e), argnums=(0, 1))(W, e)
        return gW, self.lr_ratio * ge

    def loss(self, y):
        a, q = self._split(y[0])
        return -_objective(self.model, a, q, y[1], a, q)

    def check_initial(self, y0):
        if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
            raise TypeError("`y0` must be a tuple (W, e).")
        W = as_array(y0[0], "y0[0]", ndim=2)
        e = as_array(y0[1], "y0[1]", ndim=1)
        if W.shape != (self.model.d, 2) or e.shape != (2,):
            raise ValueError(f"`y0` must be (W ({self.model.d}, 2), e (2,)), got {W.shape} and {e.shape}.")
        return (W, e)


def head_state_from_weights(W, e) -> HeadState:
    r"""`HeadState(a = W[:2], q = W[2:]ᵀW[2:], e)` from weights (d, 2) — or batches (..., d, 2) with
    `e` (..., 2)."""
    W = as_array(W, "W")
    if W.ndim < 2 or W.shape[-1] != 2 or W.shape[-2] < 3:
        raise ValueError(f"`W` must be (..., d, 2) with d >= 3, got {tuple(W.shape)}.")
    u = W[..., 2:, :]
    return HeadState(W[..., :2, :], jnp.swapaxes(u, -1, -2) @ u, jnp.asarray(e))


def controlled_head_init(key, model: HeadData, *, a1=(0.4, 0.1), a2=(0.15, 0.15), perp_norm=1.0) -> jax.Array:
    r"""The theory file's controlled initialisation: `W[:2, 0] = a1`, `W[:2, 1] = a2` (overlaps of
    neurons 1 and 2 with (v₁, v₂)) plus, for each neuron, a random 𝒱⊥ component of norm `perp_norm`.

    **Arguments:** `key`; `model`; `a1`, `a2` (2,); `perp_norm` > 0.

    **Returns:** `W0` (d, 2).
    """
    _check_data(model)
    check_positive(perp_norm, "perp_norm")
    a1 = as_array(a1, "a1", ndim=1)
    a2 = as_array(a2, "a2", ndim=1)
    if a1.shape != (2,) or a2.shape != (2,):
        raise ValueError("`a1` and `a2` must have 2 entries (overlaps with v1 and v2).")
    u = jax.random.normal(key, (model.d - 2, 2), dtype=a1.dtype)
    u = perp_norm * u / jnp.linalg.norm(u, axis=0, keepdims=True)
    return jnp.concatenate([jnp.stack([a1, a2], axis=1), u], axis=0)


def random_head_init(key, model: HeadData) -> jax.Array:
    """The paper's initialisation `W_ij ~ N(0, 1/d)`, shape (d, 2)."""
    _check_data(model)
    return jax.random.normal(key, (model.d, 2), dtype=model.alpha.dtype) / jnp.sqrt(model.d)


def head_encoder(W, X) -> jax.Array:
    r"""Encoder outputs `f_j(X) = Σ_p ⟨w_j, X_p⟩³` for a batch `X` (n, P, d) and `W` (d, 2): (n, 2)."""
    return jnp.sum(jnp.einsum("npd,dj->npj", X, W) ** 3, axis=1)


def _bn(Z):
    Z = Z - jnp.mean(Z, axis=0)
    return Z / jnp.sqrt(jnp.mean(Z**2, axis=0))


def head_network_loss(W, e, X1, X2, *, stop_gradient: bool = True) -> jax.Array:
    r"""Batch loss of the two-neuron network with head, BatchNorm and stop-gradient target:

        L = −Σ_j (1/n) Σ_i BN(F_j)_i BN(G_j)_i,   F = f(X⁽¹⁾) Eᵀ,   G = SG(f(X⁽²⁾)),

    i.e. minus the sum of the batch correlations. Gradients pass through the online BN statistics.

    **Arguments:** `W` (d, 2); `e` (2,) head off-diagonals; `X1`, `X2` (n, P, d) views;
    `stop_gradient`: False lets the gradient through the target branch (ablation).

    **Returns:** a scalar in [−2, 2].
    """
    E = _head_matrix(e)
    F = head_encoder(W, X1) @ E.T
    G = head_encoder(W, X2)
    if stop_gradient:
        G = jax.lax.stop_gradient(G)
    return -jnp.sum(jnp.mean(_bn(F) * _bn(G), axis=0))


def train_head_sgd(key, W0, *, model: HeadData, lr, n_steps: int, batch_size: int, lr_ratio=1.0,
                   e0=None, save_every: int | None = None, stop_gradient: bool = True):
    r"""Train the network with optax SGD on fresh samples, vmapped over seeds.

    Per step: `W ← W − η ∇_W L`, `e ← e − ρη ∇_e L` on a fresh batch (`head_network_loss`); time
    `t = η·step`. With `lr_ratio = 0` the head stays at `e0` (the no-head arm with `e0 = 0`).

    **Arguments:**
    - `key`: one key, or a batch of keys (S,) for S seeds (then `W0` is (S, d, 2)).
    - `W0`: initial weights (d, 2) or (S, d, 2).
    - `model`; `lr` η > 0; `n_steps`; `batch_size`; `lr_ratio` ρ ≥ 0; `e0` initial head
      off-diagonals (default 0); `save_every` (save the state every this many steps);
      `stop_gradient`.

    **Returns:** `(W, e)` final, or `((W, e), (W_saved, e_saved))` with the saved states stacked on
    a time axis after the seed axis (saved after steps `save_every, 2·save_every, …`).
    """
    _check_data(model)
    W0 = as_array(W0, "W0", ndim=(2, 3))
    if W0.shape[-2:] != (model.d, 2):
        raise ValueError(f"`W0` must be ({model.d}, 2) or (S, {model.d}, 2), got {tuple(W0.shape)}.")
    for name, val, low in (("n_steps", n_steps, 0), ("batch_size", batch_size, 2)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
            raise ValueError(f"`{name}` must be an int >= {low}, got {val!r}.")
    if save_every is not None and (isinstance(save_every, bool) or not isinstance(save_every, (int, np.integer))
                                   or save_every < 1):
        raise ValueError(f"`save_every` must be a positive int or None, got {save_every!r}.")
    check_positive(lr, "lr")
    check_positive(lr_ratio, "lr_ratio", allow_zero=True)
    e0 = jnp.zeros(W0.shape[:-2] + (2,), W0.dtype) if e0 is None else as_array(e0, "e0")
    if e0.shape != W0.shape[:-2] + (2,):
        raise ValueError(f"`e0` must have shape {W0.shape[:-2] + (2,)}, got {tuple(e0.shape)}.")
    lr = jnp.asarray(lr, W0.dtype)
    rho = jnp.asarray(lr_ratio, W0.dtype)
    static = dict(n_steps=int(n_steps), batch_size=int(batch_size),
                  save_every=None if save_every is None else int(save_every),
                  stop_gradient=bool(stop_gradient))
    if W0.ndim == 2:
        return _train_head(key, W0, e0, model, lr, rho, **static)
    keys = jnp.asarray(key)
    if keys.shape[0] != W0.shape[0]:
        raise ValueError(f"`key` must hold one key per seed ({W0.shape[0]}), got {keys.shape[0]}.")
    return _train_head_seeds(keys, W0, e0, model, lr, rho, **static)


@eqx.filter_jit
def _train_head_seeds(keys, W0, e0, model, lr, rho, **static):
    return jax.vmap(lambda k, W, e: _train_head_impl(k, W, e, model, lr, rho, **static))(keys, W0, e0)


@eqx.filter_jit
def _train_head(key, W0, e0, model, lr, rho, **static):
    return _train_head_impl(key, W0, e0, model, lr, rho, **static)


def _train_head_impl(key, W0, e0, model, lr, rho, *, n_steps, batch_size, save_every, stop_gradient):
    opt = optax.multi_transform({"W": optax.sgd(lr), "e": optax.sgd(lr * rho)}, {"W": "W", "e": "e"})
    params0 = {"W": W0, "e": e0}
    carry0 = (params0, opt.init(params0))

    def step(carry, skey):
        params, opt_state = carry
        X1, X2, _ = _sample(skey, model, batch_size)
        grads = jax.grad(lambda p: head_network_loss(p["W"], p["e"], X1, X2, stop_gradient=stop_gradient))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def out(carry):
        return carry[0]["W"], carry[0]["e"]

    keys = jax.random.split(key, n_steps)
    carry, saved = scan_with_saves(step, carry0, n_steps, save_every, out, xs=keys)
    return out(carry) if save_every is None else (out(carry), saved)


def head_alignment(state: HeadState) -> jax.Array:
    r"""Cosines `|⟨w_j, v_l⟩| / ‖w_j‖` from a `HeadState` (any leading batch/time axes).

    **Returns:** array (..., 2, 2) indexed [feature l, neuron j], like `a`.
    """
    a, q = state[0], state[1]
    norms = jnp.sqrt(jnp.sum(a**2, axis=-2) + jnp.diagonal(q, axis1=-2, axis2=-1))
    return jnp.abs(a) / norms[..., None, :]


class HeadPhases(NamedTuple):
    """Phase metrics of one trajectory (NaN where a phase is not reached).

    **Fields:**
    - `t_strong`: first time cos(w₁, v₁) ≥ threshold (phase 1 done).
    - `t_substitution`: first time |E₂₁| reaches half its maximum (phase 2, rise of the head).
    - `t_peak`: time of max |E₂₁|; `e21_peak`: the signed E₂₁ there.
    - `t_weak`: first time cos(w₂, v₂) ≥ threshold (phase 3, acceleration done).
    - `t_return`: first time after the peak that |E₂₁| ≤ `return_fraction`·max|E₂₁| (phase 4).
    - `distinct`: at the final time each neuron has cosine ≥ threshold with one feature and
      < threshold with the other, and the two features differ.
    - `collapsed`: at the final time both neurons have cosine ≥ threshold with v₁.
    - `final_cos`: final cosines (2, 2) [feature, neuron].
    """

    t_strong: jax.Array
    t_substitution: jax.Array
    t_peak: jax.Array
    e21_peak: jax.Array
    t_weak: jax.Array
    t_return: jax.Array
    distinct: jax.Array
    collapsed: jax.Array
    final_cos: jax.Array


def _first_crossing(ts, x, level, start=None):
    """Linearly interpolated first time index ≥ start where x ≥ level (NaN if never)."""
    idx = jnp.arange(x.shape[0])
    ok = x >= level
    if start is not None:
        ok = ok & (idx >= start)
    i = jnp.argmax(ok)
    found = jnp.any(ok)
    i0 = jnp.maximum(i - 1, 0)
    dx = x[i] - x[i0]
    frac = jnp.where((i > 0) & (dx != 0), (level - x[i0]) / jnp.where(dx != 0, dx, 1.0), 1.0)
    frac = jnp.clip(frac, 0.0, 1.0)
    t = ts[i0] + frac * (ts[i] - ts[i0])
    t = jnp.where(i == 0, ts[0], t)
    return jnp.where(found, t, jnp.nan)


def head_phase_metrics(ts, states: HeadState, *, threshold=0.5, return_fraction=0.1) -> HeadPhases:
    r"""Phase times and outcomes of a trajectory (see `HeadPhases`); crossing times are linearly
    interpolated between save times. vmap over a leading seed axis for many runs.

    **Arguments:** `ts` (T,); `states` a `HeadState` with leading time axis (T, ...); `threshold`
    cosine level that counts as "learned" (in (0, 1)); `return_fraction` in (0, 1).

    **Returns:** a `HeadPhases`.
    """
    ts = as_array(ts, "ts", ndim=1)
    if is_concrete(threshold) and not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"`threshold` must be in (0, 1), got {threshold}.")
    if is_concrete(return_fraction) and not 0.0 < float(return_fraction) < 1.0:
        raise ValueError(f"`return_fraction` must be in (0, 1), got {return_fraction}.")
    if jnp.shape(states[0])[0] != ts.shape[0]:
        raise ValueError(f"`states` must have a leading time axis of length {ts.shape[0]}, got {jnp.shape(states[0])[0]}.")
    return _phase_metrics(ts, HeadState(*states), jnp.asarray(threshold, ts.dtype), jnp.asarray(return_fraction, ts.dtype))


@jax.jit
def _phase_metrics(ts, states, threshold, return_fraction):
    cos = head_alignment(states)  # (T, 2, 2)
    e21 = states[2][:, 1]
    abs21 = jnp.abs(e21)
    peak = jnp.max(abs21)
    ipeak = jnp.argmax(abs21)
    has_head = peak > 0
    t_strong = _first_crossing(ts, cos[:, 0, 0], threshold)
    t_weak = _first_crossing(ts, cos[:, 1, 1], threshold)
    t_sub = jnp.where(has_head, _first_crossing(ts, abs21, 0.5 * peak), jnp.nan)
    t_ret = jnp.where(has_head, _first_crossing(ts, -abs21, -return_fraction * peak, start=ipeak), jnp.nan)
    final = cos[-1]
    on = final >= threshold  # [feature, neuron]
    only = on & ~on[::-1]  # neuron j has learned feature l and not the other one
    distinct = (only[0, 0] & only[1, 1]) | (only[1, 0] & only[0, 1])
    collapsed = on[0, 0] & on[0, 1]
    return HeadPhases(t_strong, t_sub, jnp.where(has_head, ts[ipeak], jnp.nan), e21[ipeak], t_weak, t_ret,
                      distinct, collapsed, final)

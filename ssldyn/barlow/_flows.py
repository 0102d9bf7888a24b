r"""Flows and closed forms of linear Barlow Twins: weight space, output space (kernel), aligned logistic.

**Flow** (row layout, `W ∈ R^{k×d}`, effective time `t = η·steps` of the summed loss of `_loss`):

    dW/dt = −4 (M ⊙ (WΓWᵀ − I)) W Γ                       (BarlowFlow)

**Output space.** For a one-hidden-layer network `f(x) = Wᵀ φ_h(x)` with the hidden layer frozen,
stacked outputs `R = Φ W` (Φ = [Φ1; Φ2] ∈ R^{2n×h}, `K = ΦΦᵀ`, `B = pair_operator(n)`) move as

    dR/dt = −4 K B R (M ⊙ (RᵀBR − I))                     (BarlowKernelFlow)

which depends on the width h only through K and R(0): run it with an empirical or infinite-width
kernel.

**Aligned solution.** From `W(0) = Q diag(s_0) V_kᵀ` (V_k top-k eigenvectors of Γ, Q orthogonal;
Q must be the identity when λ_off ≠ 1, see below), `W(t) = Q diag(s(t)) V_kᵀ` with
`ṡ_j = 4γ_j s_j (1 − γ_j s_j²)`; the embedding eigenvalues `λ_j = γ_j s_j²` are logistic,

    λ_j(t) = 1 / (1 + (1/λ_j(0) − 1) e^{−8γ_j t}),    t_j = ln(1/λ_j(0) − 1) / (8γ_j)   (λ_j(t_j) = ½),
    L(t) = Σ_j (1 − λ_j(t))².

With λ_off = 1 the loss is invariant under `W ↦ QW`, so any orthogonal Q is aligned. With λ_off ≠ 1
it is not: the aligned solution is unchanged only when `C = WΓWᵀ` stays diagonal, i.e. Q = I (this
corrects the theory note, which states it for any aligned start; see docs/peers.md).

**Small random initialisation** (heuristic, checked in tests): the same step times with
`λ_j(0) = γ_j ‖W(0) v_j‖²`.

References: J. B. Simon, M. Knutins, L. Ziyin, D. Geisz, A. J. Fetterman, J. Albrecht, *On the Stepwise
Nature of Self-Supervised Learning*, ICML 2023 (arXiv:2303.15438).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._flows import AbstractFlow
from .._linalg import sym, symmetric_pair
from .._solution import AbstractSolution
from .._validation import as_array, check_symmetric, check_time, in_trace, is_concrete
from ._loss import check_off_diagonal, correlation_loss, weighted_residual
from ._model import eigenmodes, kernel_eigenmodes


def logistic(t, lambda0, rate) -> jax.Array:
    r"""`λ(t) = 1 / (1 + (1/λ0 − 1) e^{−rate·t})`, the solution of `λ̇ = rate·λ(1 − λ)` (λ0 > 0).

    `t`, `lambda0`, `rate`: real, finite numbers or arrays (broadcast together); `lambda0` > 0."""
    t = as_array(t, "t")
    rate = as_array(rate, "rate")
    lambda0 = as_array(lambda0, "lambda0")
    if is_concrete(lambda0) and np.any(np.asarray(lambda0) <= 0):
        raise ValueError(f"`lambda0` must be positive (an initial eigenvalue), got {np.asarray(lambda0)}.")
    return 1.0 / (1.0 + (1.0 / lambda0 - 1.0) * jnp.exp(-rate * t))


def step_times(gammas, lambda0) -> jax.Array:
    r"""Times at which the aligned logistic modes cross ½: `t_j = ln(1/λ_j(0) − 1) / (8γ_j)` (λ_j(0) < ½ → t_j > 0)."""
    g = as_array(gammas, "gammas", ndim=1)
    lam = as_array(lambda0, "lambda0", ndim=(0, 1))
    if is_concrete(lam) and np.any(np.asarray(lam) <= 0) or is_concrete(lam) and np.any(np.asarray(lam) >= 1):
        raise ValueError(f"`lambda0` must lie in (0, 1) for a crossing of ½ to exist, got {np.asarray(lam)}.")
    return jnp.log(1.0 / lam - 1.0) / (8.0 * g)


def _effective_lambda0(g, Y, method):
    """λ_j(0) from the (outputs, modes) coefficients `Y = W(0) V_k`."""
    if method == "norm":
        return g * jnp.sum(Y**2, axis=0)
    # "qr": mode j can only grow in the part of output space not taken by the faster modes 1..j−1,
    # whose output directions are (in the early, linear phase) their initial directions W(0)v_i.
    _, r = jnp.linalg.qr(Y)
    return g * jnp.diagonal(r) ** 2


def small_init_lambda0(Gamma, W0, k: int | None = None, *, method: str = "qr", modes=None) -> jax.Array:
    r"""Effective initial eigenvalues of a small random start, one per top mode of Γ.

    - `method="norm"` (the theory note's heuristic): `λ_j(0) = γ_j ‖W(0) v_j‖²`;
    - `method="qr"` (default, ssldyn's refinement): `λ_j(0) = γ_j r_jj²` with `W(0) V_k = Q R` (QR of the
      k×k matrix of mode components, modes in descending γ): mode j grows only in the part of
      output space orthogonal to the (initial) output directions `W(0)v_i` of the faster modes
      i < j. The two agree for j = 1; for later modes "norm" predicts steps too early by up to
      `ln(k/(k−j+1))/(8γ_j)` on average (docs/peers.md).

    `modes`: optional precomputed `eigenmodes(Gamma, k)` (skips the eigendecomposition).
    """
    W0 = as_array(W0, "W0", ndim=2)
    if method not in ("qr", "norm"):
        raise ValueError(f"`method` must be 'qr' or 'norm', got {method!r}.")
    k = W0.shape[0] if k is None else k
    if k > W0.shape[0] and method == "qr":
        raise ValueError(f"`k` must be <= the number of outputs {W0.shape[0]} for method='qr', got {k}.")
    g, V = eigenmodes(Gamma, k) if modes is None else modes
    if W0.shape[1] != V.shape[0]:
        raise ValueError(f"`W0` must have {V.shape[0]} columns to match `Gamma`, got shape {tuple(W0.shape)}.")
    return _effective_lambda0(g, W0 @ V, method)


def small_init_step_times(Gamma, W0, k: int | None = None, *, method: str = "qr", modes=None) -> jax.Array:
    r"""Predicted step times from a small random start: `t_j = ln(1/λ_j(0) − 1)/(8γ_j)` with
    `λ_j(0)` from `small_init_lambda0` (`method` "qr" or "norm"; `modes` as there), in mode order."""
    W0 = as_array(W0, "W0", ndim=2)
    modes = eigenmodes(Gamma, W0.shape[0] if k is None else k) if modes is None else modes
    return step_times(modes[0], small_init_lambda0(Gamma, W0, k, method=method, modes=modes))


def _greedy(g, Y, k):
    g, Y = np.asarray(g, dtype=float), np.asarray(Y, dtype=float)
    taken = np.zeros((Y.shape[0], 0))
    free = list(range(Y.shape[1]))
    times, picked = [], []
    for _ in range(k):
        perp = Y[:, free] - taken @ (taken.T @ Y[:, free])
        lam0 = g[free] * np.sum(perp**2, axis=0)
        t = np.log(np.maximum(1.0 / lam0 - 1.0, 1e-300)) / (8.0 * g[free])
        i = int(np.argmin(t))
        times.append(t[i])
        picked.append(free[i])
        taken = np.concatenate([taken, (perp[:, i] / np.linalg.norm(perp[:, i]))[:, None]], axis=1)
        free.pop(i)
    return np.asarray(times), np.asarray(picked)


def competing_step_times(Gamma, W0, *, n_candidates: int | None = None, modes=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Step times of a small random start when more modes compete than there are outputs.

    Greedy version of the "qr" rule over the top `n_candidates` modes of Γ (default `min(d, 2k)`): the
    next step is the candidate with the earliest `ln(1/λ(0) − 1)/(8γ)`, `λ(0) = γ‖P y‖²` with `y = W(0)v`
    and P the projector orthogonal to the output directions already taken; its direction is then taken.
    With γ-ordered, well-separated times this is "qr". Host-side (NumPy) computation.

    **Returns:** `(times (k,) ascending, mode indices (k,) learned at those steps, 0-based)`: the j-th
    time predicts when the j-th largest embedding eigenvalue crosses ½.
    """
    W0 = as_array(W0, "W0", ndim=2)
    k, d = W0.shape
    r = min(d, 2 * k) if n_candidates is None else n_candidates
    if r < k or r > d:
        raise ValueError(f"`n_candidates` must be in [k, d] = [{k}, {d}], got {r}.")
    g, V = eigenmodes(Gamma, r) if modes is None else modes
    return _greedy(g[:r], np.asarray(W0 @ V[:, :r]), k)


def kernel_small_init_lambda0(B, K, R0, k: int | None = None, *, method: str = "qr") -> jax.Array:
    r"""Output-space version of `small_init_lambda0`: the mode components of `R(0)` are
    `y_j = u_jᵀ K^{1/2} B R(0) / γ_j` (= `W(0) v_j` when `R(0) = Φ W(0)ᵀ`), then "norm" or "qr" as there."""
    if method not in ("qr", "norm"):
        raise ValueError(f"`method` must be 'qr' or 'norm', got {method!r}.")
    R0 = as_array(R0, "R0", ndim=2)
    k = R0.shape[1] if k is None else k
    g, U, root = kernel_eigenmodes(B, K, k)
    Y = (U.T @ root @ sym(as_array(B, "B", ndim=2)) @ R0) / g[:, None]  # (modes, outputs)
    return _effective_lambda0(g, Y.T, method)


def kernel_competing_step_times(B, K, R0, *, n_candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Output-space version of `competing_step_times` (mode components `u_jᵀK^{1/2}BR(0)/γ_j`)."""
    R0 = as_array(R0, "R0", ndim=2)
    m, k = R0.shape
    r = min(m, 2 * k) if n_candidates is None else n_candidates
    if r < k or r > m:
        raise ValueError(f"`n_candidates` must be in [k, m] = [{k}, {m}], got {r}.")
    g, U, root = kernel_eigenmodes(B, K, r)
    Y = (U.T @ root @ sym(as_array(B, "B", ndim=2)) @ R0) / g[:, None]  # (modes, outputs)
    return _greedy(g, np.asarray(Y.T), k)


class BarlowFlow(AbstractFlow):
    r"""Gradient flow of linear Barlow Twins, `dW/dt = −4 (M ⊙ (WΓWᵀ − I)) W Γ` (field written by hand).

    **Arguments:** `Gamma` (d, d) symmetric (`pair_correlation`); `off_diagonal` λ_off ≥ 0 (default 1);
    `eigenbasis`: integrate in Γ's eigenbasis (`Γ = V diag(γ) Vᵀ` once; internal state `W V`, so
    `WΓ` costs O(kd) instead of O(kd²); the flow, its loss and GD are equivariant under `W ↦ WV`).
    State: `W` (k, d), k ≤ d.

    References: Simon et al., ICML 2023.
    """

    Gamma: Float[Array, "d d"] | None
    gam: Float[Array, " d"] | None
    V: Float[Array, "d d"] | None
    off_diagonal: Float[Array, ""]

    def __init__(self, Gamma, *, off_diagonal=1.0, eigenbasis: bool = False):
        Gamma = as_array(Gamma, "Gamma", ndim=2)
        check_symmetric(Gamma, "Gamma")
        Gamma = sym(Gamma)
        if eigenbasis:
            self.gam, self.V = jnp.linalg.eigh(Gamma)
            self.Gamma = None
        else:
            self.Gamma, self.gam, self.V = Gamma, None, None
        self.off_diagonal = check_off_diagonal(off_diagonal)

    @property
    def dim(self) -> int:
        return (self.Gamma if self.Gamma is not None else self.V).shape[0]

    def _WG(self, W):
        return W @ self.Gamma if self.Gamma is not None else W * self.gam[None, :]

    def vector_field(self, t, W):
        WG = self._WG(W)
        return -4.0 * weighted_residual(WG @ W.T, self.off_diagonal) @ WG

    def loss(self, W):
        Wi = self.to_internal(W)
        return correlation_loss(self._WG(Wi) @ Wi.T, self.off_diagonal)

    def to_internal(self, W):
        return W if self.V is None else W @ self.V

    def from_internal(self, W):
        return W if self.V is None else W @ self.V.T

    def check_initial(self, y0):
        W = as_array(y0, "y0", ndim=2)
        d = self.dim
        if W.shape[1] != d:
            raise ValueError(f"`y0` must be (k, {d}) to match `Gamma`, got shape {tuple(W.shape)}.")
        if W.shape[0] > d:
            raise ValueError(f"`y0` must have k <= d = {d} rows, got k = {W.shape[0]}.")
        return W


class BarlowKernelFlow(AbstractFlow):
    r"""Output-space Barlow Twins flow of a network with a frozen hidden layer, `dR/dt = −4 K B R (M ⊙ (RᵀBR − I))`.

    **Arguments:** `B` (m, m) pair operator (`pair_operator(n)`, m = 2n); `K` (m, m) kernel of the
    stacked inputs `[X1; X2]` (hidden-feature Gram ΦΦᵀ at any width, or an infinite-width kernel);
    `off_diagonal` λ_off ≥ 0. State: `R` (m, k).
    """

    B: Float[Array, "m m"]
    K: Float[Array, "m m"]
    off_diagonal: Float[Array, ""]

    def __init__(self, B, K, *, off_diagonal=1.0):
        self.B, self.K = symmetric_pair(B, K, ("B", "K"))
        self.off_diagonal = check_off_diagonal(off_diagonal)

    def vector_field(self, t, R):
        BR = self.B @ R
        return -4.0 * self.K @ BR @ weighted_residual(R.T @ BR, self.off_diagonal)

    def loss(self, R):
        return correlation_loss(R.T @ self.B @ R, self.off_diagonal)

    def check_initial(self, y0):
        R = as_array(y0, "y0", ndim=2)
        m = self.B.shape[0]
        if R.shape[0] != m:
            raise ValueError(f"`y0` must have {m} rows (stacked outputs), got shape {tuple(R.shape)}.")
        if R.shape[1] > m:
            raise ValueError(f"`y0` must have k <= m = {m} columns, got k = {R.shape[1]}.")
        return R


def _aligned_factor(Y, lam, name: str, rtol: float):
    """Split `Y = diag(s0) Qᵀ`-like (k, k) coefficients; check alignment; return (s0, Q)."""
    s0 = jnp.sqrt(jnp.sum(Y**2, axis=1))
    if is_concrete(Y):
        Yn, sn = np.asarray(Y), np.asarray(s0)
        if np.any(sn <= 0):
            raise ValueError(f"`{name}` must have a non-zero component on each of the top-k modes (a mode with "
                             f"λ_j(0) = 0 never learns); got component norms {sn}.")
        if float(lam) != 1.0:
            off = Yn - np.diag(np.diag(Yn))
            if np.max(np.abs(off)) > rtol * np.max(np.abs(Yn)):
                raise ValueError(f"`{name}` is not aligned: with off_diagonal != 1 the start must be diag(s0) V_kᵀ "
                                 f"(mode j on output j); max off-diagonal coefficient {np.max(np.abs(off)):.3g}.")
        else:
            G = Yn @ Yn.T
            off = G - np.diag(np.diag(G))
            if np.max(np.abs(off)) > rtol * np.max(np.abs(G)):
                raise ValueError(f"`{name}` is not aligned: its components on the top-k modes are not orthogonal "
                                 f"(max |off-diagonal of Y Yᵀ| = {np.max(np.abs(off)):.3g}).")
    return s0, Y / s0[:, None]


class _LogisticModes(AbstractSolution):
    """Shared by the weight-space and output-space stepwise solutions: k modes with eigenvalues
    λ_j(t) logistic at rate 8γ_j from λ_j(0) (fields `gammas`, `lambda0` set by the subclass)."""

    gammas: eqx.AbstractVar[Float[Array, " k"]]
    lambda0: eqx.AbstractVar[Float[Array, " k"]]

    def eigenvalues(self, t) -> jax.Array:
        """Embedding eigenvalues `λ_j(t)` (mode order: descending γ_j)."""
        return logistic(t, self.lambda0, 8.0 * self.gammas)

    def loss(self, t) -> jax.Array:
        """The loss staircase `L(t) = Σ_j (1 − λ_j(t))²`."""
        return jnp.sum((1.0 - self.eigenvalues(t)) ** 2, axis=-1)

    def step_times(self) -> jax.Array:
        """`t_j = ln(1/λ_j(0) − 1)/(8γ_j)`, the times λ_j crosses ½ (λ_j(0) in (0, 1))."""
        return step_times(self.gammas, self.lambda0)


class StepwiseSolution(_LogisticModes):
    r"""Closed form of linear Barlow Twins from an aligned start `W(0) = Q diag(s_0) V_kᵀ`.

    `W(t) = Q diag(s(t)) V_kᵀ`, `s_j(t)² = λ_j(t)/γ_j`, λ_j logistic with rate 8γ_j. Also gives the
    embedding eigenvalues `eigenvalues(t)`, the loss staircase `loss(t)` and the step times
    `step_times()` (λ_j = ½).

    **Arguments:** `Gamma` (d, d); `W0` (k, d), aligned (raises naming `W0` otherwise: a component
    outside the top-k eigenvectors of Γ, or, for λ_off ≠ 1, a start that mixes modes across outputs);
    `off_diagonal` λ_off ≥ 0; `rtol`: relative tolerance of the alignment check.

    References: Simon et al., ICML 2023, §4 (aligned solution).
    """

    gammas: Float[Array, " k"]
    V: Float[Array, "d k"]
    Q: Float[Array, "k k"]
    lambda0: Float[Array, " k"]

    def __init__(self, Gamma, W0, *, off_diagonal=1.0, rtol: float = 1e-6):
        W0 = as_array(W0, "W0", ndim=2)
        Gamma = as_array(Gamma, "Gamma", ndim=2)
        k, d = W0.shape
        if d != Gamma.shape[0]:
            raise ValueError(f"`W0` must be (k, {Gamma.shape[0]}) to match `Gamma`, got shape {tuple(W0.shape)}.")
        if k > d:
            raise ValueError(f"`W0` must have k <= d rows, got k = {k} > d = {d}.")
        lam = check_off_diagonal(off_diagonal)
        g, V = eigenmodes(Gamma, k)
        Y = W0 @ V  # (k outputs, k modes)
        if is_concrete(W0) and not in_trace(W0):
            rest = np.asarray(W0) - np.asarray(Y @ V.T)
            if np.max(np.abs(rest)) > rtol * max(np.max(np.abs(np.asarray(W0))), 1e-300):
                raise ValueError(f"`W0` is not aligned: it has a component outside the top-k eigenvectors of Gamma "
                                 f"(max {np.max(np.abs(rest)):.3g}).")
        s0, Qt = _aligned_factor(Y.T, lam, "W0", rtol)  # rows: modes
        self.gammas, self.V, self.Q = g, V, Qt.T
        self.lambda0 = g * s0**2

    def evaluate(self, t):
        s = jnp.sqrt(self.eigenvalues(check_time(t)) / self.gammas)
        return (self.Q * s[None, :]) @ self.V.T


class KernelStepwiseSolution(_LogisticModes):
    r"""Closed form of the output-space flow from an aligned start `R(0) = K^{1/2} U_k diag(s_0) Qᵀ`.

    `R(t) = K^{1/2} U_k diag(s(t)) Qᵀ` with `s_j² = λ_j/γ_j`, λ_j logistic at rate 8γ_j, where
    `(γ_j, u_j)` are the top eigenpairs of `K^{1/2} B K^{1/2}` (`kernel_eigenmodes`). For K = ΦΦᵀ this
    is `Φ Wᵀ(t)` of the weight-space `StepwiseSolution` of the hidden features.
    """

    gammas: Float[Array, " k"]
    basis: Float[Array, "m k"]
    Q: Float[Array, "k k"]
    lambda0: Float[Array, " k"]

    def __init__(self, B, K, R0, *, off_diagonal=1.0, rtol: float = 1e-6):
        R0 = as_array(R0, "R0", ndim=2)
        m, k = R0.shape
        lam = check_off_diagonal(off_diagonal)
        g, U, root = kernel_eigenmodes(B, K, k)
        if R0.shape[0] != U.shape[0]:
            raise ValueError(f"`R0` must have {U.shape[0]} rows to match `B` and `K`, got shape {tuple(R0.shape)}.")
        basis = root @ U  # (m, k): K^{1/2} u_j
        Y = (U.T @ root @ sym(jnp.asarray(B, R0.dtype)) @ R0) / g[:, None]  # (modes, outputs) = diag(s0) Qᵀ
        if is_concrete(R0) and not in_trace(R0):
            rest = np.asarray(R0) - np.asarray(basis @ Y)
            if np.max(np.abs(rest)) > rtol * max(np.max(np.abs(np.asarray(R0))), 1e-300):
                raise ValueError(f"`R0` is not aligned: it has a component outside span(K^(1/2) u_j, j ≤ k) "
                                 f"(max {np.max(np.abs(rest)):.3g}).")
        s0, Qt = _aligned_factor(Y, lam, "R0", rtol)
        self.gammas, self.basis, self.Q = g, basis, Qt.T
        self.lambda0 = g * s0**2

    def evaluate(self, t):
        s = jnp.sqrt(self.eigenvalues(check_time(t)) / self.gammas)
        return (self.basis * s[None, :]) @ self.Q.T

r"""Exact solutions of the quadratic flows, built once and evaluated at any time t ≥ 0.

Like `neural_tangents.predict`, each constructor factorises once (one eigendecomposition of S) and
returns an object whose methods are functions of `t` (vmap over `t` for many times).

With `S = Σ_j μ_j u_j u_jᵀ`, `μ_1 ≥ … ≥ μ_d`, and `C = UᵀW(0)`:

- naive flow `dW/dt = 2SW − ωW`:      `W(t) = e^{−ωt} U diag(e^{2tμ}) C`;
- Oja/Grassmann flow `dW/dt = 2(I − WWᵀ)SW`: `P(t) = W Wᵀ` is the projector onto `span(e^{2tS} W(0))`
  (Yan, Helmke & Moore 1994);
- k = 1: `w(t) = e^{2tS} w(0) / ‖e^{2tS} w(0)‖` exactly.

**Stable evaluation of P(t).** Orthonormalising `e^{2tS}W(0)` directly fails once
`e^{2t(μ_1−μ_k)}` exceeds ~1e16: the columns become numerically parallel (a spurious collapse).
We use graph coordinates instead. Split `C = [C_top; C_rest]` (top-k modes first) and right-multiply
the spanning matrix by the invertible `C_top^{-1} diag(e^{−2tμ_top})`, which does not change the span:

    span(e^{2tS}W(0)) = U · span([I_k ; E(t)]),   E(t)_{ij} = e^{2t(μ_{k+i} − μ_j)} (C_rest C_top^{-1})_{ij}.

Every exponent is ≤ 0 for t ≥ 0, so nothing overflows at any t, and `E(t) → 0` gives the limit
`U_k U_kᵀ` at rate `e^{−2(μ_k − μ_{k+1})t}`. The cost per evaluation is O(d k²) plus one O(d² k)
rotation. It needs `C_top` invertible (`W(0)` not orthogonal to a top-k direction), which holds for
a generic start; the constructor checks the smallest cosine of the principal angles, σ_min(C_top).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular
import numpy as np
from jaxtyping import Array, Float

from ._manifolds import newton_schulz, qf
from ._linalg import (check_pair_matrix, kernel_root, pair_apply_blocks, pair_blocks, pair_eigenblocks,
                      pair_factor_rmatmul, sym)
from ._solution import AbstractSolution
from ._stats import pair_matrix
from ._validation import as_array, check_orthonormal_columns, check_positive, check_symmetric, check_time, is_concrete


def _eigh_desc(S):
    mu, U = jnp.linalg.eigh(sym(S))
    return mu[::-1], U[:, ::-1]


def _check_S_W0(S, W0):
    S = as_array(S, "S", ndim=2)
    check_symmetric(S, "S")
    W0 = as_array(W0, "W0", ndim=(1, 2))
    if W0.shape[0] != S.shape[0]:
        raise ValueError(f"`W0` must have {S.shape[0]} rows to match `S`, got shape {tuple(W0.shape)}.")
    return S, W0


def _check_t(t):
    """A time `t`: finite and >= 0 (NaN, Inf and negative times raise naming `t`)."""
    return check_time(t, "t")


class NaiveSolution(AbstractSolution):
    r"""Closed form of the naive flow `dW/dt = 2SW − ωW`: `W(t) = e^{−ωt} e^{2tS} W(0)`.

    **Arguments:** `S` symmetric (d, d); `W0` (d, k); `weight_decay` ω ≥ 0.

    Call it with a time `t` (≥ 0) to get `W(t)`. It overflows for `2μ_1 t` beyond ~700 (float64):
    that is the true solution growing, not a numerical artefact; outside a trace `solution(t)` and
    `trajectory(ts)` then raise an `OverflowError` naming the growth rate and the largest safe `t`.
    """

    mu: jax.Array
    U: jax.Array
    C: jax.Array
    weight_decay: jax.Array

    def __init__(self, S, W0, *, weight_decay=0.0):
        S, W0 = _check_S_W0(S, W0)
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        self.mu, self.U = _eigh_desc(S)
        self.C = self.U.T @ W0
        self.weight_decay = jnp.asarray(weight_decay, dtype=S.dtype)

    def evaluate(self, t) -> Float[Array, "d k"]:
        """`W(t)`."""
        t = _check_t(t)
        scale = jnp.exp(2.0 * t * self.mu - self.weight_decay * t)
        return self.U @ (scale[:, None] * self.C)

    def nonfinite_error(self, t) -> ArithmeticError:
        t = float(np.max(np.asarray(t)))
        rate = float(2.0 * np.max(np.asarray(self.mu)) - np.asarray(self.weight_decay))
        limit = float(np.log(np.finfo(np.dtype(self.mu.dtype)).max))
        horizon = f"t < {limit / rate:.4g}" if rate > 0 else "a smaller t"
        return OverflowError(
            f"NaiveSolution: W(t) overflows {np.dtype(self.mu.dtype).name} at `t` = {t:g}: the naive flow grows like "
            f"e^{{(2 mu_1 - weight_decay) t}} = e^{{{rate * t:.4g}}} (mu_1 = {float(np.max(np.asarray(self.mu))):.4g}), "
            f"beyond the largest float e^{{{limit:.4g}}}. This is the true solution diverging: use {horizon}, "
            "a weight decay above 2 mu_1, or a constrained flow (GrassmannSolution).")


class GrassmannSolution(AbstractSolution):
    r"""Closed form of the Oja/Grassmann flow `dW/dt = 2(I − WWᵀ)SW`, stable at every t ≥ 0.

    The flow's `W(t)` is defined by the ODE only up to a rotation `W ↦ WQ(t)`; this object gives the
    invariant quantities exactly: the projector `P(t) = W(t)W(t)ᵀ`, an orthonormal `basis(t)` of the
    same span (a rotation of `W(t)`), and the loss `−tr(P(t) S)`.

    **Arguments:** `S` symmetric (d, d); `W0` (d, k) with orthonormal columns.

    References: Yan, Helmke & Moore, *Global analysis of Oja's flow for neural networks*, IEEE TNN
    5(5), 1994; Esser, Mukherjee & Ghoshdastidar, TMLR 2024.
    """

    mu: jax.Array
    U: jax.Array
    G: jax.Array
    k: int = eqx.field(static=True)

    def __init__(self, S, W0, *, min_cosine: float = 1e-8):
        S, W0 = _check_S_W0(S, W0)
        if W0.ndim != 2:
            raise ValueError(f"`W0` must be a (d, k) matrix, got shape {tuple(W0.shape)}.")
        check_orthonormal_columns(W0, "W0")
        k = W0.shape[1]
        self.mu, self.U = _eigh_desc(S)
        C = self.U.T @ W0
        C_top = C[:k]
        if is_concrete(C_top):
            # σ_min(U_kᵀW0) is the cosine of the largest principal angle to the top-k eigenspace.
            cos_max_angle = float(np.linalg.svd(np.asarray(C_top), compute_uv=False).min())
            if not cos_max_angle > min_cosine:
                raise ValueError(
                    f"`W0` is (nearly) orthogonal to the top-{k} eigenspace of `S` (smallest cosine of "
                    f"the principal angles = {cos_max_angle:.3g} <= {min_cosine:g}): the graph-coordinate "
                    "closed form is ill-conditioned. Integrate the flow with `ssldyn.solve` instead."
                )
        self.G = jnp.linalg.solve(C_top.T, C[k:].T).T
        self.k = k

    def _graph_basis(self, t):
        t = _check_t(t)
        k = self.k
        gaps = self.mu[k:, None] - self.mu[None, :k]
        E = jnp.exp(2.0 * t * gaps) * self.G
        Y = jnp.concatenate([jnp.eye(k, dtype=self.G.dtype), E], axis=0)
        return qf(Y)

    def basis(self, t) -> Float[Array, "d k"]:
        """An orthonormal (d, k) basis of the subspace at time t (equal to W(t) up to a rotation).

        The rotation by the eigenvectors `U` costs orthonormality in low precision (float32 `U` is
        orthogonal only to ~√d·ε); a Newton–Schulz correction restores it (`newton_schulz`)."""
        return newton_schulz(self.U @ self._graph_basis(t))

    def evaluate(self, t) -> Float[Array, "d k"]:
        """`basis(t)`: the Solution protocol's state (W(t) up to a rotation; compare projectors)."""
        return self.basis(t)

    def projector(self, t):
        """The projector `P(t) = W(t) W(t)ᵀ` (d, d)."""
        B = self.basis(t)
        return B @ B.T

    def loss(self, t):
        """`−tr(W(t)ᵀ S W(t)) = −Σ_j μ_j ‖row_j of the eigen-coordinate basis‖²`."""
        Q = self._graph_basis(t)
        return -jnp.sum(self.mu[:, None] * Q**2)

    def limit_projector(self):
        """`U_k U_kᵀ`, the projector onto the top-k eigenspace (the t → ∞ limit)."""
        Uk = self.U[:, : self.k]
        return Uk @ Uk.T


class PowerFlowSolution(AbstractSolution):
    r"""Exact solution of the k = 1 constrained flow `dw/dt = 2(I − wwᵀ)Sw`, `‖w‖ = 1`:

        w(t) = e^{2tS} w(0) / ‖e^{2tS} w(0)‖,

    evaluated as `U (e^{2t(μ − μ_1)} ⊙ c) / ‖·‖` so it never overflows. For k = 1 the rotation
    ambiguity is only a sign, fixed by continuity, so this is `w(t)` itself, not just its span.

    **Arguments:** `S` symmetric (d, d); `w0` unit vector (d,) or (d, 1).
    """

    mu: jax.Array
    U: jax.Array
    c: jax.Array
    column: bool = eqx.field(static=True)

    def __init__(self, S, w0):
        S, w0 = _check_S_W0(S, w0)
        column = w0.ndim == 2
        if column and w0.shape[1] != 1:
            raise ValueError(f"`w0` must be a vector (d,) or (d, 1), got shape {tuple(w0.shape)}.")
        w0 = w0.reshape(-1)
        if is_concrete(w0):
            norm = float(np.linalg.norm(np.asarray(w0)))
            if abs(norm - 1.0) > (1e-10 if w0.dtype == jnp.float64 else 1e-5):
                raise ValueError(f"`w0` must be a unit vector, got norm {norm:.6g}.")
        self.mu, self.U = _eigh_desc(S)
        self.c = self.U.T @ w0
        self.column = column

    def evaluate(self, t) -> Float[Array, "d *1"]:
        """`w(t)`, shaped like `w(0)`."""
        t = _check_t(t)
        v = jnp.exp(2.0 * t * (self.mu - self.mu[0])) * self.c
        w = self.U @ (v / jnp.linalg.norm(v))
        w = w / jnp.linalg.norm(w)  # normalised after the rotation too: float32 `U` is orthogonal to ~√d·ε only
        return w[:, None] if self.column else w


# ------------------------------------------------------------------------------------------------
# The constrained output-space flow
# ------------------------------------------------------------------------------------------------


def _phi1(x):
    """`(eˣ − 1)/x`, with its limit 1 at 0 (accurate for all x: `expm1`)."""
    small = jnp.abs(x) < 1e-8
    xs = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 + 0.5 * x, jnp.expm1(xs) / xs)


def _phi2(x):
    """`(eˣ − 1 − x)/x²`, with its limit 1/2 at 0 (Taylor series below |x| = 1e-2, where the
    subtraction would cancel; the truncation error there is below 3e-15)."""
    small = jnp.abs(x) < 1e-2
    xs = jnp.where(small, 1.0, x)
    series = 0.5 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x / 720)))
    return jnp.where(small, series, (jnp.expm1(xs) - xs) / xs**2)


def _log_phi1_rest(x):
    """`log((eˣ − 1)/x) − max(x, 0)`: the logarithm of φ₁ without its linear growth, O(log|x|) for all x.

    Ratios `φ₁(x_i)/φ₁(x_j)` are then formed as `exp(max(x_i,0) − max(x_j,0) + rest_i − rest_j)` with
    the linear parts differenced before they are scaled by t (`2t(λ_i − λ_j)`): differencing two
    logarithms of size ~2tλ would lose ε·2tλ of relative accuracy (6e-5 at 2tλ = 1e3 in float32)."""
    pos, neg = x > 1.0, x < -1.0
    xp = jnp.where(pos, x, 2.0)
    xn = jnp.where(neg, x, -2.0)
    xm = jnp.clip(x, -1.0, 1.0)
    return jnp.where(pos, jnp.log1p(-jnp.exp(-xp)) - jnp.log(xp),
                     jnp.where(neg, jnp.log1p(-jnp.exp(xn)) - jnp.log(-xn), jnp.log(_phi1(xm)) - jnp.maximum(xm, 0.0)))


def _log_phi2_rest(x):
    """`log((eˣ − 1 − x)/x²) − max(x, 0)` (see `_log_phi1_rest`; for x ≤ 1 the function is ≤ e − 2)."""
    pos = x > 1.0
    xp = jnp.where(pos, x, 2.0)
    xm = jnp.minimum(x, 1.0)
    return jnp.where(pos, jnp.log1p(-(1.0 + xp) * jnp.exp(-xp)) - 2.0 * jnp.log(xp),
                     jnp.log(_phi2(xm)) - jnp.maximum(xm, 0.0))


def _condition(N):
    """The 2-norm condition number `λ_max/λ_min` of a symmetric (k, k) matrix that should be positive
    definite; +inf when it is not (numerically) or holds NaN/Inf (the graph form at t = 0)."""
    w = jnp.linalg.eigvalsh(sym(jnp.where(jnp.all(jnp.isfinite(N)), N, jnp.eye(N.shape[0], dtype=N.dtype))))
    ok = jnp.all(jnp.isfinite(N)) & (w[0] > 0)
    return jnp.where(ok, w[-1] / jnp.where(ok, w[0], 1.0), jnp.inf)


def _prefer_graph(N_p, N_g):
    r"""Whether to evaluate `R = X N^{-1/2}` in the graph form rather than the plain one.

    Both forms are exact; their rounding errors differ. Forming `X N^{-1/2}` loses about
    `ε·κ(N)` in relative accuracy (ε the unit round-off, κ the condition number): measured on the
    test networks, the plain form's relative Gram error is (0.04–0.5)·ε·κ(N_p). The old rule switched
    when κ(N_p) exceeded 1e8, i.e. at a Gram error of up to ~5e-9. Both N are (k, k), so we simply
    estimate both errors and take the form with the smaller κ; the plain one on ties and at t = 0
    (where the graph form is undefined). Measured: ≤ 1e-13 relative Gram error at every t on the
    test networks (`tests/test_float32.py`, `tests/test_output_space.py`)."""
    return _condition(N_g) < _condition(N_p)


def _check_B_factor(B_factor, B):
    """Validate `B_factor = (U, d)` against B (shapes always; `B U = U diag(d)` and `UᵀU = I` to
    1e-8 relative when the values are concrete, i.e. outside jit). Returns `(U, d)`."""
    if not isinstance(B_factor, (tuple, list)) or len(B_factor) != 2:
        raise TypeError("`B_factor` must be a pair (U, d) with B = U diag(d) Uᵀ (e.g. `pair_factor(n, kind)`).")
    U = as_array(B_factor[0], "B_factor[0] (U)", ndim=2)
    d = as_array(B_factor[1], "B_factor[1] (d)", ndim=1)
    m = B.shape[0]
    if U.shape[0] != m or d.shape[0] != U.shape[1]:
        raise ValueError(f"`B_factor` must be (U, d) with U of shape ({m}, q) and d of shape (q,), got "
                         f"{tuple(U.shape)} and {tuple(d.shape)}.")
    U, d = U.astype(B.dtype), d.astype(B.dtype)
    if is_concrete(U) and is_concrete(d) and is_concrete(B):
        scale = float(jnp.max(jnp.abs(B))) or 1.0
        tol = 1e-8 if B.dtype == jnp.float64 else 1e-4
        if float(jnp.max(jnp.abs(B @ U - U * d[None, :]))) > tol * scale \
                or float(jnp.max(jnp.abs(U.T @ U - jnp.eye(U.shape[1], dtype=U.dtype)))) > tol:
            raise ValueError("`B_factor` = (U, d) does not factor `B`: B U = U diag(d) with orthonormal U is required "
                             "(pair_factor(n, kind) gives it for pair_matrix(n, kind)).")
    return U, d


def _check_pair(pair, B, B_factor):
    """Validate `pair = (n, kind)` against B (its size always; its entries when concrete). Returns `(n, kind)`."""
    if B_factor is not None:
        raise ValueError("Give `pair` or `B_factor`, not both: `pair` implies the factor `pair_factor(n, kind)`.")
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError("`pair` must be (n, kind) with B = pair_matrix(n, kind), e.g. (400, 'contrastive').")
    n, kind = pair
    coeffs, scale = pair_blocks(n, kind)
    n = int(n)
    if B.shape[0] != len(coeffs) * n:
        raise ValueError(f"`pair` = {(n, kind)!r} gives a ({len(coeffs) * n}, {len(coeffs) * n}) pair matrix, but `B` is "
                         f"{tuple(B.shape)}.")
    if is_concrete(B):
        if np.max(np.abs(np.asarray(B, np.float64) - np.asarray(pair_matrix(n, kind), np.float64))) > 1e-6 * scale:
            raise ValueError(f"`B` is not pair_matrix{(n, kind)!r}; pass `B_factor` (or nothing) for another B.")
    return n, kind


class OutputSolution(AbstractSolution):
    r"""Closed form of the constrained output-space flow (`OutputFlow(B, K, constrained=True)`)

        dR/dt = 2 (K B R − R Rᵀ B R),    dR*/dt = 2 (K* B R − R* Rᵀ B R)   (unseen inputs),

    for any `R(0)` and any PSD `K`, from one eigendecomposition; evaluated for any `t`, any initial
    outputs and any kernel scale `c` (kernel `c K`, e.g. `c = h` for the width-h network with
    `c_h = 1`) without refactorising.

    **Derivation.** Write `R = X S` with `X' = 2 K B X`, `X(0) = R(0)`. Then `R` solves the flow iff
    `S S ᵀ = N⁻¹` with `N(0) = I`, `N' = 4 Xᵀ B X`: differentiating, `X S'` must equal
    `−2 X S Sᵀ XᵀBX S`, and `d(SSᵀ)/dt = −4 N⁻¹ XᵀBX N⁻¹ = d(N⁻¹)/dt`. (For a network
    `X = Φ e^{2tΦᵀBΦ} W(0)` and `N = W(0)ᵀ e^{4tΦᵀBΦ} W(0)`: the Yan–Helmke–Moore solution of Oja's
    flow, pushed through `R = ΦW`.) Everything is defined up to `R ↦ R Q(t)`; we return
    `R = X N^{-1/2}`, so `R Rᵀ`, `R* Rᵀ` and every rotation-invariant quantity are exact.

    With a root `K = L Lᵀ` (L (m, r)) and `Lᵀ B L = Q diag(λ) Qᵀ`, `(KB)ʲ = L (LᵀBL)^{j−1} LᵀB`, so
    with `c₀ = Qᵀ Lᵀ B R(0)` (r, k):

        X(t)  = R(0) + L Q diag(φ(λ)) c₀,                     φ(λ) = (e^{2tλ} − 1)/λ,
        N(t)  = I + 4t R(0)ᵀ B R(0) + c₀ᵀ diag(χ(λ)) c₀,       χ(λ) = ((e^{4tλ} − 1)/λ − 4t)/λ,
        X*(t) = R*(0) + 2 K* B (t R(0) + L Q diag(ψ(λ)) c₀),  ψ(λ) = ((e^{2tλ} − 1)/(2λ) − t)/λ

    (`XᵀBX = R(0)ᵀBR(0) + c₀ᵀ diag((e^{4sλ} − 1)/λ) c₀`, integrated in s; no pseudo-inverse of K and
    no assumption `R(0)ᵀ K⁺ R(0) = I`, so sampled infinite-width `R(0)` are covered). `R ↦ αX, N ↦ α²N`
    leaves `X N^{-1/2}` unchanged, so all exponentials are shifted by `2tλ_max` and nothing overflows.
    As the fast modes outgrow the slow ones, N becomes ill-conditioned and `X N^{-1/2}` loses about
    ε·κ(N) of relative accuracy; the same quantities are therefore also formed in graph coordinates
    (`X ↦ X c_top⁻¹ diag(1/φ_top)`, as in `GrassmannSolution`), where N tends to a well-conditioned
    limit, and each evaluation uses the form whose N has the smaller condition number (an error
    estimate, not a fixed threshold). Tested against the weight-space closed form on a dense grid of t
    up to 1e4 (relative Gram error ≤ 1e-9, about 1e-13 measured) and against the ODE.

    **Re-normalisation in the K⁺ metric.** For a network with h ≤ m, `R(0) = ΦW(0)` lies on the set
    `{R ∈ range K : Rᵀ K⁺ R = I}` (`RᵀK⁺R = WᵀW`), which the flow keeps. X and N come from separate
    formulas, so `X N^{-1/2}` keeps the constraint only to their disagreement: ~ε·κ(c_top) in the graph
    form near the switch (9e-5 in float32 on the network of `tests/test_float32.py`; ~1e-13 in float64).
    In root coordinates `Y = (√c L)⁺ R` (c the kernel scale; `Rᵀ (cK)⁺ R = YᵀY` for R in range K) the
    columns are re-normalised by a Cholesky factor, the same right factor for seen and unseen inputs:

        H = YᵀY = G Gᵀ,   R ← R G⁻ᵀ,   R* ← R* G⁻ᵀ,   so that   (R G⁻ᵀ)ᵀ (cK)⁺ (R G⁻ᵀ) = G⁻¹ H G⁻ᵀ = I.

    `G⁻ᵀ = I + O(‖H − I‖)`, so R moves by the size of the defect. It is applied only where
    (i) `R(0)` is on the set to 100ε: `|R(0)ᵀ(cK)⁺R(0) − I| ≤ 100ε` and `‖R(0) − P_K R(0)‖ ≤ 100ε‖R(0)‖`
    (P_K the projector onto range K). Off the set (sampled infinite-width `R(0)`, or h > m) there is no
    constraint and R is returned unchanged. On it this is the projection method (as `AbstractFlow.restore`
    in `solve`): it does not propagate the round-off of `R(0)`, which the exact flow would amplify (on
    the test network, float32 `R(0)` is 2.5e-7 off the set and the exact flow from it 3.9e-6 at t ≈ 35);
    (ii) the defect `|H − I|` exceeds ε·κ/2, the resolution of the K⁺ metric, with κ = κ(L) for a given
    root and κ = κ(K) = κ(L)² for a root computed from K here (its eigendecomposition's backward error
    is ~ε‖K‖); below that the step would replace a small error by the metric's own round-off (measured
    on networks with κ(L) = 49 and 410 in float32);
    (iii) `|H − I| ≤ 1e-2` (a larger defect is not round-off).
    In float64 (defects ≤ 1e-13) results move by round-off only: ≤ 1.2e-13 relative on the test network
    (κ = 2), not at all on the networks of `tests/test_output_space.py`. In float32 the constraint then
    holds to 5.5e-7 on the test network given the root Φ, and to 1.3e-6 given K = ΦΦᵀ: the float32
    eigendecomposition of K already puts `R(0)` 8.6e-7 off the set of its root.

    The cost: one root of K (or none: pass the features, `root=Φ`), one eigendecomposition of the
    (r, r) matrix `LᵀBL` and one thin SVD of the (m, r) root (for `(LQ)⁺`); each evaluation is
    O(m r k) — independent of the width h of the network it describes. Compare
    `ssldyn.solve(OutputFlow(...))`, which this reproduces (see the tests).

    **Arguments:**
    - `B`: symmetric (m, m) pair matrix.
    - `K`: symmetric PSD (m, m) kernel; or give `root` instead.
    - `root`: (m, r) with `root @ root.T = K` (e.g. the hidden features Φ, or
      `kernel_root(K, method="cholesky")`); computed from `K` by eigendecomposition when omitted.
    - `K_eval`: optional (m*, m) cross kernel to unseen inputs.
    - `renormalise`: prepare the re-normalisation in the K⁺ metric (default True). It only ever acts
      on initial outputs on the constraint set (a network's `R(0) = ΦW(0)` with h ≤ m), and it costs
      the thin SVD of the root, the largest part of the construction for a square root. Pass False
      when every `R(0)` is sampled (infinite-width predictions): the results are the same.
    - `B_factor`: optional `(U, d)` with `B = U diag(d) Uᵀ`, U (m, q) with orthonormal columns, e.g.
      `pair_factor(n, kind)` (q = 2n of m = 3n for the contrastive pair matrix). The eigenproblem then
      has size min(r, q) instead of r (see the comment in the code); the results agree with those
      without it to round-off (tested).
    - `pair`: optional `(n, kind)` stating that `B = pair_matrix(n, kind)` (checked when concrete). Every
      product with B is then taken block-wise (O(m k) instead of O(m² k): B has ±I blocks) and the
      eigenproblem uses `pair_factor(n, kind)`, applied block-wise too (give no `B_factor`). The results
      agree with the dense B to round-off (tested); an evaluation then costs O(m r k + m* m k).
    """

    B: jax.Array
    LQ: jax.Array
    BLQ_T: jax.Array
    lam: jax.Array
    K_eval: jax.Array | None
    LQ_pinv: jax.Array | None
    range_basis: jax.Array | None
    metric_cond: jax.Array | None
    R0: jax.Array | None = None
    R0_eval: jax.Array | None = None
    scale: jax.Array | None = None
    pair: tuple | None = eqx.field(static=True, default=None)

    def __init__(self, B, K=None, *, root=None, K_eval=None, R0=None, R0_eval=None, scale=1.0,
                 renormalise: bool = True, B_factor=None, pair=None):

        B = check_pair_matrix(B, name="B")
        m = B.shape[0]
        self.pair = None if pair is None else _check_pair(pair, B, B_factor)
        if (K is None) == (root is None):
            raise ValueError("Give exactly one of `K` (the kernel) and `root` (L with L Lᵀ = K).")
        from_K = root is None
        if from_K:
            root = kernel_root(check_pair_matrix(K, m, name="K"))  # refuses a K that is not PSD
            # The eigh root has orthogonal columns of norm √λ. Eigenvalues at the round-off level of K
            # (λ ≤ m·ε·λ_max) are zero to working precision, but their roots √(m·ε·λ_max) are not small
            # (3e-4·√λ_max in float32): they would leak O(√ε) into R(t). Drop them, a perturbation of K
            # below its own round-off.
            # Concrete K: the columns are removed (a rank-deficient K, e.g. a finite-width kernel with
            # h < m, then has a root of its rank, and no λ = 0 mode of its null space can be taken for a
            # top mode); under a trace they are zeroed (shapes must not depend on values).
            norms2 = jnp.sum(root**2, axis=0)
            keep = norms2 > m * jnp.finfo(root.dtype).eps * jnp.max(norms2)
            root = root[:, np.asarray(keep)] if is_concrete(keep) else root * keep[None, :]
        root = as_array(root, "root", ndim=2)
        if root.shape[0] != m:
            raise ValueError(f"`root` must have {m} rows to match `B`, got shape {tuple(root.shape)}.")
        if K_eval is not None:
            K_eval = as_array(K_eval, "K_eval", ndim=2)
            if K_eval.shape[1] != m:
                raise ValueError(f"`K_eval` must be (m_eval, {m}), got {tuple(K_eval.shape)}.")
        B = sym(B)
        if B_factor is None and self.pair is None:
            lam, Q = jnp.linalg.eigh(sym(root.T @ B @ root))
        else:
            # B = U diag(d) Uᵀ (U: m × q): LᵀBL = M diag(d) Mᵀ with M = LᵀU = Q_M R_M (thin QR), so its
            # nonzero eigenpairs are Q_M Y, λ with R_M diag(d) R_Mᵀ = Y diag(λ) Yᵀ: a min(r, q)-sized
            # eigenproblem. The modes dropped (eigenvalue 0, B L q = 0) have c₀ = 0 and never enter R(t).
            if self.pair is None:
                U, d = _check_B_factor(B_factor, B)
                M = root.T @ U
            else:
                n, kind = self.pair
                d = jnp.asarray(pair_eigenblocks(n, kind)[1], B.dtype)
                M = pair_factor_rmatmul(root, n, kind).T
            Q_M, R_M = jnp.linalg.qr(M)
            lam, Y = jnp.linalg.eigh(sym(R_M @ (d[:, None] * R_M.T)))
            Q = Q_M @ Y
        self.B, self.lam, self.K_eval = B, lam, K_eval
        self.LQ = root @ Q
        self.BLQ_T = self._B(self.LQ).T  # (r, m), stored transposed: c₀ = (BLQ)ᵀR(0) is then a plain product
        # Root coordinates for the re-normalisation in `__call__`: `(LQ)⁺` and an orthonormal basis of
        # range(K) = range(LQ), from one thin SVD (singular values at round-off level count as zero;
        # masked rather than removed, so that shapes do not depend on values under a trace). With
        # `B_factor` or `pair`, LQ spans only part of range(K): the root itself serves (`Rᵀ(LQ)⁺ᵀ(LQ)⁺R = RᵀK⁺R`
        # for either, Q being orthogonal).
        if not isinstance(renormalise, bool):
            raise TypeError(f"`renormalise` must be a bool, got {type(renormalise).__name__}")
        if renormalise:
            basis = self.LQ if B_factor is None and self.pair is None else root
            U_r, s_r, Vt_r = jnp.linalg.svd(basis, full_matrices=False)
            keep_r = s_r > max(basis.shape) * jnp.finfo(s_r.dtype).eps * s_r[0]
            self.range_basis = U_r * keep_r[None, :]
            self.LQ_pinv = (Vt_r.T * jnp.where(keep_r, 1.0 / jnp.where(keep_r, s_r, 1.0), 0.0)[None, :]) @ U_r.T
            # The condition number that sets the resolution of the K⁺ metric: κ(L) for a given root,
            # κ(K) = κ(L)² for a root computed here from K (the eigendecomposition's backward error is ε‖K‖).
            kappa = s_r[0] / jnp.min(jnp.where(keep_r, s_r, jnp.inf))
            self.metric_cond = kappa**2 if from_K else kappa
        else:
            self.range_basis = self.LQ_pinv = self.metric_cond = None
        self.R0 = None if R0 is None else as_array(R0, "R0", ndim=2)
        self.R0_eval = None if R0_eval is None else as_array(R0_eval, "R0_eval", ndim=2)
        check_positive(scale, "scale")
        self.scale = jnp.asarray(scale, dtype=B.dtype)

    def with_initial(self, R0, R0_eval=None, *, scale=1.0) -> OutputSolution:
        """The same factorisation with stored initial outputs (and kernel scale), so that the
        Solution protocol's `solution(t)` / `trajectory(ts)` need only the time."""
        R0 = as_array(R0, "R0", ndim=2)
        R0_eval = None if R0_eval is None else as_array(R0_eval, "R0_eval", ndim=2)
        check_positive(scale, "scale")
        return eqx.tree_at(lambda s: (s.R0, s.R0_eval, s.scale), self, (R0, R0_eval, jnp.asarray(scale, R0.dtype)),
                           is_leaf=lambda x: x is None)

    def evaluate(self, t):
        """`R(t)` (or `(R(t), R_eval(t))`) from the initial outputs given at construction or by `with_initial`."""
        if self.R0 is None:
            raise ValueError("this OutputSolution has no initial outputs: pass `R0=` when building it, use "
                             "`with_initial(R0)`, or call `solution(t, R0)`.")
        return self(t, self.R0, self.R0_eval, scale=self.scale)

    def __call__(self, t, R0=None, R0_eval=None, *, scale=None):
        """`R(t)` (m, k), or `(R(t), R_eval(t))` when `R0_eval` is given, for the kernel `scale · K`
        (defaults: the initial outputs and scale stored at construction)."""
        if R0 is None:
            if self.R0 is None:
                raise ValueError("`R0` is required: this OutputSolution stores no initial outputs.")
            R0, R0_eval = self.R0, self.R0_eval if R0_eval is None else R0_eval
        if scale is None:
            scale = 1.0 if self.scale is None else self.scale
        t = _check_t(t)
        check_positive(scale, "scale")
        R0 = as_array(R0, "R0", ndim=2)
        if R0.shape[0] != self.LQ.shape[0]:
            raise ValueError(f"`R0` must have {self.LQ.shape[0]} rows, got shape {tuple(R0.shape)}.")
        if R0_eval is not None:
            if self.K_eval is None:
                raise ValueError("`R0_eval` needs `K_eval` at construction.")
            R0_eval = as_array(R0_eval, "R0_eval", ndim=2)
            if R0_eval.shape != (self.K_eval.shape[0], R0.shape[1]):
                raise ValueError(f"`R0_eval` must be {(self.K_eval.shape[0], R0.shape[1])}, got {tuple(R0_eval.shape)}.")
        if R0.shape[1] > self.LQ.shape[1]:
            raise ValueError(f"`R0` has k = {R0.shape[1]} columns but the kernel root has rank {self.LQ.shape[1]} < k.")
        X, N, Xe = self._forms(t, R0, R0_eval, scale)
        w, V = jnp.linalg.eigh(sym(N))
        # Both forms are exact; refuse (rather than return a spurious collapse) if even the better form's
        # N is numerically singular (e.g. R(0) orthogonal to a top eigen-direction of K B).
        N_isqrt = (V / jnp.sqrt(w)[None, :]) @ V.T
        N_isqrt = eqx.error_if(
            N_isqrt, ~(w[0] > 1e-12 * w[-1]),
            "OutputSolution: N(t) is numerically singular (R(0) is nearly orthogonal to a top eigen-direction "
            "of K B, or t is extreme); integrate OutputFlow with ssldyn.solve instead.")
        # A k-th eigenvalue λ_k < 0 of K B: the k-th direction of X decays like e^{2tλ_k} but is formed as
        # R(0) plus a bounded correction (the two cancel), so round-off is amplified by e^{2t|λ_k|} in
        # either form. Refuse once that amplification passes 1e4 (four digits lost: a relative error of
        # ~1e-12 in float64) rather than return a wrong subspace; GrassmannSolution in weight space or
        # `solve` covers that case (measured on tests/test_properties.py's example: 1e-2 at 2t|λ_k| = 23).
        k = R0.shape[1]
        decay = 2.0 * t * jnp.maximum(-jnp.asarray(scale, R0.dtype) * self.lam[-k], 0.0)
        N_isqrt = eqx.error_if(
            N_isqrt, decay > jnp.log(1e4),
            "OutputSolution: the k-th eigenvalue λ_k of K B is negative and 2t|λ_k| > 9.2, so the k-th output "
            "direction is lost to cancellation; use GrassmannSolution in weight space or integrate "
            "OutputFlow with ssldyn.solve.")
        R = X @ N_isqrt
        C = self._renormaliser(R0, R, scale)
        return R @ C if R0_eval is None else (R @ C, (Xe @ N_isqrt) @ C)

    def _renormaliser(self, R0, R, scale):
        """The (k, k) factor `G⁻ᵀ` of the re-normalisation in the K⁺ metric (class docstring), or exactly
        the identity where it does not apply."""
        k, dtype = R0.shape[1], R0.dtype
        eps = float(jnp.finfo(dtype).eps)
        eye = jnp.eye(k, dtype=dtype)
        if self.LQ_pinv is None:  # built with renormalise=False
            return eye
        y0 = self.LQ_pinv @ R0
        R_perp = R0 - self.range_basis @ (self.range_basis.T @ R0)  # the part of R(0) outside range(K)
        on_set = (jnp.max(jnp.abs((y0.T @ y0) / scale - eye)) <= 100.0 * eps) & (
            jnp.linalg.norm(R_perp) <= 100.0 * eps * jnp.linalg.norm(R0))
        Y = self.LQ_pinv @ R  # √scale · root coordinates of R
        H = sym(Y.T @ Y) / scale  # Rᵀ (scale·K)⁺ R
        defect = jnp.max(jnp.abs(H - eye))
        apply = on_set & (defect > 0.5 * eps * self.metric_cond.astype(dtype)) & (defect <= 1e-2)
        G = jnp.linalg.cholesky(jnp.where(apply, H, eye))
        return solve_triangular(G, eye, lower=True).T

    def _B(self, Y):
        """`B Y`: block-wise for a `pair` matrix, else dense."""
        return self.B @ Y if self.pair is None else pair_apply_blocks(Y, *self.pair)

    def _forms(self, t, R0, R0_eval, scale):
        """`(X, N, X_eval)` in the plain or the graph form, whichever `_prefer_graph` picks from the two N
        (X_eval None without `R0_eval`); both represent the same `R = X N^{-1/2}` up to a rotation. Each is
        `X = R(0) A + LQ C`, so only the chosen one is formed from the (m, r) and (m*, m) matrices.
        Inputs are validated by `__call__`."""
        dtype = R0.dtype
        scale = jnp.asarray(scale, dtype)
        lam = scale * self.lam  # eigenvalues of (scale·L)ᵀ B L for the root √scale·L
        # Shift every exponent by s = max(2tλ_max, 0) (the common factor α = e^{−s} cancels in X N^{-1/2}).
        lam_max = jnp.max(lam)
        s = jnp.maximum(2.0 * t * lam_max, 0.0)
        a = jnp.exp(-s)
        x = 2.0 * t * lam
        x_s = 2.0 * t * (lam - jnp.maximum(lam_max, 0.0))  # x − s, differenced before scaling by t
        big = jnp.abs(x) > 1.0
        lam_safe = jnp.where(big, lam, 1.0)
        # α φ(λ), α ψ(λ), α² χ(λ); far from 0 in the shifted exponential form, near 0 by the φ-functions.
        phi = jnp.where(big, (jnp.exp(x_s) - a) / lam_safe, 2.0 * t * _phi1(x) * a)
        psi = jnp.where(big, (jnp.exp(x_s) - a * (1.0 + x)) / (2.0 * lam_safe**2), 2.0 * t**2 * _phi2(x) * a)
        chi = jnp.where(big, (jnp.exp(2.0 * x_s) - a**2 * (1.0 + 2.0 * x)) / lam_safe**2,
                        16.0 * t**2 * _phi2(2.0 * x) * a**2)
        k = R0.shape[1]
        c0 = self.BLQ_T @ R0  # Qᵀ Lᵀ B R(0); the factor √scale of the root is folded in below
        f = scale * phi  # with the root √scale·L:  L Q φ c₀ → scale · (LQ) φ c₀, c₀ᵀ χ c₀ → scale · c₀ᵀ χ c₀
        BR0 = self._B(R0)
        N0 = jnp.eye(k, dtype=dtype) + 4.0 * t * (R0.T @ BR0)
        # Plain form: X = αR0 + LQ diag(f) c₀, N = α²N0 + c₀ᵀ diag(scale χ) c₀.
        N_p = a**2 * N0 + scale * (c0.T @ (chi[:, None] * c0))
        # Graph form (used once N is ill-conditioned): right-multiply X by T = c_top⁻¹ diag(1/f_top)
        # (N ↦ TᵀNT), c_top the rows of c₀ of the k largest λ. The fast modes become the identity and
        # every other entry is a ratio φ_i/φ_j, ψ_i/φ_j or χ_i/(φ_jφ_l) that stays O(1); the ratios are
        # formed from logarithms (no shift), so modes far slower than the fastest do not underflow.
        # With f = 2 scale t φ₁(x), ψ = 2 scale t² φ₂(x), χ = 16 scale t² φ₂(2x) and log φ = max(x, 0) + rest,
        # the constants and the linear parts cancel analytically in every ratio (see `_log_phi1_rest`):
        #   f_i/f_j = e^{2t(ℓ_i − ℓ_j) + r1_i − r1_j},  ψ_i/f_j = t·e^{2t(ℓ_i − ℓ_j) + r2_i − r1_j},
        #   √χ_i/f_j = (2/√scale)·e^{2t(ℓ_i − ℓ_j) + r2(2x)_i/2 − r1_j},  ℓ = max(λ, 0).
        lt = jnp.log(t)
        ell = jnp.maximum(lam, 0.0)
        r1, r2, r2x2 = _log_phi1_rest(x), _log_phi2_rest(x), _log_phi2_rest(2.0 * x)
        cT, cR = c0[-k:], c0[:-k]
        lin = 2.0 * t * (ell[:-k, None] - ell[None, -k:])  # slow i vs fast j: ≤ 0 when the top k are largest
        r1T = r1[-k:]
        Gd = jnp.linalg.solve(cT.T, cR.T).T  # c_rest c_top⁻¹
        lfT = jnp.log(scale) + jnp.log(2.0) + lt + 2.0 * t * ell[-k:] + r1T  # log f_top (absolute)
        T = jnp.linalg.inv(cT) * jnp.exp(-lfT)[None, :]
        H = Gd * (2.0 / jnp.sqrt(scale)) * jnp.exp(lin + 0.5 * r2x2[:-k, None] - r1T[None, :])
        N_g = T.T @ N0 @ T + jnp.diag((4.0 / scale) * jnp.exp(r2x2[-k:] - 2.0 * r1T)) + H.T @ H
        graph = _prefer_graph(N_p, N_g)
        eye = jnp.eye(k, dtype=dtype)
        # X = R(0) A + LQ C: plain A = αI, C = diag(f) c₀; graph A = T, C = [G; I] (the top-k block is I).
        A = jnp.where(graph, T, a * eye)
        C = jnp.where(graph, jnp.concatenate([jnp.exp(lin + r1[:-k, None] - r1T[None, :]) * Gd, eye]),
                      f[:, None] * c0)
        X = R0 @ A + self.LQ @ C
        N = jnp.where(graph, N_g, N_p)
        if R0_eval is None:
            return X, N, None
        # X* = αR0* + 2 scale K* B (α t R0 + scale · LQ diag(ψ) c₀), times T in the graph form: Y = t R(0) A + LQ C_y.
        C_y = jnp.where(graph, jnp.concatenate([t * jnp.exp(lin + r2[:-k, None] - r1T[None, :]) * Gd,
                                                jnp.diag(t * jnp.exp(r2[-k:] - r1T))]),
                        scale * (psi[:, None] * c0))
        Y = t * (R0 @ A) + self.LQ @ C_y
        Xe = R0_eval @ A + 2.0 * scale * (self.K_eval @ self._B(Y))
        return X, N, Xe

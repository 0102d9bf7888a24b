r"""The output-space ODE at large data size: low-rank kernel factors, the r-dimensional flow, the factored flow.

**Reduction.** The constrained output ODE of `OutputFlow` on m stacked inputs (row layout),

    dR/dt = 2 (K − R Rᵀ) B R,      R ∈ R^{m×k},

costs O(m²) memory and O(m² k) per evaluation. If the kernel is written as `K = F Fᵀ` with a factor
`F ∈ R^{m×r}` and the outputs as `R = F W̃`, `W̃ ∈ R^{r×k}`, then

    F dW̃/dt = 2 (F Fᵀ − F W̃ W̃ᵀ Fᵀ) B F W̃ = F · 2 (I_r − W̃ W̃ᵀ) S̃ W̃,     S̃ = Fᵀ B F ∈ R^{r×r},

so `W̃` follows the Oja flow of an **r-feature linear model** with matrix `S̃`:

    dW̃/dt = 2 (I − W̃ W̃ᵀ) S̃ W̃          (constrained),
    dW̃/dt = 2 S̃ W̃ − ω W̃               (naive, from dR/dt = 2KBR − ωR).

This is exact whenever `K = F Fᵀ` exactly and `R(0)` lies in the column space of `F` (e.g. an
empirical kernel `K = ΦΦᵀ` with `Φ = F Q`, `QQᵀ = I_r`, and `R(0) = Φ W(0)`, `W̃(0) = Q W(0)`).
`W̃` need not have orthonormal columns: the vector field is the same polynomial for every `W̃`.
Each evaluation costs O(r² k) (O(r k²) in the eigenbasis of `S̃`), independently of m.

**Unseen inputs** follow from the joint set of inputs `A = [Z; X_eval]` (training rows first) with
`B` padded by zeros: a factor `F_all` of the joint kernel gives all outputs `R_all = F_all W̃`, and
only the first m rows of `F_all` enter `S̃`.

**Factors.**
- `eigen_factor` (K fits in memory): `F = U_r Λ_r^{1/2}` from the top r eigenpairs — the best
  rank-r approximation of K in every unitarily invariant norm.
- `nystrom_factor` (K does not fit): r landmark inputs L, `F = K(A, L) V s^{-1/2}` with
  `K(L, L) = V diag(s) Vᵀ`, so `F Fᵀ = K_{A,L} K_{L,L}^+ K_{L,A}`. The kernel is evaluated in row
  blocks by a callable `kernel_fn(Xa, Xb)`, so no m×m matrix is ever formed: memory O(m r).
- `S̃ = Fᵀ B F` is formed structurally for the pair matrices of `pair_matrix` (`pair_gram`): B has
  ±I blocks, so `B F` costs O(m r) and `Fᵀ (B F)` O(m r²), never forming B.

**Initial outputs.** Columns of `R(0)` i.i.d. `N(0, K/h)` (infinite width, `sample_initial_outputs`)
are `R(0) = F z / √h` with `z ~ N(0, I_r)` when `K = F Fᵀ`, i.e. `W̃(0) = z/√h`
(`LowRankOutputFlow.sample_initial`); a given `R(0)` is projected by least squares
(`LowRankOutputFlow.weights_from_outputs`).

**Two low-rank paths.**
- `LowRankOutputFlow` (state `W̃`, r×k): the reduction above. Exact for exactly low-rank kernels;
  otherwise it drops the part of `R(0)` outside the range of F, and that part does not decay over
  the usual horizons. Cheapest per step (O(r k²)); best for huge ensembles of seeds.
- `FactoredOutputFlow` (state `R`, m×k, as `OutputFlow`): the output ODE with the matrix-free
  kernel `K ≈ F Fᵀ + diag(d)`, `d = diag(K − F Fᵀ)` (`residual_diagonal`), O(m r k) per step. It
  keeps all of `R(0)` and the kernel's diagonal; on kernels with a flat spectral floor (noisy
  augmented views) it is one to two orders of magnitude more accurate at the same r (measured in
  docs/scaling.md). The recommended path when K does not fit.

References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024 (output-space dynamics); C. Williams &
M. Seeger, *Using the Nyström method to speed up kernel machines*, NeurIPS 2001; A. Gittens &
M. Mahoney, *Revisiting the Nyström method for improved large-scale machine learning*, JMLR 2016;
E. Snelson & Z. Ghahramani, *Sparse Gaussian processes using pseudo-inputs*, NeurIPS 2005 (diagonal
correction); Yan, Helmke & Moore, IEEE TNN 1994 (Oja flow).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._flows import AbstractFlow, AbstractOperatorFlow, _eigen_operator
from .._linalg import PAIR_BLOCKS, check_pair_matrix, pair_apply_blocks, pair_blocks, sym
from .._validation import as_array, check_int, check_positive, is_concrete

__all__ = [
    "pair_apply",
    "pair_gram",
    "eigen_factor",
    "nystrom_factor",
    "LowRankOutputFlow",
    "lowrank_output_flow",
    "residual_diagonal",
    "FactoredOutputFlow",
    "factored_output_flow",
]

def pair_apply(Y, n: int, kind: str = "contrastive") -> jax.Array:
    r"""`B Y` for the pair matrix `B = pair_matrix(n, kind)` without forming B: O(m · cols).

    B consists of ±I (n×n) blocks (see `pair_matrix`), so each block row of `B Y` is a signed sum of
    block rows of Y, e.g. for `"contrastive"`, `B [Y₀; Y₊; Y₋] = (1/2n) [Y₊ − Y₋; Y₀; −Y₀]`.

    **Arguments:**
    - `Y`: array (m, ...) with m = 3n (contrastive kinds) or 2n (non-contrastive kinds) rows.
    - `n`: number of anchors.
    - `kind`: the loss, as in `pair_matrix`.

    **Returns:** `B Y`, same shape as Y.
    """
    coeffs, _ = pair_blocks(n, kind)
    Y = as_array(Y, "Y")
    m = len(coeffs) * int(n)
    if Y.ndim < 1 or Y.shape[0] != m:
        raise ValueError(f"`Y` must have m = {m} rows for n = {n} and kind {kind!r}, got shape {tuple(Y.shape)}.")
    return pair_apply_blocks(Y, int(n), kind)


def pair_gram(F, n: int, kind: str = "contrastive") -> jax.Array:
    r"""`S̃ = F_mᵀ B F_m` (r, r) for `B = pair_matrix(n, kind)`, computed structurally in O(n r²) per block.

    `F_m` are the first m = 3n (or 2n) rows of `F` (further rows, e.g. evaluation inputs, do not
    enter: B is padded by zeros on the joint set). With B = s (C ⊗ I_n) and `F_i` the n-row blocks,
    `S̃ = s [Σ_i C_ii F_iᵀF_i + Σ_i (M_i + M_iᵀ)]`, `M_i = F_iᵀ Σ_{j>i} C_ij F_j`: one (r, n)·(n, r)
    product per nonzero diagonal coefficient and per block row with coefficients right of the
    diagonal, i.e. n r² for `"contrastive"` (`M₀ = F₀ᵀ(F₊ − F₋)`) instead of the m r² = 3n r² of
    `F_mᵀ (B F_m)`; the result is symmetrised exactly.

    **Arguments:** `F` (m_all, r) factor with m_all ≥ m; `n` anchors; `kind` as in `pair_matrix`.

    **Returns:** `S̃`, shape (r, r).
    """
    coeffs, _ = pair_blocks(n, kind)
    F = as_array(F, "F", ndim=2)
    m = len(coeffs) * int(n)
    if F.shape[0] < m:
        raise ValueError(f"`F` must have at least m = {m} rows for n = {n} and kind {kind!r}, got {F.shape[0]}.")
    return _pair_gram(F[:m], int(n), kind)


@eqx.filter_jit
def _pair_gram(Fm, n, kind):
    coeffs, scale = pair_blocks(n, kind)
    blocks = [Fm[b * n:(b + 1) * n] for b in range(len(coeffs))]
    acc = jnp.zeros((Fm.shape[1], Fm.shape[1]), Fm.dtype)
    for i, row in enumerate(coeffs):
        if row[i]:
            acc = acc + row[i] * (blocks[i].T @ blocks[i])
        right = [c * Fj for c, Fj in zip(row[i + 1:], blocks[i + 1:]) if c]
        if right:
            M = blocks[i].T @ functools.reduce(jnp.add, right)
            acc = acc + (M + M.T)
    return scale * sym(acc)


def _check_rank(rank, limit: int, name: str = "rank") -> int:
    return check_int(rank, name, minimum=1, maximum=limit)


def eigen_factor(K, rank: int, *, return_values: bool = False):
    r"""Rank-r factor of a symmetric PSD kernel by eigen-truncation: `F = U_r Λ_r^{1/2}`, `F Fᵀ ≈ K`.

    `K = U Λ Uᵀ` (`jnp.linalg.eigh`, O(m³) time, O(m²) memory); the r largest eigenvalues (negative
    round-off clipped to zero) and their eigenvectors give the best rank-r approximation of K:
    `‖K − F Fᵀ‖₂ = λ_{r+1}`, `‖K − F Fᵀ‖_F² = Σ_{i>r} λ_i²`. For unseen inputs factor the joint kernel
    of `[Z; X_eval]` (training rows first). Use it when K fits in memory; otherwise `nystrom_factor`.

    **Arguments:**
    - `K`: symmetric PSD (m, m) kernel.
    - `rank`: r in [1, m].
    - `return_values`: also return all eigenvalues of K, descending (to judge the truncation).

    **Returns:** `F` (m, r) with columns ordered by decreasing eigenvalue (and the eigenvalues).
    """
    K = check_pair_matrix(K, name="K")
    rank = _check_rank(rank, K.shape[0])
    F, evals = _eigen_factor(K)  # one compilation per shape of K, whatever the rank
    F = F[:, :rank]
    return (F, evals) if return_values else F


@jax.jit
def _eigen_factor(K):
    evals, evecs = jnp.linalg.eigh(sym(K))
    evals, evecs = evals[::-1], evecs[:, ::-1]
    return evecs * jnp.sqrt(jnp.clip(evals, 0.0))[None, :], evals


def _landmarks(X, rank, landmarks, key):
    N = X.shape[0]
    if landmarks is None:
        if rank is None:
            raise ValueError("Give `rank` (number of landmarks) or `landmarks`.")
        rank = _check_rank(rank, N)
        if key is None:
            key = jax.random.PRNGKey(0)
        idx = jax.random.choice(key, N, (rank,), replace=False)
        return X[jnp.sort(idx)]
    lm = jnp.asarray(landmarks)
    if jnp.issubdtype(lm.dtype, jnp.integer):
        if lm.ndim != 1 or lm.size == 0:
            raise ValueError(f"`landmarks` as indices must be a non-empty 1-D int array, got shape {tuple(lm.shape)}.")
        if is_concrete(lm) and (int(jnp.min(lm)) < 0 or int(jnp.max(lm)) >= N):
            raise ValueError(f"`landmarks` indices must lie in [0, {N}), got [{int(jnp.min(lm))}, {int(jnp.max(lm))}].")
        return X[lm]
    lm = as_array(landmarks, "landmarks", ndim=2)
    if lm.shape[1] != X.shape[1]:
        raise ValueError(f"`landmarks` must have d = {X.shape[1]} columns like `X`, got shape {tuple(lm.shape)}.")
    return lm.astype(X.dtype)


def nystrom_factor(kernel_fn: Callable, X, rank: int | None = None, *, landmarks=None, key=None,
                   block_size: int = 1024, rtol: float | None = None, return_landmarks: bool = False):
    r"""Nyström factor `F ∈ R^{N×r}` of the kernel of inputs X, evaluated blockwise (no N×N matrix).

    With landmark inputs `L` (r rows), `K_LL = K(L, L) = V diag(s) Vᵀ` and `C = K(X, L)`:

        F = C V diag(s^{-1/2}),      F Fᵀ = C K_LL^+ Cᵀ ≈ K(X, X),

    eigenvalues `s ≤ rtol · max(s)` are dropped (their columns of F are set to zero, so F keeps r
    columns and shapes stay static). F is computed in row blocks of `block_size` inputs,
    `F_blk = kernel_fn(X_blk, L) V s^{-1/2}`: peak memory O(N r + block_size · r) plus what
    `kernel_fn` needs for one block. With all inputs as landmarks, `F Fᵀ = K` (up to the dropped
    eigenvalues). Landmarks drawn uniformly without replacement (default) give an expected error
    that decays with the kernel's spectrum beyond r (Gittens & Mahoney 2016).

    For unseen inputs pass the joint inputs `X = [Z; X_eval]` (training rows first); restrict the
    landmarks to training rows with `landmarks=jax.random.choice(key, m, (r,), replace=False)`.

    **Arguments:**
    - `kernel_fn`: `kernel_fn(Xa, Xb) -> (len(Xa), len(Xb))` kernel block, e.g.
      `lambda A, C: ssldyn.infinite_width_kernel(A, C, activation="relu")` (include any scale such
      as `h c_h²` here or multiply F by its square root).
    - `X`: inputs (N, d), one row per input.
    - `rank`: number of landmarks r (used when `landmarks` is None).
    - `landmarks`: int indices into X (r,), or landmark inputs (r, d); default r random rows of X.
    - `key`: PRNG key for the random landmarks (default `PRNGKey(0)`).
    - `block_size`: rows of X per kernel evaluation (every block has this shape, the last one
      padded, so `kernel_fn` compiles once).
    - `rtol`: relative eigenvalue cut-off of `K_LL`; default `r · eps` of the dtype.
    - `return_landmarks`: also return the landmark inputs L.

    **Returns:** `F` (N, r) (and `L`).

    References: Williams & Seeger, NeurIPS 2001; Gittens & Mahoney, JMLR 2016.
    """
    if not callable(kernel_fn):
        raise TypeError(f"`kernel_fn` must be callable (Xa, Xb) -> kernel block, got {type(kernel_fn).__name__}.")
    X = as_array(X, "X", ndim=2)
    check_int(block_size, "block_size", minimum=1)
    L = _landmarks(X, rank, landmarks, key)
    r = L.shape[0]
    eps = float(jnp.finfo(X.dtype).eps)
    rtol = r * eps if rtol is None else rtol
    check_positive(rtol, "rtol")
    K_LL = as_array(kernel_fn(L, L), "kernel_fn(L, L)", ndim=2)
    if K_LL.shape != (r, r):
        raise ValueError(f"`kernel_fn(L, L)` must return an ({r}, {r}) block, got {tuple(K_LL.shape)}.")
    T = _nystrom_map(K_LL, jnp.asarray(rtol, K_LL.dtype))
    blocks = []
    for Xb, rows in _padded_blocks(X, block_size):
        bs = Xb.shape[0]
        Cb = jnp.asarray(kernel_fn(Xb, L))
        if Cb.shape != (bs, r):
            raise ValueError(f"`kernel_fn(Xa, Xb)` must return a ({bs}, {r}) block, got {tuple(Cb.shape)}.")
        blocks.append(_block_times(Cb, T)[:rows])
    F = jnp.concatenate(blocks, axis=0)
    return (F, L) if return_landmarks else F


@jax.jit
def _nystrom_map(K_LL, rtol):
    s, V = jnp.linalg.eigh(sym(K_LL))
    s, V = s[::-1], V[:, ::-1]
    keep = s > rtol * jnp.max(s)
    return V * jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, s, 1.0)), 0.0)[None, :]


def _padded_blocks(X, block_size: int):
    """Row blocks `(X_b, rows)` of `X`, the last one padded with copies of its last row to the full
    block size (one block shape, so a jitted kernel compiles once); `rows` is the number of real rows."""
    bs = min(int(block_size), X.shape[0])
    for start in range(0, X.shape[0], bs):
        Xb = X[start:start + bs]
        rows = Xb.shape[0]
        if rows < bs:
            Xb = jnp.concatenate([Xb, jnp.repeat(Xb[-1:], bs - rows, axis=0)], axis=0)
        yield Xb, rows


@jax.jit
def _block_times(C, T):
    return C @ T


def residual_diagonal(kernel, X, F, *, block_size: int = 1024) -> jax.Array:
    r"""Diagonal of the factorisation residual, `d_i = K(x_i, x_i) − ‖F_i‖² ≥ 0` (clipped at 0).

    `K − F Fᵀ` is PSD for eigen-truncation and Nyström factors, so `d` is its (non-negative)
    diagonal; `F Fᵀ + diag(d)` matches K on the diagonal exactly (the "Nyström + diagonal"
    correction of `FactoredOutputFlow`, cf. FITC in Gaussian processes). Cost O(N r) plus one
    `block_size × block_size` kernel block per block of rows (only its diagonal is kept).

    **Arguments:**
    - `kernel`: the kernel matrix (N, N), or a callable `kernel_fn(Xa, Xb)` as in `nystrom_factor`.
    - `X`: the inputs (N, d) when `kernel` is a callable (ignored for a matrix; may be None).
    - `F`: the factor (N, r).
    - `block_size`: rows per kernel evaluation (callable only).

    **Returns:** `d`, shape (N,).

    References: E. Snelson & Z. Ghahramani, *Sparse Gaussian processes using pseudo-inputs*,
    NeurIPS 2005 (the diagonal correction).
    """
    F = as_array(F, "F", ndim=2)
    if not callable(kernel):
        K = as_array(kernel, "kernel", ndim=2)
        if K.shape != (F.shape[0], F.shape[0]):
            raise ValueError(f"`kernel` must be ({F.shape[0]}, {F.shape[0]}) to match `F`, got {tuple(K.shape)}.")
        return jnp.clip(jnp.diagonal(K) - jnp.sum(F**2, axis=1), 0.0)
    X = as_array(X, "X", ndim=2)
    if X.shape[0] != F.shape[0]:
        raise ValueError(f"`X` must have {F.shape[0]} rows like `F`, got shape {tuple(X.shape)}.")
    check_int(block_size, "block_size", minimum=1)
    diag = []
    for Xb, rows in _padded_blocks(X, block_size):
        diag.append(jnp.diagonal(jnp.asarray(kernel(Xb, Xb)))[:rows])
    return jnp.clip(jnp.concatenate(diag) - jnp.sum(F**2, axis=1), 0.0)


class LowRankOutputFlow(AbstractOperatorFlow):
    r"""The output ODE in r-dimensional coordinates `R_all = F W̃` (see the module docstring):

        constrained:   dW̃/dt = 2 (I − W̃ W̃ᵀ) S̃ W̃,        naive:   dW̃/dt = 2 S̃ W̃ − ω W̃,

    with `S̃ = F_mᵀ B F_m` (r×r) and `F` (m_all, r) a factor of the (joint) kernel, `K ≈ F Fᵀ`. The
    state `W̃` (r, k) is the weight matrix of an r-feature linear model; `outputs(W̃)` maps it to the
    representations of all m_all inputs. Exactly the `OutputFlow` dynamics when `K = F Fᵀ`.

    **Eigenbasis** (`eigenbasis=True`, default): `S̃ = U diag(μ) Uᵀ` once; the flow integrates
    `UᵀW̃` (the vector field is equivariant under `W̃ ↦ UᵀW̃`), so an evaluation costs O(r k²)
    instead of O(r² k). External coordinates (`solve`'s `ys`) are always `W̃`.

    **Arguments:**
    - `F`: (m_all, r) kernel factor; the first `n_train` rows are the stacked training inputs.
    - `S`: (r, r) symmetric `F_mᵀ B F_m` (`pair_gram`, or `lowrank_output_flow` builds it).
    - `n_train`: number of training rows m (default: all rows of F).
    - `constrained`: orthogonality-constrained (default) or naive dynamics.
    - `weight_decay`: ω ≥ 0, naive dynamics only.
    - `eigenbasis`: integrate in the eigenbasis of `S̃`.
    """

    F: jax.Array
    weight_decay: jax.Array
    n_train: int = eqx.field(static=True)
    constrained: bool = eqx.field(static=True)

    def __init__(self, F, S, *, n_train: int | None = None, constrained: bool = True, weight_decay=0.0,
                 eigenbasis: bool = True):
        F = as_array(F, "F", ndim=2)
        S = as_array(S, "S", ndim=2)
        r = F.shape[1]
        if S.shape != (r, r):
            raise ValueError(f"`S` must be ({r}, {r}) to match `F` (m, {r}), got {tuple(S.shape)}.")
        if n_train is None:
            n_train = F.shape[0]
        n_train = check_int(n_train, "n_train", minimum=1, maximum=F.shape[0])
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        if constrained and is_concrete(weight_decay) and float(weight_decay) != 0.0:
            raise ValueError("`weight_decay` must be 0 for the constrained flow (it is normal to the manifold).")
        self.F = F
        self.n_train = int(n_train)
        self.constrained = bool(constrained)
        self.weight_decay = jnp.asarray(weight_decay, dtype=F.dtype)
        self.S, self.mu, self.U = _eigen_operator(sym(S), eigenbasis)

    @property
    def rank(self) -> int:
        return self.F.shape[1]

    def vector_field(self, t, W):
        SW = self._SW(W)
        if self.constrained:
            return 2.0 * (SW - W @ (W.T @ SW))
        return 2.0 * SW - self.weight_decay * W

    def loss(self, W):
        """`−tr(Rᵀ B R) = −tr(W̃ᵀ S̃ W̃)` at external coordinates `W̃`."""
        return self._quadratic(W)

    def check_initial(self, y0):
        W = as_array(y0, "y0", ndim=2)
        if W.shape[0] != self.rank:
            raise ValueError(f"`y0` must be (r, k) = ({self.rank}, k) low-rank coordinates W̃(0), got shape "
                             f"{tuple(W.shape)}. Map outputs with `flow.weights_from_outputs(R0)`.")
        return W

    def outputs(self, W):
        """Representations `F W̃` of all inputs, for `W̃` (r, k) or a stack (..., r, k).

        **Returns:** `R` (..., m, k) when F has only training rows, else `(R, R_eval)` split at
        `n_train`.
        """
        R = jnp.einsum("mr,...rk->...mk", self.F, W)
        if self.n_train == self.F.shape[0]:
            return R
        return R[..., : self.n_train, :], R[..., self.n_train:, :]

    def sample_initial(self, key, k: int, *, width) -> jax.Array:
        r"""`W̃(0) = z/√h`, `z ~ N(0, I_r)` (r, k): then `R(0) = F W̃(0)` has i.i.d. `N(0, F Fᵀ/h)` columns,
        the infinite-width initial outputs of `sample_initial_outputs` for `K = F Fᵀ`, without any
        m×m object."""
        k = check_int(k, "k", minimum=1)
        check_positive(width, "width")
        z = jax.random.normal(key, (self.rank, int(k)), dtype=self.F.dtype)
        return z / jnp.sqrt(jnp.asarray(width, self.F.dtype))

    def weights_from_outputs(self, R0, *, rtol: float | None = None) -> jax.Array:
        r"""Least-squares coordinates `W̃ = argmin ‖F W̃ − R0‖_F = (FᵀF)^+ Fᵀ R0` of given outputs.

        `R0` is (m_all, k), or the tuple `(R0, R0_eval)` (stacked). Exact when R0 lies in the column
        space of F (e.g. `R0 = Φ W(0)` with `ΦΦᵀ = FFᵀ`). Cost O(m r² + r³). Eigenvalues of `FᵀF`
        below `rtol · max` (default `r · eps`) are treated as zero.
        """
        if isinstance(R0, (tuple, list)):
            R0 = jnp.concatenate([as_array(a, "R0", ndim=2) for a in R0], axis=0)
        R0 = as_array(R0, "R0", ndim=2)
        if R0.shape[0] != self.F.shape[0]:
            raise ValueError(f"`R0` must have {self.F.shape[0]} rows (the rows of F), got shape {tuple(R0.shape)}.")
        eps = float(jnp.finfo(self.F.dtype).eps)
        rtol = self.rank * eps if rtol is None else rtol
        return _lstsq(self.F, R0, jnp.asarray(rtol, self.F.dtype))


@jax.jit
def _lstsq(F, R0, rtol):
    g, V = jnp.linalg.eigh(F.T @ F)
    keep = g > rtol * jnp.max(g)
    ginv = jnp.where(keep, 1.0 / jnp.where(keep, g, 1.0), 0.0)
    return V @ (ginv[:, None] * (V.T @ (F.T @ R0)))


def lowrank_output_flow(F, B=None, *, n: int | None = None, kind: str = "contrastive", constrained: bool = True,
                        weight_decay=0.0, eigenbasis: bool = True) -> LowRankOutputFlow:
    r"""`LowRankOutputFlow` from a kernel factor `F` and the pair matrix, given densely or by structure.

    Either `B` (m, m) dense (then `S̃ = F_mᵀ B F_m` costs O(m² r)), or `n` and `kind` of
    `pair_matrix(n, kind)` (then `S̃ = pair_gram(F, n, kind)`, O(m r²), B never formed). The first
    m rows of F are the training inputs; further rows are evaluation inputs.

    **Arguments:** `F` (m_all, r); `B` or (`n`, `kind`); `constrained`; `weight_decay` (naive only);
    `eigenbasis`.

    **Returns:** a `LowRankOutputFlow`; solve it from `W̃(0)` (`sample_initial` or
    `weights_from_outputs`) and map with `outputs`.
    """
    F = as_array(F, "F", ndim=2)
    if (B is None) == (n is None):
        raise ValueError("Give exactly one of `B` (dense pair matrix) or `n` (anchors, with `kind`).")
    if B is not None:
        B = check_pair_matrix(B, name="B")
        m = B.shape[0]
        if F.shape[0] < m:
            raise ValueError(f"`F` must have at least m = {m} rows (the size of `B`), got {F.shape[0]}.")
        Fm = F[:m]
        S = sym(Fm.T @ (B @ Fm))
    else:
        S = pair_gram(F, n, kind)
        m = len(PAIR_BLOCKS[kind][0]) * int(n)
    return LowRankOutputFlow(F, S, n_train=m, constrained=constrained, weight_decay=weight_decay,
                             eigenbasis=eigenbasis)


class FactoredOutputFlow(AbstractFlow):
    r"""The output ODE in output space with a matrix-free kernel `K ≈ F Fᵀ + diag(d)` and structured `B`.

    State and equations are those of `OutputFlow` (row layout, `R` (m, k), optional `R_eval`):

        constrained:   dR/dt  = 2 (K B R − R N),        N = Rᵀ B R  (k×k),
                       dR*/dt = 2 (K* B R − R* N),
        naive:         dR/dt  = 2 K B R − ω R,           dR*/dt = 2 K* B R − ω R*,

    but `K B R = F_m (F_mᵀ B R) + d_m ⊙ B R` and `K* B R = F_* (F_mᵀ B R)` are applied without any
    m×m matrix, with `B R = pair_apply(R, n, kind)` (or a dense `B`). Memory O(m_all r), one
    evaluation O(m_all r k). Unlike `LowRankOutputFlow`, the state keeps every direction of `R`, so
    an exact `R(0)` (outside the range of F) is used as it is, and the residual diagonal
    `d = diag(K − F Fᵀ)` (`residual_diagonal`) restores the kernel's diagonal — essential for
    kernels with a flat spectral floor (e.g. noisy augmented views). With `d = 0` and `R(0) = F W̃(0)`
    it reproduces `LowRankOutputFlow` exactly; with `K = F Fᵀ + diag(d)` it is `OutputFlow`.

    **Arguments:**
    - `F`: (m_all, r) factor of the (joint) kernel, training rows first.
    - `diagonal`: residual diagonal `d` (m_all,) or None (zero).
    - `B`: dense (m, m) pair matrix, or None with `n`, `kind` (structural, B never formed).
    - `n`, `kind`: anchors and loss of `pair_matrix(n, kind)`.
    - `constrained`: orthogonality-constrained (default) or naive dynamics.
    - `weight_decay`: ω ≥ 0, naive dynamics only.
    """

    F: jax.Array
    d: jax.Array | None
    B: jax.Array | None
    weight_decay: jax.Array
    pair: tuple | None = eqx.field(static=True)
    n_train: int = eqx.field(static=True)
    constrained: bool = eqx.field(static=True)

    def __init__(self, F, diagonal=None, B=None, *, n: int | None = None, kind: str = "contrastive",
                 constrained: bool = True, weight_decay=0.0):
        F = as_array(F, "F", ndim=2)
        if (B is None) == (n is None):
            raise ValueError("Give exactly one of `B` (dense pair matrix) or `n` (anchors, with `kind`).")
        if B is not None:
            B = sym(check_pair_matrix(B, name="B"))
            m, self.pair = B.shape[0], None
        else:
            coeffs, _ = pair_blocks(n, kind)
            m, self.pair = len(coeffs) * int(n), (int(n), kind)
        if F.shape[0] < m:
            raise ValueError(f"`F` must have at least m = {m} rows (the training inputs), got {F.shape[0]}.")
        if diagonal is not None:
            diagonal = as_array(diagonal, "diagonal", ndim=1)
            if diagonal.shape[0] != F.shape[0]:
                raise ValueError(f"`diagonal` must have {F.shape[0]} entries (the rows of F), got {diagonal.shape[0]}.")
            if is_concrete(diagonal) and np.any(np.asarray(diagonal) < 0):
                raise ValueError("`diagonal` must be non-negative (the diagonal of a PSD residual).")
        check_positive(weight_decay, "weight_decay", allow_zero=True)
        if constrained and is_concrete(weight_decay) and float(weight_decay) != 0.0:
            raise ValueError("`weight_decay` must be 0 for the constrained flow (it is normal to the manifold).")
        self.F, self.d, self.B = F, diagonal, B
        self.n_train = int(m)
        self.constrained = bool(constrained)
        self.weight_decay = jnp.asarray(weight_decay, dtype=F.dtype)

    @property
    def rank(self) -> int:
        return self.F.shape[1]

    @property
    def has_eval(self) -> bool:
        return self.F.shape[0] > self.n_train

    def _BR(self, R):
        return self.B @ R if self.pair is None else pair_apply_blocks(R, *self.pair)

    def vector_field(self, t, y):
        R = y[0] if self.has_eval else y
        m = self.n_train
        BR = self._BR(R)
        G = self.F[:m].T @ BR  # (r, k)
        KBR = self.F[:m] @ G
        if self.d is not None:
            KBR = KBR + self.d[:m, None] * BR
        if self.constrained:
            N = R.T @ BR
            dR = 2.0 * (KBR - R @ N)
        else:
            dR = 2.0 * KBR - self.weight_decay * R
        if not self.has_eval:
            return dR
        KeBR = self.F[m:] @ G
        dRe = 2.0 * (KeBR - y[1] @ N) if self.constrained else 2.0 * KeBR - self.weight_decay * y[1]
        return dR, dRe

    def loss(self, y):
        R = y[0] if self.has_eval else y
        return -jnp.sum(R * self._BR(R))

    def check_initial(self, y0):
        m, m_eval = self.n_train, self.F.shape[0] - self.n_train
        if self.has_eval:
            if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
                raise TypeError(f"`y0` must be a tuple (R0, R0_eval) with {m} and {m_eval} rows: F has "
                                "evaluation rows.")
            R0, R0e = as_array(y0[0], "y0[0]", ndim=2), as_array(y0[1], "y0[1]", ndim=2)
            if R0e.shape != (m_eval, R0.shape[1]):
                raise ValueError(f"`y0[1]` must be ({m_eval}, {R0.shape[1]}), got {tuple(R0e.shape)}.")
        else:
            R0 = as_array(y0, "y0", ndim=2)
        if R0.shape[0] != m:
            raise ValueError(f"`y0` must have {m} rows (one per stacked input), got shape {tuple(R0.shape)}.")
        return (R0, R0e) if self.has_eval else R0

    def sample_initial(self, key, k: int, *, width):
        r"""Infinite-width initial outputs for `K ≈ F Fᵀ + diag(d)`: `R(0) = (F z + √d ⊙ z') / √h`,
        `z ~ N(0, I_r)`, `z' ~ N(0, I_m)` per column, i.e. columns `N(0, (F Fᵀ + diag d)/h)`.

        **Returns:** `R0` (m, k), or `(R0, R0_eval)` when F has evaluation rows.
        """
        k = check_int(k, "k", minimum=1)
        check_positive(width, "width")
        z = jax.random.normal(key, (self.rank + self.F.shape[0], int(k)), dtype=self.F.dtype)
        R0 = self.F @ z[: self.rank]
        if self.d is not None:
            R0 = R0 + jnp.sqrt(self.d)[:, None] * z[self.rank:]
        R0 = R0 / jnp.sqrt(jnp.asarray(width, self.F.dtype))
        return (R0[: self.n_train], R0[self.n_train:]) if self.has_eval else R0


def factored_output_flow(F, B=None, *, n: int | None = None, kind: str = "contrastive", diagonal=None,
                         constrained: bool = True, weight_decay=0.0) -> FactoredOutputFlow:
    r"""The output ODE with the matrix-free kernel `K ≈ F Fᵀ + diag(d)`: `dR/dt = 2 (K B R − R Rᵀ B R)`.

    See `FactoredOutputFlow`. Typical use: `F = nystrom_factor(kernel_fn, A, r)`,
    `d = residual_diagonal(kernel_fn, A, F)`, `factored_output_flow(F, n=n, diagonal=d)`.

    **Arguments:** `F` (m_all, r); `B` dense (m, m) or None with `n` anchors and `kind`;
    `diagonal` d (m_all,) or None; `constrained`; `weight_decay` (naive only).

    **Returns:** a `FactoredOutputFlow`; its state is `R` (m, k), or `(R, R_eval)` when F has
    evaluation rows (`sample_initial` draws it).
    """
    return FactoredOutputFlow(F, diagonal, B, n=n, kind=kind, constrained=constrained, weight_decay=weight_decay)

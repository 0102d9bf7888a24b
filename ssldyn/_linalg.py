r"""Small linear-algebra helpers shared by every stage (the lowest module above `_validation`).

- `sym(A) = (A + Aᵀ)/2`;
- `as_hyper`: a numeric hyperparameter as an array, so a sweep reuses one compilation;
- `LOSS_KINDS` and `PAIR_BLOCKS`: the one table of ±I blocks behind `pair_matrix`, `pair_factor` and the
  matrix-free products `pair_apply_blocks` (`B Y`) and `pair_factor_rmatmul` (`Uᵀ Y`) used by the
  low-rank output flows and `OutputSolution(pair=...)`;
- `check_pair_matrix`: validation of a symmetric pair or kernel matrix;
- `kernel_root`: `L Lᵀ = K` by eigendecomposition or Cholesky.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._validation import as_array, check_int, check_positive, check_square, check_symmetric, in_trace, psd_tolerance

LOSS_KINDS: tuple[str, ...] = ("contrastive", "noncontrastive", "squared_contrastive", "squared_noncontrastive")

# Block coefficients c_ab and scale denominator of `pair_matrix(n, kind)`: B = (1/denom) [c_ab I_n]_ab,
# for the stacking [X; X₊; X₋] (or [X; X₊] for the non-contrastive kinds).
PAIR_BLOCKS: dict[str, tuple[tuple[tuple[int, ...], ...], str]] = {
    "contrastive": (((0, 1, -1), (1, 0, 0), (-1, 0, 0)), "2n"),
    "noncontrastive": (((0, 1), (1, 0)), "2n"),
    "squared_contrastive": (((0, 1, -1), (1, -1, 0), (-1, 0, 1)), "n"),
    "squared_noncontrastive": (((-1, 1), (1, -1)), "n"),
}


def sym(a: jax.Array) -> jax.Array:
    """Symmetric part `(A + Aᵀ)/2` of a square matrix (or a batch of them); `a` is real (a nested list
    works). Non-finite entries are not checked here (it is used inside every flow)."""
    if not isinstance(a, jax.Array):
        a = as_array(a, "a", finite=False)
    elif jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"`a` must be real, got complex dtype {a.dtype}.")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"`a` must be a square matrix (or a batch of them), got shape {tuple(a.shape)}.")
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def as_hyper(value, name: str, *, allow_zero: bool = True) -> jax.Array:
    """A numeric hyperparameter as an array (traced under jit, so sweeps do not recompile)."""
    check_positive(value, name, allow_zero=allow_zero)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def pair_blocks(n, kind: str) -> tuple[tuple[tuple[int, ...], ...], float]:
    """Validated `(coefficients, scale)` of the pair matrix of `n` anchors and loss `kind`."""
    n = check_int(n, "n", minimum=1)
    if kind not in LOSS_KINDS:
        raise ValueError(f"`kind` must be one of {LOSS_KINDS}, got {kind!r}.")
    coeffs, denom = PAIR_BLOCKS[kind]
    return coeffs, 1.0 / (2 * n if denom == "2n" else n)


def pair_apply_blocks(Y, n: int, kind: str) -> jax.Array:
    """`B Y` for `B = pair_matrix(n, kind)` (Y: (m, ...)) without forming B: each block row is a signed sum
    of Y's n-row blocks, O(m · cols). Unvalidated (`scaling.pair_apply` is the checked public form)."""
    coeffs, scale = pair_blocks(n, kind)
    blocks = [Y[b * n:(b + 1) * n] for b in range(len(coeffs))]
    out = []
    for row in coeffs:
        acc = None
        for c, Yb in zip(row, blocks):
            if c:
                acc = (Yb if c == 1 else -Yb) if acc is None else (acc + Yb if c == 1 else acc - Yb)
        out.append(acc)
    return scale * jnp.concatenate(out, axis=0)


def pair_eigenblocks(n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """`(E, d)` with `B = pair_matrix(n, kind) = (E ⊗ I_n) diag(d) (E ⊗ I_n)ᵀ` on its range: E (b, q_c) the
    eigenvectors of the block-coefficient matrix C of nonzero eigenvalue c (q_c,), `d = s c ⊗ 1_n` (q,)
    with s the scale of `pair_blocks`; `pair_factor` is `(E ⊗ I_n, d)`."""
    coeffs, scale = pair_blocks(n, kind)
    c, E = np.linalg.eigh(np.asarray(coeffs, dtype=np.float64))
    keep = np.abs(c) > 1e-12  # the coefficients are small integers: their zero eigenvalues are exact
    return E[:, keep], np.repeat(scale * c[keep], int(n))


def pair_factor_rmatmul(Y, n: int, kind: str) -> jax.Array:
    """`Uᵀ Y` (q, ...) for the factor `U = E ⊗ I_n` of `pair_factor(n, kind)` and Y (m, ...), without forming U:
    `(UᵀY)_j = Σ_b E_bj Y_b` over Y's n-row blocks, O(m q/n · cols)."""
    E, _ = pair_eigenblocks(n, kind)
    blocks = [Y[b * n:(b + 1) * n] for b in range(E.shape[0])]
    out = []
    for j in range(E.shape[1]):
        acc = sum(float(E[b, j]) * Yb for b, Yb in enumerate(blocks) if E[b, j] != 0.0)
        out.append(acc)
    return jnp.concatenate(out, axis=0)


def symmetric_pair(A, B, names: tuple[str, str]) -> tuple[jax.Array, jax.Array]:
    """Two symmetric matrices of the same shape (e.g. `C0` and `C+`, `B` and `K`), validated and
    symmetrised: `(sym(A), sym(B))`. Errors name the arguments `names`."""
    na, nb = names
    A = as_array(A, na, ndim=2)
    B = as_array(B, nb, ndim=2)
    check_symmetric(A, na)
    check_symmetric(B, nb)
    if A.shape != B.shape:
        raise ValueError(f"`{na}` and `{nb}` must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}.")
    return sym(A), sym(B)


def check_pair_matrix(B, m: int | None = None, name: str = "B") -> jax.Array:
    """Validate a symmetric pair/kernel matrix argument (square, finite, symmetric, optional size m)."""
    B = as_array(B, name, ndim=2)
    check_square(B, name)
    if m is not None and B.shape[0] != m:
        raise ValueError(f"`{name}` must be ({m}, {m}), got {tuple(B.shape)}.")
    check_symmetric(B, name)
    return B


def kernel_root(K, *, method: str = "eigh", jitter: float = 1e-10) -> jax.Array:
    """A square root `L` of a symmetric PSD kernel, `L Lᵀ = K`. Reuse it across seeds in
    `sample_initial_outputs` and in `OutputSolution`.

    - `method="eigh"` (default): `L = U diag(√λ₊)` from an eigendecomposition; tiny negative
      eigenvalues from round-off are clipped to zero. Exact for singular K (e.g. repeated inputs).
    - `method="cholesky"`: the lower Cholesky factor of `K + ε I`, `ε = jitter · mean(diag K)`; about
      an order of magnitude faster (no eigendecomposition) at the cost of a relative perturbation
      `jitter` of K. A leading block of the factor is the factor of the leading block of K, so one
      factor of a joint `[train; eval]` kernel serves both. Outside a trace a failed factorisation
      (K far from PSD) raises; inside one the result is NaN.
    """
    K = check_pair_matrix(K, name="K")
    if method not in ("eigh", "cholesky"):
        raise ValueError(f"`method` must be 'eigh' or 'cholesky', got {method!r}.")
    check_positive(jitter, "jitter")
    if method == "eigh":
        evals, evecs = jnp.linalg.eigh(sym(K))
        if not in_trace(evals):
            lam = np.asarray(evals)
            if lam[0] < -psd_tolerance(K.dtype) * max(abs(lam[-1]), abs(lam[0])):
                raise ValueError(
                    f"`K` must be positive semi-definite (a kernel or Gram matrix), but its smallest eigenvalue is "
                    f"{lam[0]:.3g} (largest {lam[-1]:.3g}); clipping would silently drop those directions.")
        return evecs * jnp.sqrt(jnp.clip(evals, 0.0))[None, :]
    eps = jitter * jnp.mean(jnp.diagonal(K))
    L = jnp.linalg.cholesky(sym(K) + eps * jnp.eye(K.shape[0], dtype=K.dtype))
    if not in_trace(L) and not bool(np.all(np.isfinite(np.asarray(L)))):
        raise ValueError("`K` is not positive semi-definite to within the jitter: its Cholesky factorisation "
                         "failed. Use `method='eigh'` or a larger `jitter`.")
    return L

r"""Second-moment statistics of views, pair matrices and stacked inputs.

Layout: data arrays hold **one row per sample**, `X ∈ R^{n×d}`. The theory files write samples as
columns; every formula below is the row-layout transcription (`X_cols = X^T`).

Empirical moments over n anchors (README of the theory, §3):

    C0 = (1/2n)(XᵀX + X₊ᵀX₊)        same-view
    C+ = (1/2n)(XᵀX₊ + X₊ᵀX)        cross-view (positive pairs)
    C− = (1/2n)(XᵀX₋ + X₋ᵀX)        anchor–negative
    D± = (1/n) Σ_i (x_i − x_i±)(x_i − x_i±)ᵀ     squared-distance moments

For a linear encoder `f(x) = Wᵀx`, each loss of `ssldyn.losses` equals `−tr(Wᵀ S W)` with `S` from
`ViewStats.matrix`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._linalg import LOSS_KINDS, pair_blocks, pair_eigenblocks, sym
from ._validation import as_array, check_int, check_positive, check_same_cols, check_same_rows

LossKind = Literal["contrastive", "noncontrastive", "squared_contrastive", "squared_noncontrastive"]


class ViewStats(eqx.Module):
    r"""Symmetric second moments of a set of views (the only statistics a linear model sees).

    **Fields:**
    - `C0`: same-view moment `(1/2n)(XᵀX + X₊ᵀX₊)`, shape (d, d).
    - `Cp`: cross-view moment `C+ = sym (1/n) XᵀX₊`.
    - `Cm`: anchor–negative moment `C− = sym (1/n) XᵀX₋`, or None without negatives.
    - `Dp`: `(1/n) Σ (x − x₊)(x − x₊)ᵀ`.
    - `Dm`: `(1/n) Σ (x − x₋)(x − x₋)ᵀ`, or None without negatives.
    - `n`: number of anchors (static).

    All matrices are symmetrised where built.
    """

    C0: Float[Array, "d d"]
    Cp: Float[Array, "d d"]
    Dp: Float[Array, "d d"]
    Cm: Float[Array, "d d"] | None = None
    Dm: Float[Array, "d d"] | None = None
    n: int = eqx.field(static=True, default=0)

    @property
    def dim(self) -> int:
        return self.C0.shape[0]

    def matrix(self, kind: LossKind = "contrastive") -> jax.Array:
        r"""The symmetric matrix `S` with `L(W) = −tr(Wᵀ S W)` for a linear encoder.

        - `"contrastive"`: `S = C+ − C−` (inner-product loss with negatives);
        - `"noncontrastive"`: `S = C+`;
        - `"squared_contrastive"`: `S = D− − D+`;
        - `"squared_noncontrastive"`: `S = −D+`.
        """
        if kind == "noncontrastive":
            return self.Cp
        if kind == "squared_noncontrastive":
            return -self.Dp
        if kind not in LOSS_KINDS:
            raise ValueError(f"`kind` must be one of {LOSS_KINDS}, got {kind!r}.")
        if self.Cm is None:
            raise ValueError(f"`kind={kind!r}` needs negatives, but these ViewStats were built without them.")
        return self.Cp - self.Cm if kind == "contrastive" else self.Dm - self.Dp


def _check_views(X, X_pos, X_neg):
    X = as_array(X, "X", ndim=2)
    X_pos = as_array(X_pos, "X_pos", ndim=2)
    arrays = {"X": X, "X_pos": X_pos}
    if X_neg is not None:
        X_neg = as_array(X_neg, "X_neg", ndim=2)
        arrays["X_neg"] = X_neg
    check_same_rows(arrays)
    check_same_cols(arrays)
    if X.shape[0] == 0:
        raise ValueError("`X` must contain at least one anchor (row).")
    return X, X_pos, X_neg


def view_stats(X, X_pos, X_neg=None) -> ViewStats:
    r"""Empirical `ViewStats` from anchors, positives and optional negatives.

    **Arguments:**
    - `X`: anchors, shape (n, d), one row per sample.
    - `X_pos`: positives, shape (n, d); row i is the other view of anchor i.
    - `X_neg`: optional negatives, shape (n, d); row i is a view of another sample.

    **Returns:** a `ViewStats` with `C0, C+, D+` (and `C−, D−` with negatives), means over the n anchors.
    """
    X, X_pos, X_neg = _check_views(X, X_pos, X_neg)
    n = X.shape[0]
    C0 = sym(X.T @ X + X_pos.T @ X_pos) / (2 * n)
    Cp = sym(X.T @ X_pos) / n
    diff_p = X - X_pos
    Dp = sym(diff_p.T @ diff_p) / n
    Cm = Dm = None
    if X_neg is not None:
        Cm = sym(X.T @ X_neg) / n
        diff_m = X - X_neg
        Dm = sym(diff_m.T @ diff_m) / n
    return ViewStats(C0=C0, Cp=Cp, Dp=Dp, Cm=Cm, Dm=Dm, n=n)


def population_view_stats(
    key: jax.Array,
    sample: Callable[[jax.Array, int], jax.Array],
    augment: Callable[[jax.Array, jax.Array], jax.Array],
    n_samples: int,
    *,
    negatives: bool = True,
    batch_size: int = 4096,
) -> ViewStats:
    r"""Monte-Carlo estimate of the population `ViewStats`.

    Draws underlying samples `x̄ ~ sample`, two independent augmentations `x = aug(x̄)`,
    `x₊ = aug(x̄)`, and a negative `x₋ = aug(x̄')` from an independent sample `x̄'`, and averages the
    moments of `view_stats` over `n_samples` anchors (in batches, so memory stays bounded).

    **Arguments:**
    - `key`: a `jax.random` key; the same key gives the same estimate.
    - `sample`: `sample(key, n) -> (n, d)` draws underlying samples.
    - `augment`: `augment(key, X) -> (n, d)` draws one view per row.
    - `n_samples`: number of anchors (Monte-Carlo size). The error is O(n_samples^{-1/2}).
    - `negatives`: also estimate `C−` and `D−`.
    - `batch_size`: anchors per batch.

    **Returns:** a `ViewStats` whose `n` is `n_samples`.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    check_positive(batch_size, "batch_size")
    n_batches = -(-n_samples // batch_size)
    sums = None
    done = 0
    for bkey in jax.random.split(key, n_batches):
        nb = min(batch_size, n_samples - done)
        k1, k2, k3, k4, k5 = jax.random.split(bkey, 5)
        base = sample(k1, nb)
        X = augment(k2, base)
        X_pos = augment(k3, base)
        X_neg = augment(k5, sample(k4, nb)) if negatives else None
        st = view_stats(X, X_pos, X_neg)
        part = jax.tree_util.tree_map(lambda a: a * nb, st)
        sums = part if sums is None else jax.tree_util.tree_map(jnp.add, sums, part)
        done += nb
    mean = jax.tree_util.tree_map(lambda a: a / n_samples, sums)
    return ViewStats(C0=mean.C0, Cp=mean.Cp, Dp=mean.Dp, Cm=mean.Cm, Dm=mean.Dm, n=n_samples)


def stack_views(X, X_pos, X_neg=None) -> jax.Array:
    """Stacked inputs `Z = [X; X₊; X₋]` of shape (m, d), m = 3n (or 2n without negatives).

    This is the row order that `pair_matrix` assumes.
    """
    X, X_pos, X_neg = _check_views(X, X_pos, X_neg)
    parts = [X, X_pos] if X_neg is None else [X, X_pos, X_neg]
    return jnp.concatenate(parts, axis=0)


def pair_matrix(n: int, kind: LossKind = "contrastive", *, dtype=None) -> jax.Array:
    r"""The symmetric pair matrix `B` with `L = −tr(Rᵀ B R)` for outputs `R` (m, k) on stacked views.

    In n×n blocks, for the stacking `[X; X₊; X₋]` of `stack_views`:

        contrastive:            B = (1/2n) [[0, I, −I], [I, 0, 0], [−I, 0, 0]]
        noncontrastive:         B = (1/2n) [[0, I], [I, 0]]
        squared_contrastive:    B = (1/n)  [[0, I, −I], [I, −I, 0], [−I, 0, I]]
        squared_noncontrastive: B = (1/n)  [[−I, I], [I, −I]]

    For a linear encoder (`R = Z W`) this gives `S = Zᵀ B Z`, equal to `ViewStats.matrix(kind)`.

    **Arguments:**
    - `n`: number of anchors.
    - `kind`: which loss (see above).

    **Returns:** `B` of shape (3n, 3n), or (2n, 2n) for the non-contrastive kinds.

    References: Esser, Mukherjee & Ghoshdastidar, TMLR 2024 (reconstructed; see docs/theory notes).
    """
    coeffs, scale = pair_blocks(n, kind)
    eye = jnp.eye(int(n), dtype=dtype)
    blocks = [[c * eye for c in row] for row in coeffs]
    return scale * jnp.block(blocks)


def pair_factor(n: int, kind: LossKind = "contrastive", *, dtype=None) -> tuple[jax.Array, jax.Array]:
    r"""A thin eigendecomposition `B = U diag(d) Uᵀ` of `pair_matrix(n, kind)` without its null space.

    `B = s (C ⊗ I_n)` in n×n blocks, with the small block-coefficient matrix C (3×3, or 2×2) of
    `pair_matrix`. With `C = E diag(c) Eᵀ` and only the nonzero `c` kept, `U = E ⊗ I_n` has orthonormal
    columns and `d = s c ⊗ 1_n`: the eigenvectors of B follow from those of C, so no (m, m)
    eigendecomposition is needed. The rank q = n · rank(C) of B is 2n of m = 3n for both contrastive
    kinds, n of m = 2n for `squared_noncontrastive`, and m = 2n (no null space) for `noncontrastive`.
    Pass it to `OutputSolution(B_factor=...)`, which then solves a (q, q) eigenproblem instead of an
    (m, m) one.

    **Returns:** `(U, d)`, U of shape (m, q) with `UᵀU = I`, d of shape (q,).
    """
    E, d = pair_eigenblocks(n, kind)
    dtype = jnp.result_type(float) if dtype is None else dtype
    U = jnp.asarray(np.kron(E, np.eye(int(n))), dtype)
    d = jnp.asarray(d, dtype)
    return U, d


def hidden_gram(Phi, Phi_other=None) -> jax.Array:
    r"""Hidden-feature Gram matrix `K = Φ Φᵀ` (m, m) for features `Φ` (m, h), one row per input.

    With `Phi_other` (m', h), returns the cross Gram `Φ' Φᵀ` of shape (m', m) used to predict unseen
    inputs.
    """
    Phi = as_array(Phi, "Phi", ndim=2)
    if Phi_other is None:
        return sym(Phi @ Phi.T)
    Phi_other = as_array(Phi_other, "Phi_other", ndim=2)
    check_same_cols({"Phi": Phi, "Phi_other": Phi_other})
    return Phi_other @ Phi.T

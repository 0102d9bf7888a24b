"""Metrics for representations, subspaces and linear probes.

Conventions: representations are arrays `Z` of shape (n, k), one row per sample; weight matrices
are in column layout `W` (d, k); subspaces are compared through orthogonal projectors and
principal angles, never through raw weights (which are defined only up to an invertible k x k
mixing, or a rotation for orthonormal `W`).

Every function here is pure JAX. Input checks that need concrete values (finiteness, symmetry,
rank, label ranges) run only outside `jax.jit`/`jax.vmap`; validate before tracing if you need
them there.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from ._validation import (
    check_int,
    check_labels,
    as_array,
    check_positive,
    check_rank_k,
    check_same_cols,
    check_same_rows,
    check_symmetric,
    is_concrete,
)

__all__ = [
    "ProbeResult",
    "effective_rank",
    "linear_cka",
    "logistic_probe",
    "loss_along",
    "orthogonality_error",
    "principal_angles",
    "probe_accuracy",
    "projector",
    "rankme",
    "ridge_probe",
    "stable_rank",
    "subspace_distance",
    "top_eigenspace",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _as_matrix_batch(x, name: str) -> jax.Array:
    arr = as_array(x, name, nonempty=True)  # an empty matrix has no rank, span or spectrum
    if arr.ndim < 2:
        raise ValueError(
            f"`{name}` must be a matrix (..., rows, cols) with at least 2 dimensions, "
            f"got shape {tuple(arr.shape)}."
        )
    return arr


def _mT(x: jax.Array) -> jax.Array:
    return jnp.conj(jnp.swapaxes(x, -1, -2))


def _rank_tol(s: jax.Array, shape) -> jax.Array:
    """Numerical-rank threshold for singular values `s` (..., r) of a matrix of `shape`."""
    eps = jnp.finfo(s.dtype).eps
    return max(shape[-2], shape[-1]) * eps * jnp.max(s, axis=-1, keepdims=True)


def _check_full_column_rank(a: jax.Array, s: jax.Array, name: str) -> None:
    """Raise if concrete singular values `s` of `a` (d, k) show rank < k."""
    if not is_concrete(s):
        return
    k = a.shape[1]
    tol = float(_rank_tol(s, a.shape)[0])
    rank = int(jnp.sum(s > tol))
    if rank < k:
        raise ValueError(
            f"`{name}` must have full column rank so that its columns span a {k}-dimensional "
            f"subspace, got numerical rank {rank}. Drop dependent columns (e.g. use the range of "
            f"`projector({name})`)."
        )


def _check_same_ambient(a: jax.Array, b: jax.Array, na: str, nb: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"`{na}` and `{nb}` must live in the same ambient space (same number of rows d), "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}."
        )


# ----------------------------------------------------------------------------------------------
# Stiefel / subspace metrics
# ----------------------------------------------------------------------------------------------


def orthogonality_error(W) -> jax.Array:
    r"""Distance of `W` from the Stiefel manifold, $\lVert W^\top W - I_k \rVert_F$.

    **Arguments:**
    - `W`: array (d, k), or a batch (..., d, k) such as a trajectory of weights.

    **Returns:** a scalar, or an array of shape `W.shape[:-2]` for a batch.
    """
    return _orthogonality_error(_as_matrix_batch(W, "W"))


@jax.jit
def _orthogonality_error(w):
    gram = _mT(w) @ w
    return jnp.linalg.norm(gram - jnp.eye(w.shape[-1], dtype=w.dtype), axis=(-2, -1))


def projector(W) -> jax.Array:
    r"""Orthogonal projector onto the column span of `W`, $P = U_r U_r^\top$.

    Computed from the thin SVD $W = U \Sigma V^\top$, keeping the left singular vectors whose singular
    values exceed the numerical-rank threshold $\max(d, k)\,\epsilon\,\sigma_{\max}$. This is stable
    for non-orthonormal and even rank-deficient `W` (unlike $W (W^\top W)^{-1} W^\top$), and uses a
    mask rather than a data-dependent shape, so it works under `jax.jit`/`jax.vmap`. For `W = 0` it
    returns the zero matrix.

    **Arguments:**
    - `W`: array (d, k), or a batch (..., d, k).

    **Returns:** array (d, d) (or (..., d, d)), symmetric and idempotent.
    """
    return _projector(_as_matrix_batch(W, "W"))


@jax.jit
def _projector(w):
    u, s, _ = jnp.linalg.svd(w, full_matrices=False)
    mask = (s > _rank_tol(s, w.shape)).astype(u.dtype)
    return (u * mask[..., None, :]) @ _mT(u)


def principal_angles(A, B) -> jax.Array:
    r"""Principal angles between the column spans of `A` and `B`, in radians, ascending.

    With orthonormal bases $Q_A$, $Q_B$ (from the SVD) and $k_1 \ge k_2$ (otherwise the roles are
    swapped), the cosines of the angles are the singular values of $Q_A^\top Q_B$ and the sines are
    the singular values of $(I - Q_A Q_A^\top) Q_B$. As in Björck & Golub (1973) (and
    `scipy.linalg.subspace_angles`), angles with $\cos^2\theta \ge 1/2$ are taken from the sines
    (accurate for tiny angles, where $\arccos$ of a cosine that rounds to 1 returns 0) and the
    others from the cosines (accurate near $\pi/2$).

    **Arguments:**
    - `A`: array (d, k1) with full column rank.
    - `B`: array (d, k2) with full column rank.

    **Returns:** array (min(k1, k2),) of angles in $[0, \pi/2]$, ascending.

    **References:** Å. Björck and G. H. Golub, "Numerical methods for computing angles between
    linear subspaces", Mathematics of Computation 27 (1973).
    """
    a, b = _prepare_pair(A, B)
    theta, sa, sb = _principal_angles(a, b)
    _check_full_column_rank(a, sa, "A")
    _check_full_column_rank(b, sb, "B")
    return theta


def _prepare_pair(A, B):
    a = as_array(A, "A", ndim=2, nonempty=True)
    b = as_array(B, "B", ndim=2, nonempty=True)
    _check_same_ambient(a, b, "A", "B")
    for name, x in (("A", a), ("B", b)):
        d, k = x.shape
        if k > d:
            raise ValueError(
                f"`{name}` must have at most as many columns as rows (k <= d) to span a k-dimensional "
                f"subspace of R^d, got shape {(d, k)}."
            )
    return a, b


def _ordered_bases(a: jax.Array, b: jax.Array):
    """Orthonormal bases (larger subspace first) and singular values of `a`, `b`."""
    qa, sa, _ = jnp.linalg.svd(a, full_matrices=False)
    qb, sb, _ = jnp.linalg.svd(b, full_matrices=False)
    if qa.shape[1] < qb.shape[1]:  # static shapes: resolved at trace time
        qa, qb = qb, qa
    return qa, qb, sa, sb


@jax.jit
def _principal_angles(a, b):
    qa, qb, sa, sb = _ordered_bases(a, b)
    m = _mT(qa) @ qb
    cos = jnp.linalg.svd(m, compute_uv=False)  # descending -> angles ascending
    resid = qb - qa @ m
    sin = jnp.linalg.svd(resid, compute_uv=False)[::-1]  # ascending -> angles ascending
    theta_cos = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    theta_sin = jnp.arcsin(jnp.clip(sin, -1.0, 1.0))
    return jnp.where(cos**2 >= 0.5, theta_sin, theta_cos), sa, sb


@jax.jit
def _subspace_distance(a, b):
    qa, qb, sa, sb = _ordered_bases(a, b)
    resid = qb - qa @ (_mT(qa) @ qb)
    return jnp.linalg.norm(resid), sa, sb


def subspace_distance(A, B) -> jax.Array:
    r"""Chordal distance between the column spans of `A` and `B`.

    $$d(A, B) = \Big(\sum_{i=1}^{\min(k_1,k_2)} \sin^2\theta_i\Big)^{1/2}
      = \lVert (I - P_A) Q_B \rVert_F \quad (k_1 \ge k_2),$$

    with $\theta_i$ the principal angles. For equal dimensions $k_1 = k_2$ this equals
    $\lVert P_A - P_B \rVert_F / \sqrt{2}$; in general
    $\lVert P_A - P_B \rVert_F^2 / 2 = d(A, B)^2 + |k_1 - k_2| / 2$, so this distance is zero when
    the smaller subspace is contained in the larger one. It lies in $[0, \sqrt{\min(k_1,k_2)}]$ and
    is computed from the residual norm directly, which is accurate for nearly equal subspaces.

    **Arguments:**
    - `A`: array (d, k1) with full column rank.
    - `B`: array (d, k2) with full column rank.

    **Returns:** a non-negative scalar.

    **References:** J. H. Conway, R. H. Hardin and N. J. A. Sloane, "Packing lines, planes, etc.:
    packings in Grassmannian spaces", Experimental Mathematics 5 (1996).
    """
    a, b = _prepare_pair(A, B)
    dist, sa, sb = _subspace_distance(a, b)
    _check_full_column_rank(a, sa, "A")
    _check_full_column_rank(b, sb, "B")
    return dist


def top_eigenspace(S, k: int, *, return_values: bool = False):
    r"""Eigenvectors of the `k` largest eigenvalues of a symmetric matrix.

    Uses `jnp.linalg.eigh`. Columns are ordered by decreasing eigenvalue; each eigenvector is defined
    only up to sign (and within a repeated eigenvalue only up to rotation), so compare the result
    with others through `projector`/`principal_angles`.

    **Arguments:**
    - `S`: symmetric array (d, d).
    - `k`: number of eigenvectors, an int in [1, d] (static under `jax.jit`).
    - `return_values`: also return the `k` eigenvalues (descending).

    **Returns:** array (d, k) with orthonormal columns, or `(vectors, values)` if `return_values`.
    """
    s = as_array(S, "S", ndim=2)
    check_symmetric(s, "S")
    k = check_rank_k(k, s.shape[0], "k")
    vecs, vals = _top_eigenspace(s, k)
    return (vecs, vals) if return_values else vecs


@partial(jax.jit, static_argnums=1)
def _top_eigenspace(s, k):
    evals, evecs = jnp.linalg.eigh(s)
    return evecs[:, ::-1][:, :k], evals[::-1][:k]


# ----------------------------------------------------------------------------------------------
# rank measures
# ----------------------------------------------------------------------------------------------


def stable_rank(A) -> jax.Array:
    r"""Stable (numerical) rank $\lVert A \rVert_F^2 / \lVert A \rVert_2^2 = \sum_i \sigma_i^2 / \sigma_1^2$.

    Lies in $[1, \operatorname{rank} A]$; defined as 0 for the zero matrix.

    **Arguments:**
    - `A`: array (n, k), or a batch (..., n, k).

    **Returns:** a scalar (or array of shape `A.shape[:-2]`).

    **References:** M. Rudelson and R. Vershynin, "Sampling from large matrices: an approach through
    geometric functional analysis", Journal of the ACM 54 (2007).
    """
    return _stable_rank(_as_matrix_batch(A, "A"))


@jax.jit
def _stable_rank(a):
    s = jnp.linalg.svd(a, compute_uv=False)
    top = s[..., 0] ** 2
    safe = jnp.where(top > 0, top, 1.0)
    return jnp.where(top > 0, jnp.sum(s**2, axis=-1) / safe, 0.0)


def effective_rank(Z) -> jax.Array:
    r"""Effective rank of Roy & Vetterli (2007): $\exp\big(-\sum_i p_i \log p_i\big)$, $p_i = \sigma_i / \lVert\sigma\rVert_1$.

    $\sigma$ are the singular values of `Z` (no centring), with the convention $0 \log 0 = 0$, so
    exactly-zero singular values contribute nothing. The value lies in
    $[1, \operatorname{rank} Z]$ and is defined as 0 for the zero matrix.

    This is the same quantity as `rankme` except for the `eps` that RankMe adds to every $p_i$;
    see `rankme`.

    **Arguments:**
    - `Z`: representations (n, k), or a batch (..., n, k).

    **Returns:** a scalar (or array of shape `Z.shape[:-2]`).

    **References:** O. Roy and M. Vetterli, "The effective rank: a measure of effective
    dimensionality", EUSIPCO 2007.
    """
    z = _as_matrix_batch(Z, "Z")
    return _spectral_entropy_rank(z, jnp.zeros((), z.real.dtype))


def rankme(Z, eps: float = 1e-7) -> jax.Array:
    r"""RankMe of Garrido et al. (ICML 2023): $\exp\big(-\sum_i p_i \log p_i\big)$, $p_i = \sigma_i / \lVert\sigma\rVert_1 + \epsilon$.

    $\sigma$ are the `min(n, k)` singular values of the (uncentred) embeddings `Z`. This follows
    the reference implementation: `eps` is added to every normalised singular value (without
    renormalising) to keep the logarithm finite, so unlike `effective_rank` each (near-)zero
    singular value contributes about $-\epsilon \log \epsilon$ ($\approx 1.6\times10^{-6}$ for the
    default) to the entropy, and the result can slightly exceed the rank. With `eps=0` it equals
    `effective_rank`. Defined as 0 for the zero matrix.

    **Arguments:**
    - `Z`: embeddings (n, k), or a batch (..., n, k).
    - `eps`: non-negative smoothing constant.

    **Returns:** a scalar (or array of shape `Z.shape[:-2]`).

    **References:** Q. Garrido, R. Balestriero, L. Najman and Y. LeCun, "RankMe: assessing the
    downstream performance of pretrained self-supervised representations by their rank",
    ICML 2023.
    """
    z = _as_matrix_batch(Z, "Z")
    check_positive(eps, "eps", allow_zero=True)
    return _spectral_entropy_rank(z, jnp.asarray(eps, z.real.dtype))


@jax.jit
def _spectral_entropy_rank(z, eps):
    """exp(entropy) of p = sigma / ||sigma||_1 + eps, with 0 log 0 = 0; 0 for the zero matrix."""
    s = jnp.linalg.svd(z, compute_uv=False)
    total = jnp.sum(s, axis=-1, keepdims=True)
    nonzero = total > 0
    p = s / jnp.where(nonzero, total, 1.0) + eps
    plogp = jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)
    return jnp.where(nonzero[..., 0], jnp.exp(-jnp.sum(plogp, axis=-1)), 0.0)


# ----------------------------------------------------------------------------------------------
# representation similarity
# ----------------------------------------------------------------------------------------------


def linear_cka(X, Y) -> jax.Array:
    r"""Linear centred kernel alignment (Kornblith et al., 2019).

    With column-centred $\tilde X = H X$, $\tilde Y = H Y$ ($H = I - \tfrac1n \mathbf{1}\mathbf{1}^\top$),

    $$\mathrm{CKA}(X, Y) = \frac{\lVert \tilde Y^\top \tilde X \rVert_F^2}
      {\lVert \tilde X^\top \tilde X \rVert_F \, \lVert \tilde Y^\top \tilde Y \rVert_F}
      = \frac{\mathrm{HSIC}(XX^\top, YY^\top)}{\sqrt{\mathrm{HSIC}(XX^\top, XX^\top)\,\mathrm{HSIC}(YY^\top, YY^\top)}},$$

    computed in feature space, O(n k^2). It lies in [0, 1], is symmetric, and is invariant to
    orthogonal transformations, isotropic scaling and translations of either representation (not
    to general invertible linear maps). It is undefined when either representation is constant
    across samples (complete collapse): outside a trace that raises a `ValueError` naming it (inside
    `jit`/`vmap` the result is NaN).

    **Arguments:**
    - `X`: representations (n, k1).
    - `Y`: representations (n, k2) of the same n samples.

    **Returns:** a scalar.

    **References:** S. Kornblith, M. Norouzi, H. Lee and G. Hinton, "Similarity of neural network
    representations revisited", ICML 2019.
    """
    x = as_array(X, "X", ndim=2, nonempty=True)
    y = as_array(Y, "Y", ndim=2, nonempty=True)
    check_same_rows({"X": x, "Y": y})
    value = _linear_cka(x, y)
    if is_concrete(value) and is_concrete(x) and is_concrete(y) and not np.isfinite(float(value)):
        for name, a in (("X", x), ("Y", y)):
            an = np.asarray(a, dtype=np.float64)
            centred = an - an.mean(axis=0)
            if float(np.linalg.norm(centred.T @ centred)) == 0.0:
                raise ValueError(
                    f"linear_cka is undefined: `{name}` is constant across samples (its centred representation is "
                    "numerically zero, e.g. a completely collapsed network), so CKA would be 0/0 = NaN.")
        raise ValueError("linear_cka is not finite: the centred Gram norms of `X` and `Y` overflow or underflow; "
                         "rescale the representations.")
    return value


@jax.jit
def _linear_cka(x, y):
    x = x - jnp.mean(x, axis=0)
    y = y - jnp.mean(y, axis=0)
    cross = jnp.sum(jnp.abs(_mT(y) @ x) ** 2)
    nx = jnp.linalg.norm(_mT(x) @ x)
    ny = jnp.linalg.norm(_mT(y) @ y)
    return cross / (nx * ny)


# ----------------------------------------------------------------------------------------------
# linear probes
# ----------------------------------------------------------------------------------------------


class ProbeResult(NamedTuple):
    """Result of a linear probe.

    **Fields:**
    - `predictions`: int array (m,), predicted class of each test sample (argmax of `scores`).
    - `scores`: array (m, C), ridge outputs or logistic logits on the test samples.
    - `accuracy`: scalar fraction of correct test predictions, or None when `y_test` is not given.
    - `weights`: array (k, C), acting on *standardised* features `(Z - mean) / scale`.
    - `bias`: array (C,).
    - `mean`, `scale`: arrays (k,), the train statistics used to standardise features
      (zeros and ones when `standardize=False`).
    - `n_iter`: number of optimiser iterations (logistic probe), None for the ridge probe.
    - `grad_norm`: Euclidean norm of the objective's gradient at the solution (logistic probe),
      None for the ridge probe.
    """

    predictions: jax.Array
    scores: jax.Array
    accuracy: jax.Array | None
    weights: jax.Array
    bias: jax.Array
    mean: jax.Array
    scale: jax.Array
    n_iter: jax.Array | None = None
    grad_norm: jax.Array | None = None


def _prepare_probe(Z_train, y_train, Z_test, y_test, n_classes):
    ztr = as_array(Z_train, "Z_train", ndim=2, nonempty=True)
    zte = as_array(Z_test, "Z_test", ndim=2, nonempty=True)
    ytr = check_labels(y_train, "y_train")
    check_same_rows({"Z_train": ztr, "y_train": ytr})
    check_same_cols({"Z_train": ztr, "Z_test": zte})
    labels = {"y_train": ytr}
    yte = None
    if y_test is not None:
        yte = check_labels(y_test, "y_test")
        check_same_rows({"Z_test": zte, "y_test": yte})
        labels["y_test"] = yte
    concrete = {name: np.asarray(v) for name, v in labels.items() if is_concrete(v)}
    for name, v in concrete.items():
        if v.size and v.min() < 0:
            raise ValueError(f"`{name}` must contain non-negative class labels 0, 1, ..., C-1, "
                             f"got minimum {int(v.min())}.")
    if n_classes is None:
        if len(concrete) < len(labels):
            raise TypeError("`n_classes` must be given (as an int) when the labels are traced (inside jit/vmap).")
        n_classes = max((int(v.max()) for v in concrete.values() if v.size), default=0) + 1
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    for name, v in concrete.items():
        if v.size and v.max() >= n_classes:
            raise ValueError(
                f"`{name}` must contain labels in [0, {n_classes - 1}] (n_classes = {n_classes}), "
                f"got maximum {int(v.max())}."
            )
    return ztr, ytr, zte, yte, n_classes


def _standardise(ztr: jax.Array, standardize: bool):
    if not standardize:
        k = ztr.shape[1]
        return jnp.zeros(k, ztr.dtype), jnp.ones(k, ztr.dtype)
    mean = jnp.mean(ztr, axis=0)
    std = jnp.std(ztr, axis=0)
    scale = jnp.where(std > 0, std, 1.0)
    return mean, scale


@jax.jit
def _predict(weights, bias, mean, scale, zte, yte):
    scores = ((zte - mean) / scale) @ weights + bias
    preds = jnp.argmax(scores, axis=-1)
    acc = None if yte is None else jnp.mean((preds == yte).astype(scores.dtype))
    return scores, preds, acc


def _finish(weights, bias, mean, scale, zte, yte, n_iter=None, grad_norm=None) -> ProbeResult:
    scores, preds, acc = _predict(weights, bias, mean, scale, zte, yte)
    return ProbeResult(preds, scores, acc, weights, bias, mean, scale, n_iter, grad_norm)


@partial(jax.jit, static_argnames=("n_classes", "standardize"))
def _ridge_fit(ztr, ytr, reg, *, n_classes, standardize):
    mean, scale = _standardise(ztr, standardize)
    x = (ztr - mean) / scale
    t = jax.nn.one_hot(ytr, n_classes, dtype=x.dtype)
    n, k = x.shape
    # Unpenalised bias: eliminate it by centring (exact; a no-op on the features if standardised).
    xm, tm = jnp.mean(x, axis=0), jnp.mean(t, axis=0)
    xc, tc = x - xm, t - tm
    gram = xc.T @ xc / n + reg * jnp.eye(k, dtype=x.dtype)
    weights = jnp.linalg.solve(gram, xc.T @ tc / n)
    bias = tm - xm @ weights
    return weights, bias, mean, scale


def ridge_probe(Z_train, y_train, Z_test, y_test=None, *, reg: float = 1e-3, n_classes: int | None = None,
                standardize: bool = True) -> ProbeResult:
    r"""Closed-form ridge-regression probe on one-hot labels.

    Features are standardised with the **training** mean and standard deviation (population std;
    features with zero variance are only centred), $\tilde z = (z - \mu_{\rm train}) / s_{\rm train}$,
    and the same map is applied to the test features. With one-hot targets $T$ (n, C) the probe solves

    $$\min_{W, b}\ \frac1n \lVert \tilde Z W + \mathbf 1 b^\top - T \rVert_F^2 + \lambda \lVert W \rVert_F^2,$$

    with an unpenalised bias, i.e. $(\tilde Z_c^\top \tilde Z_c / n + \lambda I) W = \tilde Z_c^\top T_c / n$
    for the centred $\tilde Z_c, T_c$ and $b = \bar T - \bar{\tilde z}^\top W$. Test predictions are
    the argmax over classes of $\tilde z^\top W + b$. Because of the $1/n$, $\lambda$ is
    comparable across sample sizes. Jittable with `n_classes` given.

    **Arguments:**
    - `Z_train`: training representations (n, k).
    - `y_train`: integer labels (n,) in [0, C).
    - `Z_test`: test representations (m, k).
    - `y_test`: optional integer labels (m,); if given, the accuracy is returned.
    - `reg`: ridge strength $\lambda > 0$.
    - `n_classes`: number of classes C; default `max(label) + 1` over the given labels.
    - `standardize`: standardise features with the training statistics (default True).

    **Returns:** a `ProbeResult` (`predictions`, `scores`, `accuracy`, `weights`, `bias`, `mean`,
    `scale`).
    """
    ztr, ytr, zte, yte, n_classes = _prepare_probe(Z_train, y_train, Z_test, y_test, n_classes)
    check_positive(reg, "reg")
    weights, bias, mean, scale = _ridge_fit(ztr, ytr, jnp.asarray(reg, ztr.dtype), n_classes=n_classes,
                                            standardize=bool(standardize))
    return _finish(weights, bias, mean, scale, zte, yte)


def _logistic_objective(params, x, t, reg):
    w, b = params
    logp = jax.nn.log_softmax(x @ w + b, axis=-1)
    ce = -jnp.mean(jnp.sum(t * logp, axis=-1))
    return ce + 0.5 * reg * (jnp.sum(w**2) + jnp.sum(b**2))


@partial(jax.jit, static_argnames=("n_classes", "steps", "memory_size", "standardize"))
def _logistic_fit(ztr, ytr, reg, tol, *, n_classes, steps, memory_size, standardize):
    mean, scale = _standardise(ztr, standardize)
    x = (ztr - mean) / scale
    t = jax.nn.one_hot(ytr, n_classes, dtype=x.dtype)
    k = x.shape[1]

    def fun(params):
        return _logistic_objective(params, x, t, reg)

    opt = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(fun)
    params0 = (jnp.zeros((k, n_classes), x.dtype), jnp.zeros((n_classes,), x.dtype))
    state0 = opt.init(params0)

    def body(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=fun)
        return optax.apply_updates(params, updates), state

    def cond(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        gnorm = otu.tree_norm(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < steps) & (gnorm > tol))

    params, state = jax.lax.while_loop(cond, body, (params0, state0))
    grad_norm = otu.tree_norm(jax.grad(fun)(params))
    return params[0], params[1], mean, scale, otu.tree_get(state, "count"), grad_norm


def logistic_probe(Z_train, y_train, Z_test, y_test=None, *, reg: float = 1e-4, steps: int = 500,
                   tol: float | None = None, memory_size: int = 10, n_classes: int | None = None,
                   standardize: bool = True) -> ProbeResult:
    r"""Multinomial logistic-regression probe, L2-regularised, fitted by full-batch L-BFGS.

    Features are standardised with the training statistics exactly as in `ridge_probe`. With
    one-hot targets $T$ the probe minimises the strictly convex objective

    $$\mathcal L(W, b) = -\frac1n \sum_{i=1}^n \sum_c T_{ic} \log \operatorname{softmax}(\tilde z_i^\top W + b)_c
      + \frac{\lambda}{2}\big(\lVert W \rVert_F^2 + \lVert b \rVert^2\big).$$

    The bias is penalised too: this makes the minimiser unique (the softmax is otherwise invariant to
    a common shift of $b$, and a class absent from the training set would send its bias to
    $-\infty$); with standardised features its effect is negligible for small $\lambda$. The
    optimiser is `optax.lbfgs` (zoom line search) started from zero inside a `lax.while_loop`,
    stopping when the gradient norm drops below `tol` or after `steps` iterations. It is
    deterministic and jittable (with `n_classes` given). Check `grad_norm` in the result for
    convergence.

    **Arguments:**
    - `Z_train`: training representations (n, k).
    - `y_train`: integer labels (n,) in [0, C).
    - `Z_test`: test representations (m, k).
    - `y_test`: optional integer labels (m,); if given, the accuracy is returned.
    - `reg`: L2 strength $\lambda > 0$.
    - `steps`: maximum number of L-BFGS iterations.
    - `tol`: tolerance on the Euclidean norm of the gradient; default 1e-9 in float64, 1e-6 in
      lower precision.
    - `memory_size`: L-BFGS history length.
    - `n_classes`: number of classes C; default `max(label) + 1` over the given labels.
    - `standardize`: standardise features with the training statistics (default True).

    **Returns:** a `ProbeResult` whose `scores` are test logits, with `n_iter` and `grad_norm`.
    """
    ztr, ytr, zte, yte, n_classes = _prepare_probe(Z_train, y_train, Z_test, y_test, n_classes)
    check_positive(reg, "reg")
    if tol is None:
        tol = 1e-9 if ztr.dtype == jnp.float64 else 1e-6
    check_positive(tol, "tol", allow_zero=True)
    steps, memory_size = check_int(steps, "steps", minimum=1), check_int(memory_size, "memory_size", minimum=1)
    w, b, mean, scale, n_iter, gnorm = _logistic_fit(
        ztr, ytr, jnp.asarray(reg, ztr.dtype), jnp.asarray(tol, ztr.dtype), n_classes=n_classes,
        steps=int(steps), memory_size=int(memory_size), standardize=bool(standardize))
    return _finish(w, b, mean, scale, zte, yte, n_iter, gnorm)


def probe_accuracy(Z_train, y_train, Z_test, y_test, *, method: str = "ridge", **kwargs) -> jax.Array:
    """Test accuracy of a linear probe: `ridge_probe(...).accuracy` or `logistic_probe(...).accuracy`.

    **Arguments:**
    - `Z_train`, `y_train`, `Z_test`, `y_test`: as in `ridge_probe` (`y_test` is required here).
    - `method`: `"ridge"` or `"logistic"`.
    - `**kwargs`: passed on to the probe (`reg`, `n_classes`, `steps`, ...).

    **Returns:** a scalar accuracy in [0, 1].
    """
    if y_test is None:
        raise ValueError("`y_test` is required to compute an accuracy.")
    probes = {"ridge": ridge_probe, "logistic": logistic_probe}
    if method not in probes:
        raise ValueError(f"`method` must be one of {sorted(probes)}, got {method!r}.")
    return probes[method](Z_train, y_train, Z_test, y_test, **kwargs).accuracy


# ----------------------------------------------------------------------------------------------
# trajectories
# ----------------------------------------------------------------------------------------------


def loss_along(traj_states, loss_fn: Callable[..., Any], *args) -> jax.Array:
    r"""Evaluate `loss_fn` at every time point of a trajectory: $t \mapsto \mathcal L(\theta_t)$.

    `jax.vmap` of `loss_fn` over the leading (time) axis of every leaf of `traj_states`; extra
    positional `args` (data, hyper-parameters) are passed unchanged to every call.

    **Arguments:**
    - `traj_states`: a pytree (e.g. an array (T, ...) or a tuple of arrays) whose leaves all have the
      same leading length T.
    - `loss_fn`: callable `loss_fn(state, *args)` returning a scalar (or any pytree).
    - `*args`: extra arguments, not mapped over.

    **Returns:** the stacked outputs, shape (T,) for a scalar loss.
    """
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable, got {type(loss_fn).__name__}.")
    leaves = jax.tree_util.tree_leaves(traj_states)
    if not leaves:
        raise ValueError("`traj_states` must contain at least one array (with a leading time axis).")
    lengths = set()
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError("Every leaf of `traj_states` needs a leading time axis; got a scalar leaf.")
        lengths.add(shape[0])
    if len(lengths) > 1:
        raise ValueError(f"All leaves of `traj_states` must share the leading (time) length, got {sorted(lengths)}.")
    return jax.vmap(lambda s: loss_fn(s, *args))(traj_states)

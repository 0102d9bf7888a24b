"""Pair builders: anchors, positives and negatives for contrastive / non-contrastive SSL.

Layout: one row per sample. Row `i` of `anchors`, `positives` and `negatives` all belong to anchor
`i`; the theory files stack the same vectors as columns (`X, X+, X- in R^{d x n}`, README §3), so
`Views.anchors.T` is the theory's `X`.

Augmentations are drawn once from the key and then frozen, so the ODE and the network can be fed
exactly the same `Z = [X, X+, X-]` (Esser et al. 2024, library protocol §10.3).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_array, check_int, check_labels, is_concrete
from ._augment import Augmentation, default_augmentation


class Views(NamedTuple):
    """Stacked views, one row per anchor.

    **Fields:**
    - `anchors`: `(n, d)` anchors `x_i`.
    - `positives`: `(n, d)` positives `x+_i`.
    - `negatives`: `(n, d)` negatives `x-_i`, or None when not requested.
    """

    anchors: jax.Array
    positives: jax.Array
    negatives: jax.Array | None


def _identity(key, X):
    return X


def negative_indices(key, n: int) -> jax.Array:
    """Draw, for each `i < n`, an index `j_i` uniform on `{0, ..., n-1} \\ {i}`.

    Draws `r_i` uniform on `{0, ..., n-2}` and sets `j_i = r_i + [r_i >= i]`, so `j_i != i` exactly
    and every other index has probability `1 / (n - 1)`.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `n`: number of anchors, a Python int `>= 2`.

    **Returns:**
    - `(n,)` `int32` indices.
    """
    n = check_int(n, "n")
    if n < 2:
        raise ValueError(f"Negatives need at least 2 samples (j != i), got n = {n}.")
    return _negative_indices_kernel(key, int(n))


@partial(jax.jit, static_argnums=1)
def _negative_indices_kernel(key, n):
    r = jax.random.randint(key, (n,), 0, n - 1)
    return r + (r >= jnp.arange(n)).astype(r.dtype)


def make_views(key, X, augment: Augmentation | None = default_augmentation, *,
               negatives: bool = True, augment_anchors: bool = False) -> Views:
    """Build anchors, augmented positives and augmented negatives from one batch.

    With sub-keys `k_pos, k_neg, k_idx, k_anc = jax.random.split(key, 4)`:

    - anchors: `x_i` (or `augment(k_anc, X)` with `augment_anchors=True`, for symmetric two-view
      setups);
    - positives: `x+_i = augment(k_pos, X)_i`, a fresh view of the same sample;
    - negatives: `x-_i = augment(k_neg, X[j])_i` with `j = negative_indices(k_idx, n)`, i.e. a view of
      a uniformly random *other* sample `j_i != i` (never the anchor's own index).

    The work runs in one `jax.jit`-compiled program with `augment` and the flags static (so pass
    the same `augment` object to reuse the compilation: a new `partial` or `lambda` on each call
    recompiles; an unhashable `augment` runs op by op instead). Works inside `jax.jit` and under
    `jax.vmap` over keys.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` data, one sample per row (`n >= 2` when `negatives=True`).
    - `augment`: keyed augmentation `(key, X) -> X_aug`; None means no augmentation (identity).
      Defaults to `default_augmentation` (1-pixel shift plus noise of std 0.1).
    - `negatives`: whether to build negatives (otherwise the field is None).
    - `augment_anchors`: whether to augment the anchors too.

    **Returns:**
    - `Views(anchors, positives, negatives)`, each `(n, d)` (negatives possibly None).
    """
    X = as_array(X, "X", ndim=2)
    aug = _identity if augment is None else augment
    if not callable(aug):
        raise TypeError(f"`augment` must be a callable (key, X) -> X or None, got {type(aug).__name__}.")
    if negatives and X.shape[0] < 2:
        raise ValueError(f"`X` must have at least 2 rows for negatives (j != i), got n = {X.shape[0]}.")
    kernel = _make_views_jit if _hashable(aug) else _make_views_impl
    return kernel(key, X, aug, bool(negatives), bool(augment_anchors))


def _hashable(obj) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _make_views_impl(key, X, aug, negatives, augment_anchors):
    k_pos, k_neg, k_idx, k_anc = jax.random.split(key, 4)
    anchors = aug(k_anc, X) if augment_anchors else X
    positives = aug(k_pos, X)
    neg = None
    if negatives:
        j = _negative_indices_kernel(k_idx, X.shape[0])
        neg = aug(k_neg, X[j])
    return Views(anchors, positives, neg)


_make_views_jit = jax.jit(_make_views_impl, static_argnums=(2, 3, 4))


def oracle_views(key, X, y, augment: Augmentation | None = None, *, negatives: bool = True) -> Views:
    """Oracle views from labels: positives from the same class, negatives from another class.

    For anchor `i` with label `y_i`:

    - `x+_i = augment(k_pos, X[p])_i` with `p` uniform over the *other* rows of the same class
      (`y_p = y_i`, `p != i`);
    - `x-_i = augment(k_neg, X[q])_i` with `q` uniform over rows of any other class (`y_q != y_i`).

    Sampling sorts rows by label and draws an offset into the class block (or its complement), so it
    is exact, needs O(n) memory, is compiled with `jax.jit` (`augment` static) and works under
    `jit`/`vmap`. The class-size checks below run only
    when `y` is concrete.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` data, one sample per row.
    - `y`: `(n,)` integer labels.
    - `augment`: keyed augmentation applied to positives and negatives, or None (default) for the
      raw images.
    - `negatives`: whether to build negatives (otherwise the field is None).

    **Returns:**
    - `Views(anchors=X, positives, negatives)`.

    **Raises:**
    - `ValueError` if a class has a single row (no other positive exists) or, with `negatives`,
      if there is only one class.
    """
    X = as_array(X, "X", ndim=2)
    n = X.shape[0]
    y = check_labels(y, "y", n)
    aug = _identity if augment is None else augment
    if not callable(aug):
        raise TypeError(f"`augment` must be a callable (key, X) -> X or None, got {type(aug).__name__}.")
    if is_concrete(y):
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        if np.any(counts < 2):
            bad = [int(c) for c in labels[counts < 2]]
            raise ValueError(
                f"oracle_views needs at least 2 rows per class for positives; class(es) {bad} have 1."
            )
        if negatives and labels.size < 2:
            raise ValueError(
                f"oracle_views needs at least 2 classes for negatives; `y` only has {int(labels[0])}."
            )

    kernel = _oracle_jit if _hashable(aug) else _oracle_impl
    return kernel(key, X, y, aug, bool(negatives))


def _oracle_impl(key, X, y, aug, negatives):
    n = X.shape[0]
    k_pos, k_neg, k_pidx, k_nidx = jax.random.split(key, 4)
    order = jnp.argsort(y, stable=True)          # rows sorted by label
    y_sorted = y[order]
    start = jnp.searchsorted(y_sorted, y, side="left")   # start of each row's class block
    stop = jnp.searchsorted(y_sorted, y, side="right")
    size = stop - start
    rank = jnp.empty(n, dtype=start.dtype).at[order].set(jnp.arange(n, dtype=start.dtype))
    pos_in_block = rank - start                  # own position inside the class block

    # Positive: uniform over the block minus the own position.
    r = jax.random.randint(k_pidx, (n,), 0, size - 1)
    r = r + (r >= pos_in_block).astype(r.dtype)
    p = order[start + r]
    positives = aug(k_pos, X[p])

    neg = None
    if negatives:
        # Negative: uniform over the n - size rows outside the block.
        u = jax.random.randint(k_nidx, (n,), 0, n - size)
        u = u + (u >= start).astype(u.dtype) * size
        q = order[u]
        neg = aug(k_neg, X[q])
    return Views(X, positives, neg)


_oracle_jit = jax.jit(_oracle_impl, static_argnums=(3, 4))

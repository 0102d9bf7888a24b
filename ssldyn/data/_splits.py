"""Class subsets: pick a few classes, a fixed number of images per class, and a held-out test split.

Layout: one row per sample (`X` is `(n, d)`), as everywhere in `ssldyn.data`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_array, check_int, check_labels, check_same_rows


class ClassSplit(NamedTuple):
    """A class-balanced train/test subset with labels remapped to `0..C-1`.

    **Fields:**
    - `X_train`: `(C * n_per_class, d)` training images, grouped by class in the order of `classes`.
    - `y_train`: `(C * n_per_class,)` `int32` labels; label `c` means `classes[c]`.
    - `X_test`: `(n_test, d)` test images, grouped by class in the same order.
    - `y_test`: `(n_test,)` `int32` remapped labels.
    - `classes`: the original labels, as a tuple of ints; `classes[c]` is remapped to `c`.
    """

    X_train: jax.Array
    y_train: jax.Array
    X_test: jax.Array
    y_test: jax.Array
    classes: tuple[int, ...]


def _check_count(value, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    return check_int(value, name, minimum=1)


def class_subset(X, y, classes: Sequence[int] = (0, 1), n_per_class: int = 200, *, key,
                 X_test=None, y_test=None, n_test_per_class: int | None = None) -> ClassSplit:
    """Draw a class-balanced subset of labelled data, with labels remapped to `0..C-1`.

    For each class in `classes`, `n_per_class` training rows are drawn uniformly without replacement
    (the class's rows ordered by i.i.d. `jax.random.uniform` draws, one per row of `X`). The test
    split is:

    - if `X_test`/`y_test` are given: their rows of the chosen classes — all of them when
      `n_test_per_class` is None, else `n_test_per_class` per class drawn without replacement;
    - otherwise the rows of `X` of those classes **not** drawn for training — all remaining rows
      when `n_test_per_class` is None, else `n_test_per_class` of them per class.

    Rows are grouped by class in the order of `classes` (within a class, in random order for drawn
    rows and original order when all test rows are kept). Index selection happens on the host
    (NumPy), so this function is not traceable; call it once, outside `jit`.

    **Arguments:**
    - `X`: `(n, d)` data, one sample per row.
    - `y`: `(n,)` integer labels.
    - `classes`: distinct labels to keep (any number, at least one); `classes[c]` becomes label `c`.
    - `n_per_class`: training rows per class.
    - `key`: a `jax.random` key; the same key gives the same subset.
    - `X_test`, `y_test`: optional separate test data (both or neither).
    - `n_test_per_class`: test rows per class, or None for all available.

    **Returns:**
    - A `ClassSplit(X_train, y_train, X_test, y_test, classes)` of JAX arrays (labels `int32`).

    **Raises:**
    - `ValueError` if a class is absent, has fewer rows than requested, or leaves no test rows.
    """
    X = as_array(X, "X", ndim=2)
    y = np.asarray(check_labels(y, "y")).astype(np.int64)
    check_same_rows({"X": X, "y": y})
    if isinstance(classes, (int, np.integer)):
        raise TypeError("`classes` must be a sequence of labels, e.g. (0, 1), not a single int.")
    classes = tuple(int(c) for c in classes)
    if len(classes) == 0:
        raise ValueError("`classes` must name at least one class.")
    if len(set(classes)) != len(classes):
        raise ValueError(f"`classes` must be distinct, got {classes}.")
    n_per_class = _check_count(n_per_class, "n_per_class")
    n_test_per_class = _check_count(n_test_per_class, "n_test_per_class", allow_none=True)
    separate = X_test is not None or y_test is not None
    if separate:
        if X_test is None or y_test is None:
            raise ValueError("Pass both `X_test` and `y_test`, or neither.")
        X_test = as_array(X_test, "X_test", ndim=2)
        y_test = np.asarray(check_labels(y_test, "y_test")).astype(np.int64)
        check_same_rows({"X_test": X_test, "y_test": y_test})
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(
                f"`X_test` has {X_test.shape[1]} features (columns) but `X` has {X.shape[1]}."
            )

    # One uniform draw per row (and per test row); sorting a class's draws gives a uniformly random
    # permutation of that class. Drawing once for all rows keeps this to one compiled program per n.
    k_train, k_test = jax.random.split(key)
    u_train = np.asarray(jax.random.uniform(k_train, (y.shape[0],)))
    u_test = np.asarray(jax.random.uniform(k_test, (y_test.shape[0],))) if separate else None
    available = sorted(int(c) for c in np.unique(y))
    tr_idx, te_idx, tr_lab, te_lab = [], [], [], []
    for c_new, c in enumerate(classes):
        idx = np.flatnonzero(y == c)
        if idx.size == 0:
            raise ValueError(f"Class {c} is not present in `y` (labels present: {available}).")
        need = n_per_class + (0 if separate else (n_test_per_class or 1))
        if idx.size < need:
            extra = "" if separate else (
                f" plus {n_test_per_class or 1} held out for testing (no `X_test` given)")
            raise ValueError(
                f"Class {c} has only {idx.size} rows in `X`; need n_per_class={n_per_class}{extra}."
            )
        perm = np.argsort(u_train[idx], kind="stable")
        tr_idx.append(idx[perm[:n_per_class]])
        if separate:
            tidx = np.flatnonzero(y_test == c)
            if tidx.size == 0:
                raise ValueError(
                    f"Class {c} is not present in `y_test` (labels present: "
                    f"{sorted(int(v) for v in np.unique(y_test))})."
                )
            if n_test_per_class is not None:
                if tidx.size < n_test_per_class:
                    raise ValueError(
                        f"Class {c} has only {tidx.size} rows in `X_test`; need "
                        f"n_test_per_class={n_test_per_class}."
                    )
                tperm = np.argsort(u_test[tidx], kind="stable")
                tidx = tidx[tperm[:n_test_per_class]]
        else:
            rest = idx[perm[n_per_class:]]
            tidx = np.sort(rest) if n_test_per_class is None else rest[:n_test_per_class]
        te_idx.append(tidx)
        tr_lab.append(np.full(n_per_class, c_new, dtype=np.int32))
        te_lab.append(np.full(tidx.size, c_new, dtype=np.int32))

    tr = np.concatenate(tr_idx)
    te = np.concatenate(te_idx)
    Xte_src = X_test if separate else X
    return ClassSplit(
        X_train=jnp.asarray(np.asarray(X)[tr]),
        y_train=jnp.asarray(np.concatenate(tr_lab)),
        X_test=jnp.asarray(np.asarray(Xte_src)[te]),
        y_test=jnp.asarray(np.concatenate(te_lab)),
        classes=classes,
    )


def two_class_split(X, y, classes: Sequence[int] = (0, 1), n_per_class: int = 200, *, key,
                    X_test=None, y_test=None, n_test_per_class: int | None = None) -> ClassSplit:
    """Alias of `class_subset` with the library protocol's defaults (digits 0 and 1, 200 each).

    Any number of classes works; see `class_subset` for arguments, returns and errors.
    """
    return class_subset(X, y, classes, n_per_class, key=key, X_test=X_test, y_test=y_test,
                        n_test_per_class=n_test_per_class)

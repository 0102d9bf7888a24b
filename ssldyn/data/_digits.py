"""scikit-learn's bundled 8×8 handwritten digits as a second, independent image data set (offline)."""

from __future__ import annotations

import numpy as np


def load_digits8x8() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 1,797 8×8 digits that ship inside scikit-learn (UCI optical digits; nothing is downloaded),
    as `(X_train, y_train, X_test, y_test)` in the layout of `load_mnist`.

    Pixels are scaled to `[0, 1]` (÷ 16) and flattened row-major (d = 64). The split is fixed and
    key-free, like the embedded MNIST's: within each digit, in scikit-learn's stored order, positions
    `4, 9, 14, ...` (every fifth image) form the test set and the others the training pool (at least
    140 per digit), each split sorted by label. Select training images from the pool with
    `class_subset` / `two_class_split`.

    **Returns:** `X_train` (n, 64) float32, `y_train` (n,) int32, `X_test`, `y_test` likewise.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("the 8x8 digits need scikit-learn (`pip install scikit-learn`); they ship inside it") from err
    d = load_digits()
    X = np.asarray(d.data, np.float32) / 16.0
    y = np.asarray(d.target, np.int32)
    train, test = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        is_test = (np.arange(idx.size) % 5) == 4
        test.append(idx[is_test])
        train.append(idx[~is_test])
    tr, te = np.concatenate(train), np.concatenate(test)
    return X[tr], y[tr], X[te], y[te]

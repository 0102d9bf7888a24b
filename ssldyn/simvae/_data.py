r"""Data of the small-network SimVAE experiment: images with known style transformations, and the
SSL view augmentations.

- `style_images(key, X, ...)`: applies to each base image one known random transformation — a
  whole-pixel shift, a rotation and a stroke-thickness change (dilation/erosion by a 3×3 max/min
  filter) — and returns the transformed images with the transformation parameters as style labels
  (theory §5, the image variant). This is done once per base image, before the SSL augmentations.
- `downsample(X, factor)`: average pooling of square images (784 → 196 for factor 2), for CPU speed.
- `image_views(key, X, J, ...)` / `signal_views(key, X, J, ...)`: J augmented views of each row:
  random crop-and-resize, random shift and Gaussian noise (square images or 1-D signals).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..data import rotate, translate
from .._validation import as_array, check_int, check_positive


def _side(d: int) -> int:
    s = math.isqrt(d)
    if s * s != d:
        raise ValueError(f"`X` must hold flattened square images, got {d} features.")
    return s


def thicken(X, level) -> jax.Array:
    """Stroke thickness: `level` +1 dilates (3×3 max filter), −1 erodes (3×3 min filter), 0 keeps; per row."""
    X = jnp.asarray(X)
    n, d = X.shape
    s = _side(d)
    imgs = X.reshape(n, s, s)
    pad = jnp.pad(imgs, ((0, 0), (1, 1), (1, 1)))
    stack = jnp.stack([pad[:, i:i + s, j:j + s] for i in range(3) for j in range(3)], 0)
    dil, ero = jnp.max(stack, 0), jnp.min(stack, 0)
    lv = jnp.asarray(level)[:, None, None]
    return jnp.where(lv > 0, dil, jnp.where(lv < 0, ero, imgs)).reshape(n, d)


def style_images(key, X, *, max_shift: int = 2, max_degrees: float = 20.0, thickness: bool = True):
    r"""Apply one known random style transformation per image; return `(X_styled, styles)`.

    `styles` holds integer labels: `shift_x`, `shift_y` (in `[−max_shift, max_shift]`), `rotation`
    (degrees, float) and its tercile bin `rotation_bin` (0, 1, 2), `thickness` (−1, 0, +1).
    """
    X = as_array(X, "X", ndim=2)
    n = X.shape[0]
    max_shift = check_int(max_shift, "max_shift", minimum=0)
    check_positive(max_degrees, "max_degrees", allow_zero=True)
    k1, k2, k3 = jax.random.split(key, 3)
    shift = jax.random.randint(k1, (n, 2), -max_shift, max_shift + 1)
    deg = jax.random.uniform(k2, (n,), X.dtype, -max_degrees, max_degrees)
    thick = jax.random.randint(k3, (n,), -1, 2) if thickness else jnp.zeros((n,), jnp.int32)
    Xs = thicken(X, thick)
    Xs = rotate(Xs, deg)
    Xs = translate(Xs, shift)
    edges = np.array([-max_degrees / 3, max_degrees / 3])
    styles = {"shift_y": np.asarray(shift[:, 0]), "shift_x": np.asarray(shift[:, 1]), "rotation": np.asarray(deg),
              "rotation_bin": np.digitize(np.asarray(deg), edges), "thickness": np.asarray(thick)}
    return jnp.clip(Xs, 0.0, 1.0), styles


def downsample(X, factor: int = 2) -> jax.Array:
    """Average-pool flattened square images by `factor` (the side must be divisible by it)."""
    X = as_array(X, "X", ndim=2)
    factor = check_int(factor, "factor", minimum=1)
    n, d = X.shape
    s = _side(d)
    if s % factor:
        raise ValueError(f"`factor` must divide the image side {s}, got {factor}.")
    m = s // factor
    return X.reshape(n, m, factor, m, factor).mean(axis=(2, 4)).reshape(n, m * m)


def _crop_resize_1d(x, start, length, out_len):
    # linear interpolation at `out_len` evenly spaced positions of [start, start + length − 1]
    pos = start + jnp.linspace(0.0, 1.0, out_len, dtype=x.dtype) * (length - 1)
    i0 = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, x.shape[0] - 1)
    i1 = jnp.minimum(i0 + 1, x.shape[0] - 1)
    w = pos - i0.astype(x.dtype)
    return x[i0] * (1.0 - w) + x[i1] * w


def signal_views(key, X, J: int, *, crop_min=0.8, max_shift: int = 3, noise=0.05, scale=(1.0, 1.0)):
    r"""J views (n, J, D) of 1-D signals: random crop (fraction ≥ `crop_min`) resized back to D by
    linear interpolation, a random cyclic shift in `[−max_shift, max_shift]`, a random amplitude
    factor uniform in `scale`, additive noise."""
    n, D = X.shape
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    X = X[:, None, :] * jax.random.uniform(k5, (n, J, 1), X.dtype, scale[0], scale[1])
    frac = jax.random.uniform(k1, (n, J), X.dtype, crop_min, 1.0)
    length = frac * D
    start = jax.random.uniform(k2, (n, J), X.dtype) * (D - length)
    views = jax.vmap(jax.vmap(lambda s, l, x: _crop_resize_1d(x, s, l, D)))(start, length, X)
    shift = jax.random.randint(k3, (n, J), -max_shift, max_shift + 1)
    views = jax.vmap(jax.vmap(jnp.roll))(views, shift)
    return views + noise * jax.random.normal(k4, views.shape, X.dtype)


def image_views(key, X, J: int, *, crop_min=0.8, max_shift: int = 1, noise=0.05):
    r"""J views (n, J, D) of flattened square images: random crop (side fraction ≥ `crop_min`) resized
    back by bilinear interpolation, a random whole-pixel shift, additive Gaussian noise."""
    n, D = X.shape
    s = _side(D)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    frac = jax.random.uniform(k1, (n, J), X.dtype, crop_min, 1.0)
    size = frac * (s - 1)
    off = jax.random.uniform(k2, (n, J, 2), X.dtype) * (s - 1 - size)[..., None]
    grid = jnp.linspace(0.0, 1.0, s, dtype=X.dtype)

    def crop(img, sz, o):
        r = o[0] + grid * sz
        c = o[1] + grid * sz
        return jax.scipy.ndimage.map_coordinates(img, [r[:, None] + 0 * c[None, :], 0 * r[:, None] + c[None, :]],
                                                 order=1, mode="constant", cval=0.0)

    imgs = X.reshape(n, s, s)
    views = jax.vmap(jax.vmap(crop, in_axes=(None, 0, 0)))(imgs, size, off)
    shift = jax.random.randint(k3, (n, J, 2), -max_shift, max_shift + 1)
    views = jax.vmap(jax.vmap(lambda im, sh: jnp.roll(im, sh, axis=(0, 1))))(views, shift)
    views = views.reshape(n, J, D)
    return views + noise * jax.random.normal(k4, views.shape, X.dtype)

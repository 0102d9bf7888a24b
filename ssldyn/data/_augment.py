"""Keyed image augmentations on batches of flattened square images.

Every augmentation is a pure function `fn(key, X, **params) -> X_aug`:

- `X` is `(n, d)` (one flattened image per row, row-major) or a single image `(d,)`; the output
  has the same shape and floating dtype.
- Randomness comes only from `key` (a `jax.random` key): the same key gives the same output, and
  each sample in the batch gets its own independent draw.
- Functions work under `jax.jit` and `jax.vmap` (e.g. `jax.vmap(lambda k: aug(k, X))(keys)` for
  many independent augmentations of one batch). Numeric parameters may be traced arrays, so a sweep
  over them compiles once; range checks run only on concrete values.
- Spatial augmentations (`translate`, `rotate`, `random_translation`, `random_rotation`) infer the
  side `s = sqrt(d)` and raise if `d` is not a perfect square. Pixels that come from outside the
  image are filled with 0. Image row 0 is the top row.

Build pipelines with `compose` and `functools.partial`, e.g.
`compose(partial(random_translation, max_shift=1), partial(gaussian_noise, std=0.1))`, which is
`default_augmentation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates
from jaxtyping import Array, Float

from .._validation import as_array, check_positive, check_probability, is_concrete, to_jax

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]


def _batch(X, name: str = "X") -> tuple[jax.Array, bool]:
    X = as_array(X, name, ndim=(1, 2))
    return (X[None, :], True) if X.ndim == 1 else (X, False)


def _side(d: int) -> int:
    s = math.isqrt(d)
    if s * s != d:
        raise ValueError(
            f"Spatial augmentations need square images flattened to d = side**2 features; "
            f"d = {d} is not a perfect square."
        )
    return s


def _check_int(value, name: str) -> None:
    if not is_concrete(value):
        return
    v = np.asarray(value)
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"`{name}` must be an integer number of pixels, got {value!r}.")
    check_positive(v, name, allow_zero=True)


def _check_unit(value, name: str) -> None:
    check_probability(value, name, scalar=True)  # one number in [0, 1]; strings and complex numbers: TypeError


# --------------------------------------------------------------------------------------------------
# Deterministic transforms
# --------------------------------------------------------------------------------------------------

def _per_image(kernel, X, value, name: str, shape: tuple, *, integer: bool):
    """Apply `kernel(X, value)` to square images X (n, d) or one image (d,), where `value` has shape
    `shape` (shared by every image) or `(n, *shape)` (one per image); integer values for pixel shifts."""
    X, single = _batch(X)
    n, d = X.shape
    _side(d)  # raises unless d is a perfect square (the kernel recomputes the side)
    value = to_jax(value, name, "a number or an array of numbers") if integer else as_array(value, name).astype(X.dtype)
    if integer and is_concrete(value) and not jnp.issubdtype(value.dtype, jnp.integer):
        raise TypeError(f"`{name}` must hold integers (whole pixels), got dtype {value.dtype}.")
    if value.shape not in (shape, (n,) + shape):
        raise ValueError(f"`{name}` must have shape {shape} or {(n,) + shape}, got {tuple(value.shape)}.")
    out = kernel(X, value)
    return out[0] if single else out


def translate(X: Float[Array, "*n d"], shift) -> Float[Array, "*n d"]:
    """Shift square images by whole pixels, filling vacated pixels with 0.

    Shift `(dy, dx)` moves content `dy` rows down and `dx` columns right (negative values go up /
    left): `out[r, c] = img[r - dy, c - dx]` when that pixel exists, else 0. This is `np.roll` along
    both axes with the wrapped-around pixels zeroed.

    **Arguments:**
    - `X`: `(n, d)` flattened square images (or one image `(d,)`).
    - `shift`: integer `(2,)` applied to every image, or `(n, 2)` one shift per image.

    **Returns:**
    - The shifted images, same shape and dtype as `X`.
    """
    return _per_image(_translate_kernel, X, jnp.asarray(shift), "shift", (2,), integer=True)


@jax.jit
def _translate_kernel(X, shift):
    n, d = X.shape
    s = math.isqrt(d)
    shift = jnp.broadcast_to(shift.astype(jnp.int32), (n, 2))
    imgs = X.reshape(n, s, s)
    ar = jnp.arange(s)
    rows = ar[None, :] - shift[:, 0:1]  # (n, s): source row of each output row
    cols = ar[None, :] - shift[:, 1:2]  # (n, s): source column of each output column
    valid = (((rows >= 0) & (rows < s))[:, :, None]) & (((cols >= 0) & (cols < s))[:, None, :])
    rows_c = jnp.clip(rows, 0, s - 1)
    cols_c = jnp.clip(cols, 0, s - 1)
    out = imgs[jnp.arange(n)[:, None, None], rows_c[:, :, None], cols_c[:, None, :]]
    return jnp.where(valid, out, jnp.zeros((), X.dtype)).reshape(n, d)


def rotate(X: Float[Array, "*n d"], degrees) -> Float[Array, "*n d"]:
    """Rotate square images about their centre with bilinear interpolation and zero fill.

    Positive angles rotate counter-clockwise as displayed (row 0 on top), so `degrees=90` agrees
    with `np.rot90(img)`. The centre is `((s - 1) / 2, (s - 1) / 2)`; output pixel `p` takes the
    bilinearly interpolated input value at `R(-theta) (p - centre) + centre`, via
    `jax.scipy.ndimage.map_coordinates(order=1, mode="constant", cval=0)`.

    **Arguments:**
    - `X`: `(n, d)` flattened square images (or one image `(d,)`).
    - `degrees`: a scalar angle for every image, or `(n,)` one angle per image.

    **Returns:**
    - The rotated images, same shape and dtype as `X`.
    """
    return _per_image(_rotate_kernel, X, degrees, "degrees", (), integer=False)


@jax.jit
def _rotate_kernel(X, deg):
    n, d = X.shape
    s = math.isqrt(d)
    deg = jnp.broadcast_to(deg, (n,))
    c0 = (s - 1) / 2.0
    ar = jnp.arange(s, dtype=X.dtype) - c0
    ii, jj = ar[:, None], ar[None, :]  # centred output (row, col)

    def one(img, theta_deg):
        th = jnp.deg2rad(theta_deg)
        ct, st = jnp.cos(th), jnp.sin(th)
        src_r = ct * ii + st * jj + c0
        src_c = -st * ii + ct * jj + c0
        return map_coordinates(img, [src_r, src_c], order=1, mode="constant", cval=0.0)

    return jax.vmap(one)(X.reshape(n, s, s), deg).reshape(n, d).astype(X.dtype)


# --------------------------------------------------------------------------------------------------
# Random augmentations
# --------------------------------------------------------------------------------------------------

def gaussian_noise(key, X: Float[Array, "*n d"], std=0.1) -> Float[Array, "*n d"]:
    """Add i.i.d. Gaussian pixel noise: `X + std * N(0, I)`. Values are not clipped to `[0, 1]`.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` data (any `d`; need not be images), or one sample `(d,)`.
    - `std`: noise standard deviation, `>= 0` (may be traced).

    **Returns:**
    - The noisy data, same shape and dtype as `X`.
    """
    X, single = _batch(X)
    check_positive(std, "std", allow_zero=True, scalar=True)
    out = _noise_kernel(key, X, jnp.asarray(std, X.dtype))
    return out[0] if single else out


@jax.jit
def _noise_kernel(key, X, std):
    return X + std * jax.random.normal(key, X.shape, X.dtype)


def random_translation(key, X: Float[Array, "*n d"], max_shift=1) -> Float[Array, "*n d"]:
    """Shift each image by its own random whole-pixel offset, with zero fill.

    Each image gets `(dy, dx)` with `dy`, `dx` independent and uniform on
    `{-max_shift, ..., max_shift}`; see `translate` for the convention.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` flattened square images (or one image `(d,)`).
    - `max_shift`: largest shift in pixels along each axis, an integer `>= 0` (may be traced).

    **Returns:**
    - The shifted images, same shape and dtype as `X`.
    """
    X, single = _batch(X)
    _check_int(max_shift, "max_shift")
    side = _side(X.shape[1])
    if is_concrete(max_shift) and int(np.max(np.asarray(max_shift))) >= side:
        raise ValueError(f"`max_shift` must be smaller than the image side {side} (a shift of {side} pixels or "
                         f"more moves the whole image out of the frame, leaving zeros), got {max_shift!r}.")
    out = _random_translation_kernel(key, X, jnp.asarray(max_shift, dtype=jnp.int32))
    return out[0] if single else out


@jax.jit
def _random_translation_kernel(key, X, m):
    shifts = jax.random.randint(key, (X.shape[0], 2), -m, m + 1)
    return _translate_kernel(X, shifts)


def random_rotation(key, X: Float[Array, "*n d"], max_degrees=10.0) -> Float[Array, "*n d"]:
    """Rotate each image by its own random angle, uniform on `[-max_degrees, max_degrees]`.

    Bilinear interpolation with zero fill about the image centre; see `rotate`.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` flattened square images (or one image `(d,)`).
    - `max_degrees`: largest absolute angle in degrees, `>= 0` (may be traced).

    **Returns:**
    - The rotated images, same shape and dtype as `X`.
    """
    X, single = _batch(X)
    _side(X.shape[1])
    check_positive(max_degrees, "max_degrees", allow_zero=True, scalar=True)
    out = _random_rotation_kernel(key, X, jnp.asarray(max_degrees, X.dtype))
    return out[0] if single else out


@jax.jit
def _random_rotation_kernel(key, X, m):
    angles = jax.random.uniform(key, (X.shape[0],), X.dtype, -1.0, 1.0) * m
    return _rotate_kernel(X, angles)


def random_mask(key, X: Float[Array, "*n d"], p=0.9) -> Float[Array, "*n d"]:
    """Keep each coordinate independently with probability `p`, zeroing the rest.

    `out = X * b` with `b_ij ~ Bernoulli(p)` i.i.d. over samples and coordinates. The kept values are
    **not** rescaled by `1/p` (this is masking, not inverted dropout), so `E[out] = p X`.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` data (any `d`), or one sample `(d,)`.
    - `p`: keep probability in `[0, 1]` (may be traced).

    **Returns:**
    - The masked data, same shape and dtype as `X`.
    """
    X, single = _batch(X)
    _check_unit(p, "p")
    out = _mask_kernel(key, X, jnp.asarray(p, X.dtype))
    return out[0] if single else out


@jax.jit
def _mask_kernel(key, X, p):
    keep = jax.random.bernoulli(key, p, X.shape)
    return jnp.where(keep, X, jnp.zeros((), X.dtype))


def compose(*augs: Augmentation) -> Augmentation:
    """Chain keyed augmentations into one: `compose(f, g)(key, X) = g(k2, f(k1, X))`.

    The key is split into one sub-key per augmentation (`jax.random.split(key, len(augs))`), and
    the augmentations are applied left to right. Bind parameters with `functools.partial`. With no
    arguments, the result is the identity.

    **Arguments:**
    - `*augs`: callables `(key, X) -> X_aug`.

    **Returns:**
    - A keyed augmentation `(key, X) -> X_aug`.
    """
    for i, a in enumerate(augs):
        if not callable(a):
            raise TypeError(
                f"compose: argument {i} must be a callable (key, X) -> X, got {type(a).__name__}."
            )
    augs = tuple(augs)

    def composed(key, X):
        if not augs:
            return as_array(X, "X", ndim=(1, 2))
        keys = jax.random.split(key, len(augs))
        for k, a in zip(keys, augs):
            X = a(k, X)
        return X

    return composed


def default_augmentation(key, X: Float[Array, "*n d"]) -> Float[Array, "*n d"]:
    """The library protocol's augmentation: a random shift of at most 1 pixel, then noise of std 0.1.

    Equal to `compose(partial(random_translation, max_shift=1), partial(gaussian_noise, std=0.1))`:
    each image is shifted by `(dy, dx)` uniform on `{-1, 0, 1}^2` with zero fill, then i.i.d.
    `N(0, 0.1^2)` noise is added to every pixel (no clipping).

    **Arguments:**
    - `key`: a `jax.random` key.
    - `X`: `(n, d)` flattened square images (or one image `(d,)`).

    **Returns:**
    - The augmented images, same shape and dtype as `X`.
    """
    k1, k2 = jax.random.split(key)
    return gaussian_noise(k2, random_translation(k1, X, max_shift=1), std=0.1)

"""MNIST-1D-style signals: ten 1-D class templates under recorded nuisances, generated locally.

After the recipe of Greydanus (2020, "Scaling down deep learning"), with library-chosen templates and
parameters (nothing is downloaded and nothing is copied). One row per sample, like the rest of
`ssldyn.data`.

**Model.** Position `j = 0 .. L-1` of a signal of length `L` sits at circle coordinate `u_j = j / L`.
For class `c` with piecewise-linear template `tau_c : [0, 1] -> R` (12 knots, `MNIST1D_TEMPLATES[c]`)
and per-sample nuisances (scale `a`, stretch `w`, shear `b`, integer cyclic shift `s`, correlated-noise
level `sigma_c`, white-noise level `sigma_w`), the clean signal is

    v = (u_{(j - s) mod L} ) / (width * w)                    # position inside the pattern
    clean_j = a * (tau_c(v) + b * (v - 1/2))   if 0 <= v <= 1, else 0,

i.e. the template (with a linear shear ramp across it) is stretched to `width * w` of the circle,
scaled in amplitude, and cyclically shifted by `s` whole positions. The observed signal is

    x = clean + sigma_c * eta_c + sigma_w * eta_w,

where `eta_w` is i.i.d. N(0, 1) and `eta_c` is i.i.d. N(0, 1) noise circularly smoothed by a Gaussian
kernel of width `corr_length` positions and rescaled to unit variance per position. Because the shift
is a whole number of positions and cyclic, the clean signal of shift `s` is exactly `np.roll` of the
clean signal of shift 0 by `s` (tested): the cyclic group acts exactly on the data.

Every nuisance is recorded per sample (`nuisances` dict of `(n,)` arrays): `shift`, `scale`,
`stretch`, `shear`, `corr_noise`, `white_noise` (the drawn levels). `render_mnist1d(y, nuisances)`
re-renders the noise-free signals from them, so `X - render_mnist1d(y, nuisances)` is the noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np

from .._validation import check_int, check_positive

# Ten library-chosen templates, 12 knots each on [0, 1] (linear interpolation between knots).
MNIST1D_TEMPLATES = np.array([
    [0.0, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.4, 0.0, 0.0],      # 0: wide plateau
    [0.0, 0.0, 0.0, 0.0, 0.3, 1.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],      # 1: single spike
    [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.0],      # 2: rising ramp, then drop
    [0.0, 0.8, 1.0, 0.8, 0.0, 0.0, 0.0, 0.8, 1.0, 0.8, 0.0, 0.0],      # 3: two humps
    [0.0, 1.0, 1.0, 1.0, 0.0, -1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0],   # 4: up-step then down-step
    [0.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0],      # 5: jump, then falling ramp
    [0.0, -0.4, -0.8, -1.0, -1.0, -0.8, -0.4, 0.0, 0.6, 0.0, 0.0, 0.0],  # 6: dip then blip
    [0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0],   # 7: zigzag
    [0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0, 0.6, 0.0, 0.0],      # 8: comb
    [0.0, -1.0, -1.0, -1.0, -1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # 9: long trough, late spike
], dtype=np.float64)

NUISANCE_NAMES = ("shift", "scale", "stretch", "shear", "corr_noise", "white_noise")


def _rng(key) -> np.random.Generator:
    """A NumPy generator from an int seed or a `jax.random` key (typed or raw uint32), deterministically."""
    if isinstance(key, (bool, np.bool_)):
        raise TypeError(f"`key` must be an int seed or a jax.random key, got {key!r}.")
    if isinstance(key, (int, np.integer)):
        if int(key) < 0:
            raise ValueError(f"`key` as an int seed must be non-negative, got {key}.")
        return np.random.default_rng(int(key))
    if isinstance(key, jax.Array) and jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.ndim != 0:
            raise TypeError(f"`key` must be a single jax.random key, got a stack of shape {tuple(key.shape)}.")
        data = np.asarray(jax.random.key_data(key))
    else:
        data = np.asarray(key) if hasattr(key, "dtype") else None
        if data is None or data.dtype != np.uint32 or data.shape != (2,):
            raise TypeError(
                "`key` must be an int seed, jax.random.key(seed) or jax.random.PRNGKey(seed), "
                f"got {type(key).__name__}" + (f" of dtype {data.dtype} and shape {data.shape}" if data is not None else "")
                + "."
            )
    return np.random.default_rng(np.random.SeedSequence([int(v) for v in data.ravel()]))


def _check_range(value, name: str, *, lo: float | None = None, hi: float | None = None) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a pair (low, high) of numbers, got {value!r}.") from err
    if not (np.isfinite(a) and np.isfinite(b)) or a > b:
        raise ValueError(f"`{name}` must be a finite pair with low <= high, got {value!r}.")
    if (lo is not None and a < lo) or (hi is not None and b > hi):
        raise ValueError(f"`{name}` must lie within [{lo}, {hi}], got {value!r}.")
    return a, b


def _template_values(templates: np.ndarray, y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau_{y_i}(v_ij) by linear interpolation between equally spaced knots on [0, 1]; 0 outside."""
    m = templates.shape[1]
    inside = (v >= 0.0) & (v <= 1.0)
    pos = np.clip(v, 0.0, 1.0) * (m - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), m - 2)
    frac = pos - lo
    t = templates[y]                                       # (n, m)
    left = np.take_along_axis(t, lo, axis=1)
    right = np.take_along_axis(t, lo + 1, axis=1)
    return np.where(inside, (1.0 - frac) * left + frac * right, 0.0), inside


def render_mnist1d(y, nuisances: Mapping[str, np.ndarray], *, length: int = 40, width: float = 0.6,
                   templates=None) -> np.ndarray:
    """Noise-free MNIST-1D signals `(n, length)` for labels `y` and recorded `nuisances`.

    Uses `shift`, `scale`, `stretch` and `shear` from `nuisances` (the noise levels are ignored); `width`
    and `templates` must be those used by `make_mnist1d`.
    """
    length = check_int(length, "length", minimum=2)
    check_positive(width, "width")
    templates = MNIST1D_TEMPLATES if templates is None else np.asarray(templates, dtype=np.float64)
    if templates.ndim != 2 or templates.shape[1] < 2:
        raise ValueError(f"`templates` must be (n_classes, n_knots >= 2), got shape {templates.shape}.")
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"`y` must be a 1-D integer label array, got dtype {y.dtype} and shape {y.shape}.")
    if y.size and (y.min() < 0 or y.max() >= templates.shape[0]):
        raise ValueError(f"`y` must hold class indices in [0, {templates.shape[0] - 1}].")
    missing = [k for k in ("shift", "scale", "stretch", "shear") if k not in nuisances]
    if missing:
        raise ValueError(f"`nuisances` lacks {missing}; it must hold per-sample arrays {NUISANCE_NAMES[:4]}.")
    nu = {k: np.asarray(nuisances[k]) for k in ("shift", "scale", "stretch", "shear")}
    for k, v in nu.items():
        if v.shape != y.shape:
            raise ValueError(f"`nuisances['{k}']` must have shape {y.shape} (one per sample), got {v.shape}.")
    if not np.issubdtype(nu["shift"].dtype, np.integer):
        raise TypeError("`nuisances['shift']` must hold integer (whole-position) shifts.")
    j = np.arange(length)
    unshifted = (j[None, :] - nu["shift"][:, None]) % length               # (n, L) position before shift
    v = unshifted / length / (width * nu["stretch"][:, None])
    tau, inside = _template_values(templates, y.astype(np.int64), v)
    return np.where(inside, nu["scale"][:, None] * (tau + nu["shear"][:, None] * (v - 0.5)), 0.0)


def _smooth_circular(noise: np.ndarray, corr_length: float) -> np.ndarray:
    """Circular Gaussian smoothing along the last axis, rescaled to unit variance per position."""
    L = noise.shape[-1]
    d = np.minimum(np.arange(L), L - np.arange(L)).astype(np.float64)
    kern = np.exp(-0.5 * (d / corr_length) ** 2)
    kern /= np.sqrt(np.sum(kern ** 2))          # unit variance for i.i.d. unit input
    return np.real(np.fft.ifft(np.fft.fft(noise, axis=-1) * np.fft.fft(kern)[None, :], axis=-1))


def make_mnist1d(key, n: int = 10_000, *, length: int = 40, width: float = 0.6,
                 scale_range=(0.7, 1.3), stretch_range=(0.7, 1.0), shear_range=(-0.75, 0.75),
                 max_shift: int | None = None, corr_noise_range=(0.0, 0.25), corr_length: float = 2.0,
                 white_noise_range=(0.0, 0.2), balanced: bool = True, templates=None,
                 dtype=np.float64) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Generate `n` MNIST-1D-style signals with every nuisance recorded per sample.

    **Arguments:**
    - `key`: an int seed, `jax.random.key(seed)` or `jax.random.PRNGKey(seed)`. Same key, same output.
    - `n`: number of samples. `length`: positions per signal (default 40).
    - `width`: fraction of the circle the unstretched pattern spans.
    - `scale_range`, `stretch_range`, `shear_range`: uniform ranges of the amplitude scale, the
      horizontal stretch (multiplies `width`) and the shear slope.
    - `max_shift`: cyclic shifts are uniform on `{0, ..., max_shift}`; None (default) means all
      `length` positions (the full cyclic group). 0 switches shifts off.
    - `corr_noise_range`, `white_noise_range`: uniform ranges of the per-sample noise levels (std).
    - `corr_length`: width (positions) of the circular Gaussian kernel smoothing the correlated noise.
    - `balanced`: labels are a shuffled, class-balanced sequence (else i.i.d. uniform).
    - `templates`: optional `(n_classes, n_knots)` array replacing `MNIST1D_TEMPLATES`.

    **Returns:** `(X, y, nuisances)` with `X` `(n, length)` (`dtype`, default float64), `y` `(n,)`
    int64 labels, and `nuisances` a dict of `(n,)` arrays: `shift` (int64), `scale`, `stretch`,
    `shear`, `corr_noise`, `white_noise` (float64). Host NumPy arrays.
    """
    rng = _rng(key)
    n = check_int(n, "n", minimum=1)
    length = check_int(length, "length", minimum=2)
    check_positive(width, "width")
    check_positive(corr_length, "corr_length")
    sc = _check_range(scale_range, "scale_range", lo=0.0)
    st = _check_range(stretch_range, "stretch_range", lo=1e-12)
    if width * st[1] > 1.0:
        raise ValueError(f"`width` x max `stretch_range` must be <= 1 (the pattern must fit the circle), "
                         f"got {width} x {st[1]}.")
    sh = _check_range(shear_range, "shear_range")
    cn = _check_range(corr_noise_range, "corr_noise_range", lo=0.0)
    wn = _check_range(white_noise_range, "white_noise_range", lo=0.0)
    max_shift = length - 1 if max_shift is None else check_int(max_shift, "max_shift", minimum=0, maximum=length - 1)
    templates = MNIST1D_TEMPLATES if templates is None else np.asarray(templates, dtype=np.float64)
    if templates.ndim != 2 or templates.shape[1] < 2 or not np.all(np.isfinite(templates)):
        raise ValueError(f"`templates` must be a finite (n_classes, n_knots >= 2) array, got shape {templates.shape}.")
    n_classes = templates.shape[0]
    if balanced:
        y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    else:
        y = rng.integers(0, n_classes, size=n).astype(np.int64)
    nuisances = {
        "shift": rng.integers(0, max_shift + 1, size=n).astype(np.int64),
        "scale": rng.uniform(*sc, size=n),
        "stretch": rng.uniform(*st, size=n),
        "shear": rng.uniform(*sh, size=n),
        "corr_noise": rng.uniform(*cn, size=n),
        "white_noise": rng.uniform(*wn, size=n),
    }
    clean = render_mnist1d(y, nuisances, length=length, width=width, templates=templates)
    eta_c = _smooth_circular(rng.standard_normal((n, length)), corr_length)
    eta_w = rng.standard_normal((n, length))
    X = clean + nuisances["corr_noise"][:, None] * eta_c + nuisances["white_noise"][:, None] * eta_w
    return X.astype(dtype), y, nuisances

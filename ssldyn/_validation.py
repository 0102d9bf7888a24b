"""Input validation shared by every public function.

Public functions validate at the boundary and raise `ValueError`/`TypeError` naming the argument and
what was expected; internals trust their inputs. Checks that need concrete values (finiteness,
symmetry, orthonormality) are skipped when the argument is a tracer, so every public function stays
usable under `jax.jit` and `jax.vmap`; validate before tracing if you need the check there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when `x` holds concrete values (not a tracer inside jit/vmap/grad).

    Concrete arrays captured inside a `jit` trace are concrete too, but any jnp operation on them is
    staged: value checks therefore compute with NumPy on `np.asarray(x)`.
    """
    return not isinstance(x, jax.core.Tracer)


def in_trace(*trees) -> bool:
    """True inside a `jit` trace, or when any leaf of `trees` is a tracer (vmap, grad)."""
    if isinstance(jnp.zeros(()), jax.core.Tracer):
        return True
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


_RECORDERS: list[list] = []


@contextlib.contextmanager
def recording_checks():
    """Within this context, value checks that meet a tracer (symmetry, orthonormality, finiteness)
    record a traced violation instead of being skipped.

    Yields a list that fills with `(name, violation, tol, message)`: the check fails where the
    concrete `violation` exceeds `tol` (or is NaN); `message.format(name=..., value=..., tol=...)`
    says why. Used by `solve_ensemble` to check every member built inside `jax.vmap` before solving.
    """
    records: list = []
    _RECORDERS.append(records)
    try:
        yield records
    finally:
        _RECORDERS.pop()


def _record(name: str, violation, tol: float, message: str) -> None:
    if _RECORDERS:
        _RECORDERS[-1].append((name, violation, tol, message))


def as_array(x, name: str, *, ndim: int | Sequence[int] | None = None, finite: bool = True,
             dtype=None, allow_complex: bool = False, nonempty: bool = False) -> jax.Array:
    """Convert `x` to a floating JAX array and check its rank and finiteness.

    **Arguments:**
    - `x`: array-like.
    - `name`: the argument's name, used in error messages.
    - `ndim`: allowed number(s) of dimensions, or None for any.
    - `finite`: whether NaN/Inf are rejected (checked only on concrete values).
    - `dtype`: optional dtype; default keeps a floating dtype or promotes to the default float.
    - `allow_complex`: accept complex dtypes (refused by default: every flow, kernel and statistic of
      ssldyn is real, and a complex input would otherwise propagate silently).
    - `nonempty`: refuse arrays with a zero-length axis.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"`{name}` must be an array of numbers, got {type(x).__name__}.")
    try:
        arr = jnp.asarray(x) if dtype is None else jnp.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be an array of numbers, got {type(x).__name__}.") from err
    if jnp.issubdtype(arr.dtype, jnp.complexfloating) and not allow_complex:
        raise TypeError(f"`{name}` must be real, got complex dtype {arr.dtype}; pass its real part "
                        f"(`jnp.real(x)`) if the imaginary part is round-off.")
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.complexfloating)):
        if jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_:
            arr = arr.astype(jnp.result_type(float))
        else:
            raise TypeError(f"`{name}` must be numeric, got dtype {arr.dtype}.")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"`{name}` must have {want} dimension(s), got shape {tuple(arr.shape)}.")
    if nonempty and arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(arr.shape)}.")
    if finite and is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"`{name}` contains NaN or Inf values.")
    if finite and not is_concrete(arr) and _RECORDERS:
        _record(name, jnp.where(jnp.all(jnp.isfinite(arr)), 0.0, 1.0), 0.5, "`{name}` contains NaN or Inf values")
    return arr


def check_square(a: jax.Array, name: str) -> None:
    """Raise unless `a` is a non-empty square matrix."""
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"`{name}` must be a square matrix, got shape {tuple(a.shape)}.")
    if a.shape[0] == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(a.shape)}.")


def psd_tolerance(dtype) -> float:
    """Relative tolerance on negative eigenvalues (λ_min ≥ −tol·|λ|_max) of a matrix meant to be PSD.

    Loose on purpose (1e-5 in float64, 1e-3 in float32): it refuses a wrong sign or an indefinite
    matrix, never the round-off of a Gram matrix or the quadrature error of an infinite-width kernel
    (whose tiny negative eigenvalues `kernel_root` clips, as documented)."""
    return 1e-5 if jnp.dtype(dtype) == jnp.float64 else 1e-3


def check_psd(a: jax.Array, name: str, *, rtol: float | None = None) -> None:
    """Raise unless a concrete symmetric matrix is positive semi-definite up to round-off.

    Tries a Cholesky factorisation of `A + rtol·max|A|·I` (cheap); only when it fails are the
    eigenvalues computed, to name the most negative one in the message. Skipped for tracers.
    """
    check_square(a, name)
    if not is_concrete(a):
        return
    an = np.asarray(a, dtype=np.float64)
    rtol = psd_tolerance(a.dtype) if rtol is None else rtol
    scale = float(np.max(np.abs(an))) if an.size else 0.0
    if scale == 0.0:
        return
    sa = 0.5 * (an + an.T)
    try:
        np.linalg.cholesky(sa + rtol * scale * np.eye(an.shape[0]))
        return
    except np.linalg.LinAlgError:
        pass
    lam = np.linalg.eigvalsh(sa)
    if lam[0] < -rtol * max(abs(lam[-1]), abs(lam[0])):
        raise ValueError(
            f"`{name}` must be positive semi-definite (a kernel or Gram matrix), but its smallest eigenvalue "
            f"is {lam[0]:.3g} (largest {lam[-1]:.3g}); check its sign and how it was built."
        )


def check_symmetric(a: jax.Array, name: str, *, rtol: float = 1e-6) -> None:
    """Raise if a concrete matrix is not symmetric to relative tolerance `rtol`."""
    check_square(a, name)
    if not is_concrete(a) and _RECORDERS:
        scale = jnp.max(jnp.abs(a))
        rel = jnp.max(jnp.abs(a - a.T)) / jnp.maximum(scale, 1e-30)
        _record(name, rel, rtol, "`{name}` must be symmetric: max |A - A^T| = {value:.3g} x max |A| exceeds {tol:g}")
    if is_concrete(a):
        an = np.asarray(a)
        scale = float(np.max(np.abs(an))) if an.size else 0.0
        asym = float(np.max(np.abs(an - an.T))) if an.size else 0.0
        if asym > rtol * max(scale, 1e-30):
            raise ValueError(
                f"`{name}` must be symmetric: max |A - A^T| = {asym:.3g} exceeds {rtol:g} x max |A| "
                f"= {rtol * scale:.3g}. Symmetrise it with (A + A.T) / 2 if that is what you mean."
            )


def check_orthonormal_columns(w: jax.Array, name: str, *, atol: float | None = None) -> None:
    """Raise if a concrete matrix `w` (d, k) does not satisfy W^T W = I_k."""
    if w.ndim != 2:
        raise ValueError(f"`{name}` must be a (d, k) matrix, got shape {tuple(w.shape)}.")
    d, k = w.shape
    if k > d:
        raise ValueError(f"`{name}` must have at most as many columns as rows (k <= d), got shape {(d, k)}.")
    if atol is None:
        atol = 1e-10 if w.dtype == jnp.float64 else 1e-5
    if not is_concrete(w) and _RECORDERS:
        _record(name, jnp.max(jnp.abs(w.T @ w - jnp.eye(k, dtype=w.dtype))), atol,
                "`{name}` must have orthonormal columns (W^T W = I): max |W^T W - I| = {value:.3g} > {tol:g}")
    if is_concrete(w):
        wn = np.asarray(w)
        err = float(np.max(np.abs(wn.T @ wn - np.eye(k))))
        if err > atol:
            raise ValueError(
                f"`{name}` must have orthonormal columns (W^T W = I) for a constrained flow: "
                f"max |W^T W - I| = {err:.3g} > {atol:g}. Use `ssldyn.stiefel_init` or orthonormalise with QR."
            )


def check_int(value, name: str, *, minimum: int | None = 0, maximum: int | None = None) -> int:
    """Return `value` as a Python int, raising unless it is an integer (not a bool) in range.

    `minimum`/`maximum` are inclusive bounds (None: unbounded). NumPy integers are accepted.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}.")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else str(minimum)
        hi = "inf" if maximum is None else str(maximum)
        raise ValueError(f"`{name}` must be an int in [{lo}, {hi}], got {v}.")
    return v


def check_save_every(value, name: str = "save_every") -> int | None:
    """None, or a positive int (a save period in steps)."""
    return None if value is None else check_int(value, name, minimum=1)


def check_choice(value, name: str, choices: Sequence):
    """Raise unless `value` is one of `choices`; return it."""
    if isinstance(value, (list, dict, set)) or value not in tuple(choices):
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    return value


def _real_values(value, name: str) -> np.ndarray:
    """`np.asarray(value)` of a concrete number (or array of numbers); TypeError naming `name` for strings,
    None, complex numbers and objects."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}.")
    try:
        v = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}.") from err
    if v.dtype.kind in "cOSUMm":  # complex, objects, strings, dates (bfloat16 is kind "V": allowed)
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    return v


def check_scalar(value, name: str, *, finite: bool = True):
    """Raise unless `value` is one real number (a Python/NumPy number or a 0-d array), finite when
    `finite`; return it unchanged. A tracer passes when it is 0-d."""
    if not is_concrete(value):
        if jnp.ndim(value) != 0:
            raise ValueError(f"`{name}` must be a scalar, got shape {tuple(jnp.shape(value))}.")
        return value
    v = _real_values(value, name)
    if v.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar (one number), got shape {v.shape}.")
    if finite and not np.isfinite(v):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    return value


def check_probability(value, name: str, *, scalar: bool = False) -> None:
    """Raise unless a concrete value (a scalar when `scalar`) lies in [0, 1]."""
    if scalar:
        check_scalar(value, name, finite=False)
    if not is_concrete(value):
        return
    v = _real_values(value, name)
    if not np.all(np.isfinite(v)) or np.any(v < 0) or np.any(v > 1):
        raise ValueError(f"`{name}` must be in [0, 1], got {value}.")


def check_keys(keys, name: str = "keys") -> tuple[jax.Array, bool]:
    """Validate one PRNG key or a stack of keys; return `(keys, single)`.

    Accepts typed keys (`jax.random.key`) of rank 0 or 1 and raw uint32 keys
    (`jax.random.PRNGKey`) of shape (2,) or (S, 2). `single` is True for one key.
    """
    try:
        keys = keys if isinstance(keys, jax.Array) else jnp.asarray(keys)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be a jax.random key or a stack of keys, got {type(keys).__name__}.") from err
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    raw = keys.dtype == jnp.uint32 and keys.ndim in (1, 2) and keys.shape[-1] == 2
    if not (typed and keys.ndim in (0, 1)) and not raw:
        raise TypeError(
            f"`{name}` must be a jax.random key (jax.random.PRNGKey(0) or jax.random.key(0)) or a stack of keys "
            f"(jax.random.split(key, S)), got dtype {keys.dtype} and shape {tuple(keys.shape)}."
        )
    single = keys.ndim == (0 if typed else 1)
    return keys, single


def check_rank_k(k, d: int, name: str = "k") -> int:
    """`k` as an int in [1, d] (a number of output dimensions)."""
    k = check_int(k, name, minimum=None)
    if not 1 <= k <= d:
        raise ValueError(f"`{name}` must be in [1, {d}] (the dimension), got {k}.")
    return k


def check_time(t, name: str = "t") -> jax.Array:
    """An effective time (scalar or array) as an array: finite and non-negative (concrete values)."""
    t = as_array(t, name, finite=False)
    if is_concrete(t):
        tn = np.asarray(t)
        if not np.all(np.isfinite(tn)):
            raise ValueError(f"`{name}` must be a finite time, got {t}.")
        if np.any(tn < 0):
            raise ValueError(f"`{name}` must be >= 0 (effective time), got {t}.")
    return t


def all_finite(tree) -> bool:
    """True when every leaf of a concrete pytree is finite (NumPy, no jnp dispatch)."""
    return all(bool(np.all(np.isfinite(np.asarray(leaf)))) for leaf in jax.tree_util.tree_leaves(tree)
               if np.issubdtype(np.asarray(leaf).dtype, np.inexact))


def check_positive(value, name: str, *, allow_zero: bool = False, scalar: bool = False) -> None:
    """Raise unless a concrete value is positive (or non-negative with `allow_zero`); with `scalar`, it
    must also be one number (a learning rate, a temperature), not an array."""
    if scalar:
        check_scalar(value, name, finite=False)
    if not is_concrete(value):
        return
    v = _real_values(value, name)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    bad = np.any(v < 0) if allow_zero else np.any(v <= 0)
    if bad:
        want = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be {want}, got {value}.")


def check_same_rows(arrays: dict[str, jax.Array]) -> int:
    """Raise unless all arrays have the same leading dimension (number of samples); return it."""
    sizes = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"`{n}` has {s}" for n, s in sizes.items())
        raise ValueError(f"Numbers of samples (rows) must match: {desc}.")
    return next(iter(sizes.values()))


def check_same_cols(arrays: dict[str, jax.Array]) -> int:
    sizes = {name: a.shape[-1] for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"`{n}` has {s}" for n, s in sizes.items())
        raise ValueError(f"Numbers of features (columns) must match: {desc}.")
    return next(iter(sizes.values()))


def to_jax(x, name: str, what: str) -> jax.Array:
    """`jnp.asarray(x)`, or a TypeError "`name` must be <what>, got <type>" for strings, None and
    objects that are not array-like."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"`{name}` must be {what}, got {type(x).__name__}.")
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must be {what}, got {type(x).__name__}.") from err


def check_labels(y, name: str = "y", n: int | None = None) -> jax.Array:
    """Integer class labels as a 1-D int32 array (floats are accepted when they hold integers).

    `n`: the number of samples the labels must match (the rows of the data), or None.
    """
    what = f"`{name}` must be a 1-D array of integer class labels"
    arr = to_jax(y, name, "a 1-D array of integer class labels")
    if arr.ndim != 1:
        raise ValueError(f"{what} (one label per row), got shape {tuple(arr.shape)}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"Numbers of samples (rows) must match: the data has {n}, `{name}` has {arr.shape[0]}.")
    if jnp.issubdtype(arr.dtype, jnp.integer):
        return arr.astype(jnp.int32)
    if jnp.issubdtype(arr.dtype, jnp.floating) and is_concrete(arr):
        vals = np.asarray(arr)
        if np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)):
            return arr.astype(jnp.int32)
        raise ValueError(f"{what} 0, 1, ..., C-1; got non-integer values (dtype {arr.dtype}).")
    raise TypeError(f"{what}, got dtype {arr.dtype}.")

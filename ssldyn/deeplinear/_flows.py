r"""Two-layer linear network: gradient flow, conserved quantity, per-mode and balanced closed forms.

**Flow** (whitened input, `t = η·steps`):

    dW1/dt = W2ᵀ (Σ_yx − W2 W1),     dW2/dt = (Σ_yx − W2 W1) W1ᵀ          (DeepLinearFlow)

conserving `W1W1ᵀ − W2ᵀW2` (`conserved_quantity`): both terms have derivative `W2ᵀEW1ᵀ + W1EᵀW2`.

**Per mode** (aligned start `W1 = diag(a1)Vᵀ`, `W2 = U diag(a2)`): `ȧ1 = a2(s − a1a2)`,
`ȧ2 = a1(s − a1a2)`, with `c = a1² − a2²` conserved; the mode strength `a = a1a2` obeys
`ȧ = √(c² + 4a²) (s − a)`. With `x = 2a`, `m = 2s`:

    t(a) = F(a) − F(a0),   F(a) = ln| (c² + m x + √(m² + c²) √(x² + c²)) / (x − m) | / √(m² + c²)

(derived here; checked against `jax.grad` and against integration in the tests). Balanced (`c = 0`):
`ȧ = 2a(s − a)`, the logistic

    a(t) = s / (1 + (s/a0 − 1) e^{−2st}),     t(a0 → af) = ln( af (s − a0) / (a0 (s − af)) ) / (2s).

References: A. M. Saxe, J. L. McClelland, S. Ganguli. *Exact solutions to the nonlinear dynamics of
learning in deep linear neural networks.* ICLR 2014 (arXiv:1312.6120).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._flows import AbstractFlow
from .._solution import AbstractSolution
from .._validation import as_array, check_int, check_positive, check_time, in_trace, is_concrete
from ._loss import deep_linear_loss
from ._model import io_modes


def conserved_quantity(W1, W2) -> jax.Array:
    """`W1 W1ᵀ − W2ᵀ W2` (h, h), constant along the gradient flow."""
    return W1 @ jnp.swapaxes(W1, -1, -2) - jnp.swapaxes(W2, -1, -2) @ W2


class DeepLinearFlow(AbstractFlow):
    r"""Gradient flow of `½‖Σ_yx − W2W1‖²`: `dW1/dt = W2ᵀE`, `dW2/dt = E W1ᵀ`, `E = Σ_yx − W2W1`.

    State: the tuple `(W1 (h, d), W2 (o, h))`. **Arguments:** `Sigma_yx` (o, d).
    """

    Sigma_yx: Float[Array, "o d"]

    def __init__(self, Sigma_yx):
        self.Sigma_yx = as_array(Sigma_yx, "Sigma_yx", ndim=2, nonempty=True)

    def vector_field(self, t, y):
        W1, W2 = y
        E = self.Sigma_yx - W2 @ W1
        return W2.T @ E, E @ W1.T

    def loss(self, y):
        return deep_linear_loss(y, self.Sigma_yx)

    def check_initial(self, y0):
        if not (isinstance(y0, (tuple, list)) and len(y0) == 2):
            raise TypeError("`y0` must be a tuple (W1, W2).")
        W1 = as_array(y0[0], "y0[0]", ndim=2)
        W2 = as_array(y0[1], "y0[1]", ndim=2)
        o, d = self.Sigma_yx.shape
        if W1.shape[1] != d or W2.shape[0] != o or W2.shape[1] != W1.shape[0]:
            raise ValueError(f"`y0` must be (W1 (h, {d}), W2 ({o}, h)), got shapes {tuple(W1.shape)} and "
                             f"{tuple(W2.shape)}.")
        return W1, W2


def balanced_mode_strength(t, s, a0) -> jax.Array:
    r"""Balanced mode strength `a(t) = s / (1 + (s/a0 − 1) e^{−2st})` (a1 = a2, a = a1a2).

    `t` finite times ≥ 0; `s`, `a0` positive finite strengths (broadcast together)."""
    t, s, a0 = _check_strengths(t, s=s, a0=a0)
    return s / (1.0 + (s / a0 - 1.0) * jnp.exp(-2.0 * s * t))


def _check_strengths(t, **positive):
    """`t` as finite times ≥ 0 and each named strength as a finite, positive array (names in messages)."""
    out = [check_time(t, "t")]
    for name, value in positive.items():
        value = as_array(value, name)
        check_positive(value, name)
        out.append(value)
    return out


def _check_mode(s, a0, af=None):
    check_positive(s, "s")
    check_positive(a0, "a0")
    if af is not None:
        check_positive(af, "af")
        if is_concrete(af) and is_concrete(a0) and is_concrete(s):
            a0n, afn, sn = (np.asarray(v) for v in (a0, af, s))
            if np.any((afn - sn) * (a0n - sn) <= 0) or np.any((afn - a0n) * (sn - a0n) < 0):
                raise ValueError("`af` must lie between `a0` and `s` (the strength moves monotonically from a0 "
                                 f"towards s), got a0 = {a0}, af = {af}, s = {s}.")


def learning_time(s, a0, af) -> jax.Array:
    r"""Balanced learning time from `a0` to `af`: `ln(af (s − a0) / (a0 (s − af))) / (2s)`."""
    _check_mode(s, a0, af)
    return jnp.log(af * (s - a0) / (a0 * (s - af))) / (2.0 * s)


def _F(a, s, c):
    x, m = 2.0 * a, 2.0 * s
    r = jnp.sqrt(m**2 + c**2)
    return jnp.log(jnp.abs((c**2 + m * x + r * jnp.sqrt(x**2 + c**2)) / (x - m))) / r


def mode_time(a, s, a1_0, a2_0) -> jax.Array:
    r"""Time for a mode to go from `a1_0 a2_0` to strength `a` (general, unbalanced): `F(a) − F(a0)`,
    with `c = a1_0² − a2_0²` (see the module docstring)."""
    c = a1_0**2 - a2_0**2
    return _F(a, s, c) - _F(a1_0 * a2_0, s, c)


def mode_strength(t, s, a1_0, a2_0, *, iterations: int = 200) -> jax.Array:
    r"""Mode strength `a(t)` of an unbalanced mode, by inverting the exact `mode_time` with bisection
    (monotone on the interval between `a0 = a1_0 a2_0 > 0` and `s`; `iterations` halvings).

    `t` finite times ≥ 0; `s`, `a1_0`, `a2_0` positive finite numbers (broadcast together)."""
    t, s, a1_0, a2_0 = _check_strengths(t, s=s, a1_0=a1_0, a2_0=a2_0)
    iterations = check_int(iterations, "iterations", minimum=1)
    t, s, a1_0, a2_0 = jnp.broadcast_arrays(t, s, a1_0, a2_0)  # any broadcast shape (e.g. a vector of times)
    a0 = a1_0 * a2_0
    lo, hi = jnp.minimum(a0, s), jnp.maximum(a0, s)
    rising = a0 < s

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        tm = mode_time(mid, s, a1_0, a2_0)  # ≥ 0 between a0 and s
        # rising: time grows with a → go right if tm < t; falling: time grows as a decreases
        right = jnp.where(rising, tm < t, tm > t)
        return jnp.where(right, mid, lo), jnp.where(right, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    return jnp.where(a0 == s, s, 0.5 * (lo + hi))


class DeepLinearModeSolution(AbstractSolution):
    r"""Closed form of the two-layer linear flow from an aligned start (per mode, balanced or not).

    `W1(t) = diag(a1(t)) Vᵀ`, `W2(t) = U diag(a2(t))` with `a = a1a2` from `mode_strength` (or the
    explicit logistic when balanced) and `a1² = (c + √(c² + 4a²))/2`, `a2² = (−c + √(c² + 4a²))/2`.

    **Arguments:** `Sigma_yx` (o, d); `a1_0`, `a2_0` (r,) positive initial strengths.
    Methods: `strengths(t)` → a (r,), `learning_times(af)` (balanced formula when balanced, exact
    `mode_time` otherwise), `evaluate(t)` → `(W1, W2)`.
    """

    s: Float[Array, " r"]
    U: Float[Array, "o r"]
    V: Float[Array, "d r"]
    a1_0: Float[Array, " r"]
    a2_0: Float[Array, " r"]

    def __init__(self, Sigma_yx, a1_0, a2_0):
        a1_0 = as_array(a1_0, "a1_0", ndim=1)
        a2_0 = as_array(a2_0, "a2_0", ndim=1)
        if a1_0.shape != a2_0.shape:
            raise ValueError(f"`a1_0` and `a2_0` must have the same shape, got {a1_0.shape} and {a2_0.shape}.")
        if not in_trace(a1_0, a2_0):
            check_positive(a1_0, "a1_0")
            check_positive(a2_0, "a2_0")
        self.s, self.U, self.V = io_modes(Sigma_yx, a1_0.shape[0])
        self.a1_0, self.a2_0 = a1_0, a2_0

    def strengths(self, t) -> jax.Array:
        return jax.vmap(lambda s, a1, a2: mode_strength(t, s, a1, a2))(self.s, self.a1_0, self.a2_0)

    def learning_times(self, af) -> jax.Array:
        """Exact time for each mode to reach strength `af` (scalar or (r,)), between a0 and s."""
        af = jnp.broadcast_to(as_array(af, "af"), self.s.shape)
        _check_mode(self.s, self.a1_0 * self.a2_0, af)
        return mode_time(af, self.s, self.a1_0, self.a2_0)

    def evaluate(self, t):
        t = check_time(t)
        if t.ndim != 0:
            raise ValueError(f"`t` must be one time (a scalar); use `.trajectory(ts)` for several, got shape "
                             f"{tuple(t.shape)}.")
        a = self.strengths(t)
        c = self.a1_0**2 - self.a2_0**2
        root = jnp.sqrt(c**2 + 4 * a**2)
        a1 = jnp.sqrt(0.5 * (c + root))
        a2 = jnp.sqrt(0.5 * (root - c))
        return a1[:, None] * self.V.T, self.U * a2[None, :]

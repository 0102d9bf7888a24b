r"""Metrics of Wen & Li's trajectories: feature alignments of the neurons and the four phases.

**Phases** (paper's result): (1) neuron 1 learns v₁; (2) substitution: E₂₁ grows, the head feeds the
v₁ signal to output 2; (3) acceleration: neuron 2 learns v₂; (4) the head returns to I. Without the
head both neurons align with v₁ (dimensional collapse). `head_phase_metrics` measures these.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._validation import as_array, is_concrete
from ._model import HeadState


def head_alignment(state: HeadState) -> Float[Array, "*batch 2 2"]:
    r"""Cosines `|⟨w_j, v_l⟩| / ‖w_j‖` from a `HeadState` (any leading batch/time axes).

    **Returns:** array (..., 2, 2) indexed [feature l, neuron j], like `a`.
    """
    a, q = state[0], state[1]
    norms = jnp.sqrt(jnp.sum(a**2, axis=-2) + jnp.diagonal(q, axis1=-2, axis2=-1))
    return jnp.abs(a) / norms[..., None, :]


class HeadPhases(NamedTuple):
    """Phase metrics of one trajectory (NaN where a phase is not reached).

    **Fields:**
    - `t_strong`: first time cos(w₁, v₁) ≥ threshold (phase 1 done).
    - `t_substitution`: first time |E₂₁| reaches half its maximum (phase 2, rise of the head).
    - `t_peak`: time of max |E₂₁|; `e21_peak`: the signed E₂₁ there.
    - `t_weak`: first time cos(w₂, v₂) ≥ threshold (phase 3, acceleration done).
    - `t_return`: first time after the peak that |E₂₁| ≤ `return_fraction`·max|E₂₁| (phase 4).
    - `distinct`: at the final time each neuron has cosine ≥ threshold with one feature and
      < threshold with the other, and the two features differ.
    - `collapsed`: at the final time both neurons have cosine ≥ threshold with v₁.
    - `final_cos`: final cosines (2, 2) [feature, neuron].
    """

    t_strong: Float[Array, "*batch"]
    t_substitution: Float[Array, "*batch"]
    t_peak: Float[Array, "*batch"]
    e21_peak: Float[Array, "*batch"]
    t_weak: Float[Array, "*batch"]
    t_return: Float[Array, "*batch"]
    distinct: Bool[Array, "*batch"]
    collapsed: Bool[Array, "*batch"]
    final_cos: Float[Array, "*batch 2 2"]


def _first_crossing(ts, x, level, start=None):
    """Linearly interpolated first time index ≥ start where x ≥ level (NaN if never)."""
    idx = jnp.arange(x.shape[0])
    ok = x >= level
    if start is not None:
        ok = ok & (idx >= start)
    i = jnp.argmax(ok)
    found = jnp.any(ok)
    i0 = jnp.maximum(i - 1, 0)
    dx = x[i] - x[i0]
    frac = jnp.where((i > 0) & (dx != 0), (level - x[i0]) / jnp.where(dx != 0, dx, 1.0), 1.0)
    frac = jnp.clip(frac, 0.0, 1.0)
    t = ts[i0] + frac * (ts[i] - ts[i0])
    t = jnp.where(i == 0, ts[0], t)
    return jnp.where(found, t, jnp.nan)


def head_phase_metrics(ts: Float[Array, " T"], states: HeadState, *, threshold=0.5, return_fraction=0.1
                       ) -> HeadPhases:
    r"""Phase times and outcomes of a trajectory (see `HeadPhases`); crossing times are linearly
    interpolated between save times. vmap over a leading seed axis for many runs.

    **Arguments:** `ts` (T,); `states` a `HeadState` with leading time axis (T, ...); `threshold`
    cosine level that counts as "learned" (in (0, 1)); `return_fraction` in (0, 1).

    **Returns:** a `HeadPhases`.
    """
    ts = as_array(ts, "ts", ndim=1)
    if is_concrete(threshold) and not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"`threshold` must be in (0, 1), got {threshold}.")
    if is_concrete(return_fraction) and not 0.0 < float(return_fraction) < 1.0:
        raise ValueError(f"`return_fraction` must be in (0, 1), got {return_fraction}.")
    if jnp.shape(states[0])[0] != ts.shape[0]:
        raise ValueError(f"`states` must have a leading time axis of length {ts.shape[0]}, got {jnp.shape(states[0])[0]}.")
    return _phase_metrics(ts, HeadState(*states), jnp.asarray(threshold, ts.dtype), jnp.asarray(return_fraction, ts.dtype))


@jax.jit
def _phase_metrics(ts, states, threshold, return_fraction):
    cos = head_alignment(states)  # (T, 2, 2)
    e21 = states[2][:, 1]
    abs21 = jnp.abs(e21)
    peak = jnp.max(abs21)
    ipeak = jnp.argmax(abs21)
    has_head = peak > 0
    t_strong = _first_crossing(ts, cos[:, 0, 0], threshold)
    t_weak = _first_crossing(ts, cos[:, 1, 1], threshold)
    t_sub = jnp.where(has_head, _first_crossing(ts, abs21, 0.5 * peak), jnp.nan)
    t_ret = jnp.where(has_head, _first_crossing(ts, -abs21, -return_fraction * peak, start=ipeak), jnp.nan)
    final = cos[-1]
    on = final >= threshold  # [feature, neuron]
    only = on & ~on[::-1]  # neuron j has learned feature l and not the other one
    distinct = (only[0, 0] & only[1, 1]) | (only[1, 0] & only[0, 1])
    collapsed = on[0, 0] & on[0, 1]
    return HeadPhases(t_strong, t_sub, jnp.where(has_head, ts[ipeak], jnp.nan), e21[ipeak], t_weak, t_ret,
                      distinct, collapsed, final)

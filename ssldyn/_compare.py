r"""ODE predictions for a network family, and how to compare them with trained networks.

For a one-hidden-layer network `f(x) = Wᵀ c_h φ(Vx)` with V frozen, the constrained output ODE
(`OutputFlow`) predicts the representations of the stacked training views **and** of any evaluation
inputs from kernels alone:

- **empirical kernel** of that very network: `K = ΦΦᵀ`, `K_eval = Φ_eval Φᵀ`, `R(0) = Φ W(0)`;
  the prediction equals the network trained by Riemannian GD up to O(η) at every width;
- **infinite-width kernel**: `K = h c_h² K_∞` (K_∞ the NNGP kernel), `R(0)` sampled from
  `N(0, K/h)` per column (§7.5 of the theory); no h-dimensional object is ever formed.

Comparisons use rotation-invariant quantities only (the flow is defined up to `W ↦ WQ`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._flows import OutputFlow, sample_initial_outputs
from ._kernels import infinite_width_kernel
from ._metrics import linear_cka, subspace_distance
from ._networks import NetworkSpec, network_features
from ._solve import solve


def empirical_setup(spec: NetworkSpec, params: dict, Z, X_eval):
    """Kernels and initial outputs of one network: `(K, K_eval, R0, R0_eval)`.

    `K = ΦΦᵀ` (m, m), `K_eval = Φ_eval Φᵀ` (m_eval, m), `R0 = Φ W(0)`, `R0_eval = Φ_eval W(0)`.
    """
    Phi = network_features(spec, params, Z)
    Phi_eval = network_features(spec, params, X_eval)
    K = Phi @ Phi.T
    return 0.5 * (K + K.T), Phi_eval @ Phi.T, Phi @ params["W"], Phi_eval @ params["W"]


def infinite_width_setup(key, Z, X_eval, activation, *, width: int, k: int, feature_scale=1.0, order: int = 32):
    r"""Infinite-width kernels and sampled initial outputs: `(K, K_eval, R0, R0_eval)`.

    `K_all = h c_h² K_∞([Z; X_eval])`; `[R0; R0_eval]` has i.i.d. columns `N(0, K_all / h)`.
    """
    c2 = 1.0 / width if feature_scale == "1/sqrt(h)" else float(feature_scale) ** 2
    A = jnp.concatenate([Z, X_eval], axis=0)
    K_all = width * c2 * infinite_width_kernel(A, activation=activation, order=order)
    return split_joint(K_all, sample_initial_outputs(key, K_all, k, width=width), Z.shape[0])


def split_joint(K_all, R0_all, m: int):
    """Split a joint kernel and joint initial outputs over `[train; eval]` at row `m`."""
    return K_all[:m, :m], K_all[m:, :m], R0_all[:m], R0_all[m:]


def predict_outputs(B, K, K_eval, R0, R0_eval, t1, *, constrained: bool = True, rtol=1e-6, atol=1e-8,
                    max_steps: int = 100_000):
    """Solve the output ODE from 0 to `t1` and return `(R(t1), R_eval(t1))`. Vmap it over seeds."""
    flow = OutputFlow(B, K, K_test=K_eval, constrained=constrained)
    traj = solve(flow, (R0, R0_eval), 0.0, t1, ts=1, rtol=rtol, atol=atol, max_steps=max_steps)
    R, R_eval = traj.ys
    return R[-1], R_eval[-1]


def gram_gap(R_a, R_b) -> jax.Array:
    """Relative Gram gap `‖R_a R_aᵀ − R_b R_bᵀ‖_F / ‖R_b R_bᵀ‖_F` (rotation invariant)."""
    Ga, Gb = R_a @ R_a.T, R_b @ R_b.T
    return jnp.linalg.norm(Ga - Gb) / jnp.linalg.norm(Gb)


def agreement(R_a, R_b) -> dict:
    """Rotation-invariant agreement of two representation matrices (n, k): Gram gap, subspace
    distance of their column spaces (chordal, `ssldyn.subspace_distance`), and linear CKA."""
    return {
        "gram_gap": gram_gap(R_a, R_b),
        "subspace_distance": subspace_distance(R_a, R_b),
        "cka": linear_cka(R_a, R_b),
    }

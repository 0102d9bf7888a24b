"""Bad input gets a clear error naming the argument (issue: one test per case)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from helpers import random_symmetric, random_views

X, XP, XN = random_views(jax.random.PRNGKey(0), 6, 4)
S = random_symmetric(jax.random.PRNGKey(1), 4)
W0 = ssldyn.stiefel_init(jax.random.PRNGKey(2), 4, 2)


def test_wrong_shapes():
    with pytest.raises(ValueError, match="`X`.*2 dimension"):
        ssldyn.view_stats(X[0], XP)
    with pytest.raises(ValueError, match="features"):
        ssldyn.view_stats(X, XP[:, :3])
    with pytest.raises(ValueError, match="`y0`.*4 rows"):
        ssldyn.solve(ssldyn.grassmann_flow(S), ssldyn.stiefel_init(jax.random.PRNGKey(3), 5, 2), 0.0, 1.0)
    with pytest.raises(ValueError, match="`S`.*square"):
        ssldyn.grassmann_flow(S[:, :3])
    with pytest.raises(ValueError, match="`K`"):
        ssldyn.output_flow(ssldyn.pair_matrix(2), jnp.eye(5))


def test_mismatched_numbers_of_anchors_and_views():
    with pytest.raises(ValueError, match="`X` has 6.*`X_pos` has 5"):
        ssldyn.view_stats(X, XP[:5], XN)
    with pytest.raises(ValueError, match="`X_neg` has 4"):
        ssldyn.contrastive_loss(W0, X, XP, XN[:4])


def test_nan_and_inf_in_data():
    with pytest.raises(ValueError, match="`X_pos`.*NaN or Inf"):
        ssldyn.view_stats(X, XP.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="`S`.*NaN or Inf"):
        ssldyn.naive_flow(S.at[1, 1].set(jnp.inf))


def test_k_outside_range():
    with pytest.raises(ValueError, match="`k` must be in \\[1, 4\\]"):
        ssldyn.stiefel_init(jax.random.PRNGKey(0), 4, 5)
    with pytest.raises(ValueError, match="`k`"):
        ssldyn.stiefel_init(jax.random.PRNGKey(0), 4, 0)
    with pytest.raises(ValueError, match="k <= d"):
        ssldyn.solve(ssldyn.grassmann_flow(S), jnp.eye(4, 5), 0.0, 1.0)


def test_non_orthonormal_initial_weights_for_constrained_flow():
    with pytest.raises(ValueError, match="`y0` must have orthonormal columns"):
        ssldyn.solve(ssldyn.grassmann_flow(S), 2.0 * W0, 0.0, 1.0)
    with pytest.raises(ValueError, match="`W0` must have orthonormal columns"):
        ssldyn.GrassmannSolution(S, W0 + 0.1)
    with pytest.raises(ValueError, match="unit Frobenius norm"):
        ssldyn.solve(ssldyn.sphere_flow(S), W0, 0.0, 1.0)


def test_non_symmetric_matrix_where_symmetric_required():
    A = S.at[0, 1].add(1.0)
    with pytest.raises(ValueError, match="`S` must be symmetric"):
        ssldyn.grassmann_flow(A)
    with pytest.raises(ValueError, match="`B` must be symmetric"):
        ssldyn.output_flow(jnp.triu(jnp.ones((3, 3))), jnp.eye(3))


def test_t1_before_t0():
    with pytest.raises(ValueError, match="`t1` must be >= `t0`"):
        ssldyn.solve(ssldyn.grassmann_flow(S), W0, 1.0, 0.5)
    with pytest.raises(ValueError, match="`ts` must lie in"):
        ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, 1.0, ts=jnp.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="`t` must be >= 0"):
        ssldyn.GrassmannSolution(S, W0).projector(-1.0)


def test_unknown_activation():
    from ssldyn._kernels import get_activation

    with pytest.raises(ValueError, match="activation"):
        get_activation("swishy")


def test_non_positive_tolerance_and_other_numbers():
    for name, kw in [("rtol", dict(rtol=0.0)), ("atol", dict(atol=-1e-9)), ("max_steps", dict(max_steps=0))]:
        with pytest.raises(ValueError, match=f"`{name}`"):
            ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, 1.0, **kw)
    with pytest.raises(ValueError, match="`weight_decay` must be non-negative"):
        ssldyn.naive_flow(S, weight_decay=-1.0)
    with pytest.raises(ValueError, match="`lr`"):
        ssldyn.simulate_gd(ssldyn.grassmann_flow(S), W0, 0.0, 10)


def test_wrong_types():
    with pytest.raises(TypeError, match="`flow`"):
        ssldyn.solve(lambda t, y: y, W0, 0.0, 1.0)
    with pytest.raises(TypeError, match="`X`"):
        ssldyn.view_stats("not an array", XP)
    with pytest.raises(TypeError, match="`loss_fn`"):
        ssldyn.GradientFlow(3.0)
    with pytest.raises(ValueError, match="`manifold`"):
        ssldyn.GradientFlow(ssldyn.quadratic_loss, "torus")
    with pytest.raises(ValueError, match="`kind`"):
        ssldyn.pair_matrix(3, "triplet")
    with pytest.raises(ValueError, match="needs negatives"):
        ssldyn.view_stats(X, XP).matrix("contrastive")


def test_closed_form_refuses_start_orthogonal_to_top_eigenspace():
    mu, U = jnp.linalg.eigh(S)
    with pytest.raises(ValueError, match="orthogonal to the top-2 eigenspace"):
        ssldyn.GrassmannSolution(S, U[:, :2])  # spans the bottom two eigenvectors
    np.testing.assert_allclose(ssldyn.solve(ssldyn.grassmann_flow(S), U[:, :2], 0.0, 1.0).final, U[:, :2], atol=1e-6)

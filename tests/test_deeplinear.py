"""Two-layer linear networks (Saxe et al. 2014): flow vs autodiff, conservation, per-mode and balanced
closed forms vs integration, learning times and order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
import ssldyn.deeplinear as dl

O, D = 4, 5
S = jnp.array([3.0, 1.5, 0.5])
NT = 201  # every solve saves on a grid of this length with h = 3 hidden units: one compilation


@pytest.fixture(scope="module")
def sigma():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    U = jnp.linalg.qr(jax.random.normal(k1, (O, 3)))[0]
    V = jnp.linalg.qr(jax.random.normal(k2, (D, 3)))[0]
    return (U * S) @ V.T


def test_field_is_minus_autodiff_gradient_of_the_sample_loss():
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(1), 4)
    X = jax.random.normal(k1, (50, D))
    X = X @ jnp.linalg.inv(jnp.linalg.cholesky(X.T @ X / 50)).T  # whitened: XᵀX/n = I exactly
    np.testing.assert_allclose(X.T @ X / 50, np.eye(D), atol=1e-12)
    Y = X @ jax.random.normal(k2, (D, O)) + 0.1 * jax.random.normal(k3, (50, O))
    params = (0.3 * jax.random.normal(k4, (3, D)), 0.3 * jax.random.normal(k1, (O, 3)))
    g = jax.grad(dl.deep_linear_sample_loss)(params, X, Y)
    field = dl.DeepLinearFlow(dl.io_correlation(X, Y)).vector_field(0.0, params)
    for a, b in zip(field, g):
        np.testing.assert_allclose(a, -b, atol=1e-12)


def test_conservation_along_a_random_start(sigma):
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    y0 = (0.2 * jax.random.normal(k1, (3, D)), 0.2 * jax.random.normal(k2, (O, 3)))
    traj = ssldyn.solve(dl.DeepLinearFlow(sigma), y0, 0.0, 5.0, ts=jnp.linspace(0, 5, NT), rtol=1e-10, atol=1e-12)
    Q = jax.vmap(dl.conserved_quantity)(*traj.ys)
    assert float(jnp.max(jnp.abs(Q - Q[0]))) < 1e-8
    # the product did move (the check is not vacuous)
    assert float(jnp.linalg.norm(traj.ys[1][-1] @ traj.ys[0][-1] - y0[1] @ y0[0])) > 1.0


def test_time_map_derivative_is_the_inverse_rate():
    """The antiderivative F derived in the docs: dt/da = 1/(√(c² + 4a²)(s − a)), by jax.grad."""
    for s, a1, a2, a in ((2.0, 0.3, 0.05, 0.7), (1.0, 0.1, 0.4, 0.5), (1.5, 0.2, 0.2, 1.2), (1.0, 2.0, 1.0, 1.5)):
        c = a1**2 - a2**2
        dt = jax.grad(dl.mode_time)(a, s, a1, a2)
        np.testing.assert_allclose(dt, 1.0 / (np.sqrt(c**2 + 4 * a**2) * (s - a)), rtol=1e-10)
        assert abs(float(dl.mode_time(a1 * a2, s, a1, a2))) < 1e-12


@pytest.mark.parametrize("balanced", [True, False])
def test_closed_form_matches_integration(sigma, balanced):
    a1 = jnp.array([1e-2, 3e-2, 5e-2])
    a2 = a1 if balanced else jnp.array([3e-2, 1e-2, 2e-1])
    y0 = dl.aligned_init(sigma, a1, a2)
    sol = dl.DeepLinearModeSolution(sigma, a1, a2)
    ts = jnp.linspace(0.0, 8.0, NT)
    traj = ssldyn.solve(dl.DeepLinearFlow(sigma), y0, 0.0, 8.0, ts=ts, rtol=1e-10, atol=1e-13)
    cf = sol.trajectory(ts).ys
    np.testing.assert_allclose(traj.ys[0], cf[0], atol=1e-7)
    np.testing.assert_allclose(traj.ys[1], cf[1], atol=1e-7)
    if balanced:
        a_bal = jax.vmap(lambda t: dl.balanced_mode_strength(t, S, a1 * a2))(ts)
        np.testing.assert_allclose(jax.vmap(sol.strengths)(ts), a_bal, atol=1e-10)


def test_learning_times_and_order(sigma):
    a0 = 1e-4
    a1 = jnp.full(3, np.sqrt(a0))
    sol = dl.DeepLinearModeSolution(sigma, a1, a1)
    half = S / 2
    t_half = np.asarray(dl.learning_time(S, a0, half))
    np.testing.assert_allclose(t_half, np.log((S - a0) / a0) / (2 * S), rtol=1e-12)  # ln(1/λ0 − 1)/(2s)
    np.testing.assert_allclose(sol.learning_times(half), t_half, rtol=1e-9)
    assert np.all(np.diff(t_half) > 0)  # stronger modes first
    ts = jnp.linspace(0.0, 1.2 * t_half[-1], NT)
    traj = ssldyn.solve(dl.DeepLinearFlow(sigma), dl.aligned_init(sigma, a1, a1), 0.0, float(ts[-1]), ts=ts,
                        rtol=1e-10, atol=1e-14)
    strength = np.asarray(jnp.einsum("or,tod,dr->tr", sol.U, traj.ys[1] @ traj.ys[0], sol.V))
    lam = strength / np.asarray(S)
    dt = float(ts[1] - ts[0])
    for j in range(3):  # first crossing of ½ on the grid, linearly interpolated (error ≤ grid spacing)
        i = int(np.argmax(lam[:, j] >= 0.5))
        t_meas = float(ts[i - 1] + (0.5 - lam[i - 1, j]) * dt / (lam[i, j] - lam[i - 1, j]))
        assert abs(t_meas - t_half[j]) <= dt


def test_bad_inputs_name_the_argument(sigma):
    with pytest.raises(ValueError, match="af"):
        dl.learning_time(1.0, 0.1, 1.5)
    with pytest.raises(ValueError, match="a1_0"):
        dl.DeepLinearModeSolution(sigma, jnp.array([-0.1, 0.1, 0.1]), jnp.array([0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="`r`"):
        dl.io_modes(sigma, 6)
    with pytest.raises(ValueError, match="y0"):
        ssldyn.solve(dl.DeepLinearFlow(sigma), (jnp.zeros((3, D + 1)), jnp.zeros((O, 3))), 0.0, 1.0)

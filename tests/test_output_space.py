"""The width-independent output ODE vs the explicit weight-space flow of width-h networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from helpers import random_views

N, D, K_OUT = 8, 6, 2
X, XP, XN = random_views(jax.random.PRNGKey(0), N, D)
Z = ssldyn.stack_views(X, XP, XN)  # m = 24
X_TEST = jax.random.normal(jax.random.PRNGKey(1), (5, D))
B = ssldyn.pair_matrix(N, "contrastive")
TIMES = jnp.array([0.0, 0.5, 1.0, 2.0])
TOL = dict(rtol=1e-11, atol=1e-13)


def network(h, seed=0):
    kv, kw = jax.random.split(jax.random.PRNGKey(10 + seed))
    V = jax.random.normal(kv, (h, D)) / jnp.sqrt(D)
    Phi = jnp.tanh(Z @ V.T) / jnp.sqrt(h)  # c_h = 1/sqrt(h): rates independent of width
    Phi_test = jnp.tanh(X_TEST @ V.T) / jnp.sqrt(h)
    W0 = ssldyn.stiefel_init(kw, h, K_OUT)
    return Phi, Phi_test, W0


@pytest.mark.parametrize("h", [10, 100, 1000])
def test_output_ode_equals_weight_flow_at_every_width(h):
    Phi, Phi_test, W0 = network(h)
    # Weight space: the Oja flow with S = Φᵀ B Φ (h × h).
    weights = ssldyn.solve(ssldyn.grassmann_flow(Phi.T @ B @ Phi), W0, 0.0, 2.0, ts=TIMES, **TOL)
    # Output space: state (R, R_test) of size (m + m_test) × k whatever h is.
    K = ssldyn.hidden_gram(Phi)
    flow = ssldyn.output_flow(B, K, K_test=ssldyn.hidden_gram(Phi, Phi_test))
    outputs = ssldyn.solve(flow, (Phi @ W0, Phi_test @ W0), 0.0, 2.0, ts=TIMES, **TOL)
    R, R_test = outputs.ys
    for i in range(len(TIMES)):
        W = weights.ys[i]
        np.testing.assert_allclose(R[i], Phi @ W, atol=1e-9)
        np.testing.assert_allclose(R_test[i], Phi_test @ W, atol=1e-9)
    # The loss along the output ODE equals the weight-space loss.
    np.testing.assert_allclose(jax.vmap(flow.loss)(outputs.ys), jax.vmap(ssldyn.grassmann_flow(Phi.T @ B @ Phi).loss)(weights.ys), rtol=1e-9)


def test_conserved_quantity_when_width_below_m():
    """For h ≤ m, R K⁺ Rᵀ... in rows: Rᵀ K⁺ R = W0ᵀ P_Φ W0 = I_k is conserved (theory §6)."""
    Phi, _, W0 = network(10)
    K = ssldyn.hidden_gram(Phi)
    traj = ssldyn.solve(ssldyn.output_flow(B, K), Phi @ W0, 0.0, 2.0, ts=TIMES, **TOL)
    Kp = jnp.linalg.pinv(K, hermitian=True, rtol=1e-12)
    for R in traj.ys:
        np.testing.assert_allclose(R.T @ Kp @ R, jnp.eye(K_OUT), atol=1e-7)


def test_naive_output_flow_equals_naive_weight_flow_and_ntk_closed_form():
    Phi, Phi_test, W0 = network(50)
    omega = 0.3
    weights = ssldyn.solve(ssldyn.naive_flow(Phi.T @ B @ Phi, weight_decay=omega), W0, 0.0, 2.0, ts=TIMES, **TOL)
    K = ssldyn.hidden_gram(Phi)
    flow = ssldyn.ntk_flow(B, K, Theta_test=ssldyn.hidden_gram(Phi, Phi_test), weight_decay=omega)
    R, R_test = ssldyn.solve(flow, (Phi @ W0, Phi_test @ W0), 0.0, 2.0, ts=TIMES, **TOL).ys
    for i, t in enumerate(TIMES):
        np.testing.assert_allclose(R[i], Phi @ weights.ys[i], atol=1e-9)
        np.testing.assert_allclose(R_test[i], Phi_test @ weights.ys[i], atol=1e-9)
        # Closed form of the linear function-space ODE: R(t) = e^{−ωt} expm(2t K B) R(0).
        exact = jnp.exp(-omega * t) * jax.scipy.linalg.expm(2 * t * K @ B) @ (Phi @ W0)
        np.testing.assert_allclose(R[i], exact, atol=1e-9)


def test_grad_of_output_loss_through_features_is_the_weight_vector_field():
    """−∂L/∂W with L = −tr((ΦW)ᵀ B (ΦW)) equals the naive weight flow; projected, the Oja flow."""
    Phi, _, W0 = network(30)
    L = lambda W: ssldyn.output_loss(Phi @ W, B)
    S = Phi.T @ B @ Phi
    np.testing.assert_allclose(-jax.grad(L)(W0), ssldyn.naive_flow(S).vector_field(0.0, W0), atol=1e-12)
    gen = ssldyn.GradientFlow(L, "grassmann")
    np.testing.assert_allclose(gen.vector_field(0.0, W0), ssldyn.grassmann_flow(S).vector_field(0.0, W0), atol=1e-12)
    # and pushed through Φ it is the output vector field
    out = ssldyn.output_flow(B, ssldyn.hidden_gram(Phi))
    np.testing.assert_allclose(Phi @ gen.vector_field(0.0, W0), out.vector_field(0.0, Phi @ W0), atol=1e-12)


def test_sampled_initial_outputs_have_kernel_covariance():
    """Columns of R(0) ~ N(0, K/h): Monte-Carlo covariance over many draws."""
    Phi, _, _ = network(40)
    K = ssldyn.hidden_gram(Phi)[:6, :6]
    draws = jax.vmap(lambda k: ssldyn.sample_initial_outputs(k, K, 1, width=40)[:, 0])(
        jax.random.split(jax.random.PRNGKey(3), 40_000)
    )
    cov = draws.T @ draws / draws.shape[0]
    se = np.sqrt((np.outer(np.diag(K), np.diag(K)) + np.asarray(K) ** 2) / 40**2 / draws.shape[0])
    assert np.all(np.abs(cov - K / 40) < 5 * se)

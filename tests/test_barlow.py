"""Stepwise linear Barlow Twins (Simon et al. 2023): loss, flow, aligned closed form, step times,
small random starts, GD, and the output-space (kernel) version, each against an independent computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
import ssldyn.barlow as bt
from tests.helpers import random_symmetric

D, K = 6, 3
SPECTRUM = (4.0, 2.0, 1.0, 0.5, 0.3, 0.1)
NT = 401  # every solve of the (3, 6) flow saves on a grid of this length: one compilation for the module


@pytest.fixture(scope="module")
def gamma():
    return random_symmetric(jax.random.PRNGKey(0), D, spectrum=SPECTRUM)


def _orth(key, k):
    return jnp.linalg.qr(jax.random.normal(key, (k, k)))[0]


def test_pair_loss_equals_population_form_and_grad_matches_field():
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(1), 3)
    X1 = jax.random.normal(k1, (40, D))
    X2 = X1 + 0.3 * jax.random.normal(k2, (40, D))
    G = bt.pair_correlation(X1, X2)
    W = 0.4 * jax.random.normal(k3, (K, D))
    for lam in (1.0, 0.3):
        a = bt.barlow_pair_loss(W, X1, X2, off_diagonal=lam)
        b = bt.barlow_loss(W, G, off_diagonal=lam)
        assert abs(float(a - b)) < 1e-12 * max(1.0, abs(float(b)))
        # independent: autodiff of the views' loss vs the hand-written field −4(M⊙E)WΓ
        g = jax.grad(lambda w: bt.barlow_pair_loss(w, X1, X2, off_diagonal=lam))(W)
        for eig in (False, True):
            flow = bt.BarlowFlow(G, off_diagonal=lam, eigenbasis=eig)
            field = flow.from_internal(flow.vector_field(0.0, flow.to_internal(W)))
            np.testing.assert_allclose(field, -g, rtol=1e-10, atol=1e-12)
            assert abs(float(flow.loss(W) - b)) < 1e-10


@pytest.mark.parametrize("lam,rotate", [(1.0, True), (0.3, False)])
def test_closed_form_matches_full_matrix_integration(gamma, lam, rotate):
    W0 = bt.aligned_weights(gamma, K, jnp.array([1e-3, 3e-3, 1e-2]))
    if rotate:  # any orthogonal mixing of the outputs is aligned when λ_off = 1
        W0 = _orth(jax.random.PRNGKey(2), K) @ W0
    sol = bt.StepwiseSolution(gamma, W0, off_diagonal=lam)
    ts = jnp.linspace(0.0, 3.0, NT)
    traj = ssldyn.solve(bt.BarlowFlow(gamma, off_diagonal=lam), W0, 0.0, 3.0, ts=ts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.ys, sol.trajectory(ts).ys, atol=1e-7)
    lam_ode = bt.embedding_eigenvalues(traj.ys, gamma)
    lam_cf = np.sort(np.asarray(jax.vmap(sol.eigenvalues)(ts)), axis=1)[:, ::-1]
    np.testing.assert_allclose(lam_ode, lam_cf, atol=1e-7)
    loss_ode = jax.vmap(bt.BarlowFlow(gamma, off_diagonal=lam).loss)(traj.ys)
    np.testing.assert_allclose(loss_ode, jax.vmap(sol.loss)(ts), atol=1e-7)


def test_off_diagonal_weight_matters_for_a_rotated_start(gamma):
    """Correction to the theory note: with λ_off ≠ 1 a start Q diag(s0) V_kᵀ with Q ≠ I is not solved by
    the logistic (C is not diagonal); the closed form refuses it and the ODE indeed departs."""
    W0 = _orth(jax.random.PRNGKey(3), K) @ bt.aligned_weights(gamma, K, 1e-2)
    with pytest.raises(ValueError, match="W0"):
        bt.StepwiseSolution(gamma, W0, off_diagonal=0.2)
    sol = bt.StepwiseSolution(gamma, W0, off_diagonal=1.0)
    traj = ssldyn.solve(bt.BarlowFlow(gamma, off_diagonal=0.2), W0, 0.0, 1.0, ts=jnp.linspace(0, 1, NT), rtol=1e-9)
    lam_ode = bt.embedding_eigenvalues(traj.ys, gamma)
    lam_cf = np.sort(np.asarray(jax.vmap(sol.eigenvalues)(traj.ts)), axis=1)[:, ::-1]
    assert np.max(np.abs(lam_ode - lam_cf)) > 1e-2


def test_step_times_and_loss_staircase_from_integration(gamma):
    lam0 = 1e-8
    W0 = bt.aligned_weights(gamma, K, lam0)
    sol = bt.StepwiseSolution(gamma, W0)
    pred = np.asarray(sol.step_times())
    np.testing.assert_allclose(pred, np.log(1 / lam0 - 1) / (8 * np.array(SPECTRUM[:K])), rtol=1e-12)
    ts = jnp.linspace(0.0, 1.3 * pred[-1], NT)
    flow = bt.BarlowFlow(gamma)
    traj = ssldyn.solve(flow, W0, 0.0, float(ts[-1]), ts=ts, rtol=1e-10, atol=1e-14)
    lam_ode = np.asarray(bt.embedding_eigenvalues(traj.ys, gamma))
    meas = bt.crossing_times(ts, lam_ode)
    # linear interpolation of a logistic on a grid of spacing h: error ≤ h (the curve is monotone)
    assert np.all(np.abs(meas - pred) <= float(ts[1] - ts[0]))
    # staircase: between steps the integrated loss sits on the integer plateaus k − j
    mids = np.concatenate([[0.5 * pred[0]], 0.5 * (pred[1:] + pred[:-1]), [1.3 * pred[-1]]])
    idx = [int(np.argmin(np.abs(np.asarray(ts) - m))) for m in mids]
    losses = np.asarray(jax.vmap(flow.loss)(traj.ys[np.asarray(idx)]))
    # well-separated γ (ratio 2) and λ0 = 1e-8: each plateau is within e^{-Δ} ~ 1e-2 of an integer
    np.testing.assert_allclose(losses, [3, 2, 1, 0], atol=0.05)


def test_small_random_init_step_times_and_order(gamma):
    """Random small starts: the QR-refined λ_j(0) predicts the step times of the ODE within 0.5/(8γ_j)
    (a factor e^0.5 on λ_j(0)), and the modes are learned in order of γ_j. The note's heuristic
    γ_j‖W(0)v_j‖² is checked only for its first mode (where both coincide)."""
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    g = np.array(SPECTRUM[:K])
    flow = bt.BarlowFlow(gamma)
    for key in keys:
        W0 = bt.small_random_init(key, K, D, scale=1e-4)
        pred = np.asarray(bt.small_init_step_times(gamma, W0))
        pred_norm = np.asarray(bt.small_init_step_times(gamma, W0, method="norm"))
        assert abs(pred[0] - pred_norm[0]) < 1e-12
        ts = jnp.linspace(0.0, 1.5 * pred.max(), NT)
        traj = ssldyn.solve(flow, W0, 0.0, float(ts[-1]), ts=ts, rtol=1e-9, atol=1e-14)
        meas = bt.crossing_times(ts, np.asarray(bt.embedding_eigenvalues(traj.ys, gamma)))
        assert np.all(np.diff(meas) > 0)
        assert np.all(np.abs(meas - pred) * 8 * g <= 0.5), (meas, pred)


def test_gd_matches_flow_to_first_order_and_autodiff_gd_equals_field_gd(gamma):
    W0 = bt.aligned_weights(gamma, K, 1e-2)
    W0 = W0 + 1e-3 * jax.random.normal(jax.random.PRNGKey(5), W0.shape)
    T = 1.0
    flow = bt.BarlowFlow(gamma)
    ref = ssldyn.solve(flow, W0, 0.0, T, ts=jnp.linspace(0.0, T, NT), rtol=1e-11, atol=1e-13).final
    lrs = [0.01, 0.005, 0.0025]
    gaps = [float(jnp.linalg.norm(ssldyn.simulate_gd(flow, W0, lr, int(round(T / lr))).final - ref)) for lr in lrs]
    order = ssldyn.lr_order(lrs, gaps)
    assert 0.8 < order < 1.2, (gaps, order)
    # GD by jax.grad on the views (train_barlow_gd) is GD of the hand-written field on Γ of the views
    k1, k2 = jax.random.split(jax.random.PRNGKey(6))
    X1 = jax.random.normal(k1, (30, D))
    X2 = X1 + 0.2 * jax.random.normal(k2, (30, D))
    G = bt.pair_correlation(X1, X2)
    W0 = 0.3 * jax.random.normal(k2, (K, D))
    res = bt.train_barlow_gd(W0, X1, X2, 0.01, 50, save_every=25, off_diagonal=0.5)
    ref = ssldyn.simulate_gd(bt.BarlowFlow(G, off_diagonal=0.5), W0, 0.01, 50).final
    np.testing.assert_allclose(res.final, ref, atol=1e-11)
    np.testing.assert_allclose(res.ts, [0.0, 0.25, 0.5])
    np.testing.assert_allclose(res.saved[0][-1], bt.embedding_eigenvalues(ref, G), atol=1e-10)


def test_kernel_flow_equals_weight_flow_of_hidden_features_and_its_closed_form():
    n, d, h, k = 12, 5, 40, 3
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(7), 4)
    X1 = jax.random.normal(k1, (n, d))
    X2 = X1 + 0.3 * jax.random.normal(k2, (n, d))
    V = ssldyn.random_features(k3, d, h)
    Phi = ssldyn.hidden_features(jnp.concatenate([X1, X2]), V, "relu", feature_scale=1 / np.sqrt(h))
    Kmat, B = Phi @ Phi.T, bt.pair_operator(n)
    G_h = Phi.T @ B @ Phi
    g_w, _ = bt.eigenmodes(G_h, k)
    g_k, _, _ = bt.kernel_eigenmodes(B, Kmat, k)
    np.testing.assert_allclose(g_k, g_w, rtol=1e-9)
    # the output field at R = ΦWᵀ is Φ (weight field)ᵀ, at any state: the two flows are the same flow
    for scale in (0.3, 3.0):
        W0 = scale * jax.random.normal(k4, (k, h))
        fw = bt.BarlowFlow(G_h, off_diagonal=0.5).vector_field(0.0, W0)
        fo = bt.BarlowKernelFlow(B, Kmat, off_diagonal=0.5).vector_field(0.0, Phi @ W0.T)
        np.testing.assert_allclose(fo, Phi @ fw.T, rtol=1e-9, atol=1e-12 * float(jnp.max(jnp.abs(fo))))
    np.testing.assert_allclose(bt.kernel_small_init_lambda0(B, Kmat, Phi @ W0.T),
                               bt.small_init_lambda0(G_h, W0), rtol=1e-8)
    # aligned output-space closed form vs integration of the output flow
    R0 = bt.aligned_outputs(B, Kmat, k, jnp.array([1e-3, 1e-2, 3e-2]))
    sol = bt.KernelStepwiseSolution(B, Kmat, R0)
    T = float(1.5 * sol.step_times().max())
    ts = jnp.linspace(0.0, T, 7)
    traj = ssldyn.solve(bt.BarlowKernelFlow(B, Kmat), R0, 0.0, T, ts=ts, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.ys, sol.trajectory(ts).ys, atol=1e-7)
    np.testing.assert_allclose(bt.output_eigenvalues(traj.ys, B)[-1], sol.eigenvalues(T), atol=1e-7)


def test_bad_inputs_name_the_argument(gamma):
    W0 = bt.aligned_weights(gamma, K, 1e-2)
    with pytest.raises(ValueError, match="off_diagonal"):
        bt.BarlowFlow(gamma, off_diagonal=-0.1)
    with pytest.raises(ValueError, match="off_diagonal"):
        bt.barlow_loss(W0, gamma, off_diagonal=-1.0)
    with pytest.raises(ValueError, match="W0"):
        bt.StepwiseSolution(gamma, W0 + 1e-3 * jax.random.normal(jax.random.PRNGKey(8), W0.shape))
    with pytest.raises(ValueError, match="`k`"):
        bt.aligned_weights(gamma, D + 1, 1e-2)
    with pytest.raises(ValueError, match="y0"):
        ssldyn.solve(bt.BarlowFlow(gamma), jnp.zeros((D + 1, D)), 0.0, 1.0)
    with pytest.raises(ValueError, match="lambda0"):
        bt.aligned_weights(gamma, K, -1.0)
    with pytest.raises(ValueError, match="Gamma"):
        bt.eigenmodes(-gamma, K)


def test_competing_modes_beyond_k_take_the_last_output(gamma):
    """A start with almost nothing on mode 3 and a large component on mode 4: the 3rd step is mode 4's
    (competing_step_times picks it), while the γ-ordered QR rule would predict mode 3, much later."""
    _, V = bt.eigenmodes(gamma, 4)
    Y = jnp.array([[1e-3, 0.0, 0.0, 0.0], [0.0, 1e-3, 0.0, 0.0], [0.0, 0.0, 1e-7, 3e-3]])
    W0 = Y @ V.T
    times, modes = bt.competing_step_times(gamma, W0, n_candidates=4)
    np.testing.assert_array_equal(modes, [0, 1, 3])
    qr = np.asarray(bt.small_init_step_times(gamma, W0))
    assert qr[2] - times[2] > 0.5  # the two rules are distinguishable at the 5% tolerance below
    ts = jnp.linspace(0.0, 1.3 * times.max(), NT)
    traj = ssldyn.solve(bt.BarlowFlow(gamma), W0, 0.0, float(ts[-1]), ts=ts, rtol=1e-9, atol=1e-14)
    meas = bt.crossing_times(ts, np.asarray(bt.embedding_eigenvalues(traj.ys, gamma)))
    np.testing.assert_allclose(meas, times, rtol=0.05)

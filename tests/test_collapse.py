"""Dimensional collapse toy (Jing et al. 2022): losses vs hand-written fields, the infinite-negative limit,
the frozen-softmax mechanism and its closed form, stationary values, and strong vs weak augmentation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
import ssldyn.collapse as jc

TAU = 0.1


def test_gaussian_flow_field_is_minus_autodiff_gradient():
    C, C0 = jc.toy_moments(1.5, d=6, n_noised=3)
    C = C + 0.1 * jnp.ones((6, 6))  # a non-identity C+ so both terms are exercised
    W = 0.3 * jax.random.normal(jax.random.PRNGKey(0), (4, 6))
    flow = jc.GaussianInfoNCEFlow(C, C0, TAU)
    g = jax.grad(jc.gaussian_info_nce)(W, C, C0, TAU)
    np.testing.assert_allclose(flow.vector_field(0.0, W), -g, rtol=1e-10, atol=1e-10)


def test_gaussian_loss_is_the_many_negative_limit_of_dot_infonce():
    """Monte Carlo: with N negatives, dot InfoNCE − log N → the Gaussian loss (W small, b = 0)."""
    d, n_noised, sig, N = 6, 3, 1.5, 4000
    W = 0.03 * jax.random.normal(jax.random.PRNGKey(1), (4, d))  # logit variance ≪ 1: the sample mean of e^ℓ converges
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(2), 3)
    X = jc.sample_inputs(k1, N, d)
    X1, X2 = jc.augment(k2, X, sig, n_noised), jc.augment(k3, X, sig, n_noised)
    C, C0 = jc.toy_moments(sig, d=d, n_noised=n_noised)
    mc = float(jc.dot_info_nce((W, jnp.zeros(4)), X1, X2, TAU)) - np.log(N)
    exact = float(jc.gaussian_info_nce(W, C, C0, TAU))
    # exact ≈ −0.135; the MC standard error of the mean over N = 4000 anchors is ≈ 0.004 (measured), the
    # positive pair inside the log-sum-exp adds O(1/N): 0.02 is 5 standard errors
    assert abs(mc - exact) < 0.02, (mc, exact)


def test_mechanism_matrix_gives_the_distance_infonce_gradient():
    """X from the current softmax weights: jax.grad of the distance-logit InfoNCE = −W X / (N τ) exactly."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    X = jc.sample_inputs(k1, 20, 6)
    X1, X2 = jc.augment(k2, X, 1.0, 3), jc.augment(k3, X, 1.0, 3)
    W = 0.5 * jax.random.normal(k4, (4, 6))
    g = jax.grad(jc.distance_info_nce)(W, X1, X2, TAU)
    Xm = jc.mechanism_matrix(W, X1, X2, TAU)
    np.testing.assert_allclose(jc.FrozenXFlow(Xm, 20, TAU).vector_field(0.0, W), -g, rtol=1e-9, atol=1e-10)
    # independent: the defining double sum
    Z = np.zeros((6, 6))
    ell = np.asarray(-jnp.sum(((X1 @ W.T)[:, None] - (X2 @ W.T)[None]) ** 2, -1) / (2 * TAU))
    alpha = np.exp(ell - ell.max(1, keepdims=True))
    alpha /= alpha.sum(1, keepdims=True)
    x1, x2 = np.asarray(X1), np.asarray(X2)
    for i in range(20):
        for j in range(20):
            D = np.outer(x2[j] - x1[i], x2[j] - x1[i])
            Z += alpha[i, j] * D if j != i else -(1 - alpha[i, i]) * D
    np.testing.assert_allclose(Xm, Z, atol=1e-9)


def test_uniform_weights_cancel_the_augmentation():
    """At W = 0 the weights are uniform and E X = 2(N − 1) Σ_x: the augmentation covariance cancels."""
    N = 16
    keys = jax.random.split(jax.random.PRNGKey(4), 200)

    def one(key):
        k1, k2, k3 = jax.random.split(key, 3)
        X = jc.sample_inputs(k1, N, 6)
        return jc.mechanism_matrix(jnp.zeros((2, 6)), jc.augment(k2, X, 1.5, 3), jc.augment(k3, X, 1.5, 3), TAU)

    mean = jnp.mean(jax.vmap(one)(keys), 0) / (2 * (N - 1))
    # 200 batches: entrywise MC standard error ≤ 0.03 (noised coordinates have the largest variance): 0.1 ≈ 3.5 SE
    np.testing.assert_allclose(mean, np.eye(6), atol=0.1)


def test_frozen_x_closed_form_matches_integration():
    k1, k2 = jax.random.split(jax.random.PRNGKey(5))
    A = jax.random.normal(k1, (5, 5))
    X = A + A.T
    W0 = jax.random.normal(k2, (3, 5))
    sol = jc.FrozenXSolution(X, 10, TAU, W0)
    ts = jnp.linspace(0.0, 0.5, 6)
    traj = ssldyn.solve(jc.FrozenXFlow(X, 10, TAU), W0, 0.0, 0.5, ts=ts, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(traj.ys, sol.trajectory(ts).ys, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(sol(0.3), W0 @ jax.scipy.linalg.expm(0.3 * X / (10 * TAU)), rtol=1e-10)


def test_stationary_values_match_long_integration():
    C, C0 = jc.toy_moments(1.5)
    W0, _ = jc.fanin_uniform_init(jax.random.PRNGKey(6))
    flow = jc.GaussianInfoNCEFlow(C, C0, TAU)
    final = ssldyn.solve(flow, W0, 0.0, 10.0, rtol=1e-9, atol=1e-12).final  # relaxation rates ≳ 1: e^{-10} ≪ tol
    pred = np.asarray(jc.stationary_spectrum(C, C0, TAU))
    np.testing.assert_allclose(pred, [TAU] * 8 + [TAU / (1 + 1.5**2) ** 2] * 8, rtol=1e-12)
    np.testing.assert_allclose(jc.embedding_spectrum(final), pred, rtol=1e-6)
    np.testing.assert_allclose(final.T @ final, jc.stationary_gram(C, C0, TAU), atol=1e-7)


def test_strong_augmentation_separates_noised_directions_weak_does_not():
    pool = jc.sample_inputs(jax.random.PRNGKey(7), 1000)
    keys = jax.random.split(jax.random.PRNGKey(8), 3)
    params0 = jax.vmap(jc.fanin_uniform_init)(keys)
    sep, ratio = {}, {}
    for sig in (1.5, 0.01):  # t = 1 (the strong split is complete by t ≈ 0.4 at this rate)
        res = jc.train_collapse_sgd(keys, params0, pool, sigma_aug=sig, temperature=TAU, lr=2e-3, n_steps=500)
        sep[sig] = np.asarray(jc.separation(res.final[0]))
        clean, noised = jc.block_spectra(res.final[0])
        ratio[sig] = np.asarray(clean.mean(-1) / noised.mean(-1))
    assert np.all(sep[1.5] > 1.0), sep  # every noised direction below every clean one, in every seed
    assert np.all(ratio[1.5] > 5.0), ratio  # and far below: the prediction is (1 + 1.5²)² ≈ 10.6
    assert np.all(sep[0.01] < 1.0), sep  # weak: the blocks overlap ...
    assert np.all(np.abs(np.log(ratio[0.01])) < np.log(1.25)), ratio  # ... and have the same mean level


def test_bad_inputs_name_the_argument():
    C, C0 = jc.toy_moments(1.5)
    W = jnp.zeros((16, 16))
    X = jnp.zeros((4, 16))
    for bad in (0.0, -0.1):
        with pytest.raises(ValueError, match="temperature"):
            jc.GaussianInfoNCEFlow(C, C0, bad)
        with pytest.raises(ValueError, match="temperature"):
            jc.dot_info_nce((W, jnp.zeros(16)), X, X, bad)
    with pytest.raises(ValueError, match="sigma_aug"):
        jc.toy_moments(-1.0)
    with pytest.raises(ValueError, match="n_noised"):
        jc.toy_moments(1.0, n_noised=17)
    with pytest.raises(ValueError, match="logits"):
        jc.mechanism_matrix(W, X, X, TAU, logits="cosine")

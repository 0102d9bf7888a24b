"""Tests for the Wen & Li (2021) sparse-coding package `ssldyn.sparse`.

Every numerical check compares against an independent computation: exact enumeration over masks,
Monte Carlo with tolerances derived from standard errors, `jax.scipy.linalg.expm`, a direct
transcription of the theory's loss with explicit negatives, and `jax.grad`.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

import ssldyn
from ssldyn.sparse import (
    QuenchedFlow,
    SparseCoding,
    atom_alignment,
    atoms_covered,
    bias_schedule,
    brelu,
    code_probe,
    cubic_correction,
    feature_decoupling,
    info_nce_vector_field,
    init_neurons,
    linearised_flow,
    linearised_rates,
    linearised_solution,
    make_views,
    quenched_flow,
    single_atom_alignment,
    span_energy,
    sparse_metrics,
    sparse_view_stats,
    train_sgd,
    view_noise_scale,
    wen_li_info_nce,
)

KEY = jax.random.PRNGKey


def hadamard_dictionary(d1, d):
    """d orthonormal columns of a Sylvester-Hadamard matrix: every row of M has norm² d/d1 exactly,
    so Diag(MMᵀ) = (d/d1) I and the masking eigen-rates of theory §4 are exact."""
    H = np.ones((1, 1))
    while H.shape[0] < d1:
        H = np.block([[H, H], [H, -H]])
    assert H.shape[0] == d1
    return jnp.asarray(H[:, 1 : d + 1] / np.sqrt(d1))


@pytest.fixture(scope="module")
def small_data():
    return SparseCoding.random(KEY(0), 8, 3, p=0.3, noise_std=0.5)


# ------------------------------------------------------------------------------------------------
# data model and the decoupling identity
# ------------------------------------------------------------------------------------------------


def test_feature_decoupling_exact_enumeration():
    # Average over all 2^d1 complementary masks (exact expectation, no sampling).
    d1 = 6
    x = np.random.default_rng(1).standard_normal(d1)
    cross = np.zeros((d1, d1))
    same = np.zeros((d1, d1))
    for bits in itertools.product([0.0, 1.0], repeat=d1):
        D = np.asarray(bits)
        x1, x2 = 2 * D * x, 2 * (1 - D) * x
        cross += np.outer(x1, x2) / 2**d1
        same += np.outer(x1, x1) / 2**d1
    c, s = feature_decoupling(jnp.asarray(x))
    np.testing.assert_allclose(c, cross, atol=1e-13)
    np.testing.assert_allclose(s, same, atol=1e-13)
    np.testing.assert_allclose(np.diagonal(c), 0.0, atol=1e-15)


def test_masking_views_structure():
    X = jnp.asarray(np.random.default_rng(2).standard_normal((40_000, 8)))
    X1, X2 = make_views(KEY(3), X, "mask")
    np.testing.assert_allclose(X1 + X2, 2 * X, atol=1e-14)  # complementary, factor 2
    assert float(jnp.max(jnp.abs(X1 * X2))) == 0.0  # each coordinate in exactly one view
    frac = float(jnp.mean(X1 != 0))  # D_a ~ Bern(1/2): SE = 0.5/sqrt(320000)
    assert abs(frac - 0.5) < 5 * 0.5 / np.sqrt(X.size)
    same1, same2 = make_views(KEY(3), X, "none")
    np.testing.assert_array_equal(same1, X)
    np.testing.assert_array_equal(same2, X)


def _mc_moments(data, augmentation, n, key, aug_noise_std=0.0):
    """Per-entry Monte-Carlo means and standard errors of C+ = sym x1x2ᵀ and C0 = (x1x1ᵀ + x2x2ᵀ)/2."""
    k1, k2 = jax.random.split(key)
    X = data.sample(k1, n)
    X1, X2 = make_views(k2, X, augmentation, aug_noise_std=aug_noise_std)
    X1, X2 = np.asarray(X1), np.asarray(X2)
    cp = 0.5 * (X1[:, :, None] * X2[:, None, :] + X2[:, :, None] * X1[:, None, :])
    c0 = 0.5 * (X1[:, :, None] * X1[:, None, :] + X2[:, :, None] * X2[:, None, :])
    out = {}
    for name, q in (("Cp", cp), ("C0", c0)):
        out[name] = (q.mean(0), q.std(0, ddof=1) / np.sqrt(n))
    return out


def _max_z(mean, se, target):
    """Largest |z| over entries with SE > 0; entries with SE == 0 must match exactly."""
    target = np.asarray(target)
    zero = se == 0
    if np.any(zero):
        np.testing.assert_allclose(mean[zero], target[zero], atol=1e-12)
    return float(np.max(np.abs(mean[~zero] - target[~zero]) / se[~zero]))


@pytest.mark.parametrize("augmentation", ["mask", "none", "noise", "independent_mask"])
def test_decoupling_table_monte_carlo(small_data, augmentation):
    # 36 + 36 distinct entries per case, 4 cases: with a threshold of 5 SE the chance of a false
    # failure under the normal approximation is about 288 * 5.7e-7 ~ 2e-4.
    s = 0.3
    mc = _mc_moments(small_data, augmentation, 40_000, KEY(10), aug_noise_std=s)
    st = sparse_view_stats(small_data, augmentation, aug_noise_std=s)
    for name in ("Cp", "C0"):
        mean, se = mc[name]
        assert _max_z(mean, se, getattr(st, name)) < 5.0, name
    if augmentation == "mask":
        # The dense noise cancels exactly from C+ (diagonal identically zero per sample) ...
        np.testing.assert_array_equal(np.diagonal(mc["Cp"][0]), 0.0)
        # ... and the test has power: the no-augmentation table is rejected by many SEs.
        wrong = sparse_view_stats(small_data, "none")
        assert _max_z(*mc["C0"], wrong.C0) > 30


def test_second_moment_and_code(small_data):
    X, Z = small_data.sample(KEY(11), 40_000, return_code=True)
    assert set(np.unique(np.asarray(Z))) <= {-1.0, 0.0, 1.0}
    X = np.asarray(X)
    q = X[:, :, None] * X[:, None, :]
    assert _max_z(q.mean(0), q.std(0, ddof=1) / np.sqrt(len(X)), small_data.second_moment()) < 5.0
    zz = np.asarray(Z)[:, :, None] * np.asarray(Z)[:, None, :]
    assert _max_z(zz.mean(0), zz.std(0, ddof=1) / np.sqrt(len(X)), 0.3 * np.eye(3)) < 5.0


# ------------------------------------------------------------------------------------------------
# network and loss
# ------------------------------------------------------------------------------------------------


def test_brelu_properties():
    u = jnp.linspace(-3, 3, 61)
    np.testing.assert_array_equal(brelu(u, 0.0), u)
    np.testing.assert_allclose(brelu(-u, 0.7), -brelu(u, 0.7))
    np.testing.assert_allclose(brelu(u, 0.7), jnp.sign(u) * jnp.maximum(jnp.abs(u) - 0.7, 0.0))
    g = jax.vmap(jax.grad(lambda v: brelu(v, 0.7)))(u)
    np.testing.assert_array_equal(g, (jnp.abs(u) > 0.7).astype(u.dtype))


def _nonlinear_problem(n=32, d1=10, m=5, seed=20):
    rng = np.random.default_rng(seed)
    X1 = rng.standard_normal((n, d1))
    X2 = X1 + 0.5 * rng.standard_normal((n, d1))
    W = 0.8 * rng.standard_normal((d1, m))
    b = 0.4 * np.sqrt(np.sum(W**2, axis=0))
    return tuple(jnp.asarray(a) for a in (W, X1, X2, b))


def test_loss_matches_theory_formula():
    # -log(e^{S_ii} / (e^{S_ii} + sum over the B-1 in-batch negatives e^{S_in})), written out in numpy.
    W, X1, X2, b = _nonlinear_problem()
    tau, B, omega = 0.7, 8, 0.03
    Wn, bn, X1n, X2n = (np.asarray(a) for a in (W, b, X1, X2))

    def h(x):
        u = x @ Wn
        return np.maximum(u - bn, 0) - np.maximum(-u - bn, 0)

    losses = []
    for i in range(X1n.shape[0]):
        start = (i // B) * B
        pos = h(X1n[i]) @ h(X2n[i]) / tau
        negs = [h(X1n[i]) @ h(X2n[j]) / tau for j in range(start, start + B) if j != i]
        losses.append(-np.log(np.exp(pos) / (np.exp(pos) + np.sum(np.exp(negs)))))
    expected = np.mean(losses) + 0.5 * omega * np.sum(Wn**2)
    got = wen_li_info_nce(W, X1, X2, temperature=tau, bias=b, batch_size=B, weight_decay=omega)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_grad_of_info_nce_matches_vector_field(stop_gradient):
    W, X1, X2, b = _nonlinear_problem()
    kw = dict(temperature=0.7, bias=b, batch_size=8, weight_decay=0.03)
    g = jax.grad(lambda w: wen_li_info_nce(w, X1, X2, stop_gradient=stop_gradient, **kw))(W)
    v = info_nce_vector_field(W, X1, X2, stop_gradient=stop_gradient, **kw)
    np.testing.assert_allclose(v, -g, rtol=1e-10, atol=1e-13)
    assert float(jnp.linalg.norm(g)) > 0.1  # not a trivial zero

    # Independent meaning of the stop-gradient: partial derivatives of a two-argument loss.
    def two_arg(wa, wt):
        H1 = brelu(X1.reshape(4, 8, -1) @ wa, b)
        H2 = brelu(X2.reshape(4, 8, -1) @ wt, b)
        logits = jnp.einsum("bim,bjm->bij", H1, H2) / 0.7
        return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.diagonal(logits, axis1=-2, axis2=-1))

    ga, gt = jax.jit(jax.grad(two_arg, argnums=(0, 1)))(W, W)
    expected = ga if stop_gradient else ga + gt
    np.testing.assert_allclose(v, -(expected + 0.03 * W), rtol=1e-10, atol=1e-13)


def test_quenched_flow_matches_generic_gradient_flow_and_bias():
    W, X1, X2, _ = _nonlinear_problem(seed=21)
    # b = 0: the core's GradientFlow on the same loss (frozen samples passed through args).
    flow = QuenchedFlow(X1, X2, batch_size=8, temperature=0.7, weight_decay=0.03)
    generic = ssldyn.GradientFlow(lambda w, a: wen_li_info_nce(w, a[0], a[1], temperature=0.7, batch_size=8),
                                  args=(X1, X2), weight_decay=0.03)
    field = eqx.filter_jit(lambda f, t, w: f.vector_field(t, w))
    np.testing.assert_allclose(field(flow, 0.3, W), field(generic, 0.3, W), rtol=1e-10, atol=1e-13)
    # With the schedule: at time t the field is -grad of the loss with b = β(t)·scale·‖w_i‖ frozen.
    flow = QuenchedFlow(X1, X2, batch_size=8, temperature=0.7, weight_decay=0.03, beta_max=1.2, horizon=4.0,
                        ramp_fraction=0.5, bias_scale=0.6)
    t = 1.0  # beta = 1.2 * 1/(0.5*4) = 0.6
    b = 0.6 * 0.6 * jnp.sqrt(jnp.sum(W**2, axis=0))
    np.testing.assert_allclose(flow.bias(t, W), b, rtol=1e-14)
    g = jax.grad(lambda w: wen_li_info_nce(w, X1, X2, temperature=0.7, bias=b, batch_size=8, weight_decay=0.03))(W)
    np.testing.assert_allclose(field(flow, t, W), -g, rtol=1e-10, atol=1e-13)
    # the bias is not differentiated (stop-gradient on ‖w_i‖)
    np.testing.assert_allclose(jax.grad(lambda w: jnp.sum(flow.bias(t, w)))(W), 0.0)


def test_bias_schedule():
    ts = jnp.array([0.0, 1.0, 2.0, 3.0, 10.0])
    np.testing.assert_allclose(bias_schedule(ts, horizon=4.0, beta_max=1.5), [0.0, 0.75, 1.5, 1.5, 1.5])
    np.testing.assert_allclose(bias_schedule(ts, horizon=4.0, beta_max=1.5, ramp_fraction=0.0), 1.5)
    d = SparseCoding(hadamard_dictionary(8, 2), p=0.1, noise_std=0.4)
    np.testing.assert_allclose(view_noise_scale(d, "mask"), np.sqrt(2) * 0.4)
    np.testing.assert_allclose(view_noise_scale(d, "none"), 0.4)
    # empirical std of the noise part of <w, x^(1)> under masking, per unit ‖w‖ (SE of a std ~ s/sqrt(2n))
    xi = jnp.asarray(0.4 * np.random.default_rng(30).standard_normal((40_000, 8)))
    X1, _ = make_views(KEY(31), xi, "mask")
    w = jnp.arange(1.0, 9.0)
    s = float(jnp.std(X1 @ w) / jnp.linalg.norm(w))
    assert abs(s - np.sqrt(2) * 0.4) < 5 * np.sqrt(2) * 0.4 / np.sqrt(2 * 40_000)


def test_symmetries_of_the_flow():
    W, X1, X2, _ = _nonlinear_problem(seed=22)
    flow = QuenchedFlow(X1, X2, batch_size=8, temperature=0.7, weight_decay=0.03, beta_max=1.0, horizon=2.0,
                        bias_scale=0.5)
    v = flow.vector_field(0.7, W)
    perm = jnp.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(flow.vector_field(0.7, W[:, perm]), v[:, perm], rtol=1e-10, atol=1e-13)
    flip = jnp.array([1.0, -1.0, 1.0, 1.0, -1.0])
    np.testing.assert_allclose(flow.vector_field(0.7, W * flip), v * flip, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(flow.loss(W * flip), flow.loss(W), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# linearised flow
# ------------------------------------------------------------------------------------------------


def test_linear_matrix_expectation_is_kappa_cplus():
    # A = (1/n) Σ_batches X1ᵀ(I − 11ᵀ/B)X2 has mean κ C+ with κ = 1 − 1/B. Batches are i.i.d., so the
    # SE of each entry is the std across batches / sqrt(#batches).
    d1, B, nb = 8, 4, 10_000
    data = SparseCoding(hadamard_dictionary(d1, 3), p=0.3, noise_std=0.5)
    fl = quenched_flow(KEY(40), data, n_samples=B * nb, batch_size=B, augmentation="mask")
    X1 = np.asarray(fl.X1).reshape(nb, B, d1)
    X2 = np.asarray(fl.X2).reshape(nb, B, d1)
    per_batch = np.einsum("bid,bie->bde", X1, X2 - X2.mean(1, keepdims=True)) / B
    per_batch = 0.5 * (per_batch + per_batch.transpose(0, 2, 1))
    mean, se = per_batch.mean(0), per_batch.std(0, ddof=1) / np.sqrt(nb)
    np.testing.assert_allclose(sym_np(fl.linear_matrix()), mean, rtol=1e-10, atol=1e-13)
    Cp = np.asarray(sparse_view_stats(data, "mask").Cp)
    assert _max_z(mean, se, (1 - 1 / B) * Cp) < 5.0
    assert _max_z(mean, se, Cp) > 8.0  # κ = 1 is rejected: the test resolves the factor 1 − 1/B


def sym_np(a):
    a = np.asarray(a)
    return 0.5 * (a + a.T)


def test_linearised_closed_form_vs_solve_and_expm():
    data = SparseCoding.random(KEY(41), 8, 3, p=0.2, noise_std=0.4)
    Cp = sparse_view_stats(data, "mask").Cp
    W0 = np.random.default_rng(42).standard_normal((8, 4))
    tau, B, omega, t = 0.5, 16, 0.05, 3.0
    kappa = 1 - 1 / B
    exact = expm(t * (kappa * np.asarray(Cp) / tau - omega * np.eye(8))) @ np.asarray(W0)
    sol = linearised_solution(Cp, W0, temperature=tau, batch_size=B, weight_decay=omega)
    np.testing.assert_allclose(sol(t), exact, rtol=1e-11, atol=1e-12)
    # the core's naive flow with S = κC+/(2τ) is the linearised vector field (κ/τ)C+W − ωW
    flow = linearised_flow(Cp, temperature=tau, batch_size=B, weight_decay=omega)
    np.testing.assert_allclose(flow.vector_field(0.0, W0), (kappa / tau) * Cp @ W0 - omega * W0, rtol=1e-12)
    # without the stop-gradient the rate matrix doubles
    no_sg = linearised_solution(Cp, W0, temperature=tau, batch_size=B, weight_decay=omega, stop_gradient=False)
    np.testing.assert_allclose(no_sg(t), expm(t * (2 * kappa * np.asarray(Cp) / tau - omega * np.eye(8))) @ W0, rtol=1e-11,
                               atol=1e-12)
    # C+ = 0 (pure weight decay): W(t) = e^{-ωt} W(0)
    zero = linearised_solution(jnp.zeros((8, 8)), W0, temperature=tau, weight_decay=omega)
    np.testing.assert_allclose(zero(t), np.exp(-omega * t) * W0, rtol=1e-13)


@pytest.mark.parametrize("augmentation", ["mask", "none"])
def test_eigen_rates_exact_for_equal_row_norm_dictionary(augmentation):
    d1, d = 16, 4
    data = SparseCoding(hadamard_dictionary(d1, d), p=0.2, noise_std=0.4)
    tau, B, omega = 0.5, 32, 0.02
    rates = linearised_rates(data, augmentation, temperature=tau, batch_size=B, weight_decay=omega)
    kappa = 1 - 1 / B
    if augmentation == "mask":  # the theory's table, written out
        atoms, dense = kappa * 0.2 * (1 - d / d1) / tau - omega, -kappa * 0.2 * (d / d1) / tau - omega
    else:
        atoms, dense = kappa * (0.2 + 0.16) / tau - omega, kappa * 0.16 / tau - omega
    np.testing.assert_allclose([rates.atoms, rates.dense], [atoms, dense], rtol=1e-12)
    np.testing.assert_allclose(rates.exact, [atoms] * d + [dense] * (d1 - d), atol=1e-12)
    # log-norm growth of the projections under the closed form
    W0 = np.random.default_rng(43).standard_normal((d1, 5))
    sol = linearised_solution(sparse_view_stats(data, augmentation).Cp, W0, temperature=tau, batch_size=B,
                              weight_decay=omega)
    M, W0 = np.asarray(data.M), np.asarray(W0)
    P = M @ M.T
    for t in (1.0, 4.0):
        W = np.asarray(sol(t))
        g_atoms = np.log(np.linalg.norm(P @ W) / np.linalg.norm(P @ W0)) / t
        g_dense = np.log(np.linalg.norm(W - P @ W) / np.linalg.norm(W0 - P @ W0)) / t
        np.testing.assert_allclose([g_atoms, g_dense], [atoms, dense], rtol=1e-10)


def test_no_augmentation_dense_subspace_invariant_for_haar_dictionary():
    # Property 4: without augmentation M⊥ is exactly invariant, rate κσ²/τ − ω, for any dictionary.
    data = SparseCoding.random(KEY(44), 8, 3, p=0.2, noise_std=0.4)
    W0 = np.random.default_rng(45).standard_normal((8, 4))
    sol = linearised_solution(sparse_view_stats(data, "none").Cp, W0, temperature=0.5, batch_size=8,
                              weight_decay=0.01)
    Q = jnp.eye(8) - data.M @ data.M.T
    t = 2.5
    np.testing.assert_allclose(Q @ sol(t), np.exp(((7 / 8) * 0.16 / 0.5 - 0.01) * t) * (Q @ W0), rtol=1e-11)


def test_quenched_ode_agrees_with_linearised_closed_form_at_leading_order():
    # b = 0 and small weights: the full nonlinear frozen-sample ODE equals exp(t(A/τ − ωI))W(0) up to a
    # relative error O(σ0²) (softmax non-uniformity, S ∝ σ0²). A is written out here from its definition.
    d1, B, n, tau, omega, T = 16, 16, 64, 0.5, 0.01, 2.0
    data = SparseCoding(hadamard_dictionary(d1, 4), p=0.25, noise_std=0.4)
    fl = quenched_flow(KEY(50), data, n_samples=n, batch_size=B, augmentation="mask", temperature=tau,
                       weight_decay=omega)
    X1, X2 = np.asarray(fl.X1), np.asarray(fl.X2)
    A = np.zeros((d1, d1))
    for i in range(n):
        batch = range((i // B) * B, (i // B + 1) * B)
        A += np.outer(X1[i], X2[i]) - sum(np.outer(X1[i], X2[j]) for j in batch) / B
    A /= n
    G = jnp.asarray(expm(T * (A / tau - omega * np.eye(d1))))
    errors = []
    for sigma0 in (0.01, 0.005):
        W0 = init_neurons(KEY(51), d1, 6, sigma0=sigma0)
        W = ssldyn.solve(fl, W0, 0.0, T, rtol=1e-10, atol=1e-14, max_steps=200_000).final
        lin = G @ W0
        errors.append(float(jnp.linalg.norm(W - lin) / jnp.linalg.norm(lin)))
    # measured: 0.0093 and 0.0024 (ratio 0.253; the ratio tends to 1/4 as σ0 → 0)
    assert errors[0] < 0.02, errors
    assert 0.22 < errors[1] / errors[0] < 0.28, errors  # O(σ0²): halving σ0 divides the error by 4


def test_cubic_term_of_the_frozen_sample_field():
    # v(W) = (A/τ)W − ωW + cubic(W) + O(‖W‖⁵): halving σ0 divides the residual after the linear term by
    # ~8 and after the cubic term by ~32 (measured 0.129 and 0.0324 from σ0 = 0.05 to 0.025).
    d1, B, n, tau, omega = 16, 16, 64, 0.5, 0.01
    data = SparseCoding(hadamard_dictionary(d1, 4), p=0.25, noise_std=0.4)
    fl = quenched_flow(KEY(50), data, n_samples=n, batch_size=B, augmentation="mask", temperature=tau,
                       weight_decay=omega)
    A = fl.linear_matrix()
    no_sg = QuenchedFlow(fl.X1, fl.X2, batch_size=B, temperature=tau, weight_decay=omega, stop_gradient=False)
    r3, r5, rel_no_sg = [], [], []
    for sigma0 in (0.025, 0.0125):
        W = init_neurons(KEY(51), d1, 6, sigma0=sigma0)
        rest = fl.vector_field(0.0, W) - (A @ W / tau - omega * W)
        r3.append(float(jnp.linalg.norm(rest)))
        r5.append(float(jnp.linalg.norm(rest - fl.cubic_term(W))))
        # property 7: without the stop-gradient the linear part is (A + Aᵀ)/τ (twice C+ in expectation)
        lin2 = (A + A.T) @ W / tau - omega * W
        rel_no_sg.append(float(jnp.linalg.norm(no_sg.vector_field(0.0, W) - lin2) / jnp.linalg.norm(lin2)))
    assert 0.11 < r3[1] / r3[0] < 0.14, r3
    assert 0.028 < r5[1] / r5[0] < 0.036, r5
    assert rel_no_sg[0] < 0.05 and 0.2 < rel_no_sg[1] / rel_no_sg[0] < 0.3, rel_no_sg
    # population form: −(κ/τ²) C0 W (Wᵀ C0 W)
    C0 = sparse_view_stats(data, "mask").C0
    W = init_neurons(KEY(52), d1, 6, sigma0=0.1)
    expected = -(15 / 16) / tau**2 * C0 @ W @ W.T @ C0 @ W
    np.testing.assert_allclose(cubic_correction(C0, W, temperature=tau, batch_size=B), expected, rtol=1e-12)


def test_gd_on_frozen_sample_tracks_quenched_ode_to_first_order():
    # Full-batch GD at t = ηN vs the frozen-sample ODE in the nonlinear regime (σ0 = 0.4: softmax far
    # from uniform): the gap must shrink linearly as η is halved (theory README §5). At b = 0 the field
    # is smooth; with b > 0 it jumps on |u| = b and a tight-tolerance solve stalls (see QuenchedFlow).
    # Measured gaps 8.4e-3, 4.2e-3, 2.1e-3 (ratios 0.498, 0.499).
    data = SparseCoding(hadamard_dictionary(16, 4), p=0.25, noise_std=0.4)
    fl = quenched_flow(KEY(52), data, n_samples=64, batch_size=16, augmentation="mask", temperature=0.5,
                       weight_decay=0.01)
    W0 = init_neurons(KEY(53), 16, 6, sigma0=0.4)
    W_ode = ssldyn.solve(fl, W0, 0.0, 2.0, rtol=1e-10, atol=1e-14, max_steps=200_000).final
    assert float(jnp.linalg.norm(W_ode - W0)) > 0.3 * float(jnp.linalg.norm(W0))  # it moved
    gaps = [float(jnp.linalg.norm(ssldyn.simulate_gd(fl, W0, 2.0 / N, N).final - W_ode)) for N in (100, 200, 400)]
    ratios = [gaps[1] / gaps[0], gaps[2] / gaps[1]]
    assert all(0.45 < r < 0.55 for r in ratios), (gaps, ratios)


def test_simulate_gd_on_the_frozen_sample_is_time_aware():
    # ssldyn.simulate_gd steps W ← W + η v(kη, W): the bias schedule sees t_k = kη (a hand-written loop).
    data = SparseCoding(hadamard_dictionary(16, 4), p=0.25, noise_std=0.4)
    fl = quenched_flow(KEY(54), data, n_samples=64, batch_size=16, temperature=0.5, weight_decay=0.01,
                       beta_max=1.5, horizon=0.5, ramp_fraction=0.5)
    W0 = init_neurons(KEY(55), 16, 6, sigma0=0.4)
    lr, n = 0.05, 10
    W = W0
    for k in range(n):
        W = W + lr * info_nce_vector_field(W, fl.X1, fl.X2, temperature=0.5, batch_size=16, weight_decay=0.01,
                                           bias=fl.bias(k * lr, W))
    res = ssldyn.simulate_gd(fl, W0, lr, n, save_every=5, include_initial=True)
    np.testing.assert_allclose(res.final, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.ts, [0.0, 0.25, 0.5])
    np.testing.assert_array_equal(res.saved[-1], res.final)
    # the schedule matters: the autonomous field at the final bias level gives another path
    frozen_bias = W0
    for _ in range(n):
        frozen_bias = frozen_bias + lr * fl.vector_field(fl.horizon, frozen_bias)
    assert float(jnp.max(jnp.abs(frozen_bias - res.final))) > 1e-6


# ------------------------------------------------------------------------------------------------
# trained networks
# ------------------------------------------------------------------------------------------------


def test_masking_concentrates_weights_in_span_while_no_augmentation_stays_dense():
    # SGD on fresh samples, b ≡ 0, t = 20. Linear theory: under masking the dense part decays while the
    # atoms grow, so the energy in span(M) tends to 1; without augmentation the per-sample noise is a
    # fingerprint that InfoNCE keeps using once the softmax saturates, so a dense part remains.
    data = SparseCoding.random(KEY(60), 32, 8, p=0.15, noise_std=0.35)
    W0 = jax.vmap(lambda k: init_neurons(k, 32, 16, sigma0=0.02))(jax.random.split(KEY(61), 2))
    keys = jax.random.split(KEY(62), 2)
    kw = dict(lr=0.05, n_steps=400, batch_size=128, temperature=0.5, weight_decay=1e-3, beta_max=0.0, save_every=100)
    energy = {}
    for aug in ("mask", "none"):
        res = train_sgd(keys, data, W0, augmentation=aug, **kw)
        energy[aug] = np.asarray(span_energy(res.final, data.M).mean(-1))
    assert isinstance(res, ssldyn.TrainResult)
    np.testing.assert_allclose(res.ts, [0.0, 5.0, 10.0, 15.0, 20.0])
    assert res.saved.W.shape == (2, 5, 32, 16)
    np.testing.assert_array_equal(res.saved.W[:, 0], W0)
    np.testing.assert_array_equal(res.saved.W[:, -1], res.final)
    assert np.all(np.isnan(res.saved.loss[:, 0])) and np.all(np.isfinite(res.saved.loss[:, 1:]))
    np.testing.assert_array_equal(res.saved.beta, 0.0)
    init = np.asarray(span_energy(W0, data.M).mean(-1))
    assert np.all(np.abs(init - 8 / 32) < 0.1)
    assert np.all(energy["mask"] > 0.9), energy
    assert np.all(1 - energy["none"] > 0.25), energy
    # seeds are independent under vmap: reversing the seed order reverses the results
    rev = train_sgd(keys[::-1], data, W0[::-1], augmentation="none", **kw)
    np.testing.assert_allclose(rev.final[::-1], res.final, rtol=1e-12)
    assert float(jnp.max(jnp.abs(res.final[0] - res.final[1]))) > 1e-3


def test_train_sgd_saves_block_mean_losses_and_the_schedule(small_data):
    # The loss saved after a block is the mean of the per-step minibatch losses of that block, the path
    # does not depend on how often it is saved, and beta is the schedule at the save times.
    W0 = init_neurons(KEY(63), 8, 4, sigma0=0.1)
    kw = dict(lr=0.1, n_steps=12, batch_size=16, beta_max=1.2, ramp_fraction=0.5)
    every = train_sgd(KEY(64), small_data, W0, save_every=1, **kw)
    blocks = train_sgd(KEY(64), small_data, W0, save_every=4, **kw)
    np.testing.assert_array_equal(blocks.final, every.final)
    np.testing.assert_array_equal(blocks.saved.W[:, 1:], every.saved.W[:, 4::4])
    per_step = np.asarray(every.saved.loss[0, 1:])
    np.testing.assert_allclose(blocks.saved.loss[0, 1:], per_step.reshape(3, 4).mean(1), rtol=1e-13)
    np.testing.assert_allclose(blocks.ts, [0.0, 0.4, 0.8, 1.2])
    np.testing.assert_allclose(blocks.saved.beta[0], bias_schedule(blocks.ts, horizon=1.2, beta_max=1.2), rtol=1e-14)
    assert blocks.final.shape == (1, 8, 4) and blocks.saved.loss.shape == (1, 4)


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------


def test_weight_metrics_on_known_configurations():
    M = hadamard_dictionary(16, 4)
    perm = jnp.array([2, 0, 3, 1, 0])
    W = M[:, perm] * jnp.array([1.0, -2.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(single_atom_alignment(W, M), 1.0, rtol=1e-12)
    assert int(atoms_covered(W, M, threshold=0.99)) == 4
    A = np.zeros((5, 4))
    A[np.arange(5), np.asarray(perm)] = 1.0
    np.testing.assert_allclose(atom_alignment(W, M), A, atol=1e-12)
    mix = (M[:, :1] + M[:, 1:2]) / np.sqrt(2) + 0.0
    dense = jnp.asarray(hadamard_dictionary(16, 6)[:, 5:6])  # orthogonal to the first 4 atoms
    both = jnp.concatenate([mix, dense, mix + dense], axis=1)
    np.testing.assert_allclose(span_energy(both, M), [1.0, 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(single_atom_alignment(both, M), [1 / np.sqrt(2), 0.0, 0.5], atol=1e-12)
    met = sparse_metrics(both, M, threshold=0.9)
    assert int(met["atoms_covered"]) == 0 and float(met["single_atom_share"]) == 0.0
    np.testing.assert_allclose(met["atom_norm"] ** 2 + met["dense_norm"] ** 2, jnp.sum(both**2), rtol=1e-12)


def test_span_energy_of_random_weights_is_d_over_d1():
    # ‖Mᵀw‖²/‖w‖² ~ Beta(d/2, (d1−d)/2) for isotropic w: mean d/d1.
    M = SparseCoding.random(KEY(70), 8, 3, p=0.1, noise_std=0.1).M
    e = np.asarray(span_energy(np.random.default_rng(71).standard_normal((8, 20_000)), M))
    assert abs(e.mean() - 3 / 8) < 5 * e.std() / np.sqrt(e.size)


def test_code_probe_recovers_linear_optimum():
    # The best linear predictor of z from x is (p/(p+σ²)) Mᵀx, with R² = p/(p+σ²) per coordinate.
    data = SparseCoding.random(KEY(72), 8, 3, p=0.3, noise_std=0.5)
    Xtr, Ztr = data.sample(KEY(73), 40_000, return_code=True)
    Xte, Zte = data.sample(KEY(74), 40_000, return_code=True)
    r2 = float(code_probe(Xtr, Ztr, Xte, Zte, reg=1e-8))
    target = 0.3 / (0.3 + 0.25)
    # delta-method SE of the ratio SSE/SST on the test set
    pred = (0.3 / 0.55) * np.asarray(Xte) @ np.asarray(data.M)
    e = np.sum((pred - np.asarray(Zte)) ** 2, 1)
    s = np.sum((np.asarray(Zte) - np.asarray(Ztr).mean(0)) ** 2, 1)
    ratio = e.sum() / s.sum()
    se = np.std(e - ratio * s) / (np.sqrt(len(e)) * s.mean())
    assert abs(r2 - target) < 5 * se + 3 * 8 / 40_000, (r2, target, se)
    assert float(code_probe(Ztr, Ztr, Zte, Zte)) > 0.999


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------


def test_bad_inputs_raise_with_argument_names(small_data):
    with pytest.raises(ValueError, match="`M`"):
        SparseCoding(jnp.ones((4, 2)), p=0.1, noise_std=0.1)
    with pytest.raises(ValueError, match="`p`"):
        SparseCoding(hadamard_dictionary(4, 2), p=1.5, noise_std=0.1)
    with pytest.raises(ValueError, match="`noise_std`"):
        SparseCoding(hadamard_dictionary(4, 2), p=0.5, noise_std=-1.0)
    with pytest.raises(ValueError, match="`d`"):
        SparseCoding.random(KEY(0), 4, 5, p=0.1, noise_std=0.1)
    with pytest.raises(ValueError, match="`augmentation`"):
        make_views(KEY(0), jnp.ones((3, 8)), "crop")
    X = jnp.ones((6, 8))
    W = jnp.ones((8, 2))
    with pytest.raises(ValueError, match="`batch_size`"):
        wen_li_info_nce(W, X, X, batch_size=4)
    with pytest.raises(ValueError, match="`temperature`"):
        wen_li_info_nce(W, X, X, temperature=0.0)
    with pytest.raises(ValueError, match="`X1`"):
        wen_li_info_nce(jnp.ones((5, 2)), X, X)
    with pytest.raises(TypeError, match="`data`"):
        sparse_view_stats(np.eye(3))
    with pytest.raises(ValueError, match="`save_every`"):
        train_sgd(KEY(0), small_data, jnp.ones((8, 2)), n_steps=10, save_every=3, batch_size=4)
    with pytest.raises(ValueError, match="`W0`"):
        train_sgd(KEY(0), small_data, jnp.ones((7, 2)), n_steps=10, batch_size=4)
    with pytest.raises(ValueError, match="`W`"):
        span_energy(jnp.ones((7, 2)), small_data.M)
    with pytest.raises(ValueError, match="`Cp`"):
        linearised_solution(jnp.arange(9.0).reshape(3, 3), jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="`lr`"):
        ssldyn.simulate_gd(QuenchedFlow(jnp.ones((4, 8)), jnp.ones((4, 8))), jnp.ones((8, 2)), 0.0, 3)

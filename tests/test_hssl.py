"""Tests of ssldyn.hssl (Keller, Suau & Zappella 2023), each against an independent computation.

- the circular CNN against jax.lax.conv_general_dilated on wrap-padded input, its exact equivariance,
  the broken equivariance of the locally connected control, the identity-fiber identity, the
  receptive field measured by perturbation;
- fiber ViewStats: the Toeplitz closed form against explicit position-resolved sums and against a
  Monte-Carlo sampler (z-scores), δ_0 offsets, H-SSL vs A-SSL samplers;
- flows: autodiff fields against hand-written ones, untied-started-tied vs tied at t/L, pooling
  degeneracy, the commuting closed form and minimisers, monotone loss, GD vs ODE at O(lr).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn import data as D
from ssldyn import hssl as H
from ssldyn._compare import compare_along, lr_order
from ssldyn._solve import simulate_gd, solve

L = 12


@pytest.fixture(scope="module")
def signals():
    X, y, _ = D.make_mnist1d(0, 60, length=L)
    return jnp.asarray(X), y


@pytest.fixture(scope="module")
def nets():
    spec_c = H.backbone_spec("cnn", length=L, channels=4, kernel=3, dilations=(1, 2), n_layers=3)
    spec_l = spec_c._replace(arch="lc")
    key = jax.random.key(0)
    return spec_c, H.init_backbone(key, spec_c), spec_l, H.init_backbone(key, spec_l)


# --------------------------------------------------------------------------------------------------
# Networks and the group
# --------------------------------------------------------------------------------------------------

def _lax_cnn(params, x, spec):
    """Independent circular CNN: wrap padding + lax.conv_general_dilated (a cross-correlation)."""
    h = x[None, :, None]                                           # (1, L, 1) NWC
    for i, (p, (K, d)) in enumerate(zip(params, spec.layers)):
        if d == 0:       # pointwise layer: its K taps read one position, i.e. a 1x1 kernel summed over taps
            p, K, d = dict(p, w=jnp.sum(p["w"], axis=0, keepdims=True)), 1, 1
        pad = d * (K - 1) // 2
        hp = jnp.concatenate([h[:, -pad:], h, h[:, :pad]], axis=1) if pad else h
        h = jax.lax.conv_general_dilated(hp, p["w"], (1,), "VALID", rhs_dilation=(d,),
                                         dimension_numbers=("NWC", "WIO", "NWC")) + p["b"]
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h[0]


def test_cnn_matches_lax_convolution(signals, nets):
    X, _ = signals
    spec_c, pc, _, _ = nets
    pc = [dict(p, b=p["b"] + 0.1 * i) for i, p in enumerate(pc)]  # non-zero biases
    np.testing.assert_allclose(H.apply_backbone(pc, X[3], spec_c), _lax_cnn(pc, X[3], spec_c), atol=1e-12)


def test_exact_equivariance_and_broken_control(signals, nets):
    X, _ = signals
    spec_c, pc, spec_l, pl = nets
    for g in (1, 5, -3):
        assert float(H.equivariance_error(pc, X[:10], g, spec_c)) < 1e-13
        # untied weights: the shifted field is a different function, relative error O(1)
        assert float(H.equivariance_error(pl, X[:10], g, spec_l)) > 0.2


def test_identity_fiber_identity(signals, nets):
    X, _ = signals
    spec_c, pc, _, _ = nets
    x = X[7]
    for g in range(L):
        F_shift = H.apply_backbone(pc, H.act_signal(x, g), spec_c)
        np.testing.assert_allclose(H.fiber(F_shift, 0), H.fiber(H.apply_backbone(pc, x, spec_c), -g), atol=1e-13)
        np.testing.assert_allclose(F_shift, H.act_field(H.apply_backbone(pc, x, spec_c), g), atol=1e-13)


def test_lc_started_tied_is_the_cnn(signals, nets):
    X, _ = signals
    spec_c, pc, spec_l, _ = nets
    pl = H.tie_to_lc(pc, L)
    np.testing.assert_allclose(H.encode_batch(pl, X[:5], spec_l), H.encode_batch(pc, X[:5], spec_c), atol=1e-13)


@pytest.mark.parametrize(("kernel", "dilations"), [(3, (1,)), (5, (1, 1)), (3, (1, 2)), (5, (1, 2))])
def test_receptive_field_by_perturbation(kernel, dilations):
    Ln = 24
    spec = H.backbone_spec("cnn", length=Ln, channels=3, kernel=kernel, dilations=dilations)
    # large positive biases keep every ReLU active, so no tap is hidden by a dead unit
    params = [dict(p, b=p["b"] + 10.0) for p in H.init_backbone(jax.random.key(1), spec)]
    x = jax.random.normal(jax.random.key(2), (Ln,))
    # which inputs does fiber 0 depend on? the Jacobian row support
    J = jax.jacobian(lambda v: H.apply_backbone(params, v, spec)[0])(x)     # (C, L)
    support = int(np.sum(np.any(np.abs(np.asarray(J)) > 0, axis=0)))
    assert support == H.receptive_field(kernel, dilations) == spec.receptive_field


def test_group_element_validation():
    assert H.group_element(-1, 5) == 4
    assert H.group_element(np.roll(np.eye(5), 2, axis=0), 5) == 2
    with pytest.raises(TypeError, match="`g`"):
        H.group_element(1.5, 5)
    flip = np.eye(5)[::-1]
    with pytest.raises(ValueError, match="`g` is not a group element"):
        H.group_element(flip, 5)
    with pytest.raises(ValueError, match="`g`"):
        H.group_element(np.eye(4), 5)
    with pytest.raises(ValueError, match="dilations.*larger than the signal"):
        H.backbone_spec(length=20, kernel=5, dilations=(1, 2, 4))
    with pytest.raises(ValueError, match="arch"):
        H.backbone_spec("mlp")


# --------------------------------------------------------------------------------------------------
# Fiber ViewStats
# --------------------------------------------------------------------------------------------------

def test_autocorrelation_against_loops(signals):
    X, _ = signals
    Xn = np.asarray(X)
    rho = [np.mean([np.mean([Xn[i, g] * Xn[i, (g + ell) % L] for g in range(L)]) for i in range(len(Xn))])
           for ell in range(L)]
    np.testing.assert_allclose(H.position_autocorrelation(X), rho, atol=1e-12)


@pytest.mark.parametrize("m", [0, 1, 3])
def test_closed_form_equals_position_resolved_sums(signals, m):
    X, _ = signals
    r = 4
    p = H.offset_probs(m, L)
    st = H.fiber_view_stats(X, r, p)
    Cgg = H.fiber_cross_moments(X, r)
    pj = H.joint_offsets(p)
    C0 = jnp.mean(Cgg[jnp.arange(L), jnp.arange(L)], axis=0)
    Cp = jnp.einsum("gh,ghab->ab", pj, Cgg)
    np.testing.assert_allclose(st.C0, C0, atol=1e-12)
    np.testing.assert_allclose(st.Cp, 0.5 * (Cp + Cp.T), atol=1e-12)
    assert float(jnp.min(jnp.linalg.eigvalsh(st.C0))) > -1e-12                 # PSD
    np.testing.assert_allclose(st.C0, st.C0.T, atol=0)
    if m == 0:
        np.testing.assert_allclose(st.Cp, st.C0, atol=1e-14)


def test_monte_carlo_matches_closed_form(signals):
    X, _ = signals
    r, n_pairs = 4, 40_000
    p = H.offset_probs(2, L)
    st = H.fiber_view_stats(X, r, p)
    A, Pz, N = H.hssl_pairs(jax.random.key(3), X, r, p, n_pairs)
    # z-scores entry by entry with the sampler's own standard errors
    for est_terms, target in (
        (0.5 * (A[:, :, None] * A[:, None, :] + Pz[:, :, None] * Pz[:, None, :]), st.C0),
        (0.5 * (A[:, :, None] * Pz[:, None, :] + Pz[:, :, None] * A[:, None, :]), st.Cp),
        (0.5 * (A[:, :, None] * N[:, None, :] + N[:, :, None] * A[:, None, :]), st.Cm),
    ):
        mean = jnp.mean(est_terms, 0)
        se = jnp.std(est_terms, 0) / np.sqrt(n_pairs)
        z = np.abs(np.asarray((mean - target) / se))
        assert z.max() < 5.0, z.max()     # 16 entries; a 5-sigma excursion has probability ~1e-5
    mc = H.sampled_fiber_view_stats(jax.random.key(3), X, r, p, n_pairs)
    np.testing.assert_allclose(mc.Cp, jnp.mean(0.5 * (A[:, :, None] * Pz[:, None, :] + Pz[:, :, None] * A[:, None, :]), 0),
                               atol=1e-12)


def test_hssl_and_assl_samplers_identical(signals):
    X, _ = signals
    r = 4
    p = H.offset_probs(3, L)
    key = jax.random.key(11)
    for a, b in zip(H.hssl_pairs(key, X, r, p, 500), H.assl_pairs(key, X, r, p, 500)):
        np.testing.assert_array_equal(a, b)
    sh = H.sampled_fiber_view_stats(key, X, r, p, 500, sampler="hssl")
    sa = H.sampled_fiber_view_stats(key, X, r, p, 500, sampler="assl")
    W0 = 0.05 * jax.random.normal(jax.random.key(1), (r, 2))
    th = solve(H.tied_flow(sh), W0, 0.0, 2.0, ts=5, rtol=1e-9, atol=1e-12)   # one compilation shared by
    ta = solve(H.tied_flow(sa), W0, 0.0, 2.0, ts=5, rtol=1e-9, atol=1e-12)   # every (4, 2) tied solve below
    np.testing.assert_array_equal(th.ys, ta.ys)


def test_network_path_equals_stats_path(signals):
    """The population spectral loss computed from the linear conv feature maps (every fiber pair
    weighted by p, every negative pair by 1/L²) equals the ViewStats loss."""
    X, _ = signals
    r, k = 3, 2
    p = H.offset_probs(2, L)
    W = jax.random.normal(jax.random.key(5), (r, k))
    F = jnp.einsum("nga,ak->ngk", H.signal_fibers(X, r), W)               # linear fiber fields
    pj = H.joint_offsets(p)
    pos = jnp.einsum("gh,ngk,nhk->", pj, F, F) / len(X)
    Fm = F.reshape(-1, k)                                                 # all fibers of all signals
    neg = jnp.mean((Fm @ Fm.T) ** 2)
    np.testing.assert_allclose(-2 * pos + neg, H.linear_loss(W, H.fiber_view_stats(X, r, p)), rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("objective", ["spectral", "infonce"])
def test_fields_autodiff_vs_hand_written(signals, objective):
    X, _ = signals
    r, k = 3, 2
    p = H.offset_probs(1, L)
    st = H.fiber_view_stats(X, r, p)
    W = jax.random.normal(jax.random.key(0), (r, k))
    np.testing.assert_allclose(H.tied_flow(st, objective).vector_field(0.0, W), H.tied_field(W, st, objective), rtol=1e-10)
    Cgg, pj = H.fiber_cross_moments(X, r), H.joint_offsets(p)
    Ws = jax.random.normal(jax.random.key(1), (L, r, k))
    np.testing.assert_allclose(H.untied_flow(Cgg, pj, objective=objective).vector_field(0.0, Ws),
                               H.untied_field(Ws, Cgg, pj, objective=objective), rtol=1e-10, atol=1e-12)
    # tied field = sum of the per-tower fields at tied weights (any data)
    Wt = jnp.broadcast_to(W, (L, r, k))
    np.testing.assert_allclose(jnp.sum(H.untied_field(Wt, Cgg, pj, objective=objective), 0),
                               H.tied_field(W, st, objective), rtol=1e-10, atol=1e-12)


def test_untied_started_tied_stays_tied_at_t_over_L(signals):
    X, _ = signals
    Xo = jnp.concatenate([jnp.roll(X[:6], s, axis=1) for s in range(L)])   # full orbits: exactly stationary
    r, k, T = 3, 2, 3.0
    p = H.offset_probs(2, L)
    W0 = 0.1 * jax.random.normal(jax.random.key(2), (r, k))
    un = solve(H.untied_flow(H.fiber_cross_moments(Xo, r), H.joint_offsets(p)), jnp.broadcast_to(W0, (L, r, k)),
               0.0, T, ts=4, rtol=1e-10, atol=1e-12)
    ti = solve(H.tied_flow(H.fiber_view_stats(Xo, r, p)), W0, 0.0, T / L, ts=4, rtol=1e-10, atol=1e-12)
    for j in range(4):
        assert float(H.tiedness(un.ys[j])) < 1e-9
        np.testing.assert_allclose(un.ys[j][0], ti.ys[j], atol=1e-8)
    assert float(jnp.linalg.norm(ti.ys[-1] - W0)) > 1e-2          # it actually moved


def test_untied_random_starts_lose_invariance(signals):
    X, _ = signals
    r, k = 3, 2
    p = H.offset_probs(1, L)
    Ws0 = 0.1 * jax.random.normal(jax.random.key(4), (L, r, k))
    un = solve(H.untied_flow(H.fiber_cross_moments(X, r), H.joint_offsets(p)), Ws0, 0.0, 20.0, ts=4,
               rtol=1e-10, atol=1e-12)
    assert float(H.tiedness(un.ys[-1])) > 0.1
    assert float(H.pooled_invariance_gap(un.ys[-1], X, 1)) > 0.05
    assert float(H.pooled_invariance_gap(un.ys[-1][0], X, 1)) < 1e-12     # a tied encoder is invariant


def test_pooling_degeneracy(signals, nets):
    X, _ = signals
    spec_c, pc, spec_l, pl = nets
    assert float(H.network_pooling_degeneracy(jax.random.key(0), pc, X, spec_c)) < 1e-12
    assert float(H.network_pooling_degeneracy(jax.random.key(0), pl, X, spec_l)) > 1e-3
    W = jax.random.normal(jax.random.key(1), (4, 3))
    st = H.group_only_pooled_stats(jax.random.key(2), X, lambda Z: H.pooled_linear_features(W, Z))
    np.testing.assert_allclose(st.Cp, st.C0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st.Dp, 0.0, atol=1e-10)


def _commuting_stats(seed=0, r=5):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(r, r)))
    lam = np.array([2.0, 1.5, 1.0, 0.7, 0.4])[:r]
    c = np.array([0.5, 1.2, -0.3, 0.6, 0.0])[:r]
    C0 = U @ np.diag(lam) @ U.T
    Cp = U @ np.diag(c) @ U.T
    return ssldyn.ViewStats(C0=jnp.asarray(C0), Cp=jnp.asarray(Cp), Dp=jnp.asarray(2 * C0 - 2 * Cp)), U, lam, c


@pytest.mark.parametrize("objective", ["spectral", "infonce"])
def test_commuting_closed_form_and_minimisers(objective):
    st, U, lam, c = _commuting_stats()
    # aligned start: the closed form against the ODE
    sol = H.CommutingSolution(st, [1, 2], [0.1, 0.3], objective)     # c > 0 and c < 0
    W0 = sol(0.0)
    # the aligned set is invariant but unstable (rates ~ 2α(c_i - c_j)): keep α·T moderate so that
    # rounding errors are not amplified past the tolerance (α = 2 spectral, 1/τ = 10 InfoNCE)
    T_aligned = 3.0 if objective == "spectral" else 0.6
    traj = solve(H.tied_flow(st, objective), W0, 0.0, T_aligned, ts=7, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.ys, sol.trajectory(traj.ts).ys, atol=1e-7)
    # every branch (c > 0, c < 0, c = 0): the closed form's time derivative is the flow's field
    sol3 = H.CommutingSolution(st, [1, 2, 4], [0.1, 0.3, 0.2], objective)
    for t in (0.0, 0.4, 2.0):
        np.testing.assert_allclose(jax.jacfwd(sol3.evaluate)(jnp.asarray(t)), H.tied_field(sol3(t), st, objective),
                                   atol=1e-10)
    # generic small start: gradient flow ends at the minimiser's Gram W Wᵀ and minimum loss
    k = 2
    Wstar, loss_star, modes = H.commuting_minimiser(st, k, objective)
    ratio = np.where(c > 0, c / lam, -np.inf)
    assert set(modes.tolist()) == set(np.argsort(-ratio)[:k].tolist()) == {1, 3}
    tau = 0.1
    scale = 1.0 if objective == "spectral" else tau
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(Wstar @ Wstar.T))[-k:],
                               np.sort(scale * c[modes] / lam[modes] ** 2), rtol=1e-12)
    W0 = 0.05 * jax.random.normal(jax.random.key(0), (5, k))
    T = 60.0 if objective == "spectral" else 3.0
    end = solve(H.tied_flow(st, objective), W0, 0.0, T, ts=7, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(end.ys[-1] @ end.ys[-1].T, Wstar @ Wstar.T, atol=1e-6)
    losses = jax.vmap(lambda W: H.linear_loss(W, st, objective))(end.ys)
    assert np.all(np.diff(np.asarray(losses)) <= 1e-12)                   # monotone
    np.testing.assert_allclose(losses[-1], loss_star, rtol=1e-6)
    if objective == "spectral":
        np.testing.assert_allclose(loss_star, -np.sum((c[modes] / lam[modes]) ** 2), rtol=1e-12)


def test_stationary_points_and_monotone_loss_on_data(signals):
    X, _ = signals
    r, k = 4, 2
    st = H.fiber_view_stats(X, r, H.offset_probs(1, L))
    W0 = 0.05 * jax.random.normal(jax.random.key(8), (r, k))
    traj = solve(H.tied_flow(st), W0, 0.0, 400.0, ts=5, rtol=1e-9, atol=1e-12)
    losses = np.asarray(jax.vmap(lambda W: H.linear_loss(W, st))(traj.ys))
    assert np.all(np.diff(losses) <= 1e-12)
    W = traj.ys[-1]
    resid = st.Cp @ W - st.C0 @ W @ (W.T @ st.C0 @ W)
    assert float(jnp.linalg.norm(resid)) < 1e-6 * float(jnp.linalg.norm(st.Cp @ W))


def test_gd_vs_ode_first_order(signals):
    X, _ = signals
    r, k, T = 4, 2, 2.0
    st = H.fiber_view_stats(X, r, H.offset_probs(2, L))
    flow = H.tied_flow(st)
    W0 = 0.1 * jax.random.normal(jax.random.key(9), (r, k))
    lrs = [0.02, 0.01, 0.005]
    gaps = []
    for lr in lrs:
        n = int(round(T / lr))
        gd = simulate_gd(flow, W0, lr, n, save_every=n // 5)
        ode = solve(flow, W0, 0.0, T, ts=gd.ts, rtol=1e-9, atol=1e-12)
        gaps.append(float(compare_along(gd, ode, invariant="state").max_gap))
    order = lr_order(lrs, gaps)
    assert 0.85 < order < 1.15, (gaps, order)
    assert gaps[1] / gaps[0] == pytest.approx(0.5, abs=0.08)


def test_bad_input_messages(signals):
    X, _ = signals
    with pytest.raises(ValueError, match="max_offset.*outside the signal"):
        H.offset_probs(L, L)
    with pytest.raises(ValueError, match="`r`.*larger than the signal"):
        H.fiber_view_stats(X, L + 1, H.offset_probs(1, L))
    with pytest.raises(ValueError, match="`p`"):
        H.fiber_view_stats(X, 3, jnp.ones(L + 3) / (L + 3))
    with pytest.raises(ValueError, match="Mismatched fiber shapes"):
        H.untied_loss(jnp.ones((L, 3, 2)), jnp.ones((L, L, 4, 4)), jnp.ones((L, L)))
    with pytest.raises(ValueError, match="`W`"):
        H.linear_loss(jnp.ones((5, 2)), H.fiber_view_stats(X, 3, H.offset_probs(1, L)))
    with pytest.raises(ValueError, match="objective"):
        H.tied_flow(H.fiber_view_stats(X, 3, H.offset_probs(1, L)), "barlow")
    F = jnp.ones((L, 3))
    with pytest.raises(TypeError, match="`g`"):
        H.fiber(F, 0.5)


# --------------------------------------------------------------------------------------------------
# Networks: modes and training
# --------------------------------------------------------------------------------------------------

def test_hssl_mode_equals_assl_fiber_mode_for_the_cnn_only(signals):
    X, _ = signals
    xb = jnp.asarray(X[:8])
    key = jax.random.key(3)
    for arch, same in (("cnn", True), ("lc", False)):
        spec = H.backbone_spec(arch, length=L, channels=4, kernel=3, dilations=(1,), n_layers=1)
        cfg = H.ssl_config("hssl", head=(4,), max_offset=2)
        params = H._train.init_model(jax.random.key(0), spec, cfg, jnp.float64)
        pairs = (("hssl", "assl_fiber"), ("hssl_aug", "assl_fiber_aug")) if same else (("hssl", "assl_fiber"),)
        for a, b in pairs:
            za = H.pair_embeddings(params, key, xb, spec, cfg._replace(mode=a))
            zb = H.pair_embeddings(params, key, xb, spec, cfg._replace(mode=b))
            gap = max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(za, zb))
            assert (gap < 1e-12) if same else (gap > 1e-3), (arch, a, gap)


def test_train_ssl_runs_deterministically(signals):
    X, _ = signals
    spec = H.backbone_spec("cnn", length=L, channels=4, kernel=3, dilations=(1,), n_layers=1)
    cfg = H.ssl_config("hssl", n_steps=40, batch_size=16, lr=1e-2, head=(4,), max_offset=2, save_every=10)
    keys = jax.random.split(jax.random.key(0), 2)
    p1, l1, ts = H.train_ssl(keys, X, spec, cfg)
    p2, l2, _ = H.train_ssl(keys, X, spec, cfg)
    np.testing.assert_array_equal(l1, l2)
    assert l1.shape == (2, 4)
    np.testing.assert_allclose(ts, [0.1, 0.2, 0.3, 0.4])                 # t = lr x steps
    assert np.all(np.isfinite(np.asarray(l1)))
    # the random mode returns the same initial parameters the trained cells start from
    p0, _, _ = H.train_ssl(keys, X, spec, cfg._replace(mode="random", n_steps=0))
    assert p0["backbone"][0]["w"].shape == p1["backbone"][0]["w"].shape == (2, 3, 1, 4)
    np.testing.assert_array_equal(p0["backbone"][0]["w"][:, 0, 0, 0] != p1["backbone"][0]["w"][:, 0, 0, 0], True)
    with pytest.raises(ValueError, match="mode"):
        H.ssl_config("simclr")
    with pytest.raises(ValueError, match="Mismatched fiber shapes"):
        H.train_ssl(keys, X[:, :10], spec, cfg)


# --------------------------------------------------------------------------------------------------
# 2-D variants
# --------------------------------------------------------------------------------------------------

def test_translation_cnn_2d_equivariance():
    S = 8
    x = jax.random.normal(jax.random.key(0), (S, S))
    apply = jax.jit(H.apply_translation_cnn)       # one compilation per architecture, not op-by-op dispatch
    pc = H.init_translation_cnn(jax.random.key(1), S, channels=3, n_layers=2)
    pl = H.init_translation_cnn(jax.random.key(1), S, channels=3, n_layers=2, arch="lc")
    g = (2, -3)
    F = apply(pc, x)
    np.testing.assert_allclose(apply(pc, H.translate2d(x, g)), jnp.roll(F, g, axis=(0, 1)), atol=1e-12)
    # independent check of one circular layer against an explicit sum over taps
    w = pc[0]["w"]
    xn = np.asarray(x)
    ref = sum(w[i, j, 0][None, None, :] * np.roll(xn, (-(i - 1), -(j - 1)), axis=(0, 1))[..., None]
              for i in range(3) for j in range(3))
    np.testing.assert_allclose(H._model._conv2d_circ(x[..., None], w), ref, atol=1e-12)
    Fl = apply(pl, x)
    gap = jnp.linalg.norm(apply(pl, H.translate2d(x, g)) - jnp.roll(Fl, g, axis=(0, 1)))
    assert float(gap / jnp.linalg.norm(Fl)) > 0.1
    with pytest.raises(TypeError, match="`g`"):
        H.translate2d(x, 1.5)


def test_p4_equivariance_and_fibers():
    S = 12
    x = jnp.pad(jax.random.uniform(jax.random.key(0), (8, 8)), 2)         # an 8x8 image padded to 12x12
    pc, pl = H.init_p4(jax.random.key(1), channels=3), H.init_p4(jax.random.key(1), channels=3, arch="lc")
    apply = jax.jit(H.apply_p4)
    F = apply(pc, x)
    assert F.shape == (4, S, S, 3)
    for g in range(4):
        Fg = apply(pc, H.rotate_p4(x, g))
        np.testing.assert_allclose(Fg, H.act_p4_field(F, g), atol=1e-12)
        # identity-fiber identity on the pooled orientation fibers
        np.testing.assert_allclose(H.p4_fibers(Fg)[0], H.p4_fibers(F)[(-g) % 4], atol=1e-12)
    Fl = apply(pl, x)
    gap = jnp.linalg.norm(apply(pl, H.rotate_p4(x, 1)) - H.act_p4_field(Fl, 1)) / jnp.linalg.norm(Fl)
    assert float(gap) > 0.1
    assert H.rotation_element(np.array([[0.0, -1.0], [1.0, 0.0]])) == 1
    with pytest.raises(ValueError, match="`g` is not a group element"):
        H.rotation_element(np.array([[1.0, 0.0], [0.0, -1.0]]))         # a reflection
    with pytest.raises(TypeError, match="`g`"):
        H.rotate_p4(x, 0.5)


# --------------------------------------------------------------------------------------------------
# 2-D fiber maps, training pieces and image data
# --------------------------------------------------------------------------------------------------

def test_2d_conv_matches_lax_convolution():
    """The patches × matrix circular convolution against wrap padding + lax.conv (a second formulation)."""
    x = jax.random.normal(jax.random.key(0), (7, 7, 2))
    w = jax.random.normal(jax.random.key(1), (3, 3, 2, 4))
    ref = jax.lax.conv_general_dilated(jnp.pad(x, ((1, 1), (1, 1), (0, 0)), mode="wrap")[None], w, (1, 1), "VALID",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
    np.testing.assert_allclose(H._model._conv2d_circ(x, w), ref, atol=1e-12)
    # the untied layer with every position's kernel equal to w is the convolution
    np.testing.assert_allclose(H._model._conv2d_untied(x, jnp.broadcast_to(w, (7, 7) + w.shape)), ref, atol=1e-12)


@pytest.mark.parametrize("group", ["translation", "p4"])
def test_2d_fiber_maps_equivariance_and_group_coding(group):
    S = 6
    specs = {a: H.backbone2d_spec(group, a, side=S, channels=2, kernel=3, n_layers=2) for a in ("cnn", "lc")}
    spec = specs["cnn"]
    x = np.asarray(jax.random.uniform(jax.random.key(2), (S, S)))
    G = spec.n_elements
    for g in range(G):
        # the action table against np.roll / np.rot90 of the image
        a, b = divmod(g, spec.moduli[1])
        ref = np.roll(x, (a, b), axis=(0, 1)) if group == "translation" else np.rot90(x, a)
        np.testing.assert_array_equal(H.act_image(x, g, spec), ref)
        assert int(H.element_compose(g, H.element_inverse(g, spec), spec)) == 0
    # composition of int codes = composition of the actions
    for g, h in [(1, G - 1), (G // 2, 3 % G), (G - 1, G - 1)]:
        np.testing.assert_array_equal(H.act_image(H.act_image(x, g, spec), h, spec),
                                      H.act_image(x, int(H.element_compose(g, h, spec)), spec))
    X = jnp.asarray(jax.random.uniform(jax.random.key(3), (2, S, S)))
    errs = {}
    for arch, sp in specs.items():
        p = H.init_backbone2d(jax.random.key(4), sp)
        assert H.fibers2d(p, X[0], sp).shape == (G, 2)
        errs[arch] = float(H.fiber_equivariance_error(p, X, G - 1, sp))
    assert errs["cnn"] < 1e-12 and errs["lc"] > 0.05, errs
    with pytest.raises(ValueError, match="`g`"):
        H.act_image(x, G, spec)
    with pytest.raises(TypeError, match="`g`"):
        H.act_image(x, 1.0, spec)
    with pytest.raises(ValueError, match="`x`"):
        H.act_image(np.zeros((S + 1, S + 1)), 0, spec)


def test_2d_hssl_pairs_equal_assl_fiber_pairs_for_the_cnn_only():
    S, B = 6, 5
    xb = jax.random.uniform(jax.random.key(5), (B, S, S))
    for group in ("translation", "p4"):
        g1 = jnp.arange(B) * 7 % (S * S if group == "translation" else 4)
        g2 = (g1 + 3) % (S * S if group == "translation" else 4)
        gaps = {}
        for arch in ("cnn", "lc"):
            sp = H.backbone2d_spec(group, arch, side=S, channels=3)
            bp = H.init_backbone2d(jax.random.key(6), sp)
            a = H.fiber_pairs_2d(bp, xb, g1, g2, sp, "assl_fiber")
            h = H.fiber_pairs_2d(bp, xb, g1, g2, sp, "hssl")
            gaps[arch] = max(float(jnp.max(jnp.abs(u - v)) / jnp.max(jnp.abs(u))) for u, v in zip(a, h))
        assert gaps["cnn"] < 1e-12 and gaps["lc"] > 0.05, (group, gaps)


def test_trained_and_initial_parameters_follow_the_requested_dtype():
    """x64 is on here (conftest): dtype=float32 gives float32 weights and biases in every mode (the
    He-normal scales were NumPy float64 scalars, which promoted the weights, not the biases, to
    float64); dtype=float64 gives float64 throughout."""
    dtypes = lambda tree: {str(a.dtype) for a in jax.tree_util.tree_leaves(tree)}
    keys = jax.random.split(jax.random.key(3), 2)
    X = jax.random.normal(jax.random.key(4), (24, L))
    for arch in ("cnn", "lc"):
        spec = H.backbone_spec(arch, length=L, channels=3, kernel=3, dilations=(1,), n_layers=2)
        for mode, n in (("hssl", 2), ("random", 0)):
            cfg = H.ssl_config(mode, n_steps=n, batch_size=8, head=(4, 3), max_offset=1)
            params, losses, ts = H.train_ssl(keys, X, spec, cfg, dtype=jnp.float32)
            assert dtypes(params) == {"float32"} and losses.dtype == ts.dtype == jnp.float32, (arch, mode)
        params, _, _ = H.train_ssl(keys, X, spec, cfg, dtype=jnp.float64)
        assert dtypes(params) == {"float64"}
    S = 6
    X2 = jax.random.uniform(jax.random.key(5), (24, S, S))
    for group in ("translation", "p4"):
        sp = H.backbone2d_spec(group, "cnn", side=S, channels=2)
        for mode, n in (("hssl", 2), ("random", 0)):
            cfg = H.ssl_config(mode, n_steps=n, batch_size=8, head=(4, 3), max_offset=1)
            params, _, _ = H.train_ssl_2d(keys, X2, sp, cfg, dtype=jnp.float32)
            assert dtypes(params) == {"float32"}, (group, mode)


def test_train_ssl_2d_runs_and_checks_input():
    S = 6
    sp = H.backbone2d_spec("p4", "cnn", side=S, channels=2)
    X = jax.random.uniform(jax.random.key(7), (40, S, S))
    keys = jax.random.split(jax.random.key(8), 2)
    cfg = H.ssl_config("hssl", n_steps=4, batch_size=8, head=(4, 3), max_offset=1, save_every=2)
    p1, l1, ts = H.train_ssl_2d(keys, X, sp, cfg)
    assert l1.shape == (2, 2) and np.all(np.isfinite(np.asarray(l1)))
    np.testing.assert_allclose(ts, [2 * cfg.lr, 4 * cfg.lr])                    # t = lr × steps
    # the random mode returns untrained backbones with the trained modes' shapes
    p0, l0, _ = H.train_ssl_2d(keys, X, sp, cfg._replace(mode="random"))
    assert l0.shape == (2, 0) and p0["backbone"]["group"].shape == p1["backbone"]["group"].shape
    Z = H.pooled_features_2d(p0["backbone"], jnp.concatenate([X, X, X[:20]]), sp)
    ref = jnp.mean(H.fibers2d(jax.tree_util.tree_map(lambda a: a[1], p0["backbone"]), X[3], sp), axis=0)
    np.testing.assert_allclose(Z[1, 3], ref, atol=1e-12)
    with pytest.raises(ValueError, match="`X_train`"):
        H.train_ssl_2d(keys, X[:, :5, :5], sp, cfg)
    with pytest.raises(ValueError, match="`mode`"):
        H.train_ssl_2d(keys, X, sp, cfg._replace(mode="hssl_aug"))
    with pytest.raises(TypeError, match="`spec`"):
        H.train_ssl_2d(keys, X, H.backbone_spec("cnn", length=12, dilations=(1,)), cfg)
    with pytest.raises(ValueError, match="`n_layers`"):
        H.backbone2d_spec("p4", n_layers=3)
    with pytest.raises(ValueError, match="`group`"):
        H.backbone2d_spec("scale")
    with pytest.raises(ValueError, match="`X`"):
        H.pooled_features_2d(p0["backbone"], X, sp)                          # 40 is not a multiple of 100


def test_image_padding_downsampling_and_digits():
    X = np.arange(2 * 8 * 8, dtype=float).reshape(2, 8, 8)
    P = H.pad_images(X, 12)
    assert P.shape == (2, 12, 12)
    np.testing.assert_array_equal(P[:, 2:10, 2:10], X)
    assert P.sum() == X.sum()                                                # the border is zero
    D4 = H.downsample_images(X, 4)
    ref = np.array([[[X[n, 4 * i:4 * i + 4, 4 * j:4 * j + 4].mean() for j in range(2)] for i in range(2)]
                    for n in range(2)])
    np.testing.assert_allclose(D4, ref)
    with pytest.raises(ValueError, match="`side`"):
        H.pad_images(X, 11)
    with pytest.raises(ValueError, match="`factor`"):
        H.downsample_images(X, 3)
    with pytest.raises(ValueError, match="`X`"):
        H.pad_images(X[0], 12)
    sk = pytest.importorskip("sklearn.datasets")
    Xd, yd = H.load_digits_padded(12)
    raw = sk.load_digits()
    assert Xd.shape == (1797, 12, 12) and yd.shape == (1797,)
    np.testing.assert_allclose(Xd[:, 2:10, 2:10], raw.images / 16.0, atol=1e-7)
    assert float(np.abs(Xd).sum()) == pytest.approx(float(np.abs(raw.images / 16.0).sum()), rel=1e-6)
    np.testing.assert_array_equal(yd, raw.target)

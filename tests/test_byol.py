"""Linear BYOL/SimSiam with a predictor (Tian et al. 2021), DirectPred and IsoLoss (Halvagal et al. 2023).

Every check compares against an independent computation: the per-mode ODE against the full-matrix ODE
(aligned start), the invariant against its conservation law, fixed points against the quadratic formula
and the Jacobian, vector fields against `jax.grad` of the batch losses, closed forms against numerical
integration, and SGD against the deterministic flow. (Package `ssldyn.byol`.)
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn import byol

TOL = dict(rtol=1e-10, atol=1e-12)
KW = dict(alpha_p=1.5, weight_decay=0.05, beta=2.0)
LAM = jnp.array([1.0, 0.7, 0.4])
LAM_AUG = jnp.array([0.3, 0.2, 0.5])


@functools.lru_cache(maxsize=None)
def aligned_runs():
    """Per-mode and full-matrix solves from the same aligned start (non-isotropic data, EMA, decay)."""
    d, k = 5, 3
    V, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (d, d)))
    lam_full = jnp.concatenate([LAM, jnp.array([0.2, 0.1])])
    aug_full = jnp.concatenate([LAM_AUG, jnp.array([0.1, 0.1])])
    Cp = (V * lam_full) @ V.T
    C0 = (V * (lam_full + aug_full)) @ V.T
    U, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (k, k)))
    # Mode 3 collapses through w = 0 under the EMA target (τ = w_a/w blows up there; s = w² bounces).
    p0 = jnp.array([0.3, -0.2, -1.0])
    s0 = jnp.array([0.5, 0.8, 0.05])
    tau0 = jnp.array([1.1, 0.9, 3.0])
    ts = jnp.linspace(0.0, 10.0, 21)
    full = ssldyn.solve(byol.LinearBYOLFlow(C0, Cp, **KW), byol.aligned_byol_state(p0, s0, tau0, U=U, V=V[:, :k]),
                        0.0, 10.0, ts=ts, **TOL)
    mode = ssldyn.solve(byol.TianModeFlow(LAM, LAM_AUG, **KW), byol.ModeState.from_s_tau(p0, s0, tau0), 0.0, 10.0,
                        ts=ts, **TOL)
    return full, mode, U


def test_per_mode_ode_equals_full_matrix_ode_under_aligned_start():
    full, mode, U = aligned_runs()
    coords = byol.byol_mode_coordinates(full.ys, U)
    # p, s = w² and the target overlap w·w_a (invariant under the joint sign of the amplitudes)
    for got, want in ((coords.p, mode.ys.p), (coords.s, mode.ys.s), (coords.w * coords.wa, mode.ys.w * mode.ys.wa)):
        np.testing.assert_allclose(got, want, atol=1e-8)
    # The aligned form is preserved: U^T W_p U stays diagonal and the rows of U^T W stay orthogonal.
    Wp = jnp.einsum("ij,tjk,kl->til", U.T, full.ys.Wp, U)
    assert float(jnp.max(jnp.abs(Wp - jax.vmap(jnp.diag)(jax.vmap(jnp.diag)(Wp))))) < 1e-8
    G = jnp.einsum("ij,tjd,ted,el->til", U.T, full.ys.W, full.ys.W, U)
    assert float(jnp.max(jnp.abs(G - jax.vmap(jnp.diag)(jax.vmap(jnp.diag)(G))))) < 1e-8
    # The third mode really passes through w = 0, where Tian's (p, s, τ) coordinates are singular.
    assert float(mode.ys.w[0, 2]) > 0 and float(jnp.min(mode.ys.w[:, 2])) < 0
    # Sanity: the modes actually moved (a frozen trajectory would pass the comparison trivially).
    assert float(jnp.min(jnp.abs(mode.ys.s[-1] - mode.ys.s[0]))) > 0.02


def test_mode_invariant_is_conserved_to_1e_minus_9():
    full, mode, U = aligned_runs()
    t = mode.ts[:, None]
    inv = byol.tian_invariant(mode.ys.p, mode.ys.s, t, alpha_p=KW["alpha_p"], weight_decay=KW["weight_decay"])
    assert float(jnp.max(jnp.abs(inv - inv[0]))) < 1e-9
    coords = byol.byol_mode_coordinates(full.ys, U)
    inv_full = byol.tian_invariant(coords.p, coords.s, t, alpha_p=KW["alpha_p"], weight_decay=KW["weight_decay"])
    assert float(jnp.max(jnp.abs(inv_full - inv[0]))) < 1e-9
    # Without the e^{2ωt} factor the quantity really changes (so the test above is not vacuous).
    raw = mode.ys.s - mode.ys.p**2 / KW["alpha_p"]
    assert float(jnp.min(jnp.abs(raw[-1] - raw[0]))) > 0.01
    # τ relaxes towards 1 (EMA equilibrium) in the two surviving modes.
    assert float(jnp.max(jnp.abs(mode.ys.tau[-1, :2] - 1.0))) < float(jnp.max(jnp.abs(mode.ys.tau[0, :2] - 1.0)))


def test_fixed_points_are_stationary_and_p_minus_is_a_saddle():
    sigma2, omega, alpha_p = 0.3, 0.1, 1.5
    fp = byol.tian_fixed_points(lam_aug=sigma2, alpha_p=alpha_p, weight_decay=omega)
    c = 1.0 + sigma2
    # Independent: roots of c p^2 - p + omega = 0.
    roots = np.sort(np.roots([c, -1.0, omega]))
    np.testing.assert_allclose([fp.p_minus, fp.p_plus], roots, rtol=1e-12)
    flow = byol.TianModeFlow(1.0, sigma2, alpha_p=alpha_p, weight_decay=omega, beta=2.0)
    state = byol.ModeState.from_s_tau(jnp.array([fp.p_plus, fp.p_minus]), jnp.array([fp.s_plus, fp.s_minus]))
    v, jac = jax.jit(lambda f, y: (f.vector_field(0.0, y), byol.mode_jacobian(f, y)))(flow, state)
    assert max(float(jnp.max(jnp.abs(x))) for x in v) < 1e-14
    eig = np.linalg.eigvals(np.asarray(jac))
    assert np.all(eig[0].real < 0)  # p+ attracts
    assert np.sum(eig[1].real > 0) == 1 and np.sum(eig[1].real < 0) == 2  # p- is a saddle
    # Beyond the existence boundary only the collapsed point remains.
    assert not bool(byol.tian_fixed_points(lam_aug=sigma2, weight_decay=1.01 / (4 * c)).exists)
    assert bool(byol.tian_fixed_points(lam_aug=sigma2, weight_decay=0.99 / (4 * c)).exists)


def test_phase_portrait_separatrix_and_collapse_region():
    """On the parabola s = p²/α_p (SimSiam, τ ≡ 1) the flow is 1-D, ṗ = −p(cp² − p + ω): p− separates
    collapse from convergence to p+. (3 modes and the `aligned_runs` save grid: the compiled solve is reused.)"""
    sigma2, omega, alpha_p = 0.3, 0.1, 1.5
    fp = byol.tian_fixed_points(lam_aug=sigma2, alpha_p=alpha_p, weight_decay=omega)
    p0 = jnp.array([0.9, 1.1, 3.0]) * fp.p_minus
    flow = byol.TianModeFlow(1.0, sigma2, alpha_p=alpha_p, weight_decay=omega)
    pp = byol.tian_phase_portrait(flow, p0, p0**2 / alpha_p, 300.0, ts=21, **TOL)
    np.testing.assert_array_equal(np.asarray(pp.collapsed), [True, False, False])
    np.testing.assert_allclose(pp.ys.p[-1][1:], fp.p_plus, rtol=1e-6)
    np.testing.assert_allclose(pp.ys.s[-1][1:], fp.s_plus, rtol=1e-6)
    # Beyond the existence boundary ω > 1/(4c) everything collapses, also from large and negative starts.
    strong = byol.TianModeFlow(1.0, sigma2, alpha_p=alpha_p, weight_decay=0.3)
    pp2 = byol.tian_phase_portrait(strong, jnp.array([-0.3, 1.0, 2.0]), jnp.full(3, 1.0), 300.0, ts=21, **TOL)
    assert bool(jnp.all(pp2.collapsed))


@jax.jit
def _grad_pairs(X1, X2, W, Wp, Wa):
    """(got, want) pairs: vector fields vs minus `jax.grad` of the batch losses (and loss values)."""
    stats = ssldyn.view_stats(X1, X2)
    flow = byol.linear_byol_flow(stats, **KW)
    omega, alpha_p = KW["weight_decay"], KW["alpha_p"]
    gW, gWp = jax.grad(byol.linear_byol_loss, argnums=(0, 1))(W, Wp, Wa, X1, X2)
    v = flow.vector_field(0.0, byol.BYOLState(W, Wp, Wa))
    pairs = [(v.W, -(gW + omega * W)), (v.Wp, -(alpha_p * gWp + omega * Wp)), (v.Wa, KW["beta"] * (W - Wa)),
             # the flow's loss is the batch loss (plus decay) evaluated through the moments
             (flow.loss(byol.BYOLState(W, Wp, Wa)),
              byol.linear_byol_loss(W, Wp, Wa, X1, X2) + 0.5 * omega * (jnp.sum(W**2) + jnp.sum(Wp**2)))]
    # Closed-form predictor: the BYOL and IsoLoss vector fields are minus the gradients of the network
    # losses with the predictor held fixed (symmetrised over the view orders; target = online under SG).
    for loss in ("byol", "isoloss"):
        cf = byol.ClosedFormPredictorFlow(stats.C0, stats.Cp, loss=loss, exponent=0.5, eps=0.01)
        P = cf.predictor(W)

        def one(W, A, B, loss=loss, P=P):
            z, zt = A @ W.T, B @ W.T
            return byol.euclidean_byol_loss(z @ P.T, zt) if loss == "byol" else byol.isoloss(z, z @ P.T, zt)

        pairs.append((cf.vector_field(0.0, W), -jax.grad(lambda W: 0.5 * (one(W, X1, X2) + one(W, X2, X1)))(W)))
    return pairs


def test_grad_of_batch_losses_equals_vector_fields():
    key = jax.random.PRNGKey(3)
    d, k, n = 4, 3, 50
    X1, X2 = byol.gaussian_views(key, n, jnp.linspace(1.0, 0.3, d), 0.2)
    ks = jax.random.split(jax.random.PRNGKey(4), 3)
    W, Wp, Wa = (0.5 * jax.random.normal(kk, s) for kk, s in zip(ks, [(k, d), (k, k), (k, d)]))
    for got, want in _grad_pairs(X1, X2, W, Wp, Wa):
        np.testing.assert_allclose(got, want, atol=1e-12, rtol=1e-12)
    # IsoLoss: same value as BYOL, gradient w.r.t. the online output bypasses the predictor.
    z, zp, zt = (jax.random.normal(kk, (n, k)) for kk in jax.random.split(key, 3))
    np.testing.assert_allclose(byol.isoloss(z, zp, zt), byol.euclidean_byol_loss(zp, zt), rtol=1e-13)
    np.testing.assert_allclose(jax.grad(byol.isoloss)(z, zp, zt), (zp - zt) / n, atol=1e-14)


def test_closed_form_predictor_map():
    mu = jnp.array([4.0, 1.0, 0.25])
    Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(5), (3, 3)))
    F = (Q * mu) @ Q.T
    P = byol.closed_form_predictor(F, exponent=0.5, eps=0.01, normalize=True)
    np.testing.assert_allclose(Q.T @ P @ Q, jnp.diag(jnp.array([1.0, 0.5, 0.25]) + 0.01), atol=1e-12)
    P2 = byol.closed_form_predictor(F, exponent=0.5, eps=0.0, normalize=False)
    np.testing.assert_allclose(P2 @ P2, F, atol=1e-12)  # the matrix square root


@functools.lru_cache(maxsize=None)
def halvagal_runs():
    """Full-matrix flows with the closed-form predictor g(s) = s^α, aligned start, BYOL and IsoLoss in one
    vmapped solve (the loss is an array flag of the flow)."""
    sigma2, alpha = 0.2, 0.5
    s0 = jnp.array([1e-3, 1e-2, 0.1])
    ts = jnp.linspace(0.0, 60.0, 61)
    d, k = 5, 3
    V, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (d, d)))
    U, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (k, k)))
    W0 = (U * jnp.sqrt(s0)) @ V[:, :k].T
    flow = byol.ClosedFormPredictorFlow((1.0 + sigma2) * jnp.eye(d), jnp.eye(d), loss="byol", exponent=alpha)

    def run(flag):
        f = eqx.tree_at(lambda f: f.byol, flow, flag)
        return ssldyn.solve(f, W0, 0.0, 60.0, ts=ts, **TOL).ys

    ys = jax.jit(jax.vmap(run))(jnp.array([1.0, 0.0]))
    s = jnp.einsum("ij,btjd,btkd,ki->bti", U.T, ys, ys, U)
    return {"byol": s[0], "isoloss": s[1], "ts": ts}, s0, sigma2, alpha


def test_isoloss_and_byol_modes_match_closed_forms():
    """Full-matrix IsoLoss vs the logistic closed form; full-matrix BYOL vs the implicit closed form."""
    out, s0, sigma2, alpha = halvagal_runs()
    c = 1.0 + sigma2
    p0 = s0**alpha
    ts = out["ts"][:, None]
    p_iso = out["isoloss"] ** alpha
    np.testing.assert_allclose(p_iso, byol.isoloss_mode_solution(ts, p0, exponent=alpha, c=c), atol=1e-8)
    p_byol = out["byol"] ** alpha
    np.testing.assert_allclose(p_byol, byol.byol_mode_solution(ts, p0, exponent=alpha, c=c), atol=1e-8)
    # Timescales (theory §2): IsoLoss escapes in ≈ ln(1/(c p0))/(2α), BYOL in ≈ 1/(2α p0).
    half = 0.5 / c
    t_iso = np.array([np.interp(half, np.asarray(p_iso[:, j]), np.asarray(ts[:, 0])) for j in range(3)])
    t_byol = np.array([np.interp(half, np.asarray(p_byol[:, j]), np.asarray(ts[:, 0])) for j in range(3)])
    np.testing.assert_allclose(t_iso, np.log(1.0 / (c * p0) - 1.0) / (2 * alpha), atol=0.05)
    np.testing.assert_allclose(t_byol, byol.byol_mode_time(half, p0, exponent=alpha, c=c), atol=0.05)
    # Smallest mode (p0 ≈ 0.03): the leading-order estimates hold to O(p0 ln(1/p0)).
    assert abs(t_byol[0] * 2 * alpha * p0[0] - 1.0) < 0.1
    assert abs(t_iso[0] * 2 * alpha - np.log(1.0 / (c * p0[0]))) < 0.1
    # BYOL: a 3.2x smaller p0 costs ~3x the time; IsoLoss only adds ≈ ln(3.2)/(2α) ≈ 1.2.
    assert t_byol[0] / t_byol[1] > 2.5 and t_iso[0] - t_iso[1] < 1.5


def test_mode_solutions_are_solutions_evaluated_at_any_time():
    """`IsoLossModeSolution`/`BYOLModeSolution` are `AbstractSolution`s: `solution(t)` broadcasts, the
    function forms are the same numbers, `trajectory` stacks them, and `BYOLModeSolution.time` inverts it."""
    p0, c, alpha = jnp.array([0.03, 0.1, 0.3]), 1.2, 0.5
    ts = jnp.array([0.0, 0.5, 3.0, 20.0])
    for cls, fn in ((byol.IsoLossModeSolution, byol.isoloss_mode_solution),
                    (byol.BYOLModeSolution, byol.byol_mode_solution)):
        sol = cls(p0, exponent=alpha, c=c)
        assert isinstance(sol, ssldyn.AbstractSolution)
        grid = sol(ts[:, None])
        assert grid.shape == (4, 3)
        np.testing.assert_array_equal(grid, fn(ts[:, None], p0[None], exponent=alpha, c=c))
        traj = sol.trajectory(ts)
        assert traj.ok and traj.ys.shape == (4, 3)
        np.testing.assert_allclose(traj.ys, grid, rtol=1e-14)
        np.testing.assert_allclose(sol(0.0), p0, rtol=1e-12)  # starts at p0 ...
        assert float(jnp.max(jnp.abs(sol(200.0) - 1.0 / c))) < 1e-6  # ... and ends at p* = 1/c
        np.testing.assert_allclose(jax.jit(lambda s, t: s(t))(sol, 3.0), grid[2], rtol=1e-14)  # jit over the module
    sol = byol.BYOLModeSolution(p0, exponent=alpha, c=c)
    t = sol.time(0.5 / c)
    np.testing.assert_allclose(t, byol.byol_mode_time(0.5 / c, p0, exponent=alpha, c=c), rtol=1e-14)
    np.testing.assert_allclose(jax.vmap(sol)(t)[jnp.arange(3), jnp.arange(3)], 0.5 / c, rtol=1e-10)
    # The logistic IsoLoss mode solves its ODE ṗ = 2αλ p (1 − c p) (time scale λ = 2 here).
    iso = byol.IsoLossModeSolution(p0, exponent=alpha, c=c, lam=2.0)
    dp = jax.vmap(jax.jacfwd(iso))(ts)
    p = iso.trajectory(ts).ys
    np.testing.assert_allclose(dp, 2 * alpha * 2.0 * p * (1 - c * p), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kw", [dict(exponent=0.5), dict(exponent=1.0, eps=0.05, normalize=True, correlation="outputs",
                                                 weight_decay=0.02)])
def test_predictor_mode_flow_is_the_full_flow_on_aligned_states(kw):
    """d/dt of the eigenvalues of W Wᵀ under the full flow equals the per-mode vector field (both losses)."""
    lam, aug = jnp.array([1.0, 0.6, 0.3]), jnp.array([0.2, 0.4, 0.1])
    d, k = 4, 3
    V, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(11), (d, d)))
    U, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(12), (k, k)))
    lam_f, aug_f = jnp.append(lam, 0.5), jnp.append(aug, 0.3)
    C0, Cp = (V * (lam_f + aug_f)) @ V.T, (V * lam_f) @ V.T
    s = jnp.array([0.8, 0.3, 0.05])
    W = (U * jnp.sqrt(s)) @ V[:, :k].T
    for loss in ("byol", "isoloss"):
        full = byol.ClosedFormPredictorFlow(C0, Cp, loss=loss, **kw)
        mode = byol.PredictorModeFlow(lam, aug, loss=loss, **kw)
        dW = full.vector_field(0.0, W)
        ds = jnp.diag(U.T @ (dW @ W.T + W @ dW.T) @ U)
        np.testing.assert_allclose(ds, mode.vector_field(0.0, s), atol=1e-12)
        np.testing.assert_allclose(full.loss(W), mode.loss(s), rtol=1e-12)


def test_gd_converges_to_ode_at_order_lr_and_sgd_is_unbiased():
    d, k = 5, 3  # same shapes and save grid as `aligned_runs`: the compiled solve is reused
    lam = jnp.array([1.0, 0.6, 0.3, 0.2, 0.1])
    stats = byol.gaussian_view_stats(lam, 0.2)
    flow = byol.linear_byol_flow(stats, **KW)
    ks = jax.random.split(jax.random.PRNGKey(6), 2)
    W0 = 0.6 * jax.random.normal(ks[0], (k, d))
    y0 = byol.BYOLState(W0, 0.3 * jax.random.normal(ks[1], (k, k)), W0)
    T = 4.0
    ode = ssldyn.solve(flow, y0, 0.0, T, ts=jnp.linspace(0.0, T, 21), **TOL).final
    # Both GD runs take 200 steps with a save after 100 (one compilation): η = 0.04 is at t = 4 after 100.
    gd = {0.04: jax.tree_util.tree_map(lambda x: x[0], ssldyn.simulate_gd(flow, y0, 0.04, 200, save_every=100)[1]),
          0.02: ssldyn.simulate_gd(flow, y0, 0.02, 200, save_every=100)[0]}
    gaps = [max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(gd[lr], ode)) for lr in (0.04, 0.02)]
    assert 1.7 < gaps[0] / gaps[1] < 2.3, gaps  # first order in lr
    # SGD (fresh batches, per-step EMA) fluctuates around GD without bias (the loss is quadratic in the
    # data, so batch gradients are unbiased); the seed mean lies within 4 standard errors. The only
    # systematic difference, the EMA using the post-update W, is O(lr² β) per step: 1e-3 floor below.
    lr, S = 0.04, 16
    runs = jax.vmap(lambda key: byol.train_linear_byol(key, y0, lam=lam, lam_aug=0.2, lr=lr, n_steps=int(T / lr),
                                                     batch_size=64, **KW))(jax.random.split(jax.random.PRNGKey(7), S))
    for got, want in zip(runs.final, gd[lr]):
        mean, se = jnp.mean(got, 0), jnp.std(got, 0, ddof=1) / np.sqrt(S)
        assert float(jnp.max(jnp.abs(mean - want) / (se + 1e-3))) < 4.0
        assert float(jnp.max(se)) < 0.05  # the noise is small, so the comparison has teeth


def test_train_linear_byol_returns_a_train_result_on_the_lr_times_steps_axis():
    """`final` and `saved` are `BYOLState`s, `ts = lr × steps`; saving does not change the key stream."""
    lam = jnp.array([1.0, 0.5, 0.2])
    W0 = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (2, 3))
    y0 = byol.BYOLState(W0, 0.3 * jnp.eye(2), W0)
    kw = dict(lam=lam, lam_aug=0.1, lr=0.05, n_steps=10, batch_size=8, beta=2.0)
    key = jax.random.PRNGKey(10)
    res = byol.train_linear_byol(key, y0, save_every=4, **kw)
    assert isinstance(res, ssldyn.TrainResult) and isinstance(res.final, byol.BYOLState)
    np.testing.assert_allclose(res.ts, [0.2, 0.4], rtol=1e-14)  # steps 4 and 8 (the last 2 steps are not saved)
    assert res.saved.W.shape == (2, 2, 3) and res.saved.Wp.shape == (2, 2, 2)
    plain = byol.train_linear_byol(key, y0, **kw)
    assert plain.saved is None and plain.ts.shape == (0,)
    for a, b in zip(plain.final, res.final):
        np.testing.assert_array_equal(a, b)
    eight = byol.train_linear_byol(key, y0, **{**kw, "n_steps": 8})
    for a, b in zip(eight.final, res.saved):
        np.testing.assert_array_equal(a, b[-1])
    final, saved = res  # the older tuple form still unpacks
    assert saved is res.saved


def test_directpred_training_uses_the_output_correlation():
    lam = jnp.array([1.0, 0.5, 0.2])
    W0 = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (2, 3))
    y0 = byol.BYOLState(W0, jnp.zeros((2, 2)), W0)
    out = byol.train_linear_byol(jax.random.PRNGKey(9), y0, lam=lam, lam_aug=0.1, lr=0.05, n_steps=10,
                               batch_size=4096, predictor="closed_form", eps=0.01, normalize=True,
                               fhat_momentum=0.0).final
    # With momentum 0, Wp = g(F_batch) of the last step's batch; compare with the population correlation.
    F = out.W @ jnp.diag(lam + 0.1) @ out.W.T
    want = byol.closed_form_predictor(F, exponent=0.5, eps=0.01, normalize=True)
    # Batch-of-4096 estimate of F (previous step's W): a few per cent.
    np.testing.assert_allclose(out.Wp, want, atol=0.06)


def test_bad_inputs_raise():
    C = jnp.eye(3)
    with pytest.raises(ValueError, match="Cp"):
        byol.LinearBYOLFlow(C, jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(ValueError, match="alpha_p"):
        byol.LinearBYOLFlow(C, C, alpha_p=0.0)
    with pytest.raises(ValueError, match="beta"):
        byol.LinearBYOLFlow(C, C, beta=-1.0)
    flow = byol.LinearBYOLFlow(C, C)
    W = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="Wa"):
        ssldyn.solve(flow, byol.BYOLState(W, jnp.eye(2), 2 * W), 0.0, 1.0)
    with pytest.raises(ValueError, match="Wp"):
        flow.check_initial(byol.BYOLState(W, jnp.eye(3), W))
    with pytest.raises(TypeError, match="y0"):
        flow.check_initial(W)
    with pytest.raises(TypeError, match="stats"):
        byol.linear_byol_flow(C)
    with pytest.raises(ValueError, match="loss"):
        byol.ClosedFormPredictorFlow(C, C, loss="cosine")
    with pytest.raises(ValueError, match="`s`"):
        byol.ModeState.from_s_tau(jnp.ones(1), -jnp.ones(1))
    with pytest.raises(ValueError, match="y0.wa"):
        byol.TianModeFlow().check_initial(byol.ModeState(jnp.ones(1), jnp.ones(1), 2 * jnp.ones(1)))
    with pytest.raises(ValueError, match="lam"):
        byol.tian_fixed_points(lam=-1.0)
    with pytest.raises(ValueError, match="isoloss"):
        byol.train_linear_byol(jax.random.PRNGKey(0), byol.BYOLState(W, jnp.eye(2), W), lam=jnp.ones(3), lam_aug=0.1,
                             lr=0.1, n_steps=1, batch_size=2, loss="isoloss")
    with pytest.raises(ValueError, match="beta \\* lr"):
        byol.train_linear_byol(jax.random.PRNGKey(0), byol.BYOLState(W, jnp.eye(2), W), lam=jnp.ones(3), lam_aug=0.1,
                             lr=0.5, n_steps=1, batch_size=2, beta=10.0)
    with pytest.raises(ValueError, match="equal shapes"):
        byol.isoloss(jnp.ones((4, 2)), jnp.ones((4, 2)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="p0"):
        byol.isoloss_mode_solution(1.0, -0.1)


@pytest.mark.parametrize("stop_gradient", byol.STOP_GRADIENTS)
def test_stop_gradient_variants_per_mode_rates_and_byol_flow(stop_gradient):
    """The autodiff flow of each stop-gradient placement against the derived per-mode rates
    ṡ = 2 s μ on an aligned state (C+ = λI, C0 = (λ+λ')I, p = s^α), and the "target" variant against
    `ClosedFormPredictorFlow(loss="byol")` at a random (unaligned) state."""
    lam, lam_aug, alpha, d, k = 1.0, 0.3, 0.5, 6, 3
    C0, Cp = (lam + lam_aug) * jnp.eye(d), lam * jnp.eye(d)
    s = jnp.array([0.8, 0.3, 0.05])
    V = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(0), (d, d)))[0]
    U = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(1), (k, k)))[0]
    W = (U * jnp.sqrt(s)) @ V[:, :k].T
    flow = ssldyn.GradientFlow(
        lambda W, a: byol.predictor_population_loss(W, a[0], a[1], stop_gradient=stop_gradient, exponent=alpha),
        args=(C0, Cp))
    dW = flow.vector_field(0.0, W)
    sdot = jnp.diag(U.T @ (dW @ W.T + W @ dW.T) @ U)
    p = s**alpha
    target = p * (lam - p * (lam + lam_aug))
    mu = {"target": target, "none": target + p * lam - (lam + lam_aug), "online": p * lam - (lam + lam_aug)}
    np.testing.assert_allclose(np.asarray(sdot), np.asarray(2 * s * mu[stop_gradient]), rtol=1e-10, atol=1e-14)
    if stop_gradient == "target":
        W2 = 0.4 * jax.random.normal(jax.random.PRNGKey(3), (k, d))
        ref = byol.ClosedFormPredictorFlow(C0, Cp, loss="byol", exponent=alpha)
        np.testing.assert_allclose(np.asarray(flow.vector_field(0.0, W2)), np.asarray(ref.vector_field(0.0, W2)),
                                   rtol=1e-10, atol=1e-14)
    with pytest.raises(ValueError, match="stop_gradient"):
        byol.predictor_population_loss(W, C0, Cp, stop_gradient="both")

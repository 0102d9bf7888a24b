"""SimVAE (Bizeul et al. 2024): the objective, the exact linear-Gaussian loss and its flows, checked
against independent computations (Monte Carlo, jax.grad, fixed points, per-mode vs full matrix, long
integration, GD vs ODE), plus input validation and loud solver failures."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
import ssldyn.simvae as sv

D, L = 4, 3
NM = 24  # modes per implicit per-mode solve (one shape: Kvaerno5 is compiled once for the file)


def _problem(seed=0, J=3, kappa=0.7, e=1.3, sigma_x2=0.3, sigma2=0.5):
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    A = jax.random.normal(k[0], (D, D))
    B = jax.random.normal(k[1], (D, D))
    data = sv.LinearGaussianData(A @ A.T / D, B @ B.T / D)
    knobs = sv.SimVAEKnobs(J, sigma_x2, sigma2, kappa=kappa, e=e)
    C = jax.random.normal(k[4], (L, L))
    state = sv.LinearState(0.5 * jax.random.normal(k[2], (L, D)), 0.5 * jax.random.normal(k[3], (D, L)),
                           C @ C.T / L + 0.2 * jnp.eye(L))
    return data, knobs, state


# ----------------------------------------------------------------------------------------------
# 1. analytic loss = Monte Carlo
@pytest.mark.parametrize("J,kappa,e", [(3, 0.7, 1.3), (1, 1.0, 1.0), (2, 0.0, 2 * math.pi)])
def test_analytic_loss_matches_monte_carlo(J, kappa, e):
    data, knobs, st = _problem(J=J, kappa=kappa, e=e)
    n = 50_000
    X = sv.sample_linear_views(jax.random.PRNGKey(1), data, n, J)
    eps = jax.random.normal(jax.random.PRNGKey(2), (n, J, L)) @ jnp.linalg.cholesky(st.Lam).T
    Z = X @ st.W.T + eps
    logdet = jnp.full((n, J), jnp.linalg.slogdet(st.Lam)[1])
    # per-group losses: the batch mean of `simvae_loss` is their mean; their std gives the standard error
    per = jax.vmap(lambda x, z, ld: sv.simvae_loss(x[None], z[None] @ st.V.T, z[None], ld[None], knobs))(X, Z, logdet)
    se = float(jnp.std(per)) / math.sqrt(n)
    exact = float(sv.linear_loss(st, data, knobs))
    assert abs(float(jnp.mean(per)) - exact) < 5 * se  # 5 standard errors: fails with prob. < 1e-6
    # the sum reduction is N times the mean (a time rescaling of the flow)
    xs, zs, ls = X[:7], Z[:7], logdet[:7]
    m = sv.simvae_loss(xs, zs @ st.V.T, zs, ls, knobs)
    s = sv.simvae_loss(xs, zs @ st.V.T, zs, ls, knobs, reduction="sum")
    np.testing.assert_allclose(float(s), 7 * float(m), rtol=1e-12)


def test_objective_variants_against_hand_written_formulas():
    key = jax.random.split(jax.random.PRNGKey(3), 4)
    N, J, Dd, Ll = 5, 4, 6, 2
    x, xh = jax.random.normal(key[0], (N, J, Dd)), jax.random.normal(key[1], (N, J, Dd))
    z, lv = jax.random.normal(key[2], (N, J, Ll)), jax.random.normal(key[3], (N, J, Ll))
    sx2, s2 = 0.02, 0.15
    # Algorithm 1 as printed: reconstruction, -½ Σ log|Σ|, ½ Σ ||(z_j - z̄)/σ||², nothing on the mean
    zbar = z.mean(axis=1, keepdims=True)
    alg1 = (jnp.sum((x - xh) ** 2, axis=(1, 2)) / (2 * sx2) - 0.5 * lv.sum(axis=(1, 2))
            + 0.5 * jnp.sum(((z - zbar) / math.sqrt(s2)) ** 2, axis=(1, 2))).mean()
    got = sv.simvae_loss(x, xh, z, lv.sum(-1), sv.SimVAEKnobs.algorithm1(J, sx2, s2))
    np.testing.assert_allclose(float(got), float(alg1), rtol=1e-12)
    rel = sv.SimVAEKnobs.released()
    assert rel.n_views == 2 and float(rel.kappa) == 1.0 and abs(float(rel.e) - 2 * math.pi) < 1e-12
    # κ = 1, e = 2π adds ½||z̄||² and scales the entropy term by 2π
    k = sv.SimVAEKnobs(J, sx2, s2, kappa=1.0, e=2 * math.pi)
    extra = (0.5 * jnp.sum(zbar[:, 0] ** 2, -1) - 0.5 * (2 * math.pi - 1) * lv.sum(axis=(1, 2))).mean()
    np.testing.assert_allclose(float(sv.simvae_loss(x, xh, z, lv.sum(-1), k)), float(alg1 + extra), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# 2. flow = -grad, full and log-variance parametrisations; 3. optimal variance, adiabatic flow
def test_flow_is_minus_gradient_full_and_logvar():
    data, knobs, st = _problem()
    flow = sv.LinearFlow(data, knobs)
    g = jax.grad(lambda s: sv.linear_loss(s, data, knobs))(st)
    for a, b in zip(flow.vector_field(0.0, st), g):
        np.testing.assert_allclose(np.asarray(a), -np.asarray(b), atol=1e-10)
    st_l = sv.LinearState(st.W, st.V, jnp.array([0.1, -0.4, 0.3]))
    g = jax.grad(lambda s: sv.linear_loss(s, data, knobs))(st_l)
    for a, b in zip(sv.LinearFlow(data, knobs, parametrisation="logvar").vector_field(0.0, st_l), g):
        np.testing.assert_allclose(np.asarray(a), -np.asarray(b), atol=1e-10)


def test_optimal_variance_and_adiabatic_flow():
    data, knobs, st = _problem()
    Ls = sv.optimal_variance(st.V, knobs)
    gL = jax.grad(lambda Lam: sv.linear_loss(sv.LinearState(st.W, st.V, Lam), data, knobs))(Ls)
    assert float(jnp.max(jnp.abs(gL))) < 1e-10
    # the adiabatic field is minus the gradient of the reduced loss L(W, V, Λ*(V)) (envelope theorem)
    ad = sv.AdiabaticFlow(data, knobs)
    g = jax.grad(ad.loss)((st.W, st.V))
    for a, b in zip(ad.vector_field(0.0, (st.W, st.V)), g):
        np.testing.assert_allclose(np.asarray(a), -np.asarray(b), atol=1e-9)
    # the full flow with a fast variance (rate ρ) approaches the adiabatic flow with an O(1/ρ) gap
    t1 = 0.03
    ref = ssldyn.solve(ad, (st.W, st.V), 0.0, t1, rtol=1e-9, atol=1e-12).final
    gaps = []
    for rho in (10.0, 100.0):  # ρ is an array leaf of the flow: one compilation for both
        fl = sv.LinearFlow(data, knobs, variance_rate=rho)
        y = ssldyn.solve(fl, sv.LinearState(st.W, st.V, Ls), 0.0, t1, rtol=1e-9, atol=1e-12).final
        gaps.append(float(jnp.linalg.norm(y.W - ref[0]) + jnp.linalg.norm(y.V - ref[1])))
    assert gaps[1] < 0.2 * gaps[0]  # 10x faster variance: the gap shrinks ~10x (O(1/ρ)); 0.2 leaves margin
    assert gaps[1] < 5e-3


# ----------------------------------------------------------------------------------------------
# 4. aligned full matrix = per-mode flows
def test_aligned_full_matrix_equals_per_mode():
    c, a = jnp.array([1.0, 0.5, 0.2]), jnp.array([0.3, 0.6, 0.1])
    knobs = sv.SimVAEKnobs(3, 0.2, 0.4, kappa=1.0, e=1.0)
    data = sv.LinearGaussianData.diagonal(c, a)
    w0, v0, l0 = jnp.array([0.3, -0.2, 0.1]), jnp.array([0.2, 0.4, -0.3]), jnp.array([0.5, 1.0, 2.0])
    full = ssldyn.solve(sv.LinearFlow(data, knobs), sv.LinearState(jnp.diag(w0), jnp.diag(v0), jnp.diag(l0)),
                        0.0, 2.0, rtol=1e-10, atol=1e-12).final
    modes = ssldyn.solve(sv.ModeFlow.from_variances(c, a, knobs), sv.ModeState(w0, v0, l0), 0.0, 2.0,
                         rtol=1e-10, atol=1e-12).final
    np.testing.assert_allclose(np.asarray(full.W), np.diag(np.asarray(modes.w)), atol=1e-8)
    np.testing.assert_allclose(np.asarray(full.V), np.diag(np.asarray(modes.v)), atol=1e-8)
    np.testing.assert_allclose(np.asarray(full.Lam), np.diag(np.asarray(modes.lam)), atol=1e-8)
    # the per-mode loss is the full loss up to a constant (the tr C0 - Σ λ_i part is 0 when D = L)
    s0 = sv.LinearState(jnp.diag(w0), jnp.diag(v0), jnp.diag(l0))
    fm = sv.ModeFlow.from_variances(c, a, knobs)
    np.testing.assert_allclose(float(sv.linear_loss(s0, data, knobs)), float(fm.loss(sv.ModeState(w0, v0, l0))), rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# 5. survival threshold vs long integration, early growth vs r_i
def test_survival_matches_long_integration_and_growth_rate():
    rng = np.random.default_rng(0)
    checked = 0
    for J, sx2, s2, kappa, e in [(2, 0.3, 0.15, 0.0, 1.0), (4, 0.2, 0.5, 1.0, 2 * math.pi), (1, 0.5, 1.0, 1.0, 1.0),
                                 (10, 0.05, 0.3, 0.5, 1.0)]:
        knobs = sv.SimVAEKnobs(J, sx2, s2, kappa=kappa, e=e)  # all knobs are array leaves: one compilation
        c, a = rng.uniform(0.0, 1.5, NM), rng.uniform(0.0, 1.5, NM)
        r = np.asarray(sv.growth_rate(c, a, knobs))
        pred = np.asarray(sv.survives(c, a, knobs))
        assert np.array_equal(pred, r > 0)  # the growth rate changes sign exactly at the threshold
        keep = np.abs(r) > 0.02  # judged away from the threshold, where convergence is slow
        traj = sv.integrate_modes(c, a, knobs, 40.0 / np.min(np.abs(r[keep])), init_scale=1e-4, ts=2)
        wv = np.abs(np.asarray(traj.ys.w[-1] * traj.ys.v[-1]))
        assert np.array_equal((wv > 1e-3)[keep], pred[keep]), (J, sx2, s2, kappa, e)
        checked += int(keep.sum())
    assert checked > 60
    # early growth: from a tiny start along the unstable eigenvector, d log|(w, v)|/dt = r
    knobs = sv.SimVAEKnobs(3, 0.2, 0.4, kappa=1.0, e=1.0)
    c, a = np.array([1.0, 0.6]), np.array([0.2, 0.5])
    lam, gam = sv.mode_parameters(c, a, knobs)
    L0 = float(sv.origin_variance(knobs))
    al = float(knobs.alpha)
    r = np.asarray(sv.growth_rate(c, a, knobs))
    v_over_w = (r + np.asarray(gam)) / (al * np.asarray(lam))  # eigenvector of [[−γ, αλ], [αλ, −αΛ₀]]
    y0 = sv.ModeState(jnp.full(2, 1e-8), jnp.asarray(1e-8 * v_over_w), jnp.full(2, L0))
    tr = ssldyn.solve(sv.ModeFlow.from_variances(c, a, knobs), y0, 0.0, 1.0, ts=jnp.array([0.5, 1.0]),
                      rtol=1e-10, atol=1e-20)
    nrm = np.hypot(np.asarray(tr.ys.w), np.asarray(tr.ys.v))
    np.testing.assert_allclose(np.log(nrm[1] / nrm[0]) / 0.5, r, rtol=1e-4)


def test_bistability_beyond_the_threshold():
    """Where ssldyn departs from the note: with σ²κ > J a nonzero fixed point can coexist with a stable
    origin, so 'a nonzero fixed point exists iff the origin is unstable' fails; survival from a small
    start at Λ₀ still follows the threshold."""
    knobs = sv.SimVAEKnobs(4, 0.3, 100.0, kappa=1.0, e=1.0)
    c, a = np.ones(NM), np.zeros(NM)
    assert not bool(sv.survives(c, a, knobs)[0])
    # half the modes start small with Λ = Λ₀, half start large with Λ = 1
    half = np.arange(NM) < NM // 2
    L0 = float(sv.origin_variance(knobs))
    y0 = sv.ModeState(jnp.asarray(np.where(half, 1e-3, 1.0)), jnp.asarray(np.where(half, 1e-3, 1.0)),
                      jnp.asarray(np.where(half, L0, 1.0)))
    out = sv.integrate_modes(c, a, knobs, 2000.0, y0=y0, ts=2)
    wv = np.asarray(out.ys.w[-1] * out.ys.v[-1])
    assert np.all(np.abs(wv[half]) < 1e-6)
    assert np.all(wv[~half] > 0.3)


def test_survival_matrix_counts_unstable_directions():
    data, knobs, _ = _problem(sigma_x2=0.4)
    H = np.linalg.eigvalsh(np.asarray(sv.origin_jacobian(data, knobs)))
    assert sv.n_surviving(data, knobs) == int(np.sum(H > 0))  # Haynsworth inertia, non-commuting covariances
    c, a = np.array([1.0, 0.3, 0.05]), np.array([0.1, 0.4, 0.3])
    k2 = sv.SimVAEKnobs(3, 0.3, 0.2, kappa=1.0)
    assert sv.n_surviving(sv.LinearGaussianData.diagonal(c, a), k2) == int(np.sum(np.asarray(sv.survives(c, a, k2))))


# ----------------------------------------------------------------------------------------------
# 6. special cases, 7. invariances
def test_special_cases():
    lam = np.linspace(0.053, 2.0, 40)  # no grid point exactly on a threshold
    for sx2 in (0.1, 0.5, 1.0):  # J = 1, κ = 1, e = 1: the linear-VAE threshold λ > σ_x²
        k = sv.SimVAEKnobs(1, sx2, 0.3, kappa=1.0, e=1.0)
        c = 0.6 * lam
        np.testing.assert_array_equal(np.asarray(sv.survives(c, lam - c, k)), lam > sx2)
    c, a = np.linspace(0.0, 1.0, 30), np.linspace(0.5, 0.02, 30)
    ref = (c + a) ** 2 > 2.0 * 0.05 * a  # κ = 0: λ² > e σ_x² a, whatever σ² and J
    for J, s2 in ((2, 0.15), (5, 3.0), (10, 0.01)):
        np.testing.assert_array_equal(np.asarray(sv.survives(c, a, sv.SimVAEKnobs(J, 0.05, s2, kappa=0.0, e=2.0))), ref)


def test_invariances():
    data, knobs, st = _problem()
    base = float(sv.linear_loss(st, data, knobs))
    R, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(9), (L, L)))
    rot = sv.LinearState(R @ st.W, st.V @ R.T, R @ st.Lam @ R.T)
    np.testing.assert_allclose(float(sv.linear_loss(rot, data, knobs)), base, rtol=1e-12)
    ell = jnp.array([0.2, -0.3, 0.5])
    sl = sv.LinearState(st.W, st.V, ell)
    b2 = float(sv.linear_loss(sl, data, knobs))
    P = jnp.eye(L)[jnp.array([2, 0, 1])] * jnp.array([1.0, -1.0, 1.0])[:, None]  # permutation with a sign flip
    ps = sv.LinearState(P @ st.W, st.V @ P.T, ell[jnp.array([2, 0, 1])])
    np.testing.assert_allclose(float(sv.linear_loss(ps, data, knobs)), b2, rtol=1e-12)
    # a generic rotation does not preserve a diagonal Λ: rotating (W, V) alone changes the loss
    assert abs(float(sv.linear_loss(sv.LinearState(R @ st.W, st.V @ R.T, ell), data, knobs)) - b2) > 1e-6


# ----------------------------------------------------------------------------------------------
# 9. GD vs ODE
def test_gd_tracks_flow_to_first_order():
    data, knobs, st = _problem()
    st = sv.LinearState(st.W, st.V, jnp.zeros(L))
    T = 0.2
    ref = ssldyn.solve(sv.LinearFlow(data, knobs, parametrisation="logvar"), st, 0.0, T, rtol=1e-11, atol=1e-12).final
    lrs, gaps = [T / 100, T / 200, T / 400], []
    for lr in lrs:
        out = sv.train_linear_gd(data, knobs, st, lr=lr, n_steps=int(round(T / lr)))
        gaps.append(sum(float(jnp.linalg.norm(a - b)) for a, b in zip(out.final, ref)))
    order = ssldyn.lr_order(lrs, gaps)
    assert 0.85 < order < 1.15, (gaps, order)


# ----------------------------------------------------------------------------------------------
# validation and loud failures
def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="`J`"):
        sv.SimVAEKnobs(0)
    with pytest.raises(ValueError, match="`sigma_x2`"):
        sv.SimVAEKnobs(2, sigma_x2=0.0)
    with pytest.raises(ValueError, match="`sigma2`"):
        sv.SimVAEKnobs(2, sigma2=-1.0)
    with pytest.raises(ValueError, match="`e`"):
        sv.SimVAEKnobs(2, e=0.0)
    with pytest.raises(ValueError, match="`kappa`.*`J` = 1"):
        sv.SimVAEKnobs(1, kappa=0.0)
    data, knobs, st = _problem()
    with pytest.raises(ValueError, match="`Lam` must be positive definite"):
        sv.linear_loss(sv.LinearState(st.W, st.V, -jnp.eye(L)), data, knobs)
    with pytest.raises(ValueError, match="`V`.*mismatched latent sizes"):
        sv.linear_loss(sv.LinearState(st.W, st.V[:, :2], st.Lam), data, knobs)
    with pytest.raises(ValueError, match="`Lam`.*mismatched latent sizes"):
        sv.linear_loss(sv.LinearState(st.W, st.V, jnp.eye(2)), data, knobs)
    with pytest.raises(ValueError, match="`Sigma_a` must be positive semi-definite"):
        sv.LinearGaussianData(jnp.eye(2), -jnp.eye(2))
    with pytest.raises(ValueError, match="views per group but `knobs.J`"):
        x = jnp.zeros((2, 3, 4))
        sv.simvae_loss(x, x, jnp.zeros((2, 3, 1)), jnp.zeros((2, 3)), sv.SimVAEKnobs(2))


def test_failed_stiff_solve_is_reported_with_its_cause():
    knobs = sv.SimVAEKnobs(10, 0.001, 0.15, kappa=1.0)
    c, a = np.linspace(0.1, 1.0, NM), np.linspace(0.4, 0.05, NM)
    with pytest.raises(sv.SimVAESolveError, match="max_steps.*stiff"):
        sv.integrate_modes(c, a, knobs, 50.0, solver="explicit", max_steps=2000)
    out = sv.integrate_modes(c, a, knobs, 50.0, solver="implicit", ts=2)
    assert out.ok and np.all(np.isfinite(np.asarray(out.ys.w)))


# ----------------------------------------------------------------------------------------------
# MLP probes
def test_mlp_probe_fits_xor_and_linear_targets_where_known_separators_are_perfect():
    """Three targets with known perfect separators: XOR of the signs (no linear separator: the logistic
    probe stays near chance), a half-plane and three bins of one coordinate (linear separators). The
    MLP probe (all targets in one vmapped program, 3-class logits masked for the binary targets) must
    reach the known separators' held-out accuracy (1.0) up to a few boundary points."""
    rng = np.random.default_rng(0)

    def sample(n):
        Z = rng.uniform(-1, 1, size=(n, 2))
        Z = Z[np.min(np.abs(Z), axis=1) > 0.08]  # a margin around every decision boundary
        w = np.array([0.8, -0.6])
        Y = np.stack([(Z[:, 0] > 0) ^ (Z[:, 1] > 0), Z @ w > 0.0, np.digitize(Z[:, 0], [-0.4, 0.4])]).astype(np.int32)
        keep = np.abs(Z @ w) > 0.08
        keep &= np.min(np.abs(Z[:, :1] - np.array([-0.4, 0.4])), axis=1) > 0.04
        return Z[keep], Y[:, keep]

    Ztr, Ytr = sample(1600)
    Zte, Yte = sample(600)
    res = sv.mlp_probes(jax.random.PRNGKey(0), Ztr, Ytr, Zte, Yte, n_classes=[2, 2, 3], hidden=64, lr=3e-3,
                        epochs=60, batch_size=64)
    acc = np.asarray(res.accuracy)[0]
    assert acc.shape == (3,) and np.all(acc >= 0.97), acc
    assert np.max(np.asarray(res.predictions)[0, :2]) <= 1  # masked classes are never predicted
    lin = ssldyn.logistic_probe(jnp.asarray(Ztr), jnp.asarray(Ytr[0]), jnp.asarray(Zte), jnp.asarray(Yte[0]))
    assert float(lin.accuracy) < 0.75 < acc[0]  # XOR: beyond any linear probe
    # the single-probe front end agrees in shape and quality
    one = sv.mlp_probe(jax.random.PRNGKey(1), Ztr, Ytr[1], Zte, Yte[1], hidden=64, lr=3e-3, epochs=60, batch_size=64)
    assert one.accuracy.shape == () and float(one.accuracy) >= 0.97


def test_mlp_probe_is_at_chance_on_labels_independent_of_the_features():
    """Labels drawn independently of Z: held-out accuracy must be near 1/C (binomial, 5 SE)."""
    rng = np.random.default_rng(1)
    Z, Zt = rng.normal(size=(2, 400, 3)), rng.normal(size=(2, 2000, 3))
    y, yt = rng.integers(0, 4, size=400), rng.integers(0, 4, size=2000)
    res = sv.mlp_probes(jax.random.PRNGKey(2), Z, y, Zt, yt, n_classes=[4], hidden=16, epochs=5, batch_size=50)
    se = math.sqrt(0.25 * 0.75 / 2000)
    assert res.accuracy.shape == (2, 1) and np.all(np.abs(np.asarray(res.accuracy) - 0.25) < 5 * se)


def test_mlp_probe_bad_inputs_name_the_argument():
    Z, y = np.zeros((10, 2)), np.zeros(10, int)
    with pytest.raises(ValueError, match="`batch_size`"):
        sv.mlp_probe(jax.random.PRNGKey(0), Z, y, Z, y, batch_size=11)
    with pytest.raises(ValueError, match="`n_classes`"):
        sv.mlp_probes(jax.random.PRNGKey(0), Z, y[None], Z, y[None], n_classes=[1])
    with pytest.raises(ValueError, match="`Y_train`"):
        sv.mlp_probes(jax.random.PRNGKey(0), Z, np.zeros((1, 9), int), Z)
    with pytest.raises(ValueError, match="`Z_train`"):
        sv.mlp_probes(jax.random.PRNGKey(0), np.full((10, 2), np.nan), y, Z)
    with pytest.raises(ValueError, match="`lr`"):
        sv.mlp_probe(jax.random.PRNGKey(0), Z, y, Z, lr=0.0, batch_size=5)
    with pytest.raises(ValueError, match="`y_train`"):
        sv.mlp_probe(jax.random.PRNGKey(0), Z, y[None], Z)


# ----------------------------------------------------------------------------------------------
# the experiment's configuration and data sources
def _write_idx(path, arr):
    import gzip
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    path.write_bytes(gzip.compress(header + arr.tobytes()))


def test_fashion_idx_folder_is_read_when_named(tmp_path):
    from ssldyn.experiments import simvae as ex

    rng = np.random.default_rng(3)
    n = 60
    y = np.arange(n) % 10
    imgs = np.zeros((n, 12, 12), np.uint8)
    for i, c in enumerate(y):  # a bright square whose side encodes the class
        imgs[i, 2:3 + c // 2, 2:3 + c // 2] = 255
    imgs = np.maximum(imgs, rng.integers(0, 20, size=imgs.shape).astype(np.uint8))
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    _write_idx(folder / "train-images-idx3-ubyte.gz", imgs)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", y)
    assert ex.Config().idx_dir == "" and ex.Config().image_data == "embedded"  # absent by default
    cfg = ex.Config(n_train=40, n_test=20, image_data="idx", idx_dir=str(tmp_path), idx_kind="fashion",
                    image_n_train=45, image_n_test=15, batch_size=16, mlp_batch=16)
    ex.validate_config(cfg)
    ctx = ex.prepare(cfg)
    ds = ctx["sets"]["fashion_idx"]
    assert ds["X_train"].shape == (45, 36) and ds["X_test"].shape == (15, 36)  # 12×12 pooled to 6×6
    ytr, yte, C = ds["labels"]["content"]
    assert C == 10 and sorted(np.concatenate([ytr, yte]).tolist()) == sorted(y.tolist())  # labels from the files
    assert set(ds["style_labels"]) == {"shift_x", "shift_y", "rotation", "thickness"}
    ids = [c["id"] for c in ex.cells(cfg)]
    assert "fashion_idx/vicreg" in ids and sum(i.startswith("fashion_idx/simvae") for i in ids) == 1
    with pytest.raises(ValueError, match="`idx_dir`"):
        ex.validate_config(ex.Config(image_data="idx"))
    with pytest.raises(ValueError, match="`idx_dir`"):
        ex.validate_config(ex.Config(image_data="idx", idx_dir=str(tmp_path / "absent")))


@pytest.mark.parametrize("field,value", [
    ("data", "cifar"), ("image_data", "mnist1d"), ("idx_kind", "kmnist"), ("n_train", 5), ("n_test", 2.5),
    ("image_n_steps", 0), ("n_steps", -1), ("n_seeds", 0), ("latent", True), ("batch_size", 1), ("lr", 0.0),
    ("lr", float("nan")), ("sigma2", -1.0), ("sigma_x2_vae", 0), ("beta", "4"), ("cr_lambda", -0.1),
    ("vicreg_mu", float("inf")), ("crop_min", 1.5), ("max_shift", -1), ("noise", -0.1), ("mlp_hidden", 0),
    ("mlp_epochs", 0), ("mlp_lr", -3e-4), ("mlp_batch", 100000), ("linear_steps", 0), ("seed", -1),
    ("hidden", ()), ("hidden", (128, 0)), ("amp_range", (1.2, 0.8)), ("temperatures", ()),
    ("linear_sigma_x2", (0.1, -0.1)), ("linear_e", ()), ("simvae_arms", ()), ("simvae_arms", ((1, 0.01, 0.0, 1.0),)),
    ("simvae_arms", ((4, 0.01, 1.0),)), ("simvae_arms", ((4, 0.01, 1.0, 1.0), (4, 0.01, 1.0, 1.0))),
    ("dtype", "float16"), ("net_dtype", 32), ("image_n_train", 10), ("image_n_test", 0),
])
def test_validate_config_names_the_bad_setting(field, value):
    import dataclasses

    from ssldyn.experiments import simvae as ex

    cfg = dataclasses.replace(ex.Config(), **{field: value})
    with pytest.raises((ValueError, TypeError), match=f"`{field}`"):
        ex.validate_config(cfg)
    ex.validate_config(ex.Config())  # the defaults are valid, and so is the quick protocol
    ex.validate_config(dataclasses.replace(ex.Config(), **ex.QUICK))
    assert ex.EXPERIMENT.validate is ex.validate_config

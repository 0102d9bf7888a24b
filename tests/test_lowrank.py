"""Low-rank output ODE: exact for exactly low-rank kernels, structural pair products, Nyström, error vs rank."""

import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn.scaling import (
    FactoredOutputFlow,
    LowRankOutputFlow,
    eigen_factor,
    factored_output_flow,
    lowrank_output_flow,
    lowrank_predict,
    nystrom_factor,
    pair_apply,
    pair_gram,
    residual_diagonal,
)

N, D, H, K_OUT, M_TEST = 10, 6, 12, 2, 4
M = 3 * N
RNG = np.random.default_rng(0)  # NumPy set-up and checks: compilations are spent on the library only
X = RNG.normal(size=(N, D)) * np.linspace(2.0, 0.3, D)  # anchors, positives, negatives as in helpers
XP = X + 0.3 * RNG.normal(size=(N, D))
XN = X[RNG.permutation(N)] + 0.3 * RNG.normal(size=(N, D))
A = np.concatenate([X, XP, XN, RNG.normal(size=(M_TEST, D))])  # joint inputs [Z; X_test], Z = stack_views
B = np.asarray(ssldyn.pair_matrix(N, "contrastive"))
TIMES = jnp.array([0.0, 0.5, 1.0, 2.0])
TOL = dict(rtol=1e-11, atol=1e-13)


def relu_kernel(Xa, Xb):
    return ssldyn.infinite_width_kernel(Xa, Xb, activation="relu")


def rbf_kernel(Xa, Xb):
    """A NumPy kernel with a fast-decaying spectrum (any callable works as `kernel_fn`)."""
    Xa, Xb = np.asarray(Xa), np.asarray(Xb)
    d2 = np.sum(Xa**2, 1)[:, None] + np.sum(Xb**2, 1)[None, :] - 2 * Xa @ Xb.T
    return np.exp(-np.maximum(d2, 0.0) / (2 * 3.0**2))


def exact_path(K_all, R0_all):
    """The m-dimensional output ODE with the test inputs (one compilation, shared by two tests)."""
    flow = ssldyn.OutputFlow(B, K_all[:M, :M], K_test=K_all[M:, :M])
    return [np.asarray(a) for a in ssldyn.solve(flow, (R0_all[:M], R0_all[M:]), 0.0, 2.0, ts=TIMES, **TOL).ys]


@pytest.mark.parametrize("kind", ["contrastive", "noncontrastive", "squared_contrastive", "squared_noncontrastive"])
def test_structural_pair_products_equal_dense(kind):
    Bk = np.asarray(ssldyn.pair_matrix(N, kind))
    m = Bk.shape[0]
    F = RNG.normal(size=(m + 3, 7))  # extra (evaluation) rows are ignored by pair_gram
    np.testing.assert_allclose(pair_apply(F[:m], N, kind), Bk @ F[:m], atol=1e-14)
    np.testing.assert_allclose(pair_gram(F, N, kind), F[:m].T @ Bk @ F[:m], atol=1e-13)
    with pytest.raises(ValueError, match="Y"):
        pair_apply(F, N, kind)
    with pytest.raises(ValueError, match="kind"):
        pair_gram(F, N, "bogus")


def test_exactly_low_rank_kernel_gives_the_exact_output_ode():
    """K = ΦΦᵀ with h = 12 < m + m* = 34: the rank-h path equals the m-dimensional output ODE."""
    Phi = np.tanh(A @ RNG.normal(size=(D, H)) / np.sqrt(D))
    K_all = Phi @ Phi.T
    R0_all = Phi @ np.linalg.qr(RNG.normal(size=(H, K_OUT)))[0]  # R(0) = Φ W(0), W(0) ∈ St(h, k)
    F, evals = eigen_factor(K_all, H, return_values=True)
    assert float(evals[H] / evals[0]) < 1e-12  # rank(K) = h
    flow = lowrank_output_flow(F, n=N)  # structural Fᵀ B F, eigenbasis
    W0 = flow.weights_from_outputs(R0_all)
    np.testing.assert_allclose(F @ W0, R0_all, atol=1e-12)  # R(0) lies in the range of F
    W = ssldyn.solve(flow, W0, 0.0, 2.0, ts=TIMES, **TOL).ys
    R, R_test = flow.outputs(W)
    R_ex, R_test_ex = exact_path(K_all, R0_all)
    assert np.max(np.abs(R_ex[-1] - R_ex[0])) > 0.3  # the dynamics really move
    np.testing.assert_allclose(R, R_ex, atol=1e-9)
    np.testing.assert_allclose(R_test, R_test_ex, atol=1e-9)
    np.testing.assert_allclose(float(flow.loss(W[-1])), -np.sum(R_ex[-1] * (B @ R_ex[-1])), rtol=1e-9)
    # Vector fields, constrained and naive, dense B: F v(W̃) = dR/dt of OutputFlow at R = F W̃ (any W̃).
    Wr = RNG.normal(size=(H, K_OUT))
    Fm = np.asarray(F[:M])
    for constrained, omega in ((True, 0.0), (False, 0.3)):
        lr = lowrank_output_flow(Fm, B, constrained=constrained, weight_decay=omega, eigenbasis=False)
        ex = ssldyn.OutputFlow(B, K_all[:M, :M], constrained=constrained, weight_decay=omega)
        np.testing.assert_allclose(Fm @ np.asarray(lr.vector_field(0.0, Wr)), ex.vector_field(0.0, Fm @ Wr),
                                   atol=1e-12)


def test_nystrom_with_all_points_as_landmarks_is_exact():
    K = np.asarray(relu_kernel(A, A))
    F_idx = nystrom_factor(relu_kernel, A, landmarks=np.arange(A.shape[0]), block_size=16)  # last block padded
    assert F_idx.shape == (A.shape[0], A.shape[0])
    np.testing.assert_allclose(F_idx @ F_idx.T, K, atol=1e-12)
    F_pts = nystrom_factor(rbf_kernel, A, landmarks=A)  # landmarks given as points; a NumPy kernel_fn
    np.testing.assert_allclose(F_pts @ F_pts.T, rbf_kernel(A, A), atol=1e-10)
    # Random landmarks: F Fᵀ reproduces the kernel's landmark columns exactly.
    F, L = nystrom_factor(rbf_kernel, A, 8, key=jax.random.PRNGKey(6), return_landmarks=True)
    idx = [int(np.argmin(np.sum((A - l) ** 2, axis=1))) for l in np.asarray(L)]
    np.testing.assert_allclose((F @ F.T)[:, idx], rbf_kernel(A, A)[:, idx], atol=1e-10)
    with pytest.raises(TypeError, match="kernel_fn"):
        nystrom_factor(None, A, 4)
    with pytest.raises(ValueError, match="rank"):
        nystrom_factor(rbf_kernel, A, 0)
    with pytest.raises(ValueError, match="landmarks"):
        nystrom_factor(rbf_kernel, A, landmarks=np.ones((3, D + 1)))


def test_error_decreases_with_rank():
    """A kernel with a decaying spectrum, `k(x, y) = Σ_j 4^{-j} φ_j(x) φ_j(y)` (h = 12 features):
    kernel and trajectory errors of both low-rank paths shrink as the rank r grows and vanish at r = h.

    Every rank is solved with the same shapes (the factor's columns beyond r are zeroed), so the
    solves reuse one compilation per path; R(0) ~ N(0, K/w) exactly (the r-dimensional path starts
    from its projection, the factored path from R(0) itself).
    """
    V, decay = RNG.normal(size=(D, H)) / np.sqrt(D), 0.25 ** np.arange(H)

    def kernel_fn(Xa, Xb):
        return (np.tanh(np.asarray(Xa) @ V) * decay) @ np.tanh(np.asarray(Xb) @ V).T

    width, m_all = 50, A.shape[0]
    K = width * kernel_fn(A, A)
    R0 = (np.tanh(A @ V) * np.sqrt(decay)) @ RNG.normal(size=(H, K_OUT))  # columns ~ N(0, K / width)
    ranks = [1, 3, 6, H]
    F_full = np.asarray(eigen_factor(K, H))
    perm = RNG.permutation(m_all)
    errors = {"kernel eigen": [], "kernel nystrom": [], "ode low-rank": [], "ode factored": []}
    R_ex = exact_path(K, R0)[0][-1]
    for r in ranks:
        F = F_full * (np.arange(H) < r)
        Fn = nystrom_factor(lambda a, c: width * kernel_fn(a, c), A, landmarks=perm[:r])  # nested landmarks
        errors["kernel eigen"].append(np.linalg.norm(F @ F.T - K) / np.linalg.norm(K))
        errors["kernel nystrom"].append(np.linalg.norm(Fn @ Fn.T - K) / np.linalg.norm(K))
        flow = lowrank_output_flow(F, n=N)
        W = ssldyn.solve(flow, flow.weights_from_outputs(R0), 0.0, 2.0, ts=TIMES, **TOL).ys
        errors["ode low-rank"].append(float(ssldyn.gram_gap(flow.outputs(W[-1])[0], R_ex)))
        fac = factored_output_flow(F, n=N, diagonal=residual_diagonal(K, None, F))
        R = lowrank_predict(fac, (R0[:M], R0[M:]), 2.0, **TOL)[0]
        errors["ode factored"].append(float(ssldyn.gram_gap(R, R_ex)))
    for errs in errors.values():
        assert all(b < a for a, b in zip(errs[:-1], errs[1:-1])) and errs[0] > 0.01 and errs[-1] < 1e-9, errors


def test_factored_flow_is_the_output_ode_for_factor_plus_diagonal():
    """K = F Fᵀ + diag(d) exactly: the matrix-free factored vector field (structural B, test inputs)
    is the output ODE's; with d = 0 and R = F W̃ it is F times the r-dimensional one."""
    r = 6
    F = RNG.normal(size=(M + M_TEST, r))
    d = RNG.uniform(0.1, 1.0, M + M_TEST)
    K_all = F @ F.T + np.diag(d)
    np.testing.assert_allclose(residual_diagonal(K_all, None, F), d, atol=1e-12)
    y = (RNG.normal(size=(M, K_OUT)), RNG.normal(size=(M_TEST, K_OUT)))  # a generic state, not in range(F)
    for constrained, omega in ((True, 0.0), (False, 0.3)):
        fac = factored_output_flow(F, n=N, diagonal=d, constrained=constrained, weight_decay=omega)
        ex = ssldyn.OutputFlow(B, K_all[:M, :M], K_test=K_all[M:, :M], constrained=constrained, weight_decay=omega)
        for a, b in zip(fac.vector_field(0.0, y), ex.vector_field(0.0, y)):
            np.testing.assert_allclose(a, b, atol=1e-12)
        np.testing.assert_allclose(fac.loss(y), ex.loss(y), rtol=1e-12)
        Wr = RNG.normal(size=(r, K_OUT))
        fac0 = FactoredOutputFlow(F[:M], B=B, constrained=constrained, weight_decay=omega)  # dense B, d = 0
        low = lowrank_output_flow(F[:M], n=N, constrained=constrained, weight_decay=omega, eigenbasis=False)
        np.testing.assert_allclose(fac0.vector_field(0.0, F[:M] @ Wr), F[:M] @ low.vector_field(0.0, Wr), atol=1e-12)
    flow = factored_output_flow(F, n=N, diagonal=d)
    R0, R0_test = flow.sample_initial(jax.random.PRNGKey(11), 3, width=10)
    assert R0.shape == (M, 3) and R0_test.shape == (M_TEST, 3)
    with pytest.raises(ValueError, match="diagonal"):
        factored_output_flow(F, n=N, diagonal=-d)
    with pytest.raises(TypeError, match="y0"):
        flow.check_initial(y[0])


def test_residual_diagonal_blockwise_equals_dense():
    F = nystrom_factor(rbf_kernel, A, 5, key=jax.random.PRNGKey(12))
    d = residual_diagonal(rbf_kernel, A, F, block_size=16)
    np.testing.assert_allclose(d, np.diag(rbf_kernel(A, A) - F @ F.T), atol=1e-12)
    assert float(np.min(d)) >= 0.0


def test_flow_arguments_and_sampling():
    F = RNG.normal(size=(M + 2, 5))
    flow = lowrank_output_flow(F, n=N)
    assert flow.rank == 5 and flow.n_train == M
    W0 = flow.sample_initial(jax.random.PRNGKey(10), 3, width=100)
    assert W0.shape == (5, 3)
    R, R_eval = flow.outputs(W0)
    assert R.shape == (M, 3) and R_eval.shape == (2, 3)
    with pytest.raises(ValueError, match="y0"):
        flow.check_initial(np.ones((4, 3)))
    with pytest.raises(ValueError, match="exactly one"):
        lowrank_output_flow(F)
    with pytest.raises(ValueError, match="weight_decay"):
        lowrank_output_flow(F, n=N, weight_decay=0.1)
    with pytest.raises(ValueError, match="S"):
        LowRankOutputFlow(F, np.eye(4))
    with pytest.raises(TypeError, match="flow"):
        lowrank_predict(ssldyn.OutputFlow(B, np.eye(M)), W0, 1.0)
    with pytest.raises(ValueError, match="exactly one"):
        factored_output_flow(F)
    with pytest.raises(ValueError, match="rank"):
        eigen_factor(np.eye(4), 5)


@pytest.mark.slow
def test_n5000_anchors_low_rank_runs(request):
    """n = 5,000 anchors (m = 15,000 stacked inputs) of embedded MNIST, ReLU NNGP kernel (h = 200,
    c_h = 1), Nyström rank 1,000 plus the residual diagonal: no m×m matrix is ever formed.

    Skipped unless selected with `-m slow`: `pytest -m slow tests/test_lowrank.py -s` (about 1-2
    minutes and ~1.1 GiB peak RSS on 2 CPU cores; see docs/scaling.md)."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long reproduction: run with -m slow")
    Xtr, ytr, Xte, yte = ssldyn.data.load_mnist("embedded")
    X = jnp.asarray(np.concatenate([Xtr, Xte]), jnp.float64)  # all 5,000 digits are anchors
    y = jnp.asarray(np.concatenate([ytr, yte]))
    n, k, width, r = X.shape[0], 5, 200, 1000
    t_start = time.perf_counter()
    views = ssldyn.data.make_views(jax.random.PRNGKey(1), X)
    Z = ssldyn.stack_views(views.anchors, views.positives, views.negatives)
    assert Z.shape == (15_000, 784)

    def kernel_fn(Xa, Xb):  # h c_h² K_∞ with c_h = 1
        return width * ssldyn.infinite_width_kernel(Xa, Xb, activation="relu")

    landmarks = jax.random.permutation(jax.random.PRNGKey(3), Z.shape[0])[:r]
    F = nystrom_factor(kernel_fn, Z, landmarks=landmarks)
    d = jax.block_until_ready(residual_diagonal(kernel_fn, Z, F))
    t_factor = time.perf_counter() - t_start
    flow = factored_output_flow(F, n=n, diagonal=d)
    R0 = flow.sample_initial(jax.random.PRNGKey(2), k, width=width)
    traj = ssldyn.solve(flow, R0, 0.0, 1.0, ts=jnp.array([0.25, 0.5, 0.75, 1.0]), rtol=1e-6, atol=1e-8)
    R = jax.block_until_ready(traj.ys[-1])
    # An independent check that can fail: the constrained output flow is the push-forward of the
    # Grassmann gradient flow, so its loss −tr(Rᵀ B R) (B applied matrix-free) decreases monotonically.
    losses = [float(-jnp.sum(Rt * pair_apply(Rt, n, "contrastive"))) for Rt in [R0, *traj.ys]]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    t_total = time.perf_counter() - t_start

    def gram_gap(Ra, Rb):  # via k×k products: ssldyn.gram_gap would form two 15,000² Grams (3.6 GB)
        aa, bb, ab = Ra.T @ Ra, Rb.T @ Rb, Ra.T @ Rb
        return float(jnp.sqrt(jnp.sum(aa**2) + jnp.sum(bb**2) - 2 * jnp.sum(ab**2)) / jnp.sqrt(jnp.sum(bb**2)))

    def probe(Rn):  # fit on the 4,000 training-pool digits, test on the 1,000 held-out ones (transductive SSL)
        return float(ssldyn.logistic_probe(Rn[:4000], y[:4000], Rn[4000:n], y[4000:], n_classes=10).accuracy)

    acc0, acc = probe(R0), probe(R)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # GiB (ru_maxrss is in KiB on Linux)
    print(f"\nn=5000 m=15000 r={r}: factor + diagonal {t_factor:.1f} s, total {t_total:.1f} s, peak RSS "
          f"{peak:.2f} GiB, F {F.nbytes / 2**20:.0f} MiB, moved {gram_gap(R, R0):.2f}, probe {acc0:.3f} -> {acc:.3f}")
    assert bool(jnp.all(jnp.isfinite(R))) and gram_gap(R, R0) > 0.5
    assert acc > acc0 and peak < 4.0

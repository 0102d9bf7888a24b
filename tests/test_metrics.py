"""Tests for ssldyn._metrics, each against an independent computation (scipy, numpy, closed forms)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from ssldyn._metrics import (
    ProbeResult,
    effective_rank,
    linear_cka,
    logistic_probe,
    loss_along,
    orthogonality_error,
    principal_angles,
    probe_accuracy,
    projector,
    rankme,
    ridge_probe,
    stable_rank,
    subspace_distance,
    top_eigenspace,
)


def _orthogonal(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _with_singular_values(rng, n, k, s):
    """Matrix (n, k) whose singular values are exactly `s` (padded with zeros)."""
    s = np.asarray(s, float)
    u = _orthogonal(rng, n)[:, : len(s)]
    v = _orthogonal(rng, k)[:, : len(s)]
    return (u * s) @ v.T


# ----------------------------------------------------------------------------------------------
# Stiefel / subspaces
# ----------------------------------------------------------------------------------------------


def test_orthogonality_error_and_batch():
    rng = np.random.default_rng(0)
    q = _orthogonal(rng, 5)[:, :3]
    assert float(orthogonality_error(q)) < 1e-13
    w = rng.normal(size=(4, 5, 3))
    expected = [np.linalg.norm(wi.T @ wi - np.eye(3)) for wi in w]
    np.testing.assert_allclose(orthogonality_error(w), expected, rtol=1e-12)
    assert float(orthogonality_error(2.0 * q)) == pytest.approx(3.0 * math.sqrt(3), rel=1e-12)


def test_projector_matches_pinv_and_handles_rank_deficiency():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(7, 3)) @ rng.normal(size=(3, 3))  # non-orthonormal, full rank
    p = np.asarray(projector(w))
    np.testing.assert_allclose(p, w @ np.linalg.pinv(w), atol=1e-12)
    np.testing.assert_allclose(p @ p, p, atol=1e-12)
    np.testing.assert_allclose(p, p.T, atol=1e-12)
    # Rank-deficient: third column a combination of the first two -> rank-2 projector.
    wd = np.column_stack([w[:, 0], w[:, 1], w[:, 0] - 2 * w[:, 1]])
    pd = np.asarray(projector(wd))
    np.testing.assert_allclose(pd, scipy.linalg.orth(wd) @ scipy.linalg.orth(wd).T, atol=1e-12)
    assert np.trace(pd) == pytest.approx(2.0, abs=1e-12)
    np.testing.assert_array_equal(np.asarray(projector(np.zeros((4, 2)))), np.zeros((4, 4)))
    # Batched input.
    pb = projector(np.stack([w, 3 * w]))
    np.testing.assert_allclose(pb[1], p, atol=1e-12)


@pytest.mark.parametrize("d,k1,k2", [(8, 3, 3), (8, 2, 4), (9, 5, 2), (6, 4, 4)])
def test_principal_angles_vs_scipy(d, k1, k2):
    rng = np.random.default_rng(d * 100 + k1 * 10 + k2)
    for _ in range(3):
        a, b = rng.normal(size=(d, k1)), rng.normal(size=(d, k2))
        got = np.asarray(principal_angles(a, b))
        ref = np.sort(scipy.linalg.subspace_angles(a, b))
        assert got.shape == (min(k1, k2),)
        assert np.all(np.diff(got) >= 0)
        # scipy applies its sine/cosine mask in reversed order, so when k1 + k2 > d it can take a
        # forced-zero angle from arccos (error ~ sqrt(eps) ~ 1e-8): hence atol, plus the exact check below.
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-7)
        n_zero = max(k1 + k2 - d, 0)  # dim(span A ∩ span B) for generic A, B
        assert np.all(got[:n_zero] < 1e-14)
        if n_zero == 0:
            np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_principal_angles_tiny_angles():
    rng = np.random.default_rng(3)
    d, k = 10, 3
    q = _orthogonal(rng, d)
    theta = np.array([1e-9, 3e-9, 0.7])
    a = q[:, :k]
    b = q[:, :k] * np.cos(theta) + q[:, k : 2 * k] * np.sin(theta)
    mix_a, mix_b = rng.normal(size=(k, k)), rng.normal(size=(k, k))  # non-orthonormal bases
    got = np.asarray(principal_angles(a @ mix_a, b @ mix_b))
    np.testing.assert_allclose(got, theta, rtol=1e-6)
    ref = np.sort(scipy.linalg.subspace_angles(a @ mix_a, b @ mix_b))
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # The naive arccos of the cosines loses the tiny angles entirely (this is what the test guards).
    cos = np.linalg.svd(a.T @ b, compute_uv=False)
    naive = np.sort(np.arccos(np.clip(cos, -1, 1)))
    assert abs(naive[0] - 1e-9) > 0.1 * 1e-9


def test_subspace_distance_projector_identity_and_basis_invariance():
    rng = np.random.default_rng(4)
    d = 9
    for k1, k2 in [(3, 3), (4, 4), (2, 5), (5, 3)]:
        a, b = rng.normal(size=(d, k1)), rng.normal(size=(d, k2))
        dist = float(subspace_distance(a, b))
        pa, pb = a @ np.linalg.pinv(a), b @ np.linalg.pinv(b)
        fro2 = np.linalg.norm(pa - pb) ** 2
        np.testing.assert_allclose(dist**2, fro2 / 2 - abs(k1 - k2) / 2, rtol=1e-10)
        np.testing.assert_allclose(dist**2, np.sum(np.sin(scipy.linalg.subspace_angles(a, b)) ** 2), rtol=1e-10)
        if k1 == k2:
            np.testing.assert_allclose(dist, np.linalg.norm(pa - pb) / math.sqrt(2), rtol=1e-10)
    a = rng.normal(size=(d, 4))
    rot = _orthogonal(rng, 4)
    assert float(subspace_distance(a, a @ rot)) < 1e-13
    assert float(subspace_distance(a, a @ rng.normal(size=(4, 4)))) < 1e-12
    # Contained subspace: distance zero although the projectors differ.
    assert float(subspace_distance(a, a[:, :2])) < 1e-13


def test_top_eigenspace():
    rng = np.random.default_rng(5)
    d = 6
    q = _orthogonal(rng, d)
    evals = np.array([5.0, -7.0, 3.0, 1.0, 0.5, -1.0])
    s = (q * evals) @ q.T
    s = (s + s.T) / 2
    v, vals = top_eigenspace(s, 2, return_values=True)
    np.testing.assert_allclose(vals, [5.0, 3.0], rtol=1e-12)
    assert v.shape == (d, 2)
    # Same span as the eigenvectors of 5 and 3 (largest, not largest-magnitude).
    assert float(subspace_distance(v, q[:, [0, 2]])) < 1e-10
    w, ref = scipy.linalg.eigh(s)
    np.testing.assert_allclose(np.abs(np.asarray(v)[:, 0]), np.abs(ref[:, -1]), atol=1e-10)


# ----------------------------------------------------------------------------------------------
# rank measures
# ----------------------------------------------------------------------------------------------


def test_rank_measures_prescribed_singular_values():
    rng = np.random.default_rng(6)
    s = np.array([3.0, 2.0, 1.0])
    z = _with_singular_values(rng, 10, 5, s)
    # stable rank: (9 + 4 + 1) / 9
    assert float(stable_rank(z)) == pytest.approx(14 / 9, rel=1e-12)
    # effective rank: p = (1/2, 1/3, 1/6)
    h = -(0.5 * math.log(0.5) + (1 / 3) * math.log(1 / 3) + (1 / 6) * math.log(1 / 6))
    assert float(effective_rank(z)) == pytest.approx(math.exp(h), rel=1e-10)
    # RankMe: eps added to every normalised singular value, including the two (numerically) zero ones.
    eps = 1e-7
    p = np.array([0.5, 1 / 3, 1 / 6, 0.0, 0.0]) + eps
    assert float(rankme(z, eps=eps)) == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-9)
    assert float(rankme(z, eps=0.0)) == pytest.approx(math.exp(h), rel=1e-10)
    # Flat spectrum of rank r -> all three equal r.
    zf = _with_singular_values(rng, 10, 5, 2.5 * np.ones(4))
    assert float(stable_rank(zf)) == pytest.approx(4.0, rel=1e-12)
    assert float(effective_rank(zf)) == pytest.approx(4.0, rel=1e-10)
    assert float(rankme(zf)) == pytest.approx(4.0, rel=1e-5)
    # Rank one -> 1; zero matrix -> 0; batches.
    z1 = _with_singular_values(rng, 10, 5, [2.0])
    assert float(effective_rank(z1)) == pytest.approx(1.0, rel=1e-10)
    assert float(stable_rank(np.zeros((10, 5)))) == 0.0
    assert float(effective_rank(np.zeros((10, 5)))) == 0.0
    assert float(rankme(np.zeros((10, 5)))) == 0.0
    batch = np.stack([_with_singular_values(rng, 10, 5, s), _with_singular_values(rng, 10, 5, [1.0, 1.0])])
    np.testing.assert_allclose(effective_rank(batch), [math.exp(h), 2.0], rtol=1e-10)
    np.testing.assert_allclose(stable_rank(batch), [14 / 9, 2.0], rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# CKA
# ----------------------------------------------------------------------------------------------


def _cka_hsic_numpy(x, y):
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))


def test_linear_cka():
    rng = np.random.default_rng(7)
    n = 30
    x = rng.normal(size=(n, 4))
    y = x @ rng.normal(size=(4, 6)) + 0.5 * rng.normal(size=(n, 6))
    val = float(linear_cka(x, y))
    assert val == pytest.approx(_cka_hsic_numpy(x, y), rel=1e-10)
    assert 0.0 < val < 1.0
    assert float(linear_cka(y, x)) == pytest.approx(val, rel=1e-12)
    # Rotation + scale (+ translation) of X -> CKA 1 with X; invariances of CKA(., Y).
    q = _orthogonal(rng, 4)
    assert float(linear_cka(x, 3.7 * x @ q)) == pytest.approx(1.0, abs=1e-12)
    assert float(linear_cka(x, x @ q * 0.2 + 5.0)) == pytest.approx(1.0, abs=1e-12)
    assert float(linear_cka(2.0 * x @ q - 1.0, y)) == pytest.approx(val, rel=1e-10)
    qy = _orthogonal(rng, 6)
    assert float(linear_cka(x, y @ qy + rng.normal(size=6))) == pytest.approx(val, rel=1e-10)
    # Not invariant to a general (anisotropic) invertible map.
    aniso = np.diag([10.0, 1.0, 0.1, 1.0])
    assert abs(float(linear_cka(x @ aniso, y)) - val) > 1e-3
    # Independent representations -> small CKA, still matches HSIC formula.
    z = rng.normal(size=(n, 3))
    assert float(linear_cka(x, z)) == pytest.approx(_cka_hsic_numpy(x, z), rel=1e-10)


# ----------------------------------------------------------------------------------------------
# probes
# ----------------------------------------------------------------------------------------------


def _blobs(rng, n, k, n_classes, sep, noise):
    centres = rng.normal(size=(n_classes, k))
    centres = sep * centres / np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    return centres[y] + noise * rng.normal(size=(n, k)), y


def test_ridge_probe_vs_lstsq():
    rng = np.random.default_rng(8)
    n, m, k, c = 40, 15, 5, 3
    ztr, ytr = _blobs(rng, n, k, c, 2.0, 1.0)
    zte, yte = _blobs(rng, m, k, c, 2.0, 1.0)
    ztr = ztr * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 4.0  # make standardisation matter
    zte = zte * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 4.0
    reg = 0.05
    res = ridge_probe(ztr, ytr, zte, yte, reg=reg)
    assert isinstance(res, ProbeResult) and res.n_iter is None
    # Independent: augmented least squares [X 1; sqrt(n reg) I 0] [W; b] = [T; 0] (bias unpenalised).
    mu, sd = ztr.mean(0), ztr.std(0)
    x = (ztr - mu) / sd
    t = np.eye(c)[ytr]
    aug = np.block([[x, np.ones((n, 1))], [math.sqrt(n * reg) * np.eye(k), np.zeros((k, 1))]])
    rhs = np.vstack([t, np.zeros((k, c))])
    sol = np.linalg.lstsq(aug, rhs, rcond=None)[0]
    np.testing.assert_allclose(res.weights, sol[:k], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.bias, sol[k], rtol=1e-9, atol=1e-12)
    scores = ((zte - mu) / sd) @ sol[:k] + sol[k]
    np.testing.assert_allclose(res.scores, scores, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(res.predictions, scores.argmax(1))
    assert float(res.accuracy) == pytest.approx(np.mean(scores.argmax(1) == yte))
    # Without y_test: no accuracy; float labels with integer values are accepted.
    res2 = ridge_probe(ztr, ytr.astype(float), zte, reg=reg)
    assert res2.accuracy is None
    np.testing.assert_allclose(res2.scores, res.scores, rtol=1e-12)
    assert float(probe_accuracy(ztr, ytr, zte, yte, method="ridge", reg=reg)) == float(res.accuracy)
    # Jittable with n_classes given.
    jitted = jax.jit(lambda a, b, cc: ridge_probe(a, b, cc, reg=reg, n_classes=c).scores)
    np.testing.assert_allclose(jitted(ztr, ytr, zte), res.scores, rtol=1e-10)


def _logistic_numpy_objective(theta, x, t, reg):
    k, c = x.shape[1], t.shape[1]
    w, b = theta[: k * c].reshape(k, c), theta[k * c :]
    logits = x @ w + b
    logits = logits - logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    prob = np.exp(logp)
    n = x.shape[0]
    val = -np.sum(t * logp) / n + 0.5 * reg * (np.sum(w**2) + np.sum(b**2))
    gw = x.T @ (prob - t) / n + reg * w
    gb = (prob - t).sum(0) / n + reg * b
    return val, np.concatenate([gw.ravel(), gb])


N_LOG, K_LOG, C_LOG = 60, 4, 3  # one shape -> one compilation of the L-BFGS loop


def test_logistic_probe_separable_blobs():
    rng = np.random.default_rng(9)
    ztr, ytr = _blobs(rng, N_LOG, K_LOG, C_LOG, 6.0, 0.3)
    zte, yte = _blobs(np.random.default_rng(9), N_LOG, K_LOG, C_LOG, 6.0, 0.3)  # same centres
    res = logistic_probe(ztr, ytr, zte, yte, reg=1e-3)
    assert float(res.accuracy) == 1.0
    assert float(res.grad_norm) < 1e-7
    assert int(res.n_iter) < 500
    assert float(probe_accuracy(ztr, ytr, zte, yte, method="logistic", reg=1e-3)) == 1.0
    # Deterministic.
    res_again = logistic_probe(ztr, ytr, zte, yte, reg=1e-3)
    np.testing.assert_array_equal(res_again.weights, res.weights)


def test_logistic_probe_optimum_vs_jax_grad_and_scipy():
    rng = np.random.default_rng(10)
    ztr, ytr = _blobs(rng, N_LOG, K_LOG, C_LOG, 1.5, 1.0)  # overlapping classes
    ztr = ztr * np.array([1.0, 5.0, 0.2, 1.0]) - 2.0
    reg = 1e-2
    res = logistic_probe(ztr, ytr, ztr, ytr, reg=reg)
    mu, sd = ztr.mean(0), ztr.std(0)
    x = (ztr - mu) / sd
    t = np.eye(C_LOG)[ytr]

    @jax.jit
    def objective(w, b):  # written independently of the library
        logits = x @ w + b
        ce = -jnp.mean(jnp.sum(t * jax.nn.log_softmax(logits, axis=1), axis=1))
        return ce + 0.5 * reg * (jnp.sum(w**2) + jnp.sum(b**2))

    gw, gb = jax.jit(jax.grad(objective, argnums=(0, 1)))(res.weights, res.bias)
    assert math.sqrt(np.sum(np.asarray(gw) ** 2) + np.sum(np.asarray(gb) ** 2)) < 1e-7
    theta0 = np.zeros(K_LOG * C_LOG + C_LOG)
    opt = scipy.optimize.minimize(_logistic_numpy_objective, theta0, args=(x, t, reg), jac=True,
                                  method="BFGS", options={"gtol": 1e-11, "maxiter": 2000})
    w_ref, b_ref = opt.x[: K_LOG * C_LOG].reshape(K_LOG, C_LOG), opt.x[K_LOG * C_LOG :]
    np.testing.assert_allclose(res.weights, w_ref, atol=1e-6)
    np.testing.assert_allclose(res.bias, b_ref, atol=1e-6)
    assert float(objective(res.weights, res.bias)) == pytest.approx(opt.fun, rel=1e-10)
    assert float(res.accuracy) < 1.0  # classes overlap: a genuine optimum, not a separable fit


def test_loss_along():
    traj = (jnp.arange(12.0).reshape(4, 3), jnp.ones((4, 2)))
    out = loss_along(traj, lambda s, c: c * (jnp.sum(s[0] ** 2) + jnp.sum(s[1])), 2.0)
    expected = [2.0 * (np.sum(np.arange(3.0 * i, 3.0 * i + 3) ** 2) + 2.0) for i in range(4)]
    np.testing.assert_allclose(out, expected)
    ws = np.random.default_rng(11).normal(size=(5, 6, 2))
    np.testing.assert_allclose(loss_along(ws, orthogonality_error), orthogonality_error(ws), rtol=1e-12)
    with pytest.raises(ValueError, match="traj_states"):
        loss_along((jnp.ones((4, 2)), jnp.ones((3, 2))), lambda s: 0.0)
    with pytest.raises(TypeError, match="loss_fn"):
        loss_along(jnp.ones((3, 2)), "not callable")


def test_jit_and_vmap_friendly():
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(3, 7, 2)), rng.normal(size=(3, 7, 2))
    got = jax.jit(jax.vmap(principal_angles))(a, b)
    ref = np.stack([np.sort(scipy.linalg.subspace_angles(ai, bi)) for ai, bi in zip(a, b)])
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.vmap(subspace_distance))(a, b),
                               [float(subspace_distance(ai, bi)) for ai, bi in zip(a, b)], rtol=1e-12)
    x = rng.normal(size=(10, 3))
    assert float(jax.jit(linear_cka)(x, x @ _orthogonal(rng, 3))) == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------


def test_bad_inputs():
    rng = np.random.default_rng(13)
    z, y = rng.normal(size=(10, 3)), np.arange(10) % 2
    with pytest.raises(ValueError, match="y_train"):
        ridge_probe(z, y[:9], z)
    with pytest.raises(ValueError, match="y_test"):
        ridge_probe(z, y, z, y[:8])
    with pytest.raises(ValueError, match="y_train"):
        logistic_probe(z[:7], y, z)
    with pytest.raises(ValueError, match="Z_train"):
        ridge_probe(z[:, 0], y, z)
    with pytest.raises(ValueError, match="n_classes"):
        ridge_probe(z, np.zeros(10, int), z)
    with pytest.raises(ValueError, match="Z_test"):
        ridge_probe(z, y, z[:, :2])
    bad = z.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="Z_train.*NaN"):
        ridge_probe(bad, y, z)
    with pytest.raises(ValueError, match="Z_test.*NaN"):
        logistic_probe(z, y, bad)
    with pytest.raises(ValueError, match="reg"):
        ridge_probe(z, y, z, reg=-1.0)
    with pytest.raises(ValueError, match="reg"):
        logistic_probe(z, y, z, reg=0.0)
    with pytest.raises(ValueError, match="y_train"):
        ridge_probe(z, y + 0.5, z)
    with pytest.raises(TypeError, match="y_train"):
        ridge_probe(z, np.array(["a"] * 10), z)
    with pytest.raises(ValueError, match="y_train"):
        ridge_probe(z, y - 1, z)  # negative label
    with pytest.raises(ValueError, match="y_test"):
        ridge_probe(z, y, z, y + 5, n_classes=2)
    with pytest.raises(ValueError, match="method"):
        probe_accuracy(z, y, z, y, method="svm")
    with pytest.raises(ValueError, match="steps"):
        logistic_probe(z, y, z, steps=0)
    s = rng.normal(size=(4, 4))
    with pytest.raises(ValueError, match="`k`"):
        top_eigenspace(s + s.T, 5)
    with pytest.raises(ValueError, match="`k`"):
        top_eigenspace(s + s.T, 0)
    with pytest.raises(TypeError, match="`k`"):
        top_eigenspace(s + s.T, 1.5)
    with pytest.raises(ValueError, match="`S`.*symmetric"):
        top_eigenspace(s, 2)
    with pytest.raises(ValueError, match="`S`"):
        top_eigenspace(np.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="`A`.*NaN"):
        principal_angles(np.full((4, 2), np.nan), np.ones((4, 2)))
    with pytest.raises(ValueError, match="same ambient"):
        subspace_distance(rng.normal(size=(5, 2)), rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="`B`.*full column rank"):
        principal_angles(rng.normal(size=(5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="`X`.*`Y`"):
        linear_cka(rng.normal(size=(5, 2)), rng.normal(size=(6, 2)))
    with pytest.raises(ValueError, match="`Z`"):
        effective_rank(np.ones(3))
    with pytest.raises(ValueError, match="`W`"):
        orthogonality_error(np.ones(3))
    with pytest.raises(ValueError, match="eps"):
        rankme(z, eps=-1.0)

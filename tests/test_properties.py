"""Property-based tests of the boundary functions (issue 16), with hypothesis.

Random shapes, dtypes (float32/float64; integer and complex inputs) and scales go into the public
functions; each call must either return a finite result that satisfies an invariant checked by an
independent computation (a second formulation, jax.grad, a matrix exponential, the weight-space
closed form) or raise ValueError/TypeError naming the argument. Deterministic: `derandomize=True`, no
example database.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssldyn

PROFILE = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=12, **PROFILE)
VERY_FEW = settings(max_examples=5, **PROFILE)

dtypes = st.sampled_from([np.float32, np.float64])
scales = st.sampled_from([1e-3, 1.0, 1e3])
seeds = st.integers(0, 2**31 - 1)


def _rng(seed):
    return np.random.default_rng(seed)


def _sym(A):
    return (A + A.T) / 2


def _tol(dtype):
    return 2e-5 if dtype == np.float32 else 1e-11


def _raises_naming(fn, name, exc=(ValueError, TypeError)):
    with pytest.raises(exc) as info:
        fn()
    assert f"`{name}`" in str(info.value), str(info.value)


# ---------------------------------------------------------------- view_stats


@FEW
@given(n=st.integers(1, 6), d=st.integers(1, 5), dtype=dtypes, scale=scales, seed=seeds)
def test_view_stats_invariants(n, d, dtype, scale, seed):
    rng = _rng(seed)
    X, Xp = (scale * rng.standard_normal((n, d))).astype(dtype), (scale * rng.standard_normal((n, d))).astype(dtype)
    st_ = ssldyn.view_stats(X, Xp)
    C0, Cp, Dp = (np.asarray(a, np.float64) for a in (st_.C0, st_.Cp, st_.Dp))
    big = scale**2 * _tol(dtype) * 10
    for M in (C0, Cp, Dp):
        assert np.all(np.isfinite(M)) and np.allclose(M, M.T, atol=big)
    assert np.linalg.eigvalsh(C0)[0] >= -big and np.linalg.eigvalsh(Dp)[0] >= -big
    # Second formulation: D+ = E(x − x+)(x − x+)ᵀ = 2 C0 − 2 C+ (with C+ symmetrised).
    np.testing.assert_allclose(Dp, 2 * C0 - 2 * Cp, atol=big * 10)
    # Independent NumPy computation of C0.
    X64, Xp64 = X.astype(np.float64), Xp.astype(np.float64)
    np.testing.assert_allclose(C0, (X64.T @ X64 + Xp64.T @ Xp64) / (2 * n), atol=big * 10)


@FEW
@given(n=st.integers(1, 4), d=st.integers(1, 4), seed=seeds)
def test_view_stats_complex_refused_integer_exact(n, d, seed):
    rng = _rng(seed)
    X = rng.integers(-5, 5, (n, d))
    Xp = rng.integers(-5, 5, (n, d))
    _raises_naming(lambda: ssldyn.view_stats(X + 1j, Xp), "X")
    _raises_naming(lambda: ssldyn.view_stats(X, Xp + 0j), "X_pos")
    _raises_naming(lambda: ssldyn.view_stats(X, np.ones((n, d + 1))), "X_pos")  # other feature count
    # Integers are exact in floating point: the statistics equal those of the float arrays.
    a, b = ssldyn.view_stats(X, Xp), ssldyn.view_stats(X.astype(float), Xp.astype(float))
    np.testing.assert_array_equal(np.asarray(a.C0), np.asarray(b.C0))


# ---------------------------------------------------------------- flows


def _spd_problem(seed, d, k, dtype, scale):
    rng = _rng(seed)
    A = rng.standard_normal((d, d))
    S = (scale * _sym(A) / np.sqrt(d)).astype(dtype)
    W0 = np.linalg.qr(rng.standard_normal((d, k)))[0].astype(dtype)
    return S, W0


@FEW
@given(d=st.integers(2, 4), data=st.data(), dtype=dtypes, scale=scales, seed=seeds, eig=st.booleans())
def test_grassmann_vector_field_is_horizontal_and_decreases_the_loss(d, data, dtype, scale, seed, eig):
    k = data.draw(st.integers(1, d))
    S, W0 = _spd_problem(seed, d, k, dtype, scale)
    flow = ssldyn.grassmann_flow(S, eigenbasis=eig)
    V = np.asarray(flow.from_internal(flow.vector_field(0.0, flow.to_internal(jnp.asarray(W0)))), np.float64)
    W = W0.astype(np.float64)
    ref = 2 * (np.eye(d) - W @ W.T) @ S.astype(np.float64) @ W  # Oja field, NumPy
    tol = _tol(dtype) * 10 * scale
    np.testing.assert_allclose(V, ref, atol=tol)
    np.testing.assert_allclose(W.T @ V, 0.0, atol=tol)  # horizontal (tangent)
    grad = np.asarray(jax.grad(flow.loss)(jnp.asarray(W0)), np.float64)  # jax.grad, external coordinates
    assert np.sum(grad * V) <= tol  # dL/dt = <∇L, V> ≤ 0


@FEW
@given(d=st.integers(1, 5), k=st.integers(1, 3), dtype=dtypes, scale=scales, seed=seeds, t=st.floats(0, 2))
def test_naive_solution_is_the_matrix_exponential(d, k, dtype, scale, seed, t):
    rng = _rng(seed)
    S = (_sym(rng.standard_normal((d, d))) / np.sqrt(d)).astype(dtype)
    W0 = (scale * rng.standard_normal((d, k))).astype(dtype)
    W = np.asarray(ssldyn.NaiveSolution(S, W0, weight_decay=0.1)(t), np.float64)
    ref = np.exp(-0.1 * t) * np.asarray(jax.scipy.linalg.expm(2 * t * jnp.asarray(S, jnp.float64))) @ W0.astype(np.float64)
    np.testing.assert_allclose(W, ref, rtol=_tol(dtype) * 100, atol=_tol(dtype) * 100 * scale)


@VERY_FEW
@given(d=st.integers(2, 4), data=st.data(), seed=seeds, eig=st.booleans())
def test_grassmann_closed_form_equals_integration(d, data, seed, eig):
    k = data.draw(st.integers(1, d - 1))
    S, W0 = _spd_problem(seed, d, k, np.float64, 1.0)
    ts = jnp.array([0.0, 0.5, 2.0])
    traj = ssldyn.solve(ssldyn.grassmann_flow(S, eigenbasis=eig), W0, 0.0, 2.0, ts=ts, rtol=1e-10, atol=1e-12)
    cf = ssldyn.GrassmannSolution(S, W0)
    losses = []
    for i, t in enumerate(ts):
        W = np.asarray(traj.ys[i])
        np.testing.assert_allclose(W @ W.T, np.asarray(cf.projector(t)), atol=1e-7)
        B = np.asarray(cf.basis(t))
        np.testing.assert_allclose(B.T @ B, np.eye(k), atol=1e-12)
        losses.append(float(cf.loss(t)))
    assert losses[0] >= losses[1] - 1e-12 >= losses[2] - 2e-12  # the loss decreases along the flow


@FEW
@given(dtype=dtypes, seed=seeds)
def test_flows_and_closed_forms_refuse_complex_and_bad_shapes(dtype, seed):
    S, W0 = _spd_problem(seed, 4, 2, dtype, 1.0)
    _raises_naming(lambda: ssldyn.grassmann_flow(S + 1j), "S")
    _raises_naming(lambda: ssldyn.naive_flow(S[:, :3]), "S")
    _raises_naming(lambda: ssldyn.NaiveSolution(S, W0 + 0j), "W0")
    _raises_naming(lambda: ssldyn.GrassmannSolution(S, 2.0 * W0), "W0")  # not orthonormal
    _raises_naming(lambda: ssldyn.GrassmannSolution(S, W0[:3]), "W0")
    _raises_naming(lambda: ssldyn.GrassmannSolution(S, W0)(-1.0), "t")
    _raises_naming(lambda: ssldyn.solve(ssldyn.grassmann_flow(S), 2.0 * W0), "y0")
    _raises_naming(lambda: ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, -1.0), "t1")


# ---------------------------------------------------------------- output space and kernels


def _network(seed, h, m_half=4, d_in=3):
    rng = _rng(seed)
    Z = rng.standard_normal((2 * m_half, d_in))
    V = rng.standard_normal((h, d_in)) / np.sqrt(d_in)
    Phi = np.tanh(Z @ V.T) / np.sqrt(h)
    return Phi, ssldyn.pair_matrix(m_half, "noncontrastive")


@VERY_FEW
@given(h=st.sampled_from([3, 9]), seed=seeds, t=st.sampled_from([0.0, 0.3, 5.0, 300.0, 1e4]), use_root=st.booleans())
def test_output_solution_gram_equals_weight_space_closed_form(h, seed, t, use_root):
    Phi, B = _network(seed, h)
    B = np.asarray(B)
    W0 = np.linalg.qr(_rng(seed + 1).standard_normal((h, 2)))[0]
    try:
        grass = ssldyn.GrassmannSolution(Phi.T @ B @ Phi, W0)
    except ValueError:  # W0 (nearly) orthogonal to the top eigenspace: no reference
        return
    sol = ssldyn.OutputSolution(B, root=Phi) if use_root else ssldyn.OutputSolution(B, Phi @ Phi.T)
    lam_k = np.linalg.eigvalsh(Phi.T @ B @ Phi)[-2]  # K B and Φᵀ B Φ share their nonzero eigenvalues
    if 2 * t * max(-lam_k, 0.0) > np.log(1e4):  # documented refusal: the k-th direction cancels
        with pytest.raises(Exception, match="k-th eigenvalue"):
            sol(t, Phi @ W0)
        return
    R = np.asarray(sol(t, Phi @ W0))
    ref = Phi @ np.asarray(grass.projector(t)) @ Phi.T
    assert np.max(np.abs(R @ R.T - ref)) <= 1e-9 * np.max(np.abs(Phi @ Phi.T))


@FEW
@given(m=st.integers(1, 6), dtype=dtypes, scale=scales, seed=seeds, method=st.sampled_from(["eigh", "cholesky"]))
def test_kernel_root_reproduces_the_kernel(m, dtype, scale, seed, method):
    A = _rng(seed).standard_normal((m, m + 2))
    K = (scale * A @ A.T / (m + 2)).astype(dtype)
    L = np.asarray(ssldyn.kernel_root(K, method=method, jitter=1e-12 if dtype == np.float64 else 1e-7), np.float64)
    np.testing.assert_allclose(L @ L.T, K.astype(np.float64), atol=scale * _tol(dtype) * 50)
    _raises_naming(lambda: ssldyn.kernel_root(K + 0j), "K")
    _raises_naming(lambda: ssldyn.kernel_root(-K - scale * np.eye(m)), "K")


@FEW
@given(n=st.integers(2, 6), d=st.integers(1, 4), dtype=dtypes, scale=scales, seed=seeds,
       activation=st.sampled_from(["relu", "tanh", "erf", "linear"]))
def test_infinite_width_kernel_is_symmetric_psd(n, d, dtype, scale, seed, activation):
    X = (scale * _rng(seed).standard_normal((n, d))).astype(dtype)
    K = np.asarray(ssldyn.infinite_width_kernel(X, activation=activation), np.float64)
    assert K.shape == (n, n) and np.all(np.isfinite(K))
    assert np.allclose(K, K.T, atol=1e-6 * np.max(np.abs(K)))
    assert np.linalg.eigvalsh(K)[0] >= -1e-4 * np.max(np.abs(K))
    if activation == "linear":  # second formulation: the linear kernel is the scaled Gram matrix
        X64 = X.astype(np.float64)
        np.testing.assert_allclose(K, X64 @ X64.T / d, rtol=1e-5, atol=1e-5 * np.max(np.abs(K)))
    _raises_naming(lambda: ssldyn.infinite_width_kernel(X + 1j, activation=activation), "X")


@FEW
@given(n=st.integers(3, 8), d=st.integers(1, 4), dtype=dtypes, scale=scales, seed=seeds)
def test_linear_cka_invariants(n, d, dtype, scale, seed):
    rng = _rng(seed)
    X = (scale * rng.standard_normal((n, d))).astype(dtype)
    Y = rng.standard_normal((n, d + 1)).astype(dtype)
    c = float(ssldyn.linear_cka(X, Y))
    assert -1e-6 <= c <= 1 + 1e-6
    np.testing.assert_allclose(float(ssldyn.linear_cka(Y, X)), c, rtol=1e-4, atol=1e-6)  # symmetric
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0].astype(dtype)
    np.testing.assert_allclose(float(ssldyn.linear_cka(3.0 * X @ Q, Y)), c, rtol=1e-3, atol=1e-5)  # invariances
    np.testing.assert_allclose(float(ssldyn.linear_cka(X, X)), 1.0, rtol=1e-4)
    _raises_naming(lambda: ssldyn.linear_cka(np.ones((n, d), dtype), Y), "X")
    _raises_naming(lambda: ssldyn.linear_cka(X + 1j, Y), "X")


@FEW
@given(m=st.integers(1, 6), k=st.integers(-1, 4), dtype=dtypes, seed=seeds)
def test_sample_initial_outputs(m, k, dtype, seed):
    A = _rng(seed).standard_normal((m, m))
    K = (A @ A.T / m).astype(dtype)
    key = jax.random.PRNGKey(seed % 1000)
    if k < 1:
        _raises_naming(lambda: ssldyn.sample_initial_outputs(key, K, k, width=10), "k")
        return
    R = ssldyn.sample_initial_outputs(key, K, k, width=10)
    assert R.shape == (m, k) and bool(jnp.all(jnp.isfinite(R)))
    # R = L z / √h with L Lᵀ = K: R lies in the column space of K (second formulation by least squares).
    R64, K64 = np.asarray(R, np.float64), K.astype(np.float64)
    coef = np.linalg.lstsq(K64, R64, rcond=None)[0]
    np.testing.assert_allclose(K64 @ coef, R64, atol=1e-4 * max(1.0, np.max(np.abs(R64))))
    _raises_naming(lambda: ssldyn.sample_initial_outputs(key, K + 0j, k, width=10), "K")
    _raises_naming(lambda: ssldyn.sample_initial_outputs(key, K, k, width=-1), "width")

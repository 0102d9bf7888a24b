"""Tests for ssldyn._kernels: every check compares against an independent computation.

- closed forms (ReLU arc-cosine, Williams erf) vs numerical quadrature, and polar vs Gauss–Hermite quadrature;
- infinite-width kernels vs Monte-Carlo estimates from wide random networks, with the tolerance set by the
  Monte-Carlo standard error estimated from the per-feature samples (|emp − inf| ≤ 5 SE elementwise);
- the analytic empirical NTK vs the NTK assembled from `jax.jacobian` of the network output;
- the infinite-width NTK vs a wide network's empirical NTK (again 5 SE);
- symmetry / PSD, and input validation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf as sp_erf

from ssldyn._kernels import (
    conjugate_kernel,
    empirical_ntk,
    erf_kernel,
    get_activation,
    hidden_features,
    infinite_width_kernel,
    infinite_width_ntk,
    quadrature_kernel,
    random_features,
    relu_kernel,
)

D = 5
WIDE = 20_000


def _inputs(seed=0):
    """Six inputs in R^5 with the awkward cases: a collinear pair, an antipodal pair and a zero row."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, D))
    X[1] = 2.0 * X[0]
    X[2] = -0.5 * X[0]
    X[5] = 0.0
    return X


# Independent NumPy versions of the activations and their derivatives (not the library's).
_NP_ACT = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "erf": (sp_erf, lambda z: 2.0 / np.sqrt(np.pi) * np.exp(-z * z)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)),
                lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
}


# ----------------------------------------------------------------------------------------------------------
# Closed forms vs quadrature
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weight_var", [1.0, 3.0])
def test_closed_forms_match_quadrature(weight_var):
    X = _inputs()
    Kr = relu_kernel(X, weight_var=weight_var)
    Ke = erf_kernel(X, weight_var=weight_var)
    # Polar quadrature (default order 32) splits the angle at the ReLU kinks: ReLU and erf to ~1e-14 here.
    np.testing.assert_allclose(quadrature_kernel(X, activation="relu", weight_var=weight_var), Kr,
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(quadrature_kernel(X, activation="erf", weight_var=weight_var), Ke,
                               rtol=0, atol=1e-12)
    # Known diagonals: relu σ²‖x‖²/(2d), erf (2/π) arcsin(2q/(1+2q)).
    q = weight_var * np.sum(X**2, axis=1) / D
    np.testing.assert_allclose(np.diag(Kr), q / 2, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.diag(Ke), 2 / np.pi * np.arcsin(2 * q / (1 + 2 * q)), rtol=1e-13, atol=1e-15)
    # Collinear (θ = 0) and antipodal (θ = π) pairs: K = σ²‖x‖‖y‖/(2d) and 0; zero row gives 0.
    n0 = np.linalg.norm(X[0])
    assert abs(float(Kr[0, 1]) - weight_var * n0 * 2 * n0 / (2 * D)) < 1e-13
    assert abs(float(Kr[0, 2])) < 1e-13
    assert np.all(np.asarray(Kr[5]) == 0.0)


def test_quadrature_large_variance():
    # q = σ²‖x‖²/d up to ~16: erf(√q z) is nearly a step; the radial rule clusters nodes at r = 0.
    X = _inputs()
    q = 25.0 * np.sum(X**2, axis=1) / D
    assert q.max() > 15
    err = float(jnp.max(jnp.abs(quadrature_kernel(X, activation="erf", weight_var=25.0, order=48)
                                - erf_kernel(X, weight_var=25.0))))
    assert err < 1e-10                                      # measured 7e-12 (order 32: 3e-8)


def test_gauss_hermite_converges_to_erf_closed_form():
    X = _inputs()
    err = float(jnp.max(jnp.abs(quadrature_kernel(X, activation="erf", order=48, method="hermite") - erf_kernel(X))))
    assert err < 1e-10


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_polar_and_hermite_quadrature_agree(activation):
    X = _inputs()
    Kp = quadrature_kernel(X, activation=activation)
    Kh = quadrature_kernel(X, activation=activation, order=64, method="hermite")
    np.testing.assert_allclose(Kp, Kh, rtol=0, atol=1e-9)
    if activation == "sigmoid":  # zero row: u = 0, so K(0, x) = σ(0) E[σ(u')] = 1/4 exactly (odd symmetry)
        np.testing.assert_allclose(np.asarray(Kp[5]), 0.25, rtol=0, atol=1e-12)


def test_dispatch_and_cross_kernel():
    rng = np.random.default_rng(1)
    X, Y = _inputs(), rng.normal(size=(3, D))
    Z = np.vstack([X, Y])
    for act in ("relu", "erf"):
        full = infinite_width_kernel(Z, activation=act, weight_var=2.0)
        cross = infinite_width_kernel(X, Y, activation=act, weight_var=2.0)
        np.testing.assert_allclose(cross, np.asarray(full)[:6, 6:], rtol=0, atol=1e-12)
    # Cross kernel through the quadrature path (same shapes as the symmetric one, to reuse the compilation).
    perm = np.array([3, 0, 5, 1, 4, 2])
    full = np.asarray(infinite_width_kernel(X, activation="tanh", weight_var=2.0))
    cross = infinite_width_kernel(X, X[perm], activation="tanh", weight_var=2.0)
    np.testing.assert_allclose(cross, full[:, perm], rtol=0, atol=1e-12)
    # Closed forms are reached by dispatch (also from the recognised callables); an unrecognised wrapper
    # falls through to quadrature, which must agree.
    # ReLU by dispatch from the callable equals the arc-cosine formula written out here in NumPy
    # (Cho & Saul 2009): E[relu(u) relu(v)] = √(q₁q₂)(sin θ + (π − θ) cos θ)/(2π), q = σ² xᵀy/d.
    q = 1.0 * np.asarray(X) @ np.asarray(X).T / D
    nrm = np.sqrt(np.diag(q))
    outer = np.outer(nrm, nrm)
    cos = np.clip(np.divide(q, outer, out=np.ones_like(q), where=outer > 0), -1.0, 1.0)  # zero row: K = 0 anyway
    theta = np.arccos(cos)
    arccos = np.outer(nrm, nrm) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    np.testing.assert_allclose(infinite_width_kernel(X, activation=jax.nn.relu), arccos, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(infinite_width_kernel(X, activation=lambda z: jnp.maximum(z, 0.0)),
                               relu_kernel(X), rtol=0, atol=1e-11)
    np.testing.assert_allclose(infinite_width_kernel(X, activation="linear", weight_var=2.0),
                               2.0 * X @ X.T / D, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(quadrature_kernel(X, activation=lambda z: z, weight_var=2.0),
                               2.0 * X @ X.T / D, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# Infinite width vs Monte Carlo
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation,weight_var", [("relu", 1.0), ("erf", 2.0), ("tanh", 1.0), ("sigmoid", 2.0)])
def test_infinite_width_kernel_vs_monte_carlo(activation, weight_var):
    X = _inputs()
    V = random_features(jax.random.key(11), D, WIDE, weight_var=weight_var)
    # The library's wide-network kernel (c_h = 1/√h), and the same with c_h = 1 divided by h.
    K_emp = np.asarray(conjugate_kernel(X, V, activation, feature_scale=1.0 / np.sqrt(WIDE)))
    np.testing.assert_allclose(np.asarray(conjugate_kernel(X, V, activation)) / WIDE, K_emp, rtol=1e-12, atol=1e-14)
    # Per-feature samples φ(v_r·x_i) φ(v_r·x_j), computed independently with NumPy.
    A = _NP_ACT[activation][0](X @ np.asarray(V).T)                           # (n, h)
    S = A[:, None, :] * A[None, :, :]                                         # (n, n, h)
    np.testing.assert_allclose(S.mean(-1), K_emp, rtol=1e-10, atol=1e-14)
    se = S.std(-1, ddof=1) / np.sqrt(WIDE)
    K_inf = np.asarray(infinite_width_kernel(X, activation=activation, weight_var=weight_var))
    z = np.abs(K_emp - K_inf) / np.maximum(se, 1e-300)
    ok = np.abs(K_emp - K_inf) <= 5 * se + 1e-12                             # 1e-12: exact zero-variance entries
    assert ok.all(), f"max |z| = {z[se > 0].max():.2f}"
    # Aggregate: the z-scores should look standard normal, not systematically biased.
    iu = np.triu_indices(6)
    zz = ((K_emp - K_inf) / np.where(se > 0, se, np.inf))[iu]
    assert np.mean(zz[np.isfinite(zz) & (se[iu] > 0)] ** 2) < 5.0


@pytest.mark.parametrize("activation,parametrization", [("relu", "standard"), ("tanh", "ntk")])
def test_infinite_width_ntk_vs_wide_network(activation, parametrization):
    X = _inputs()
    k, wv, ov = 2, 1.5, 0.7
    V = random_features(jax.random.key(3), D, WIDE, weight_var=wv)
    W = np.sqrt(ov) * np.asarray(jax.random.normal(jax.random.key(4), (WIDE, k)))
    c = 1.0 / np.sqrt(WIDE)
    theta = np.asarray(empirical_ntk(X, V, W, activation, feature_scale=c, parametrization=parametrization,
                                     weight_var=wv))
    # Per-feature samples of δ_ab φφ + g W_ra W_rb φ'φ' x·x' (NumPy, independent of the library).
    phi, dphi = _NP_ACT[activation]
    Z = X @ np.asarray(V).T
    g = 1.0 if parametrization == "standard" else wv / D
    A, G = phi(Z), dphi(Z)
    last = A[:, None, :] * A[None, :, :]                                          # (n, n, h)
    hid = (G[:, None, :] * G[None, :, :])[:, :, None, None, :] * (W.T[:, None, :] * W.T[None, :, :])
    S = np.eye(k)[None, None, :, :, None] * last[:, :, None, None, :] + g * (X @ X.T)[:, :, None, None, None] * hid
    np.testing.assert_allclose(S.mean(-1), theta, rtol=1e-9, atol=1e-13)
    se = S.std(-1, ddof=1) / np.sqrt(WIDE)
    inf = np.asarray(infinite_width_ntk(X, activation=activation, weight_var=wv, output_var=ov,
                                        parametrization=parametrization))
    target = inf[:, :, None, None] * np.eye(k)
    assert (np.abs(theta - target) <= 5 * se + 1e-12).all()


def test_infinite_width_ntk_closed_forms_match_quadrature():
    X = _inputs()
    # ReLU/erf derivative moments in closed form vs quadrature of φ' (step / Gaussian) via unrecognised wrappers.
    for name, wrapped in (("relu", lambda z: jnp.maximum(z, 0.0)), ("erf", lambda z: jax.scipy.special.erf(z))):
        np.testing.assert_allclose(infinite_width_ntk(X, activation=wrapped, weight_var=2.0),
                                   infinite_width_ntk(X, activation=name, weight_var=2.0), rtol=0, atol=1e-12)
    # ReLU diagonal: Θ(x, x) = σ²‖x‖²/(2d) + σ_o² g ‖x‖² / 2 with g = 1 (standard) or σ²/d (ntk).
    sq = np.sum(X**2, axis=1)
    for par, g in (("standard", 1.0), ("ntk", 2.0 / D)):
        th = infinite_width_ntk(X, activation="relu", weight_var=2.0, output_var=0.5, parametrization=par)
        np.testing.assert_allclose(np.diag(th), 2.0 * sq / (2 * D) + 0.5 * g * sq / 2, rtol=1e-14, atol=1e-15)
        # Distinct collinear (x, 2x) and antipodal (x, −x/2) pairs: θ = 0 and π must be resolved to O(ε)
        # (not the O(√ε) of arccos of a Gram cosine), since the derivative moment (π − θ)/2π has slope there.
        np.testing.assert_allclose(float(th[0, 1]), 2.0 * 2 * sq[0] / (2 * D) + 0.5 * g * 2 * sq[0] / 2,
                                   rtol=1e-14)
        assert abs(float(th[0, 2])) < 1e-15


# ----------------------------------------------------------------------------------------------------------
# Empirical NTK vs autodiff
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation,parametrization", [("tanh", "standard"), ("relu", "standard"),
                                                        ("sigmoid", "ntk")])
def test_empirical_ntk_matches_jacobian(activation, parametrization):
    rng = np.random.default_rng(2)
    d, h, k, wv = 4, 7, 3, 2.0
    X, Y = rng.normal(size=(5, d)), rng.normal(size=(3, d))
    Vhat = rng.normal(size=(h, d))
    V = np.sqrt(wv / d) * Vhat
    W = rng.normal(size=(h, k))
    phi = get_activation(activation)
    # Hidden weights as trained parameters: V itself ("standard") or V̂ with V = sqrt(σ²/d) V̂ ("ntk").
    scale, P0 = (1.0, V) if parametrization == "standard" else (np.sqrt(wv / d), Vhat)

    def net(params, x, c):
        P, W_ = params
        return W_.T @ (c * phi(scale * P @ x))

    @jax.jit
    def jacobians(Z, c):
        def one(x):
            jv, jw = jax.jacobian(net)((jnp.asarray(P0), jnp.asarray(W)), x, c)
            return jnp.concatenate([jv.reshape(k, -1), jw.reshape(k, -1)], axis=1)   # (k, P)
        return jax.vmap(one)(Z)

    for c in (1.0, 1.0 / np.sqrt(h)):
        J = jacobians(jnp.asarray(np.vstack([X, Y])), c)
        JX, JY = J[:5], J[5:]
        ref_xy = jnp.einsum("iap,jbp->ijab", JX, JY)
        ref_xx = jnp.einsum("iap,jbp->ijab", JX, JX)
        kw = dict(feature_scale=c, parametrization=parametrization, weight_var=wv)
        np.testing.assert_allclose(empirical_ntk(X, V, W, activation, Y=Y, **kw), ref_xy, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(empirical_ntk(X, V, W, activation, **kw), ref_xx, rtol=1e-12, atol=1e-12)
        # Last-layer NTK (gradients w.r.t. W only) is the conjugate kernel on every output coordinate.
        ref_last = jnp.einsum("iap,jbp->ijab", JX[:, :, -h * k:], JY[:, :, -h * k:])
        Kc = conjugate_kernel(X, V, activation, feature_scale=c, Y=Y)
        np.testing.assert_allclose(ref_last, Kc[:, :, None, None] * jnp.eye(k), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# Structure: symmetry and PSD
# ----------------------------------------------------------------------------------------------------------

def _assert_sym_psd(K, name):
    K = np.asarray(K)
    np.testing.assert_array_equal(K, K.T, err_msg=name)
    ev = np.linalg.eigvalsh(K)
    assert ev.min() >= -1e-10 * ev.max(), f"{name}: min eigenvalue {ev.min():.3g}, max {ev.max():.3g}"


def test_kernels_symmetric_psd():
    X = np.random.default_rng(5).normal(size=(6, D))        # same shape as `_inputs()`: reuses compilations
    X[3] = 3.0 * X[0]                                       # collinear pair
    for act in ("relu", "erf", "tanh", "sigmoid"):
        _assert_sym_psd(infinite_width_kernel(X, activation=act), act)
        _assert_sym_psd(infinite_width_ntk(X, activation=act), f"ntk {act}")
    V = random_features(jax.random.key(0), D, 50)
    W = np.random.default_rng(6).normal(size=(50, 2))
    _assert_sym_psd(conjugate_kernel(X, V, "tanh"), "conjugate")
    T = np.asarray(empirical_ntk(X, V, W, "tanh"))
    _assert_sym_psd(T.transpose(0, 2, 1, 3).reshape(12, 12), "empirical ntk")


def test_random_features_and_hidden_features():
    V = random_features(jax.random.key(7), D, WIDE, weight_var=2.0)
    assert V.shape == (WIDE, D) and V.dtype == jnp.float64
    n = V.size
    var = float(jnp.var(V))
    # Sample variance of N(0, s²) from n draws has standard error s² sqrt(2/n).
    assert abs(var - 2.0 / D) < 5 * (2.0 / D) * np.sqrt(2.0 / n)
    assert random_features(jax.random.key(7), D, 3, dtype=jnp.float32).dtype == jnp.float32
    X = _inputs()
    Phi = hidden_features(X, V[:10], "tanh", feature_scale=0.5)
    np.testing.assert_allclose(Phi, 0.5 * np.tanh(X @ np.asarray(V[:10]).T), rtol=1e-13, atol=1e-15)


def test_works_under_jit():
    X = _inputs()
    np.testing.assert_allclose(jax.jit(lambda x: relu_kernel(x, weight_var=2.0))(X), relu_kernel(X, weight_var=2.0),
                               rtol=1e-14, atol=1e-15)


# ----------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------

def test_bad_inputs():
    X = _inputs()
    V = random_features(jax.random.key(0), D, 4)
    W = np.ones((4, 2))
    with pytest.raises(ValueError, match="`activation`.*'relu'"):
        get_activation("softplusx")
    with pytest.raises(ValueError, match="`activation`"):
        quadrature_kernel(X, activation="nope")
    with pytest.raises(ValueError, match="`activation`"):
        conjugate_kernel(X, V, "nope")
    with pytest.raises(TypeError, match="`activation`"):
        get_activation(3)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    for fn in (lambda: relu_kernel(Xn), lambda: hidden_features(Xn, V, "relu"),
               lambda: infinite_width_kernel(X, Xn, activation="tanh")):
        with pytest.raises(ValueError, match="NaN"):
            fn()
    with pytest.raises(ValueError, match="`Y`"):
        erf_kernel(X, np.ones((2, D + 1)))
    with pytest.raises(ValueError, match="`Y`"):
        conjugate_kernel(X, V, "relu", Y=np.ones((2, D + 1)))
    with pytest.raises(ValueError, match="`V`"):
        hidden_features(X, np.ones((4, D + 1)), "relu")
    with pytest.raises(ValueError, match="`W`"):
        empirical_ntk(X, V, np.ones((5, 2)), "relu")
    with pytest.raises(ValueError, match="`X`"):
        relu_kernel(np.ones(5))
    for bad in (0.0, -1.0):
        for fn in (lambda b: relu_kernel(X, weight_var=b), lambda b: erf_kernel(X, weight_var=b),
                   lambda b: quadrature_kernel(X, activation="tanh", weight_var=b),
                   lambda b: random_features(jax.random.key(0), D, 3, weight_var=b),
                   lambda b: infinite_width_ntk(X, activation="relu", weight_var=b)):
            with pytest.raises(ValueError, match="`weight_var`"):
                fn(bad)
    with pytest.raises(ValueError, match="`feature_scale`"):
        hidden_features(X, V, "relu", feature_scale=0.0)
    with pytest.raises(TypeError, match="`order`"):
        quadrature_kernel(X, activation="tanh", order=3.5)
    with pytest.raises(ValueError, match="`method`"):
        quadrature_kernel(X, activation="tanh", method="simpson")
    with pytest.raises(ValueError, match="`parametrization`"):
        empirical_ntk(X, V, W, "relu", parametrization="mup")
    with pytest.raises(TypeError, match="`h`"):
        random_features(jax.random.key(0), D, 2.5)
    with pytest.raises(TypeError, match="`key`"):
        random_features(0, D, 3)


# --- Hermite (Mehler) series for smooth activations -------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "erf"])
@pytest.mark.parametrize("scale", [0.3, 1.0, 2.0])
def test_hermite_series_matches_polar_quadrature_and_its_bound_holds(activation, scale):
    """Series vs an independent 2-D quadrature; the rigorous tail bound must cover the actual error."""
    from ssldyn._kernels import hermite_series_kernel, quadrature_kernel

    X = scale * jax.random.normal(jax.random.PRNGKey(11), (12, 7))
    X = X.at[3].set(-0.5 * X[2])  # an anti-collinear pair
    K, bound = hermite_series_kernel(X, activation=activation, n_terms=40, return_bound=True)
    ref = quadrature_kernel(X, activation=activation, order=48)
    err = float(jnp.max(jnp.abs(K - ref)))
    assert err <= float(bound) + 1e-12
    if float(bound) < 1e-12:
        assert err < 1e-11


def test_hermite_series_bound_flags_relu_and_dispatch_falls_back():
    from ssldyn._kernels import hermite_series_kernel

    X = jax.random.normal(jax.random.PRNGKey(12), (6, 5))
    K, bound = hermite_series_kernel(X, activation=lambda z: jnp.maximum(z, 0.0), return_bound=True)
    ref = relu_kernel(X)
    assert float(jnp.max(jnp.abs(K - ref))) <= float(bound) and float(bound) > 1e-6  # kink: slow series
    # an unrecognised ReLU-like callable goes through 'auto': the bound is too large, so quadrature is used
    K_auto = infinite_width_kernel(X, activation=lambda z: jnp.maximum(z, 0.0), order=32)
    np.testing.assert_allclose(K_auto, ref, atol=1e-12)


def test_series_method_is_one_jittable_program_with_auto_numbers():
    """`method="series"` under jit gives what eager `"auto"` gives where it picks the series, and its
    bound holds against an independent quadrature; closed forms report bound 0, quadrature NaN."""
    X = jax.random.uniform(jax.random.PRNGKey(3), (9, 7))
    for act in ("tanh", "sigmoid"):
        K_jit, bound = jax.jit(lambda X, act=act: infinite_width_kernel(X, activation=act, method="series",
                                                                          return_bound=True))(X)
        K_auto, b_auto = infinite_width_kernel(X, activation=act, return_bound=True)
        np.testing.assert_allclose(K_jit, K_auto, rtol=1e-13, atol=1e-15)
        assert float(bound) == pytest.approx(float(b_auto), rel=1e-12)
        ref = quadrature_kernel(X, activation=act, order=48)
        assert float(jnp.max(jnp.abs(K_jit - ref))) <= float(bound) + 1e-13
    K, b = infinite_width_kernel(X, activation="relu", method="series", return_bound=True)
    np.testing.assert_allclose(K, relu_kernel(X), rtol=1e-13)
    assert float(b) == 0.0
    K, b = infinite_width_kernel(X, activation=lambda z: jnp.maximum(z, 0.0), order=32, return_bound=True)
    np.testing.assert_allclose(K, relu_kernel(X), atol=1e-12)  # the bound rules the series out: quadrature
    assert np.isnan(float(b))
    with pytest.raises(ValueError, match="`method`"):
        infinite_width_kernel(X, activation="tanh", method="serie")

"""View statistics, pair matrices and losses vs independent formulations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from helpers import random_views

KEY = jax.random.PRNGKey(0)
X, XP, XN = random_views(KEY, 12, 5)
W = jax.random.normal(jax.random.PRNGKey(1), (5, 3))

LOSSES = {
    "contrastive": lambda W: ssldyn.contrastive_loss(W, X, XP, XN),
    "noncontrastive": lambda W: ssldyn.noncontrastive_loss(W, X, XP),
    "squared_contrastive": lambda W: ssldyn.squared_contrastive_loss(W, X, XP, XN),
    "squared_noncontrastive": lambda W: ssldyn.squared_noncontrastive_loss(W, X, XP),
}


def per_anchor_loop(kind, W):
    """The per-anchor definitions written as explicit Python loops (independent of matrix forms)."""
    f = lambda x: W.T @ x
    total = 0.0
    for i in range(X.shape[0]):
        a, p, q = f(X[i]), f(XP[i]), f(XN[i])
        if kind == "contrastive":
            total += -(a @ p - a @ q)
        elif kind == "noncontrastive":
            total += -(a @ p)
        elif kind == "squared_contrastive":
            total += jnp.sum((a - p) ** 2) - jnp.sum((a - q) ** 2)
        else:
            total += jnp.sum((a - p) ** 2)
    return total / X.shape[0]


@pytest.mark.parametrize("kind", list(LOSSES))
def test_loss_matches_per_anchor_definition_and_quadratic_form(kind):
    stats = ssldyn.view_stats(X, XP, XN)
    ref = per_anchor_loop(kind, W)
    np.testing.assert_allclose(LOSSES[kind](W), ref, rtol=1e-12)
    np.testing.assert_allclose(ssldyn.quadratic_loss(W, stats.matrix(kind)), ref, rtol=1e-12)


@pytest.mark.parametrize("kind", list(LOSSES))
def test_pair_matrix_gives_same_loss_and_S(kind):
    n = X.shape[0]
    neg = XN if "contrastive" in kind and not kind.endswith("noncontrastive") else None
    Z = ssldyn.stack_views(X, XP, neg)
    B = ssldyn.pair_matrix(n, kind)
    np.testing.assert_allclose(ssldyn.output_loss(Z @ W, B), per_anchor_loop(kind, W), rtol=1e-12)
    S = ssldyn.view_stats(X, XP, XN).matrix(kind)
    np.testing.assert_allclose(Z.T @ B @ Z, S, atol=1e-12)


@pytest.mark.parametrize("kind", list(LOSSES))
def test_grad_of_loss_is_minus_naive_vector_field(kind):
    S = ssldyn.view_stats(X, XP, XN).matrix(kind)
    flow = ssldyn.naive_flow(S, weight_decay=0.0)
    np.testing.assert_allclose(-jax.grad(LOSSES[kind])(W), flow.vector_field(0.0, W), atol=1e-12)


def test_squared_variant_relation_to_inner_product():
    """B_sq = 2B + (1/n) diag(0, -I, I): the two forms differ by view-norm terms (theory §2)."""
    n = 7
    B, Bsq = ssldyn.pair_matrix(n, "contrastive"), ssldyn.pair_matrix(n, "squared_contrastive")
    eye = jnp.eye(n)
    extra = jax.scipy.linalg.block_diag(0 * eye, -eye, eye) / n
    np.testing.assert_allclose(Bsq, 2 * B + extra, atol=1e-15)


def _central_differences(fn, W, h=1e-5):
    """−∇fn(W) by central finite differences (independent of autodiff), O(h²) accurate."""
    G = np.zeros(W.shape)
    for idx in np.ndindex(*W.shape):
        E = jnp.zeros_like(W).at[idx].set(h)
        G[idx] = (float(fn(W + E)) - float(fn(W - E))) / (2 * h)
    return -G


def test_gradient_flow_field_matches_finite_differences_of_the_loss():
    """GradientFlow's Euclidean field is −∇L: checked against central differences of InfoNCE,
    spectral contrastive and Barlow Twins (a second computation, not autodiff again), and its
    Stiefel field is the tangent projection of that gradient (written out by hand)."""
    for loss in (ssldyn.info_nce_loss, ssldyn.spectral_contrastive_loss, ssldyn.barlow_twins_loss):
        fn = lambda W, loss=loss: loss(X @ W, XP @ W)
        flow = ssldyn.GradientFlow(lambda W, a: fn(W), "euclidean", args=(X, XP))
        fd = _central_differences(fn, W)
        np.testing.assert_allclose(flow.vector_field(0.0, W), fd, rtol=1e-6, atol=1e-8)
        Q = ssldyn.stiefel_init(jax.random.PRNGKey(5), 5, 3)
        G = -_central_differences(fn, Q)
        tangent = -(G - Q @ (0.5 * (Q.T @ G + G.T @ Q)))  # −(G − Q sym(QᵀG))
        stiefel = ssldyn.GradientFlow(lambda W, a: fn(W), "stiefel", args=(X, XP))
        np.testing.assert_allclose(stiefel.vector_field(0.0, Q), tangent, rtol=1e-6, atol=1e-8)


def test_info_nce_matches_direct_softmax_formula():
    z, zp = X @ W, XP @ W
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    zpn = zp / np.linalg.norm(zp, axis=1, keepdims=True)
    logits = np.asarray(zn @ zpn.T) / 0.2
    p_row = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    p_col = np.exp(logits) / np.exp(logits).sum(0, keepdims=True)
    ref = 0.5 * (-np.log(np.diag(p_row)).mean() - np.log(np.diag(p_col)).mean())
    np.testing.assert_allclose(ssldyn.info_nce_loss(z, zp, temperature=0.2), ref, rtol=1e-10)


def test_population_stats_match_analytic_moments():
    """x̄ ~ N(0, Σ), views x = x̄ + σ ε: C+ = Σ, C0 = Σ + σ²I, C− = 0, D+ = 2σ²I (Monte Carlo)."""
    d, sigma, n = 4, 0.5, 200_000
    L = jnp.tril(jax.random.normal(jax.random.PRNGKey(3), (d, d))) + 2 * jnp.eye(d)
    Sigma = L @ L.T
    sample = lambda key, n: jax.random.normal(key, (n, d)) @ L.T
    augment = lambda key, x: x + sigma * jax.random.normal(key, x.shape)
    st = ssldyn.population_view_stats(jax.random.PRNGKey(4), sample, augment, n, batch_size=50_000)
    # Standard error of an entry of a second moment is about sqrt(Σ_ii Σ_jj / n); allow 5 SE.
    se = 5 * np.sqrt(np.outer(np.diag(Sigma) + sigma**2, np.diag(Sigma) + sigma**2) * 2 / n)
    assert np.all(np.abs(st.Cp - Sigma) < se)
    assert np.all(np.abs(st.C0 - Sigma - sigma**2 * np.eye(d)) < se)
    assert np.all(np.abs(st.Cm) < se)
    assert np.all(np.abs(st.Dp - 2 * sigma**2 * np.eye(d)) < 5 * np.sqrt(8 * sigma**4 / n) + 0 * se)
    # Determinism per key.
    st2 = ssldyn.population_view_stats(jax.random.PRNGKey(4), sample, augment, n, batch_size=50_000)
    np.testing.assert_array_equal(st.Cp, st2.Cp)

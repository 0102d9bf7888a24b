"""Networks: parametrisations, retractions, training modes, against independent formulations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from helpers import random_views

X, XP, XN = random_views(jax.random.PRNGKey(0), 8, 6)
Z = ssldyn.stack_views(X, XP, XN)
B = ssldyn.pair_matrix(8)


def test_ntk_parametrisation_is_the_same_function_and_rescales_first_layer_gradients():
    std = ssldyn.NetworkSpec(d=6, h=20, k=2, activation="tanh", feature_scale="1/sqrt(h)")
    ntk = ssldyn.NetworkSpec(d=6, h=20, k=2, activation="tanh", feature_scale="1/sqrt(h)", parametrization="ntk")
    p = ssldyn.init_network(jax.random.PRNGKey(1), ntk, dtype=jnp.float64)
    p_std = {**p, "V": p["V"] / jnp.sqrt(6.0)}
    np.testing.assert_allclose(ssldyn.network_apply(ntk, p, Z), ssldyn.network_apply(std, p_std, Z), atol=1e-13)
    loss = lambda spec, q: ssldyn.output_loss(ssldyn.network_apply(spec, q, Z), B)
    g_ntk, g_std = jax.grad(lambda q: loss(ntk, q))(p), jax.grad(lambda q: loss(std, q))(p_std)
    np.testing.assert_allclose(g_ntk["V"], g_std["V"] / jnp.sqrt(6.0), atol=1e-13)  # chain rule V = V̂/√d
    np.testing.assert_allclose(g_ntk["W"], g_std["W"], atol=1e-13)


def test_features_match_a_direct_formula_with_two_hidden_layers():
    spec = ssldyn.NetworkSpec(d=6, h=7, k=2, activation="relu", feature_scale=0.5, hidden_layers=2)
    p = ssldyn.init_network(jax.random.PRNGKey(2), spec, dtype=jnp.float64)
    H1 = 0.5 * np.maximum(np.asarray(Z) @ np.asarray(p["V"]).T, 0.0)
    H2 = 0.5 * np.maximum(H1 @ np.asarray(p["V2"]).T, 0.0)
    np.testing.assert_allclose(ssldyn.network_apply(spec, p, Z), H2 @ np.asarray(p["W"]), atol=1e-13)


@pytest.mark.parametrize("retraction", ["qr", "polar"])
def test_all_layer_training_keeps_w_on_stiefel_and_decreases_the_loss(retraction):
    """Small-lr GD on a smooth loss decreases it every step; the retraction keeps WᵀW = I."""
    spec = ssldyn.NetworkSpec(d=6, h=12, k=3, activation="sigmoid", feature_scale=1.0, hidden_layers=2)
    p = ssldyn.init_network(jax.random.PRNGKey(3), spec, dtype=jnp.float64)
    loss = lambda q: float(ssldyn.output_loss(ssldyn.network_apply(spec, q, Z), B))
    values = [loss(p)]
    for _ in range(5):
        p = ssldyn.train_network(spec, p, Z, B, lr=0.02, n_steps=4, train="all", retraction=retraction).params
        values.append(loss(p))
        W = p["W"]
        assert float(jnp.max(jnp.abs(W.T @ W - jnp.eye(3)))) < 1e-12
    assert all(b < a for a, b in zip(values, values[1:]))


def test_naive_last_layer_training_is_explicit_euler_of_the_naive_output_flow():
    """Unconstrained GD with V frozen: R ← R + lr · 2KBR (− ωR), i.e. Euler on the naive output ODE."""
    spec = ssldyn.NetworkSpec(d=6, h=15, k=2, activation="tanh", feature_scale=1.0)
    p = ssldyn.init_network(jax.random.PRNGKey(4), spec, constrained=False, dtype=jnp.float64)
    Phi = ssldyn.network_features(spec, p, Z)
    res = ssldyn.train_network(spec, p, Z, B, lr=0.01, n_steps=7, constrained=False, weight_decay=0.3)
    flow = ssldyn.output_flow(B, ssldyn.hidden_gram(Phi), constrained=False, weight_decay=0.3)
    euler = ssldyn.simulate_gd(flow, Phi @ p["W"], 0.01, 7).final
    np.testing.assert_allclose(Phi @ res.params["W"], euler, atol=1e-12)


def test_saved_representations_and_bad_arguments():
    spec = ssldyn.NetworkSpec(d=6, h=5, k=2)
    p = ssldyn.init_network(jax.random.PRNGKey(5), spec, dtype=jnp.float64)
    res = ssldyn.train_network(spec, p, Z, B, lr=0.01, n_steps=10, X_eval=X, save_every=3)
    assert res.saved.shape == (3, 8, 2)
    again = ssldyn.train_network(spec, p, Z, B, lr=0.01, n_steps=9)
    np.testing.assert_allclose(res.saved[-1], ssldyn.network_apply(spec, again.params, X), atol=1e-13)
    with pytest.raises(ValueError, match="`train`"):
        ssldyn.train_network(spec, p, Z, B, train="first")
    with pytest.raises(ValueError, match="`Z` must have 6 columns"):
        ssldyn.train_network(spec, p, Z[:, :5], B)
    with pytest.raises(ValueError, match="`k` must be in"):
        ssldyn.NetworkSpec(d=6, h=3, k=4)
    with pytest.raises(ValueError, match="activation"):
        ssldyn.NetworkSpec(d=6, h=3, k=2, activation="softsign-ish")
    with pytest.raises(ValueError, match="`feature_scale`"):
        ssldyn.NetworkSpec(d=6, h=3, k=2, feature_scale="1/h")

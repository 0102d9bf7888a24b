"""Wen & Li (2022) prediction-head model: moments, reduction, gradients, invariances, ODE vs SGD.

Independent references: Monte-Carlo moments and network gradients from the sampler, the chain rule
between the weight-space flow and the 9-variable flow, finite differences, exact symmetries, conserved
norms (BatchNorm scale invariance), known fixed points, and GD/SGD against the population ODE.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn import head as hd

MODEL = hd.HeadData()
W0 = hd.controlled_head_init(jax.random.PRNGKey(0), MODEL)
E0 = jnp.zeros(2)
T_ODE = 40.0
TS = jnp.linspace(0.0, T_ODE, 161)


def random_state(key, scale=0.5):
    k1, k2 = jax.random.split(key)
    W = scale * jax.random.normal(k1, (MODEL.d, 2))
    W = W.at[:, 1].add(0.4 * W[:, 0])  # correlated 𝒱⊥ parts (q12 ≠ 0)
    return W, 0.3 * jax.random.normal(k2, (2,))


@functools.lru_cache(maxsize=None)
def ode_runs():
    """Population ODE from the controlled initialisation, head trainable (ρ = 1) and frozen (ρ = 0)."""
    y0 = hd.head_state_from_weights(W0, E0)

    def run(rho):
        return ssldyn.solve(hd.HeadFlow(MODEL, lr_ratio=rho), y0, 0.0, T_ODE, ts=TS, rtol=1e-9, atol=1e-11).ys

    ys = jax.jit(jax.vmap(run))(jnp.array([1.0, 0.0]))
    return jax.tree_util.tree_map(lambda x: x[0], ys), jax.tree_util.tree_map(lambda x: x[1], ys)


def test_population_moments_match_monte_carlo():
    n = 100_000
    # Positive feature overlaps (no cancellations) and correlated 𝒱⊥ parts; a different target copy.
    W = random_state(jax.random.PRNGKey(2), scale=0.4)[0].at[:2].set(jnp.array([[0.9, 0.6], [0.5, 0.8]]))
    Wbar = random_state(jax.random.PRNGKey(3), scale=0.4)[0].at[:2].set(jnp.array([[0.7, 0.4], [0.6, 1.0]]))

    @jax.jit
    def outputs(key):
        X1, X2, _ = hd.sample_head_views(key, MODEL, n)
        return hd.head_encoder(W, X1), hd.head_encoder(Wbar, X2), hd.head_encoder(Wbar, X1)

    f1, f2bar, f1bar = outputs(jax.random.PRNGKey(1))
    s, sb = hd.head_state_from_weights(W, E0), hd.head_state_from_weights(Wbar, E0)
    C, D, U = hd.head_moments(MODEL, s.a, s.q, sb.a, sb.q)
    f1, f2bar, f1bar = (np.asarray(f) for f in (f1, f2bar, f1bar))
    for prod, want in ((f1[:, :, None] * f2bar[:, None, :], C), (f1[:, :, None] * f1[:, None, :], D),
                       (f1bar**2, U)):
        mean, se = prod.mean(0), prod.std(0) / np.sqrt(n)
        z = np.abs((mean - np.asarray(want)) / se)
        assert z.max() < 5.0, (mean, want, se)
        # The checks have power: each moment is many standard errors away from zero.
        assert np.min(np.abs(np.asarray(want)) / se) > 10


@jax.jit
def _fields(W, e):
    weight = hd.HeadWeightFlow(MODEL, lr_ratio=0.7)
    closed = hd.HeadFlow(MODEL, lr_ratio=0.7)
    no_sg = hd.HeadFlow(MODEL, lr_ratio=0.7, stop_gradient=False)
    state = hd.head_state_from_weights(W, e)
    return (weight.vector_field(0.0, (W, e)), closed.vector_field(0.0, state), no_sg.vector_field(0.0, state),
            weight.loss((W, e)), closed.loss(state))


def test_weight_flow_reduces_exactly_to_the_9_variable_flow():
    for i in range(3):
        W, e = random_state(jax.random.PRNGKey(10 + i))
        (dW, de), closed, no_sg, loss_w, loss_c = _fields(W, e)
        u, du = W[2:], dW[2:]
        np.testing.assert_allclose(closed.a, dW[:2], atol=1e-12)
        np.testing.assert_allclose(closed.q, u.T @ du + du.T @ u, atol=1e-12)  # chain rule for q = uᵀu
        np.testing.assert_allclose(closed.e, de, atol=1e-12)
        np.testing.assert_allclose(loss_w, loss_c, atol=1e-13)
        # Removing the stop-gradient changes the dynamics (theory §7.2).
        diff = jnp.linalg.norm(jnp.concatenate([(no_sg.a - closed.a).ravel(), (no_sg.q - closed.q).ravel()]))
        assert float(diff) > 0.05 * float(jnp.linalg.norm(closed.a))


def test_vector_field_is_the_gradient_of_the_objective():
    W, e = random_state(jax.random.PRNGKey(20))
    dW, de = _fields(W, e)[0]
    # (1) Finite differences of the online objective J(W, e; target frozen at W) — no autodiff.
    s = hd.head_state_from_weights(W, e)

    @jax.jit
    def J(Wx, ex):
        sx = hd.head_state_from_weights(Wx, ex)
        return hd.head_objective(MODEL, sx.a, sx.q, ex, s.a, s.q)

    V = jax.random.normal(jax.random.PRNGKey(21), W.shape)
    v = jax.random.normal(jax.random.PRNGKey(22), (2,))
    h = 1e-5
    fd = (J(W + h * V, e + h * v) - J(W - h * V, e - h * v)) / (2 * h)
    np.testing.assert_allclose(fd, jnp.sum(dW * V) + jnp.sum(de * v) / 0.7, rtol=1e-7)
    # (2) jax.grad of the *network* batch loss (BN through the batch statistics, stop-gradient target)
    # on sampled data is an estimate of −∇J: agree within 5 standard errors over 10 independent batches.
    @jax.jit
    def batch_grad(key):
        X1, X2, _ = hd.sample_head_views(key, MODEL, 20_000)
        gW, ge = jax.grad(hd.head_network_loss, argnums=(0, 1))(W, e, X1, X2)
        return jnp.concatenate([gW.ravel(), ge])

    est = jnp.stack([batch_grad(key) for key in jax.random.split(jax.random.PRNGKey(23), 10)])
    want = -jnp.concatenate([dW.ravel(), de / 0.7])
    mean, se = jnp.mean(est, 0), jnp.std(est, 0, ddof=1) / np.sqrt(10)
    # 1e-3 floor: the batch correlation is a ratio estimator with an O(1/n) bias (n = 2e4).
    assert float(jnp.max(jnp.abs(mean - want) / (se + 1e-3))) < 5.0
    assert float(jnp.max(jnp.abs(want))) > 20 * float(jnp.max(se))


@jax.jit
def _objective_of_weights(W, e):
    s = hd.head_state_from_weights(W, e)
    return hd.head_objective(MODEL, s.a, s.q, e)


def test_objective_invariances_and_fixed_points():
    W, e = random_state(jax.random.PRNGKey(30))
    s = hd.head_state_from_weights(W, e)
    J = _objective_of_weights
    J0 = J(W, e)
    # Sign flip of a feature; sign flip of a neuron together with its head entries (E12, E21 → −E12, −E21:
    # F_1 = f_1 + E12 f_2 changes sign as a whole). Flipping the neuron alone is *not* a symmetry when E ≠ I.
    np.testing.assert_allclose(J(W.at[1, :].multiply(-1.0), e), J0, rtol=1e-12)
    np.testing.assert_allclose(J(W.at[:, 0].multiply(-1.0), -e), J0, rtol=1e-12)
    assert abs(float(J(W.at[:, 0].multiply(-1.0), e) - J0)) > 1e-4
    # Swapping the neurons together with E12 ↔ E21.
    np.testing.assert_allclose(J(W[:, ::-1], e[::-1]), J0, rtol=1e-12)
    # Rotations inside 𝒱⊥ (only q matters).
    Q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(31), (MODEL.d - 2, MODEL.d - 2)))
    np.testing.assert_allclose(J(W.at[2:].set(Q @ W[2:]), e), J0, rtol=1e-12)
    # Each term is a correlation: J ≤ 2.
    assert float(J0) <= 2.0
    # Fixed points (theory §7.8): both neurons on v1 with the head frozen; both features learned, E = I.
    frozen = hd.HeadFlow(MODEL, lr_ratio=0.0)
    on_v1 = hd.HeadState(jnp.array([[1.0, 0.7], [0.0, 0.0]]), jnp.zeros((2, 2)), jnp.zeros(2))
    learned = hd.HeadState(jnp.array([[1.0, 0.0], [0.0, 0.9]]), jnp.zeros((2, 2)), jnp.zeros(2))
    field = jax.jit(lambda flow, state: flow.vector_field(0.0, state))
    for flow, state in ((frozen, on_v1), (hd.HeadFlow(MODEL), learned)):
        v = field(flow, state)
        assert max(float(jnp.max(jnp.abs(x))) for x in v) < 1e-12
    # ... and a generic state is not stationary.
    v = field(hd.HeadFlow(MODEL), s)
    assert float(jnp.max(jnp.abs(v.a))) > 1e-2


def test_ode_conserves_norms_and_shows_the_head_mechanism():
    head, nohead = ode_runs()
    norms = lambda ys: jnp.sum(ys.a**2, axis=1) + jnp.diagonal(ys.q, axis1=1, axis2=2)  # (T, 2)
    n_head, n_no = norms(head), norms(nohead)
    assert float(jnp.max(jnp.abs(n_head.sum(1) - n_head[0].sum()))) < 1e-6  # ‖W‖_F² conserved
    assert float(jnp.max(jnp.abs(n_no - n_no[0]))) < 1e-6  # each ‖w_j‖² when the head is frozen
    assert float(jnp.max(jnp.abs(n_head[:, 1] - n_head[0, 1]))) > 0.05  # (not separately with the head)
    ph = hd.head_phase_metrics(TS, head)
    ph0 = hd.head_phase_metrics(TS, nohead)
    # With the head: neuron 2 learns the weak feature; E21 rises, then returns to ~0.
    assert bool(ph.distinct) and not bool(ph.collapsed)
    assert float(ph.e21_peak) > 0.2 and abs(float(head.e[-1, 1])) < 0.05 * float(ph.e21_peak)
    assert float(ph.t_strong) < float(ph.t_substitution) < float(ph.t_peak) < float(ph.t_weak) < float(ph.t_return)
    # Without the head: both neurons collapse onto the strong feature; neuron 2 never learns v2.
    cos0 = hd.head_alignment(nohead)
    assert bool(ph0.collapsed) and not bool(ph0.distinct)
    assert float(jnp.min(cos0[-1, 0, :])) > 0.8
    assert float(jnp.max(cos0[:, 1, 1])) < float(cos0[0, 1, 1]) + 0.02
    assert float(jnp.max(jnp.abs(nohead.e))) == 0.0  # the frozen head stays exactly at I


def test_population_ode_matches_gd_and_large_batch_sgd():
    """ODE vs GD vs SGD at equal t = η·steps.

    Tolerance argument: GD differs from the ODE by O(η) (checked by halving η: the gap halves); SGD with
    batch B adds zero-mean fluctuations of size ~sqrt(η/B) (plus an O(1/B) bias of the batch-correlation
    ratio, ≈ 5e-4 here), so the mean over S seeds must lie within a few standard errors of GD at the same η.
    Early states (t = 4, before the neuron-2 race) are compared directly; the phase metrics after the
    race are far more noise-sensitive (the acceleration is an escape from a saddle), which the measured
    seed spread accounts for.
    """
    head, _ = ode_runs()
    ph_ode = hd.head_phase_metrics(TS, head)
    flow = hd.HeadWeightFlow(MODEL, lr_ratio=1.0)
    T = 24.0
    gd = {}
    for lr in (0.2, 0.1):  # 240 steps each (one compilation); keep the saves up to t = T
        res = ssldyn.simulate_gd(flow, (W0, E0), lr, 240, save_every=1)
        n = int(round(T / lr))
        Ws, es = res.saved[0][:n], res.saved[1][:n]
        gd[lr] = (Ws, es, hd.head_phase_metrics(res.ts[:n], hd.head_state_from_weights(Ws, es)))
    # O(η): the GD–ODE gap of the acceleration time halves with η.
    gaps = [abs(float(gd[lr][2].t_weak) - float(ph_ode.t_weak)) for lr in (0.2, 0.1)]
    assert 1.5 < gaps[0] / gaps[1] < 2.6, gaps
    # SGD, S seeds of batch B at η = 0.2.
    S, B, lr = 4, 2048, 0.2
    keys = jax.random.split(jax.random.PRNGKey(40), S)
    res = hd.train_head_sgd(keys, jnp.stack([W0] * S), model=MODEL, lr=lr, n_steps=int(T / lr),
                            batch_size=B, lr_ratio=1.0, save_every=1)
    assert isinstance(res, ssldyn.TrainResult)
    Ws, es = res.saved
    t_sgd = res.ts  # t = η × steps, one time axis for all seeds
    np.testing.assert_allclose(t_sgd, lr * jnp.arange(1, Ws.shape[1] + 1), rtol=1e-15)
    states = hd.head_state_from_weights(Ws, es)
    ph = jax.jit(jax.vmap(lambda st: hd.head_phase_metrics(t_sgd, st)))(states)
    assert bool(jnp.all(ph.distinct))  # same outcome in every run
    # Early-time states (t = 4): mean over seeds within 4 standard errors of GD.
    i = 19  # t = 4.0 (η = 0.2, save after every step)
    got = jnp.concatenate([Ws[:, i].reshape(S, -1), es[:, i]], axis=1)
    want = jnp.concatenate([gd[lr][0][i].ravel(), gd[lr][1][i]])
    se = jnp.std(got, 0, ddof=1) / np.sqrt(S)
    assert float(jnp.max(jnp.abs(jnp.mean(got, 0) - want) / (se + 1e-3))) < 4.0
    # Phase metrics: SGD mean within 4 standard errors of GD(η); GD within its O(η) gap of the ODE.
    for name in ("t_substitution", "e21_peak", "t_weak", "t_return"):
        vals = np.asarray(getattr(ph, name))
        se = vals.std(ddof=1) / np.sqrt(S)
        ref = float(getattr(gd[lr][2], name))
        assert abs(vals.mean() - ref) < 4 * se + 0.01 * abs(ref), (name, vals, ref)
    rel = abs(float(ph.e21_peak.mean()) - float(ph_ode.e21_peak)) / float(ph_ode.e21_peak)
    assert rel < 0.05, rel


def test_sgd_trainer_returns_a_train_result_on_the_time_axis():
    """`train_head_sgd` is `run_steps` over `step_keys`: its first step is one hand-written SGD step on
    the batch `sample_head_views(step_keys(key, n)[0])`; the save times are η × steps, without a seed
    axis; the final state is the last save. (Batched seeds draw other batches than single runs: the
    `rbg` generator's bits differ under vmap.)"""
    from ssldyn._training import step_keys

    key, B, lr, rho, n = jax.random.PRNGKey(5), 64, 0.1, 0.5, 6
    one = hd.train_head_sgd(key, W0, model=MODEL, lr=lr, n_steps=1, batch_size=B, lr_ratio=rho)
    assert isinstance(one, ssldyn.TrainResult) and one.saved is None and one.ts.shape == (0,)
    X1, X2, _ = hd.sample_head_views(step_keys(key, 1)[0], MODEL, B)
    gW, ge = jax.grad(hd.head_network_loss, argnums=(0, 1))(W0, E0, X1, X2)
    np.testing.assert_allclose(one.final[0], W0 - lr * gW, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(one.final[1], E0 - rho * lr * ge, rtol=1e-12, atol=1e-14)
    keys = jax.random.split(key, 2)
    many = hd.train_head_sgd(keys, jnp.stack([W0, 0.5 * W0]), model=MODEL, lr=lr, n_steps=n, batch_size=B,
                             lr_ratio=rho, save_every=2)
    single = hd.train_head_sgd(keys[1], 0.5 * W0, model=MODEL, lr=lr, n_steps=n, batch_size=B, lr_ratio=rho,
                               save_every=2)
    np.testing.assert_allclose(many.ts, lr * jnp.array([2.0, 4.0, 6.0]), rtol=1e-15)
    np.testing.assert_allclose(many.ts, single.ts, rtol=0)
    assert many.saved[0].shape == (2, 3, MODEL.d, 2) and many.saved[1].shape == (2, 3, 2)
    (W, e), (Ws, es) = many  # unpacks like the old tuple result
    np.testing.assert_array_equal(W, Ws[:, -1])
    np.testing.assert_array_equal(e, es[:, -1])


def test_head_flows_are_autonomous():
    """`simulate_gd` passes t_k = k·η to the vector field: the head flows must not depend on t."""
    W, e = random_state(jax.random.PRNGKey(50))
    state = hd.head_state_from_weights(W, e)
    for flow, y in ((hd.HeadFlow(MODEL, lr_ratio=0.7), state), (hd.HeadWeightFlow(MODEL, lr_ratio=0.7), (W, e))):
        v0, v1 = flow.vector_field(0.0, y), flow.vector_field(37.5, y)
        for a, b in zip(jax.tree_util.tree_leaves(v0), jax.tree_util.tree_leaves(v1)):
            np.testing.assert_array_equal(a, b)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="`s`"):
        hd.HeadData(P=4, s=5)
    with pytest.raises(ValueError, match="pi"):
        hd.HeadData(pi=(0.7, 0.7))
    with pytest.raises(ValueError, match="alpha"):
        hd.HeadData(alpha=(1.0, 0.5, 0.2))
    with pytest.raises(ValueError, match="sigma_xi"):
        hd.HeadData(sigma_xi=0.0)
    with pytest.raises(TypeError, match="model"):
        hd.HeadFlow("model")
    with pytest.raises(ValueError, match="lr_ratio"):
        hd.HeadFlow(MODEL, lr_ratio=-1.0)
    with pytest.raises(ValueError, match="y0"):
        hd.HeadFlow(MODEL).check_initial(hd.HeadState(jnp.zeros((2, 3)), jnp.eye(2), jnp.zeros(2)))
    with pytest.raises(ValueError, match="positive semi-definite"):
        hd.HeadFlow(MODEL).check_initial(hd.HeadState(jnp.zeros((2, 2)), -jnp.eye(2), jnp.zeros(2)))
    with pytest.raises(ValueError, match="W0"):
        hd.train_head_sgd(jax.random.PRNGKey(0), jnp.zeros((5, 2)), model=MODEL, lr=0.1, n_steps=1, batch_size=8)
    with pytest.raises(ValueError, match="key"):
        hd.train_head_sgd(jax.random.split(jax.random.PRNGKey(0), 3), jnp.zeros((2, MODEL.d, 2)), model=MODEL,
                          lr=0.1, n_steps=1, batch_size=8)
    with pytest.raises(ValueError, match="key"):  # one key for two seeds
        hd.train_head_sgd(jax.random.PRNGKey(0), jnp.zeros((2, MODEL.d, 2)), model=MODEL, lr=0.1, n_steps=1,
                          batch_size=8)
    with pytest.raises(ValueError, match="save_every"):
        hd.train_head_sgd(jax.random.PRNGKey(0), W0, model=MODEL, lr=0.1, n_steps=1, batch_size=8, save_every=0)
    with pytest.raises(ValueError, match="lr"):
        hd.train_head_sgd(jax.random.PRNGKey(0), W0, model=MODEL, lr=0.0, n_steps=1, batch_size=8)
    with pytest.raises(ValueError, match="threshold"):
        hd.head_phase_metrics(TS, hd.HeadState(jnp.zeros((161, 2, 2)), jnp.zeros((161, 2, 2)), jnp.zeros((161, 2))),
                              threshold=1.5)
    with pytest.raises(ValueError, match="`n`"):
        hd.sample_head_views(jax.random.PRNGKey(0), MODEL, 0)


def test_wen_li_head_ablation_without_stop_gradient_collapses_where_the_head_works():
    """Theory file §2 (acceleration needs the stop-gradient): the reference runs of the head experiment end on
    distinct features; the same runs with the gradient through the target branch collapse onto v1."""
    from ssldyn.experiments import wen_li_head as wl

    config = wl.Config(alpha2s=(0.8,), w2_v1=(0.15,), w2_v2=(0.15,), n_perp_seeds=2, t_max=60.0, n_save=121)
    ctx = wl.prepare(config)
    with_sg = wl.EXPERIMENT.dispatch(config, ctx, {"id": "ode-alpha2=0.8-init=0", "kind": "ode", "alpha2": 0.8, "init": 0})
    without = wl.EXPERIMENT.dispatch(config, ctx, {"id": "ode-no-stop-gradient", "kind": "nostopgrad"})
    assert all(r["distinct"] for r in with_sg if r["arm"] == "head")
    assert len(without) == 2 and all(r["collapsed"] for r in without)
    assert wl.claim_stop_gradient_needed(config, with_sg + without).verdict == "yes"

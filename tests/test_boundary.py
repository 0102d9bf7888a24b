"""The public API probed as a careless user would (issue 16): wrong shapes, complex dtypes, NaN/Inf
arrays and scalars, NaN or negative times, arrays where one number is meant, empty arrays, strings,
diverging learning rates and bad ensemble members. Each kind is one parametrised test asserting the
exception type and that the message names the argument; Python lists and mixed float32/float64
inputs must work and give the same numbers as arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
import ssldyn.barlow as bt
import ssldyn.byol as by
import ssldyn.collapse as jc
import ssldyn.data as data
import ssldyn.deeplinear as dl
import ssldyn.sparse as sp
from ssldyn import scaling

RNG = np.random.default_rng(0)
KEY = jax.random.PRNGKey(0)
SPEC = ssldyn.NetworkSpec(4, 16, 2)
PARAMS = {k: np.asarray(v, np.float64) for k, v in ssldyn.init_network(KEY, SPEC, dtype=jnp.float64).items()}
X = RNG.normal(size=(6, 4))
Z = RNG.normal(size=(12, 4))
R = np.linalg.qr(RNG.normal(size=(12, 2)))[0]
A = RNG.normal(size=(5, 5))
G6 = A @ A.T / 5 + np.eye(5)
IMG = RNG.random(size=(2, 784))
SIGMA_YX = RNG.normal(size=(3, 5))
DATA = sp.SparseCoding.random(jax.random.PRNGKey(1), 8, 4, p=0.2, noise_std=0.3)


def _nan(a):
    a = np.array(a, dtype=float)
    a.flat[0] = np.nan
    return a


def _raises(fn, exc, *needles):
    with pytest.raises(exc) as info:
        fn()
    for needle in needles:
        assert needle in str(info.value), str(info.value)


COMPLEX = {
    "network_apply X": (lambda: ssldyn.network_apply(SPEC, PARAMS, X + 0.5j), "`X`"),
    "empirical_setup Z": (lambda: ssldyn.empirical_setup(SPEC, PARAMS, Z + 1j, X), "`Z`"),
    "gram_gap R_a": (lambda: ssldyn.gram_gap(R + 1j, R), "`R_a`"),
    "sym a": (lambda: ssldyn.sym(G6 + 1j), "`a`"),
    "logistic t": (lambda: bt.logistic(1j, 1e-3, 2.0), "`t`"),
    "brelu u": (lambda: sp.brelu(np.ones(3) + 1j), "`u`"),
    "mode_strength a1_0": (lambda: dl.mode_strength(1.0, 2.0, 0.1 + 1j, 0.1), "`a1_0`"),
    "rotate degrees": (lambda: data.rotate(IMG, 1j), "`degrees`"),
    "lr_order lrs": (lambda: ssldyn.lr_order(np.array([0.1, 0.05]) + 1j, np.array([0.2, 0.1])), "`lrs`"),
}


@pytest.mark.parametrize("case", sorted(COMPLEX))
def test_complex_inputs_are_refused(case):
    fn, needle = COMPLEX[case]
    _raises(fn, TypeError, needle, "real")


NONFINITE = {
    "network_apply X": (lambda: ssldyn.network_apply(SPEC, PARAMS, _nan(X)), "`X`"),
    "empirical_setup X_eval": (lambda: ssldyn.empirical_setup(SPEC, PARAMS, Z, _nan(X)), "`X_eval`"),
    "infinite_width_setup Z": (lambda: ssldyn.infinite_width_setup(KEY, _nan(Z), X, "relu", width=8, k=2, order=4),
                               "`Z`"),
    "gram_gap R_b": (lambda: ssldyn.gram_gap(R, _nan(R)), "`R_b`"),
    "agreement R_a": (lambda: ssldyn.agreement(np.where(R > 0, np.inf, R), R), "`R_a`"),
    "brelu u": (lambda: sp.brelu(_nan(np.ones(3))), "`u`"),
    "brelu b": (lambda: sp.brelu(np.ones(3), np.nan), "`b`"),
    "logistic lambda0": (lambda: bt.logistic(1.0, np.nan, 2.0), "`lambda0`"),
    "logistic rate": (lambda: bt.logistic(1.0, 1e-3, np.inf), "`rate`"),
    "balanced_mode_strength s": (lambda: dl.balanced_mode_strength(1.0, np.inf, 0.1), "`s`"),
    "mode_strength a2_0": (lambda: dl.mode_strength(1.0, 2.0, 0.1, np.nan), "`a2_0`"),
    "lr_order lrs": (lambda: ssldyn.lr_order([0.1, np.nan, 0.025], [0.2, 0.1, 0.05]), "`lrs`"),
    "predict_outputs R0": (lambda: ssldyn.predict_outputs(np.eye(12), G6[:1, :1] * np.eye(12), np.ones((3, 12)),
                                                          _nan(R), np.zeros((3, 2)), 0.5), "`R0`"),
}


@pytest.mark.parametrize("case", sorted(NONFINITE))
def test_nan_and_inf_values_are_refused(case):
    fn, needle = NONFINITE[case]
    _raises(fn, ValueError, needle)


TIMES = {
    "bias_schedule nan": (lambda: sp.bias_schedule(np.nan, horizon=1.0, beta_max=1.0), "`t`"),
    "balanced_mode_strength nan": (lambda: dl.balanced_mode_strength(np.nan, 2.0, 0.1), "`t`"),
    "mode_strength negative": (lambda: dl.mode_strength(-1.0, 2.0, 0.1, 0.1), "`t`"),
    "BYOLModeSolution nan": (lambda: by.BYOLModeSolution(0.5)(np.nan), "`t`"),
    "BYOLModeSolution inf": (lambda: by.BYOLModeSolution(0.5)(np.inf), "`t`"),
    "IsoLossModeSolution negative": (lambda: by.IsoLossModeSolution(0.5)(-2.0), "`t`"),
    "StepwiseSolution nan": (lambda: bt.StepwiseSolution(G6, bt.aligned_weights(G6, 2, 1e-3))(np.nan), "`t`"),
    "DeepLinearModeSolution inf": (lambda: dl.DeepLinearModeSolution(SIGMA_YX, np.full(3, 0.1), np.full(3, 0.1))(np.inf),
                                   "`t`"),
    "predict_outputs t1": (lambda: ssldyn.predict_outputs(np.eye(12), np.eye(12), np.ones((3, 12)), R,
                                                          np.zeros((3, 2)), np.nan), "`t1`"),
}


@pytest.mark.parametrize("case", sorted(TIMES))
def test_nan_infinite_and_negative_times_are_refused(case):
    fn, needle = TIMES[case]
    _raises(fn, ValueError, needle)


NOT_SCALAR = {
    "gaussian_noise std": (lambda: data.gaussian_noise(KEY, X, std=np.array([0.1, 0.2])), "`std`"),
    "random_mask p": (lambda: data.random_mask(KEY, X, p=np.array([0.5, 0.9])), "`p`"),
    "init_neurons sigma0": (lambda: sp.init_neurons(KEY, 8, 4, sigma0=np.array([0.1, 0.2])), "`sigma0`"),
    "sparse_metrics threshold": (lambda: sp.sparse_metrics(RNG.normal(size=(8, 4)), DATA.M, threshold=[0.5, 0.9]),
                                 "`threshold`"),
    "small_random_init scale": (lambda: bt.small_random_init(KEY, 2, 6, scale=np.ones(2)), "`scale`"),
    "train_barlow_gd lr": (lambda: bt.train_barlow_gd(np.zeros((2, 5)), G6, G6, np.array([0.1, 0.2]), 2), "`lr`"),
    "toy_moments sigma_aug": (lambda: jc.toy_moments(np.array([0.5, 1.0]), d=4, n_noised=2), "`sigma_aug`"),
    "stationary_spectrum temperature": (lambda: jc.stationary_spectrum(np.eye(4), 1.5 * np.eye(4), np.ones(2)),
                                        "`temperature`"),
}


@pytest.mark.parametrize("case", sorted(NOT_SCALAR))
def test_arrays_where_one_number_is_meant_are_refused(case):
    fn, needle = NOT_SCALAR[case]
    _raises(fn, ValueError, needle, "scalar")


SHAPES = {
    "network_apply columns": (lambda: ssldyn.network_apply(SPEC, PARAMS, np.ones((3, 5))), "`X`"),
    "network_apply 3-D": (lambda: ssldyn.network_apply(SPEC, PARAMS, np.ones((2, 3, 4))), "`X`"),
    "empirical_setup X_eval columns": (lambda: ssldyn.empirical_setup(SPEC, PARAMS, Z, np.ones((3, 3))), "`X_eval`"),
    "infinite_width_setup columns": (lambda: ssldyn.infinite_width_setup(KEY, Z, np.ones((3, 3)), "relu", width=8, k=2),
                                     "`X_eval`"),
    "gram_gap rows": (lambda: ssldyn.gram_gap(R, R[:5]), "`R_a`"),
    "predict_outputs R0_eval": (lambda: ssldyn.predict_outputs(np.eye(12), np.eye(12), np.ones((3, 12)), R,
                                                               np.zeros((4, 2)), 0.5), "`R0_eval`"),
    "sym not square": (lambda: ssldyn.sym(np.ones((2, 3))), "`a`"),
    "stationary_spectrum mismatched": (lambda: jc.stationary_spectrum(np.eye(4), np.eye(3), 0.5), "`C0`"),
    "train_collapse_sgd params0": (lambda: jc.train_collapse_sgd(KEY, (np.ones((3, 3)), np.ones(3)),
                                                                 RNG.normal(size=(20, 4)), sigma_aug=0.5,
                                                                 temperature=0.5, lr=0.1, n_steps=2, batch_size=4,
                                                                 n_noised=2), "`params0`"),
    "DeepLinearModeSolution vector t": (lambda: dl.DeepLinearModeSolution(SIGMA_YX, np.full(3, 0.1),
                                                                          np.full(3, 0.1))(np.array([0.5, 1.0])), "`t`"),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_wrong_shapes_are_refused(case):
    fn, needle = SHAPES[case]
    _raises(fn, ValueError, needle)


EMPTY = {
    "network_apply X": (lambda: ssldyn.network_apply(SPEC, PARAMS, np.zeros((0, 4))), "`X`"),
    "SparseCoding M": (lambda: sp.SparseCoding(np.zeros((0, 0)), p=0.2, noise_std=0.3), "`M`"),
    "io_modes Sigma_yx": (lambda: dl.io_modes(np.zeros((0, 0)), 1), "`Sigma_yx`"),
    "DeepLinearFlow Sigma_yx": (lambda: dl.DeepLinearFlow(np.zeros((0, 3))), "`Sigma_yx`"),
    "gaussian_view_stats lam": (lambda: by.gaussian_view_stats(np.zeros(0), 0.1), "`lam`"),
    "gaussian_views lam": (lambda: by.gaussian_views(KEY, 4, np.zeros(0), 0.1), "`lam`"),
    "augment X": (lambda: jc.augment(KEY, np.zeros((3, 0)), 0.5), "`X`"),
    "gram_gap R_a": (lambda: ssldyn.gram_gap(np.zeros((0, 2)), R), "`R_a`"),
    "make_views X": (lambda: data.make_views(KEY, np.zeros((0, 784))), "`X`"),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_empty_arrays_are_refused(case):
    fn, needle = EMPTY[case]
    _raises(fn, ValueError, needle)


WRONG_TYPES = {
    "fast_key string": (lambda: ssldyn.fast_key("abc"), "`key`"),
    "fast_key floats": (lambda: ssldyn.fast_key(np.ones(2)), "`key`"),
    "init_network key": (lambda: ssldyn.init_network("k", SPEC), "`key`"),
    "init_network dtype": (lambda: ssldyn.init_network(KEY, SPEC, dtype=jnp.int32), "`dtype`"),
    "run_steps n_steps float": (lambda: ssldyn.run_steps(lambda c, x: c, jnp.ones(2), lr=0.1, n_steps=2.5), "`n_steps`"),
    "run_steps step None": (lambda: ssldyn.run_steps(None, jnp.ones(2), lr=0.1, n_steps=2), "`step`"),
    "random_mask p string": (lambda: data.random_mask(KEY, X, p="x"), "`p`"),
    "rotate degrees string": (lambda: data.rotate(IMG, "x"), "`degrees`"),
    "infinite_width_setup width float": (lambda: ssldyn.infinite_width_setup(KEY, Z, X, "relu", width=2.5, k=2),
                                         "`width`"),
    "gram_gap string": (lambda: ssldyn.gram_gap("abc", R), "`R_a`"),
    "trainer check_finite": (lambda: bt.train_barlow_gd(np.zeros((2, 5)), G6, G6, 0.1, 2, check_finite="no"),
                             "`check_finite`"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_are_refused(case):
    fn, needle = WRONG_TYPES[case]
    _raises(fn, TypeError, needle)


def test_python_lists_work_like_arrays():
    np.testing.assert_allclose(ssldyn.network_apply(SPEC, PARAMS, X.tolist()), ssldyn.network_apply(SPEC, PARAMS, X))
    np.testing.assert_allclose(ssldyn.gram_gap(R.tolist(), (R + 0.1).tolist()), ssldyn.gram_gap(R, R + 0.1))
    np.testing.assert_allclose(ssldyn.sym(A.tolist()), (A + A.T) / 2)
    a = ssldyn.agreement(R.tolist(), (2 * R).tolist())
    assert abs(float(a["subspace_distance"])) < 1e-6 and abs(float(a["cka"]) - 1.0) < 1e-6  # same column space
    K1 = ssldyn.infinite_width_setup(KEY, Z.tolist(), X.tolist(), "relu", width=8, k=2, order=4)[0]
    K2 = ssldyn.infinite_width_setup(KEY, Z, X, "relu", width=8, k=2, order=4)[0]
    np.testing.assert_allclose(K1, K2)
    np.testing.assert_allclose(sp.brelu([-2.0, 0.5, 3.0], 1.0), [-1.0, 0.0, 2.0])


def test_mixed_float32_and_float64_inputs_work():
    X1, X2 = RNG.normal(size=(8, 5)), RNG.normal(size=(8, 5))
    W0 = 0.1 * RNG.normal(size=(2, 5))
    ref = bt.train_barlow_gd(W0, X1, X2, 0.05, 20)
    mixed = bt.train_barlow_gd(W0.astype(np.float32), X1, X2.astype(np.float32), 0.05, 20)
    np.testing.assert_allclose(np.asarray(mixed.final, np.float64), ref.final, rtol=1e-4, atol=1e-6)
    P32 = {k: v.astype(np.float32) for k, v in PARAMS.items()}
    np.testing.assert_allclose(ssldyn.network_apply(SPEC, P32, X), ssldyn.network_apply(SPEC, PARAMS, X),
                               rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------------------------------------
# Non-finite training results: every trainer inherits the check of `ssldyn._training` (`@finite_result`)
# -------------------------------------------------------------------------------------------------

Y0_BYOL = by.BYOLState(0.5 * RNG.normal(size=(2, 3)), 0.3 * np.eye(2), 0.5 * RNG.normal(size=(2, 3)))
XB1 = RNG.normal(size=(40, 6))
XB2 = XB1 + 0.3 * RNG.normal(size=(40, 6))
B4 = np.asarray(ssldyn.pair_matrix(4, "contrastive"))
DIVERGING = {
    "train_barlow_gd": (lambda **kw: bt.train_barlow_gd(0.4 * RNG.normal(size=(3, 6)), XB1, XB2, 50.0, 100,
                                                        save_every=10, **kw), 50),
    "train_linear_byol": (lambda **kw: by.train_linear_byol(KEY, Y0_BYOL, lam=np.array([1.0, 0.5, 0.2]), lam_aug=0.1,
                                                            lr=10.0, n_steps=100, batch_size=8, beta=0.01,
                                                            save_every=10, **kw), 10),
    "train_network": (lambda **kw: ssldyn.train_network(SPEC, PARAMS, Z, B4, lr=1e6, n_steps=20, constrained=False,
                                                        train="all", save_every=5, **kw), 1e6),
    "run_steps": (lambda **kw: ssldyn.run_steps(lambda c, x: c * 1e200, jnp.ones(2), lr=0.1, n_steps=4, save_every=1,
                                                **kw), 0.1),
}


@pytest.mark.parametrize("trainer", sorted(DIVERGING))
def test_diverging_training_raises_naming_lr_and_steps(trainer):
    fn, lr = DIVERGING[trainer]
    with pytest.raises(FloatingPointError) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith(trainer) and f"`lr` = {lr:g}" in msg and "between steps" in msg, msg
    raw = fn(check_finite=False)  # the opt-out returns the raw arrays
    leaves = jax.tree_util.tree_leaves(raw.final)
    assert not all(np.all(np.isfinite(np.asarray(a))) for a in leaves)


def test_step_range_brackets_the_first_non_finite_save():
    # finite for 3 steps, then Inf from step 4 on (x ← x·10^100 from 1: 1e300, then overflow)
    res_ok = ssldyn.run_steps(lambda c, x: c * 1e100, jnp.ones(1, jnp.float64), lr=0.5, n_steps=3, save_every=1)
    assert np.all(np.isfinite(res_ok.final))
    _raises(lambda: ssldyn.run_steps(lambda c, x: c * 1e100, jnp.ones(1, jnp.float64), lr=0.5, n_steps=6, save_every=1),
            FloatingPointError, "between steps 3 and 4", "`lr` = 0.5")


def test_a_nan_save_before_the_first_step_is_not_a_divergence():
    # `train_sgd` saves the loss as NaN at t = 0 by design: only the final state and the last save count
    res = sp.train_sgd(KEY, DATA, sp.init_neurons(KEY, 8, 4), lr=0.05, n_steps=4, batch_size=8, save_every=2)
    assert np.isnan(np.asarray(res.saved.loss)[0, 0]) and np.all(np.isfinite(res.final))


# -------------------------------------------------------------------------------------------------
# Ensembles: every member checked on its concrete values, the bad one named
# -------------------------------------------------------------------------------------------------

def _grassmann(p, shared):
    return ssldyn.QuadraticFlow(p["S"], manifold="grassmann")


def _members(n=4):
    W = np.stack([np.linalg.qr(RNG.normal(size=(5, 2)))[0] for _ in range(n)])
    return {"S": np.stack([G6] * n)}, W


def test_ensemble_names_the_member_off_the_manifold():
    params, W = _members()
    W[2] *= 1.5
    _raises(lambda: ssldyn.solve_ensemble(_grassmann, params, W, 0.0, 0.5, shared={}), ValueError,
            "1 of 4 members", "members 2;")


def test_ensemble_names_the_member_with_asymmetric_statistics():
    params, W = _members()
    params["S"][3] = params["S"][3] + np.triu(np.ones((5, 5)), 1)
    _raises(lambda: ssldyn.solve_ensemble(_grassmann, params, W, 0.0, 0.5, shared={}), ValueError,
            "members 3)", "`S` must be symmetric")


def test_ensemble_names_the_member_with_nan_statistics_and_good_members_solve():
    params, W = _members()
    good = ssldyn.solve_ensemble(_grassmann, params, W, 0.0, 0.5, shared={})
    single = ssldyn.solve(ssldyn.grassmann_flow(G6), W[1], 0.0, 0.5, ts=2)
    np.testing.assert_allclose(good.ys[1], single.ys, atol=1e-6)
    params["S"][0, 1, 1] = np.nan
    _raises(lambda: ssldyn.solve_ensemble(_grassmann, params, W, 0.0, 0.5, shared={}), ValueError,
            "members 0)", "`S` contains NaN")


def test_recording_checks_is_inert_outside_its_context():
    from ssldyn._validation import _RECORDERS, recording_checks

    with recording_checks() as records:
        jax.vmap(lambda s: ssldyn.QuadraticFlow(s).S)(jnp.stack([jnp.asarray(G6)] * 2))
    assert {name for name, *_ in records} >= {"S"} and not _RECORDERS


def test_scaling_pair_apply_still_refuses_bad_sizes():
    _raises(lambda: scaling.pair_apply(np.ones((12, 3)), 0), ValueError, "`n`")


# -------------------------------------------------------------------------------------------------
# Remaining defects of the hardening issue: simulate_gd's step range, the hssl/simvae trainers, the
# hssl configuration, times of any closed form, qf/polar, empty inputs of metrics, kernels and solve
# -------------------------------------------------------------------------------------------------

def test_simulate_gd_divergence_names_lr_and_brackets_the_first_bad_step():
    flow, Q = ssldyn.naive_flow(10 * np.eye(12)), R
    with pytest.raises(FloatingPointError) as info:
        ssldyn.simulate_gd(flow, Q, 1e3, 200)
    msg = str(info.value)
    assert msg.startswith("simulate_gd") and "`lr` = 1000" in msg, msg
    import re

    lo, hi = map(int, re.search(r"between steps (\d+) and (\d+)", msg).groups())
    # independent: the raw iterates of every step, without the check
    raw = ssldyn.simulate_gd(flow, Q, 1e3, 200, save_every=1, check_finite=False)
    finite = np.all(np.isfinite(np.asarray(raw.saved)).reshape(200, -1), axis=1)
    first_bad = int(np.flatnonzero(~finite)[0]) + 1  # saves are after steps 1, 2, ...
    assert lo < first_bad <= hi and hi - lo <= 2, (lo, first_bad, hi)
    _raises(lambda: ssldyn.simulate_gd(flow, Q, 1e3, 200, check_finite="no"), TypeError, "`check_finite`")


def _hssl_signals():
    import ssldyn.hssl as H

    spec = H.backbone_spec("cnn", length=12, channels=2, kernel=3, dilations=(1,), n_layers=1)
    return H, spec, RNG.normal(size=(32, 12)).astype(np.float32)


def _views(key, X, J):
    return X[:, None, :] + 0.1 * jax.random.normal(key, (X.shape[0], J, X.shape[1]), X.dtype)


def _train_ssl(lr, **kw):
    H, spec, Xs = _hssl_signals()
    cfg = H.ssl_config("hssl", n_steps=20, batch_size=8, lr=lr, head=(3,), max_offset=2, save_every=5)
    return H.train_ssl(jax.random.split(KEY, 2), Xs, spec, cfg, **kw)


def _train_ssl_2d(lr, **kw):
    import ssldyn.hssl as H

    sp = H.backbone2d_spec("p4", "cnn", side=6, channels=2)
    cfg = H.ssl_config("hssl", n_steps=20, batch_size=8, lr=lr, head=(3,), max_offset=1, save_every=5)
    return H.train_ssl_2d(jax.random.split(KEY, 2), RNG.random(size=(20, 6, 6)), sp, cfg, **kw)


def _train_networks(lr, **kw):
    import ssldyn.simvae as sv

    return sv.train_networks(KEY, RNG.normal(size=(32, 6)).astype(np.float32),
                             spec=sv.NetSpec(6, hidden=(4,), latent=2), method="vae", views_fn=_views, n_steps=6,
                             lr=lr, batch_size=8, save_every=2, **kw)


def _train_linear_gd(lr, **kw):
    import ssldyn.simvae as sv

    A, B = RNG.normal(size=(4, 4)), RNG.normal(size=(4, 4))
    data = sv.LinearGaussianData(A @ A.T / 4, B @ B.T / 4)
    st = sv.LinearState(0.5 * RNG.normal(size=(2, 4)), 0.5 * RNG.normal(size=(4, 2)), np.zeros(2))  # log-variances
    return sv.train_linear_gd(data, sv.SimVAEKnobs(3, 0.3, 0.5), st, lr=lr, n_steps=50, save_every=5, **kw)


MORE_DIVERGING = {  # trainer: (fn(lr, **kw), diverging lr, the name the message starts with)
    "hssl.train_ssl": (_train_ssl, 1e38, "train_ssl"),  # float32 biases overflow within 10 Adam steps
    "hssl.train_ssl_2d": (_train_ssl_2d, 1e38, "train_ssl_2d"),
    "simvae.train_networks": (_train_networks, 1e30, "train_networks"),
    "simvae.train_linear_gd": (_train_linear_gd, 1e3, "simulate_gd"),
}


@pytest.mark.parametrize("trainer", sorted(MORE_DIVERGING))
def test_hssl_and_simvae_trainers_raise_naming_lr(trainer):
    fn, lr, where = MORE_DIVERGING[trainer]
    with pytest.raises(FloatingPointError) as info:
        fn(lr)
    msg = str(info.value)
    assert msg.startswith(where) and f"`lr` = {lr:g}" in msg and "between steps" in msg, msg
    raw = fn(lr, check_finite=False)  # the opt-out returns the raw (non-finite) parameters
    params = raw[0] if isinstance(raw, tuple) else raw.final
    assert not all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(params))


HSSL_BAD = [("dilations=1,100", "dilations"), ("max_offset=40", "max_offset"), ("modes=bogus", "modes"),
            ("modes=random", "modes"), ("datasets_2d=cifar", "datasets_2d"), ("n_train=1", "n_train"),
            ("offset_sweep=50", "offset_sweep"), ("rf_sweep=1,100", "rf_sweep"), ("linear_k=20", "linear_k"),
            ("linear_lrs=5,10", "linear_lrs"), ("modes_2d=assl_fiber_aug", "modes_2d"),
            ("max_offset_p4=4", "max_offset_p4"), ("max_offset_translation=20", "max_offset_translation"),
            ("batch_size=1", "batch_size"), ("kernel=4", "kernel")]


@pytest.mark.parametrize("setting,field", HSSL_BAD, ids=[s for s, _ in HSSL_BAD])
def test_hssl_validate_config_refuses_before_the_first_cell(setting, field, tmp_path, capsys, monkeypatch):
    from ssldyn.cli import main
    from ssldyn.experiments import REGISTRY, _runner

    def forbidden(*args, **kwargs):
        raise AssertionError("the run started although the configuration is invalid")

    monkeypatch.setattr(_runner, "_run", forbidden)
    assert REGISTRY["hssl"].validate is not None
    out = tmp_path / "out"
    rc = main(["run", "hssl", "--set", setting, "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and f"configuration field `{field}`" in err, err
    assert not out.exists()


class _Unchecked(ssldyn.AbstractSolution):
    """A closed form whose `evaluate` checks nothing (as a user's subclass may)."""

    def evaluate(self, t):
        return jnp.ones(2) * t


@pytest.mark.parametrize("t,exc", [(np.nan, ValueError), (-1.0, ValueError), (np.inf, ValueError), (1j, TypeError)])
def test_any_closed_form_refuses_bad_times(t, exc):
    _raises(lambda: _Unchecked()(t), exc, "`t`")
    np.testing.assert_allclose(_Unchecked()(0.5), [0.5, 0.5])
    np.testing.assert_allclose(jax.jit(_Unchecked().__call__)(0.25), [0.25, 0.25])


@pytest.mark.parametrize("name", ["qf", "polar"])
def test_qf_and_polar_refuse_nonfinite_and_complex_input(name):
    fn = getattr(ssldyn, name)
    A = RNG.normal(size=(6, 3))
    _raises(lambda: fn(_nan(A)), ValueError, "`A`")
    _raises(lambda: fn(np.where(A > 1.0, np.inf, A)), ValueError, "`A`")
    _raises(lambda: fn(A + 1j), TypeError, "`A`", "real")
    _raises(lambda: fn(np.ones(3)), ValueError, "`A`")
    for Q in (fn(A), jax.jit(fn)(A), jax.vmap(fn)(np.stack([A, 2 * A]))[1]):  # traced calls are not refused
        np.testing.assert_allclose(np.asarray(Q).T @ np.asarray(Q), np.eye(3), atol=1e-12)
        P = np.asarray(Q) @ np.asarray(Q).T  # the same column span as A
        np.testing.assert_allclose(P @ A, A, atol=1e-10)


Y6 = np.array([0, 1, 0, 1, 0, 1])
EMPTY_MORE = {
    "linear_cka X rows": (lambda: ssldyn.linear_cka(np.zeros((0, 3)), np.zeros((0, 3))), "`X`"),
    "subspace_distance A cols": (lambda: ssldyn.subspace_distance(np.zeros((6, 0)), R[:6]), "`A`"),
    "principal_angles B rows": (lambda: ssldyn.principal_angles(R, np.zeros((0, 2))), "`B`"),
    "projector W": (lambda: ssldyn.projector(np.zeros((4, 0))), "`W`"),
    "orthogonality_error W": (lambda: ssldyn.orthogonality_error(np.zeros((0, 2))), "`W`"),
    "stable_rank A": (lambda: ssldyn.stable_rank(np.zeros((0, 3))), "`A`"),
    "effective_rank Z": (lambda: ssldyn.effective_rank(np.zeros((0, 3))), "`Z`"),
    "rankme Z": (lambda: ssldyn.rankme(np.zeros((5, 0))), "`Z`"),
    "ridge_probe Z_train": (lambda: ssldyn.ridge_probe(np.zeros((0, 3)), Y6[:0], X[:, :3], Y6), "`Z_train`"),
    "logistic_probe Z_test": (lambda: ssldyn.logistic_probe(X[:, :3], Y6, np.zeros((0, 3)), Y6[:0]), "`Z_test`"),
    "probe_accuracy Z_train cols": (lambda: ssldyn.probe_accuracy(np.zeros((6, 0)), Y6, np.zeros((6, 0)), Y6),
                                    "`Z_train`"),
    "solve y0 (d, 0)": (lambda: ssldyn.solve(ssldyn.naive_flow(np.eye(4)), np.zeros((4, 0)), 0.0, 1.0), "`y0`"),
    "solve y0 grassmann": (lambda: ssldyn.solve(ssldyn.grassmann_flow(np.eye(4)), np.zeros((4, 0)), 0.0, 1.0), "`y0`"),
    "simulate_gd y0": (lambda: ssldyn.simulate_gd(ssldyn.naive_flow(np.eye(4)), np.zeros((4, 0)), 0.1, 2), "`y0`"),
    "relu_kernel X rows": (lambda: ssldyn.relu_kernel(np.zeros((0, 3))), "`X`"),
    "erf_kernel X cols": (lambda: ssldyn.erf_kernel(np.zeros((4, 0))), "`X`"),
    "relu_kernel Y rows": (lambda: ssldyn.relu_kernel(X, np.zeros((0, 4))), "`Y`"),
    "infinite_width_kernel X": (lambda: ssldyn.infinite_width_kernel(np.zeros((0, 3)), activation="tanh"), "`X`"),
    "infinite_width_ntk X": (lambda: ssldyn.infinite_width_ntk(np.zeros((4, 0)), activation="relu"), "`X`"),
    "hermite_series_kernel X": (lambda: ssldyn.hermite_series_kernel(np.zeros((0, 3)), activation="tanh"), "`X`"),
    "quadrature_kernel X": (lambda: ssldyn.quadrature_kernel(np.zeros((0, 3)), activation="tanh"), "`X`"),
    "hidden_features X": (lambda: ssldyn.hidden_features(np.zeros((4, 0)), np.zeros((5, 0)), "relu"), "`X`"),
}


@pytest.mark.parametrize("case", sorted(EMPTY_MORE))
def test_empty_inputs_of_metrics_kernels_and_solve_are_refused(case):
    fn, needle = EMPTY_MORE[case]
    _raises(fn, ValueError, needle, "empty")


def test_overflowing_save_times_still_raise_the_divergence():
    # float32 save times lr × steps overflow (3e38, then inf): the error is still a FloatingPointError naming `lr`
    lr = np.float32(1e38)
    _raises(lambda: ssldyn.run_steps(lambda c, x: c * 1e10, jnp.ones(1, jnp.float32), lr=lr, n_steps=6, save_every=1),
            FloatingPointError, "`lr` = 1e+38", "diverged")

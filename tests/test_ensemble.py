"""Ensembles: one jitted, vmapped solve over seeds × hyperparameters equals separate solves and compiles once."""

import equinox as eqx
import jax
import numpy as np
import pytest

import ssldyn
from ssldyn.scaling._ensemble import solve_ensemble

N, D, H, K_OUT, E = 8, 6, 20, 2, 4
RNG = np.random.default_rng(0)  # NumPy set-up: the compilations are spent on the solves
Z = RNG.normal(size=(3 * N, D))  # m = 24 stacked inputs
B = np.asarray(ssldyn.pair_matrix(N, "contrastive"))
PHI = np.tanh(Z @ RNG.normal(size=(D, H)) / np.sqrt(D)) / np.sqrt(H)
KERNEL = PHI @ PHI.T
TIMES = np.array([0.0, 0.5, 1.0])
TOL = dict(rtol=1e-10, atol=1e-12)


def initial_outputs(seed, size=E):
    """R(0) = Φ W(0) for `size` Stiefel frames W(0) ∈ St(h, k)."""
    W0s = np.linalg.qr(np.random.default_rng(seed).normal(size=(size, H, K_OUT)))[0]
    return np.einsum("mh,ehk->emk", PHI, W0s)


def make_flow(p, shared):
    """A sweep over the kernel scale (a rate) of the constrained output ODE."""
    return ssldyn.OutputFlow(shared["B"], p["scale"] * shared["K"])


# One wrapped make_flow and one max_steps for the whole module: every solve_ensemble call below
# reuses a single compilation (assert_max_traces raises RuntimeError on a second trace).
COUNTED = eqx.debug.assert_max_traces(make_flow, max_traces=1)
SHARED = {"B": B, "K": KERNEL}
MAX_STEPS = 300


def test_matches_separate_solves_and_compiles_once():
    scales, R0s = np.array([0.5, 1.0, 1.5, 2.0]), initial_outputs(2)
    traj = solve_ensemble(COUNTED, {"scale": scales}, R0s, 0.0, 1.0, ts=TIMES, shared=SHARED, max_steps=MAX_STEPS,
                          **TOL)
    assert traj.ys.shape == (E, len(TIMES), 3 * N, K_OUT) and traj.ok
    for e in range(E):
        single = ssldyn.solve(ssldyn.OutputFlow(B, scales[e] * KERNEL), R0s[e], 0.0, 1.0, ts=TIMES, **TOL)
        np.testing.assert_allclose(traj.ys[e], single.ys, rtol=0, atol=1e-12)
        assert int(traj.stats["num_steps"][e]) == int(single.stats["num_steps"])  # own adaptive steps
    # A new sweep: new values, new seeds, new horizon, save times and tolerances, same ensemble size.
    traj2 = solve_ensemble(COUNTED, {"scale": np.array([3.0, 0.1, 0.2, 0.7])}, initial_outputs(3), 0.0, 2.0,
                           ts=TIMES * 2, shared={"B": B, "K": 2.0 * KERNEL}, max_steps=MAX_STEPS, rtol=1e-9,
                           atol=1e-11)
    assert traj2.ok and eqx.debug.get_num_traces(COUNTED) == 1
    assert not np.allclose(traj2.ys[:, -1], traj.ys[:, -1])  # it really solved a new problem


def test_failed_members_are_named():
    # Kernel scales 1e4 and 1e5 make members 2 and 3 stiff: the explicit solver hits max_steps there.
    scales, R0s = np.array([1.0, 2.0, 1e4, 1e5]), initial_outputs(4)
    kwargs = dict(ts=TIMES, shared=SHARED, max_steps=MAX_STEPS, **TOL)
    traj = solve_ensemble(COUNTED, {"scale": scales}, R0s, 0.0, 1.0, throw=False, **kwargs)
    np.testing.assert_array_equal(traj.status, [0, 0, 1, 1])
    with pytest.raises(ssldyn.SolveError, match=r"2 of 4 members failed \(members 2, 3\): status 1"):
        solve_ensemble(COUNTED, {"scale": scales}, R0s, 0.0, 1.0, **kwargs)
    assert eqx.debug.get_num_traces(COUNTED) == 1  # throw only changes the check in Python


def naive_flow(p):
    return ssldyn.OutputFlow(B, p * KERNEL, constrained=False)


def test_bad_arguments_name_the_argument():
    R0s = initial_outputs(5)
    with pytest.raises(TypeError, match="make_flow"):
        solve_ensemble("not callable", np.ones(E), R0s)
    with pytest.raises(ValueError, match="y0s"):
        solve_ensemble(naive_flow, np.ones(E), R0s[:3])
    with pytest.raises(ValueError, match="params"):
        solve_ensemble(naive_flow, {"a": np.ones(E), "b": np.ones(E + 1)}, R0s)
    with pytest.raises(ValueError, match="t1"):
        solve_ensemble(naive_flow, np.ones(E), R0s, 1.0, 0.0)
    with pytest.raises(ValueError, match="rtol"):
        solve_ensemble(naive_flow, np.ones(E), R0s, rtol=-1.0)
    with pytest.raises(TypeError, match="params"):
        solve_ensemble(naive_flow, {"a": "x"}, R0s)
    with pytest.raises(ValueError, match="devices"):
        solve_ensemble(naive_flow, np.ones(E), R0s, devices=jax.devices())

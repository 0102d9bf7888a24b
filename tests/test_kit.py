"""The kit's shared pieces against independent computations: the training loop, the Solution
protocol, the generic comparison, the manifolds, the validation helpers and the claim machinery."""

import dataclasses
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn._training import run_steps, scan_with_saves
from ssldyn._validation import check_choice, check_int, check_keys
from ssldyn.experiments import Claim, Experiment, make_config, run_experiment, select, verdict
from helpers import random_symmetric

KEY = jax.random.PRNGKey(0)


# ---------------------------------------------------------------------------------------------------
# training loop
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_steps,save_every", [(10, 3), (9, 3), (4, 7), (0, 2), (5, None)])
def test_scan_with_saves_equals_a_python_loop(n_steps, save_every):
    xs = jnp.arange(n_steps, dtype=jnp.float64)
    step = lambda c, x: 0.9 * c + x
    carry, saved = scan_with_saves(step, jnp.asarray(1.0), n_steps, save_every, lambda c: 2 * c, xs=xs)
    c, ref = 1.0, []
    for k in range(n_steps):
        c = 0.9 * c + float(k)
        if save_every is not None and (k + 1) % save_every == 0:
            ref.append(2 * c)
    np.testing.assert_allclose(carry, c, rtol=1e-14)
    if save_every is None:
        assert saved is None
    else:
        np.testing.assert_allclose(saved, np.asarray(ref).reshape(-1), rtol=1e-14)


def test_run_steps_time_axis_and_initial_save():
    res = run_steps(lambda c, x: c + 1.0, jnp.asarray(0.0), lr=0.25, n_steps=8, save_every=2, include_initial=True)
    np.testing.assert_allclose(res.ts, [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(res.saved, [0.0, 2.0, 4.0, 6.0, 8.0])
    final, saved = res  # tuple-style unpacking of older code
    assert float(final) == 8.0 and saved.shape == (5,)


def test_simulate_gd_is_time_aware_and_order_one_in_lr():
    """GD on dW/dt = 2SW − ωW against the closed form: the gap at t = 1 halves with lr (lr_order ≈ 1),
    and a time-dependent field sees t_k = k·lr (checked against an explicit loop)."""
    S = random_symmetric(KEY, 5) / 4
    W0 = ssldyn.stiefel_init(KEY, 5, 2)
    exact = ssldyn.NaiveSolution(S, W0, weight_decay=0.3)
    flow = ssldyn.naive_flow(S, weight_decay=0.3)
    lrs, gaps = [0.02, 0.01, 0.005], []
    for lr in lrs:
        res = ssldyn.simulate_gd(flow, W0, lr, int(round(1 / lr)), save_every=int(round(0.5 / lr)))
        np.testing.assert_allclose(res.ts, [0.5, 1.0], rtol=1e-12)
        gaps.append(float(ssldyn.compare_along(res, exact, invariant="state").gaps[-1]))
    assert 0.9 < ssldyn.lr_order(lrs, gaps) < 1.1

    class Ramp(ssldyn.AbstractFlow):  # dy/dt = t
        def vector_field(self, t, y):
            return jnp.ones_like(y) * t

        def loss(self, y):
            return jnp.sum(y)

        def check_initial(self, y0):
            return jnp.asarray(y0)

    lr, n = 0.1, 5
    out = ssldyn.simulate_gd(Ramp(), jnp.zeros(()), lr, n).final
    np.testing.assert_allclose(out, sum(lr * (k * lr) for k in range(n)), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Solution protocol and generic comparison
# ---------------------------------------------------------------------------------------------------


def test_every_core_closed_form_follows_the_solution_protocol_and_matches_solve():
    S = random_symmetric(KEY, 6) / 3
    W0 = ssldyn.stiefel_init(jax.random.PRNGKey(1), 6, 2)
    ts = jnp.linspace(0.0, 2.0, 5)
    cases = [
        (ssldyn.NaiveSolution(S, W0), ssldyn.naive_flow(S), W0, "state"),
        (ssldyn.GrassmannSolution(S, W0), ssldyn.grassmann_flow(S), W0, "projector"),
        (ssldyn.PowerFlowSolution(S, W0[:, :1]), ssldyn.sphere_flow(S), W0[:, :1], "state"),
    ]
    for sol, flow, y0, inv in cases:
        assert isinstance(sol, ssldyn.AbstractSolution)
        traj = ssldyn.solve(flow, y0, 0.0, 2.0, ts=ts, rtol=1e-11, atol=1e-13)
        assert float(ssldyn.compare_along(traj, sol, invariant=inv).max_gap) < 1e-8
        np.testing.assert_allclose(sol.trajectory(ts).ys[2], sol(ts[2]), rtol=1e-13)
    # OutputSolution: initial outputs stored once, then only the time
    Z = jax.random.normal(KEY, (9, 4))
    K = Z @ Z.T / 4
    B = ssldyn.pair_matrix(3)
    R0 = ssldyn.qf(jax.random.normal(jax.random.PRNGKey(2), (9, 2))) * 0.5
    sol = ssldyn.OutputSolution(B, K).with_initial(R0)
    traj = ssldyn.solve(ssldyn.output_flow(B, K), R0, 0.0, 2.0, ts=ts, rtol=1e-11, atol=1e-13)
    assert float(ssldyn.compare_along(traj, sol, invariant="gram").max_gap) < 1e-8
    with pytest.raises(ValueError, match="initial outputs"):
        ssldyn.OutputSolution(B, K).evaluate(1.0)


def test_compare_along_refuses_different_grids_and_unknown_invariants():
    S = random_symmetric(KEY, 4)
    W0 = ssldyn.stiefel_init(KEY, 4, 2)
    a = ssldyn.simulate_gd(ssldyn.grassmann_flow(S), W0, 0.01, 10, save_every=5)
    b = ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, 0.1, ts=4)  # 0, 1/30, 2/30, 0.1: lacks 0.05
    with pytest.raises(ValueError, match="different times"):
        ssldyn.compare_along(a, b)
    with pytest.raises(ValueError, match="gap"):
        ssldyn.compare_along(a, a, gap="l1")
    with pytest.raises(ValueError, match="invariant"):
        ssldyn.compare_along(a, a, invariant="nope")
    with pytest.raises(TypeError, match="`b`"):
        ssldyn.compare_along(a, W0)
    assert float(ssldyn.compare_along(a, a, invariant=lambda W: W.T @ W).max_gap) == 0.0


def test_compare_along_on_a_superset_grid_and_max_abs_gap():
    """An ODE saved at t = 0 too is compared at the trainer's times only; `max_abs` is the largest
    entrywise difference of the invariants (checked against NumPy on the hand-sliced grid)."""
    S = random_symmetric(KEY, 4)
    W0 = ssldyn.stiefel_init(KEY, 4, 2)
    flow = ssldyn.grassmann_flow(S)
    gd = ssldyn.simulate_gd(flow, W0, 0.01, 10, save_every=5)
    ts_gd = np.asarray(gd.ts)
    ode = ssldyn.solve(flow, W0, 0.0, 0.1, ts=jnp.concatenate([jnp.zeros(1), gd.ts]), rtol=1e-10, atol=1e-12)
    cmp = ssldyn.compare_along(gd, ode, invariant="gram", gap="max_abs")
    np.testing.assert_allclose(np.asarray(cmp.ts), ts_gd, rtol=0, atol=1e-12)
    G_gd = np.einsum("tik,tjk->tij", np.asarray(gd.saved), np.asarray(gd.saved))
    W_ode = np.asarray(ode.ys)[1:]
    G_ode = np.einsum("tik,tjk->tij", W_ode, W_ode)
    expected = np.abs(G_gd - G_ode).reshape(len(ts_gd), -1).max(axis=1)
    np.testing.assert_allclose(np.asarray(cmp.gaps), expected, rtol=1e-12, atol=1e-15)
    assert float(cmp.max_gap) > 0  # GD is O(lr) away from the flow, not on it
    # the order does not matter, and the relative gap agrees with gram_gap at each time
    rel = ssldyn.compare_along(ode, gd, invariant="gram")
    for i, t in enumerate(ts_gd):
        np.testing.assert_allclose(float(rel.gaps[i]), float(ssldyn.gram_gap(W_ode[i], np.asarray(gd.saved)[i])),
                                   rtol=1e-12)


def test_trajectory_status_is_an_enumeration():
    flow = ssldyn.naive_flow(jnp.eye(3) * 50.0)
    traj = ssldyn.solve(flow, jnp.eye(3)[:, :1], 0.0, 100.0, throw=False, max_steps=50)
    assert not traj.ok and traj.result in (ssldyn.Status.max_steps_reached, ssldyn.Status.nonfinite)
    ok = ssldyn.solve(ssldyn.naive_flow(jnp.eye(3)), jnp.eye(3)[:, :1], 0.0, 0.1)
    assert ok.result == ssldyn.Status.success


# ---------------------------------------------------------------------------------------------------
# manifolds
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stiefel", "grassmann", "sphere"])
def test_manifold_projection_is_tangent_and_retraction_stays_on_the_manifold(name):
    manifold = {"stiefel": ssldyn.Stiefel(), "grassmann": ssldyn.Grassmann(), "sphere": ssldyn.Sphere()}[name]
    W = ssldyn.stiefel_init(KEY, 7, 1 if name == "sphere" else 3)
    if name == "sphere":
        W = W[:, 0]
    G = jax.random.normal(jax.random.PRNGKey(3), W.shape)
    T = manifold.project(W, G)
    if name == "sphere":
        assert abs(float(W @ T)) < 1e-13
        # projection = G minus its component along W (independent formula)
        np.testing.assert_allclose(T, G - (W @ G) * W, atol=1e-13)
        Wn = manifold.retract(W, 0.3 * T)
        assert abs(float(jnp.linalg.norm(Wn)) - 1.0) < 1e-13
    else:
        np.testing.assert_allclose(W.T @ T + T.T @ W, 0.0, atol=1e-13)  # tangent: WᵀΔ skew
        Wn = manifold.retract(W, 0.3 * T)
        np.testing.assert_allclose(Wn.T @ Wn, np.eye(3), atol=1e-13)
        # the projection is idempotent and orthogonal: <G − T, T> = 0
        np.testing.assert_allclose(manifold.project(W, T), T, atol=1e-13)
        assert abs(float(jnp.sum((G - T) * T))) < 1e-12


# ---------------------------------------------------------------------------------------------------
# validation and claims
# ---------------------------------------------------------------------------------------------------


def test_validation_helpers_name_the_argument():
    assert check_int(np.int64(3), "n") == 3
    with pytest.raises(TypeError, match="`n` must be an int"):
        check_int(True, "n")
    with pytest.raises(ValueError, match=r"`n` must be an int in \[1, 5\]"):
        check_int(9, "n", minimum=1, maximum=5)
    with pytest.raises(ValueError, match="`mode` must be one of"):
        check_choice("x", "mode", ("a", "b"))
    keys, single = check_keys(jax.random.split(KEY, 3))
    assert not single and keys.shape == (3, 2)
    with pytest.raises(TypeError, match="`keys` must be a jax.random key"):
        check_keys(jnp.ones((3, 3)))


def test_claim_and_select():
    recs = [{"kind": "a", "x": 1}, {"kind": "a", "x": 5}, {"kind": "b", "x": 5}, {"x": 7}]
    assert select(recs, kind="a", x=lambda v: v > 2) == [{"kind": "a", "x": 5}]
    assert len(select(recs, x={5, 7})) == 3 and select(recs, kind="c") == []
    assert verdict(True) == "yes" and verdict(False) == "no" and verdict(False, partly=True) == "partly"
    c = Claim("c", "m", "partly", criterion="r")
    assert c.reproduced is None and c.to_record()["criterion"] == "r"
    with pytest.raises(ValueError, match="verdict"):
        Claim("c", "m", "maybe")


def test_readme_reproduction_table_comes_from_the_registry():
    from pathlib import Path

    from ssldyn.experiments import reproduction_table

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert reproduction_table() in readme, "regenerate the README table with experiments.reproduction_table()"


def _gen_full_runs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "docs" / "gen_full_runs.py"
    spec = importlib.util.spec_from_file_location("gen_full_runs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_full_run_verdicts_come_from_the_record():
    """The README's full-run table is `docs/full_runs.json` rendered; every registered experiment and
    every recorded claim appears, with a verdict the kit can produce."""
    from pathlib import Path

    from ssldyn.experiments import REGISTRY

    gen = _gen_full_runs()
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert gen.readme_section() in readme, "rerun python docs/gen_full_runs.py"
    record = gen.load_record()
    assert set(record) <= set(REGISTRY.names())
    for name, entry in record.items():
        assert entry["claims"], name
        for c in entry["claims"]:
            assert c["verdict"] in ("yes", "partly", "no", "not testable"), (name, c)
            assert f"| {c['claim']} | {c['verdict']} |" in readme


def test_full_run_record_refuses_quick_and_unfinished_runs():
    gen = _gen_full_runs()
    env = {"device": "cpu", "cpu_count": 2, "versions": {"ssldyn": "0"}}
    claims = [{"claim": "c", "verdict": "yes", "criterion": "r"}]
    full = {"experiment": "x", "status": "complete", "run_size": {"label": "full", "reduced": False},
            "cells": {"a": {"seconds": 2.0, "compiles": 3}}, "prepare_seconds": 1.0, "prepare_compiles": 1,
            "environment": env, "claims": claims, "finished": "2026-12-05T00:00:00+00:00"}
    e = gen.entry_from_results(full)
    assert e["seconds"] == 3.0 and e["compiles"] == 4 and e["claims"][0]["verdict"] == "yes"
    with pytest.raises(ValueError, match="reduced"):
        gen.entry_from_results(dict(full, run_size={"label": "quick", "reduced": True}))
    with pytest.raises(ValueError, match="not complete"):
        gen.entry_from_results(dict(full, status="running"))
    table = gen.render({"x": e}, ["x", "y"])
    assert "| c | yes |" in table and "`y` | (no full-protocol run recorded yet" in table


# The public API of the README's table before the kit refactor (commit 9a05bde): every name must keep
# importing from the same namespace, so users' notebooks keep working.
_OLD_API = {
    "ssldyn": """Euclidean GradientFlow Grassmann GrassmannSolution NaiveSolution NetworkSpec OutputFlow OutputSolution
        PowerFlowSolution QuadraticFlow SolveError Sphere Stiefel ViewStats agreement barlow_twins_loss
        conjugate_kernel contrastive_loss effective_rank empirical_ntk empirical_setup erf_kernel get_activation
        gram_gap grassmann_flow hermite_series_kernel hidden_features hidden_gram infinite_width_kernel
        infinite_width_ntk infinite_width_setup info_nce_loss init_network kernel_root linear_cka logistic_probe
        loss_along naive_flow network_apply network_features noncontrastive_loss ntk_flow orthogonality_error
        output_flow output_loss pair_matrix polar population_view_stats predict_outputs principal_angles
        probe_accuracy projector qf quadratic_loss quadrature_kernel random_features rankme relu_kernel
        ridge_probe sample_initial_outputs simulate_gd spectral_contrastive_loss sphere_flow
        squared_contrastive_loss squared_noncontrastive_loss stable_rank stack_views stiefel_init
        subspace_distance sym top_eigenspace train_network view_stats""",
    "ssldyn.data": """compose gaussian_noise load_embedded_mnist load_idx load_mnist load_mnist_idx make_views
        oracle_views random_mask random_rotation random_translation two_class_split""",
    "ssldyn.experiments": "Experiment REGISTRY make_config run_experiment",
}


@pytest.mark.parametrize("module", sorted(_OLD_API))
def test_every_name_of_the_old_readme_api_still_imports(module):
    import importlib

    mod = importlib.import_module(module)
    missing = [name for name in _OLD_API[module].split() if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"
    assert {"C0", "Cp", "Cm", "Dp", "Dm"} <= set(ssldyn.ViewStats.__dataclass_fields__)


# ---------------------------------------------------------------------------------------------------
# run size: a quick run says so, and claims defined at the full protocol are not judged there
# ---------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _SizedConfig:
    n: int = 6
    horizon: float = 10.0
    seed: int = 0


def _sized_experiment():
    from ssldyn.experiments import full_run_only

    def count_claim(config, records):  # defined at any size
        n = len(records)
        return Claim("one record per cell", f"{n} records", verdict(n == config.n), criterion="n records")

    @full_run_only
    def converged_claim(config, records):  # needs the protocol's horizon
        return Claim("converged", f"horizon {config.horizon:g}", verdict(config.horizon >= 10.0),
                     criterion="horizon ≥ 10")

    return Experiment(
        name="sized", summary="s", paper="p", config_cls=_SizedConfig, quick={"n": 2, "horizon": 1.0},
        prepare=lambda config: {}, cells=lambda config: [{"id": f"c{i}", "kind": "k"} for i in range(config.n)],
        cell_kinds={"k": lambda config, ctx, cell: [{"kind": "k"}]}, claims=(count_claim, converged_claim),
        report=lambda config, ctx, records, out: "body")


def test_run_size_labels_and_reduced_claims(tmp_path):
    exp = _sized_experiment()
    assert exp.run_size(_SizedConfig()) == {"label": "full", "reduced": False, "changed": {}}
    assert exp.run_size(_SizedConfig(seed=3))["label"] == "full"  # the seed does not change the size
    assert exp.run_size(_SizedConfig(n=2, horizon=1.0))["label"] == "quick"
    partial = exp.run_size(_SizedConfig(n=3))
    assert partial == {"label": "reduced", "reduced": True, "changed": {"n": [3, 6]}}

    quick = run_experiment(exp, make_config(exp, quick=True), tmp_path / "q", progress=False)
    by_claim = {c["claim"]: c for c in quick["claims"]}
    assert by_claim["one record per cell"]["verdict"] == "yes"  # judged at any size
    conv = by_claim["converged"]
    assert conv["verdict"] == "not testable" and conv["reproduced"] is None
    assert conv["measured"].startswith("horizon 1") and "the criterion would say no" in conv["measured"]
    report = (tmp_path / "q" / "report.md").read_text().splitlines()
    assert report[2].startswith("> **Quick run, not the paper's protocol.**")
    assert "`n` = 2 (protocol 6)" in report[2] and "`horizon` = 1.0 (protocol 10.0)" in report[2]
    assert "1 claim(s) are defined at the full protocol only" in report[2]

    full = run_experiment(exp, _SizedConfig(), tmp_path / "f", progress=False)
    assert [c["verdict"] for c in full["claims"]] == ["yes", "yes"]
    assert full["run_size"]["label"] == "full"
    assert "not the paper's protocol" not in (tmp_path / "f" / "report.md").read_text()

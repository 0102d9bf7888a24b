"""Issue 16, hardening: no silent NaN, no raw traceback, every argument checked at the boundary.

Each case asserts the exception type and that the message names the offending argument (or the cause).
The arrays are tiny so that the whole module runs in well under a minute on 2 CPU cores.
"""

import json
import os
import signal
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn.cli import main
from ssldyn.experiments import Experiment, run_experiment
from ssldyn.scaling._ensemble import solve_ensemble

I4 = jnp.eye(4)
S = jnp.diag(jnp.array([1.43, 0.5, 0.2, -0.1]))
W0 = ssldyn.stiefel_init(jax.random.PRNGKey(1), 4, 2)
X = jax.random.normal(jax.random.PRNGKey(0), (6, 4))
B6 = np.asarray(ssldyn.pair_matrix(2, "contrastive"))
SPEC = ssldyn.NetworkSpec(d=4, h=8, k=2)
PARAMS = ssldyn.init_network(jax.random.PRNGKey(0), SPEC, dtype=jnp.float64)


def _raises(fn, exc, *words):
    with pytest.raises(exc) as info:
        fn()
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------------------------
# 1. silent NaN / Inf
# ---------------------------------------------------------------------------------------------

NONFINITE = {
    "naive_solution_overflow": (lambda: ssldyn.NaiveSolution(S, W0)(400.0), OverflowError, ("`t`", "overflows")),
    "naive_solution_trajectory_overflow": (lambda: ssldyn.NaiveSolution(S, W0).trajectory(jnp.array([0.0, 400.0])),
                                           OverflowError, ("`t`", "mu_1")),
    "naive_solution_nan_time": (lambda: ssldyn.NaiveSolution(S, W0)(jnp.nan), ValueError, ("`t`", "finite")),
    "grassmann_nan_time": (lambda: ssldyn.GrassmannSolution(S, W0).basis(jnp.nan), ValueError, ("`t`",)),
    "grassmann_negative_time": (lambda: ssldyn.GrassmannSolution(S, W0).basis(-1.0), ValueError, ("`t`", ">= 0")),
    "grassmann_inf_time": (lambda: ssldyn.GrassmannSolution(S, W0).projector(jnp.inf), ValueError, ("`t`",)),
    "simulate_gd_diverges": (lambda: ssldyn.simulate_gd(ssldyn.naive_flow(10 * I4), W0, 1e3, 200),
                             FloatingPointError, ("`lr`", "diverged")),
    "train_network_diverges": (lambda: ssldyn.train_network(SPEC, PARAMS, X, B6, lr=1e6, n_steps=20,
                                                            constrained=False, train="all"),
                               FloatingPointError, ("`lr`", "diverged")),
    "kernel_of_log": (lambda: ssldyn.infinite_width_kernel(X[:3], activation=jnp.log, order=4), ValueError,
                      ("`activation`", "log")),
    "quadrature_kernel_of_log": (lambda: ssldyn.quadrature_kernel(X[:3], activation=jnp.log, order=4), ValueError,
                                 ("`activation`",)),
    "hermite_too_many_terms": (lambda: ssldyn.hermite_series_kernel(X, activation="tanh", n_terms=75), ValueError,
                               ("`n_terms`",)),
    "hermite_too_many_nodes": (lambda: ssldyn.hermite_series_kernel(X, activation="tanh", n_nodes=200), ValueError,
                               ("`n_nodes`",)),
    "cka_constant": (lambda: ssldyn.linear_cka(jnp.ones((6, 3)), X), ValueError, ("`X`", "constant")),
    "cka_constant_y": (lambda: ssldyn.linear_cka(X, jnp.zeros((6, 2))), ValueError, ("`Y`", "constant")),
}


@pytest.mark.parametrize("case", sorted(NONFINITE))
def test_no_silent_nonfinite(case):
    fn, exc, words = NONFINITE[case]
    _raises(fn, exc, *words)


def test_valid_inputs_still_finite():
    """The checks change nothing for valid inputs (same values as before the checks)."""
    sol = ssldyn.NaiveSolution(S, W0)
    np.testing.assert_allclose(sol(1.0), ssldyn.simulate_gd(ssldyn.naive_flow(S), W0, 1e-4, 10_000).final, rtol=2e-3)
    assert np.isfinite(float(ssldyn.linear_cka(X, X[:, :2])))
    K = ssldyn.hermite_series_kernel(X, activation="tanh", n_terms=70)
    assert np.all(np.isfinite(np.asarray(K)))
    # under jit the closed form is not checked (no concrete values) and still evaluates
    assert jax.jit(lambda t: sol(t))(1.0).shape == (4, 2)


# ---------------------------------------------------------------------------------------------
# 2. the solver names the right cause, early
# ---------------------------------------------------------------------------------------------


def test_exploding_solve_reports_nonfinite_early():
    traj = ssldyn.solve(ssldyn.naive_flow(10 * I4), W0, 0.0, 1e3, throw=False)
    assert int(traj.status) == 2 and traj.result == ssldyn.Status.nonfinite
    assert int(traj.stats["num_steps"]) < 20_000  # not the 100,000 steps of max_steps
    _raises(traj.check, ssldyn.SolveError, "non-finite")


# ---------------------------------------------------------------------------------------------
# 3. refused instead of accepted
# ---------------------------------------------------------------------------------------------


def _ensemble_make(p):
    return ssldyn.grassmann_flow(p["S"])


REFUSED = {
    "view_stats_complex": (lambda: ssldyn.view_stats(X + 0.5j, X, X), TypeError, ("`X`", "complex")),
    "grassmann_flow_complex": (lambda: ssldyn.grassmann_flow(S + 1j * I4), TypeError, ("`S`", "complex")),
    "flow_empty": (lambda: ssldyn.grassmann_flow(jnp.zeros((0, 0))), ValueError, ("`S`", "empty")),
    "pair_matrix_empty_kernel": (lambda: ssldyn.output_flow(jnp.zeros((0, 0)), jnp.zeros((0, 0))), ValueError,
                                 ("`B`", "empty")),
    "output_flow_negative_kernel": (lambda: ssldyn.output_flow(I4, -I4), ValueError, ("`K`", "positive semi-definite")),
    "output_solution_negative_kernel": (lambda: ssldyn.OutputSolution(I4, -I4), ValueError, ("`K`", "semi-definite")),
    "kernel_root_negative_kernel": (lambda: ssldyn.kernel_root(-I4), ValueError, ("`K`",)),
    "kernel_root_negative_jitter": (lambda: ssldyn.kernel_root(I4, jitter=-1), ValueError, ("`jitter`",)),
    "kernel_root_negative_jitter_cholesky": (lambda: ssldyn.kernel_root(I4, method="cholesky", jitter=-1.0),
                                             ValueError, ("`jitter`",)),
    "sample_initial_outputs_k0": (lambda: ssldyn.sample_initial_outputs(jax.random.PRNGKey(0), I4, 0, width=10),
                                  ValueError, ("`k`",)),
    "sample_initial_outputs_k_float": (lambda: ssldyn.sample_initial_outputs(jax.random.PRNGKey(0), I4, 2.0, width=10),
                                       TypeError, ("`k`",)),
    "train_network_other_width": (lambda: ssldyn.train_network(ssldyn.NetworkSpec(d=4, h=16, k=2), PARAMS, X, B6),
                                  ValueError, ("`params['V']`", "another size")),
    "random_translation_too_far": (lambda: ssldyn.data.random_translation(jax.random.PRNGKey(0), jnp.zeros((2, 784)),
                                                                           max_shift=100), ValueError, ("`max_shift`", "28")),
    "solve_ensemble_not_orthonormal": (
        lambda: solve_ensemble(_ensemble_make, {"S": jnp.stack([S, S])}, jnp.stack([W0, 2.0 * W0]), 0.0, 0.1),
        ValueError, ("`y0s`", "members 1")),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_at_the_boundary(case):
    fn, exc, words = REFUSED[case]
    _raises(fn, exc, *words)


def test_complex_allowed_on_request():
    from ssldyn._validation import as_array

    assert as_array(jnp.ones(2) + 1j, "x", allow_complex=True).dtype == jnp.complex128


# ---------------------------------------------------------------------------------------------
# 4. clear errors
# ---------------------------------------------------------------------------------------------

UNCLEAR = {
    "gradient_flow_vector_loss": (lambda: ssldyn.solve(ssldyn.GradientFlow(lambda W: jnp.sum(W, axis=0)), W0, 0.0, 0.1),
                                  TypeError, ("`loss_fn`", "scalar")),
    "train_network_missing_W": (lambda: ssldyn.train_network(SPEC, {"V": PARAMS["V"]}, X, B6), ValueError,
                                ("`params`", "'W'")),
    "train_network_params_not_dict": (lambda: ssldyn.train_network(SPEC, [PARAMS["V"]], X, B6), TypeError,
                                      ("`params`",)),
    "train_network_X_eval_width": (lambda: ssldyn.train_network(SPEC, PARAMS, X, B6, X_eval=jnp.zeros((3, 5)),
                                                                save_every=1, n_steps=1), ValueError, ("`X_eval`", "4")),
}


@pytest.mark.parametrize("case", sorted(UNCLEAR))
def test_clear_errors(case):
    fn, exc, words = UNCLEAR[case]
    _raises(fn, exc, *words)


def test_list_and_float32_initial_states_work():
    flow = ssldyn.naive_flow(S)
    ref = ssldyn.solve(flow, W0, 0.0, 0.5).final
    from_list = ssldyn.solve(flow, np.asarray(W0).tolist(), 0.0, 0.5).final
    np.testing.assert_array_equal(from_list, ref)
    f32 = ssldyn.solve(flow, W0.astype(jnp.float32), 0.0, 0.5)  # cast up to the flow's float64
    assert f32.ys.dtype == jnp.float64
    np.testing.assert_allclose(f32.final, ref, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# 5. command line: one line, exit status 2, no traceback, no empty directory
# ---------------------------------------------------------------------------------------------


def _cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ssldyn: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_cli_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    err = _cli_error(capsys, ["run", "esser-mnist", "--quick", "--no-progress", "--out", str(target)])
    assert "--out" in err and "file" in err


def test_cli_out_cannot_be_created(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    err = _cli_error(capsys, ["run", "esser-mnist", "--quick", "--no-progress", "--out", str(blocker / "sub")])
    assert "--out" in err


@pytest.mark.parametrize("setting, field", [
    ("data={missing}", "data"),
    ("collapse_max_steps=0", "collapse_max_steps"),
    ("collapse_horizon=-1", "collapse_horizon"),
    ("n_per_class=1", "n_per_class"),
    ("widths=1,10", "widths"),
    ("activations=relu,nope", "activations"),
])
def test_cli_refuses_bad_configuration_before_writing(tmp_path, capsys, setting, field):
    out = tmp_path / "out"
    setting = setting.format(missing=tmp_path / "no-such-folder")
    err = _cli_error(capsys, ["run", "esser-mnist", "--quick", "--no-progress", "--out", str(out), "--set", setting])
    assert f"`{field}`" in err
    assert not out.exists()  # refused before anything was created


# A toy experiment (no JAX work) for the runner's file handling.

import dataclasses  # noqa: E402


@dataclasses.dataclass(frozen=True)
class _Toy:
    n: int = 3


CALLS = []


def _toy(validate=None, interrupt_at=None):
    def run(config, ctx, cell):
        if interrupt_at is not None and cell["i"] == interrupt_at:
            raise KeyboardInterrupt
        CALLS.append(cell["id"])
        return [{"kind": "toy", "i": cell["i"]}]

    return Experiment(name="toy", summary="toy", paper="none", config_cls=_Toy, quick={}, prepare=lambda c: {},
                      cells=lambda c: [{"id": f"c{i}", "i": i, "kind": "toy"} for i in range(c.n)],
                      cell_kinds={"toy": run}, validate=validate)


def test_runner_validate_hook_runs_first(tmp_path):
    def validate(config):
        if config.n < 1:
            raise ValueError("configuration field `n` must be >= 1")

    out = tmp_path / "toy"
    _raises(lambda: run_experiment(_toy(validate), _Toy(n=0), out, progress=False), ValueError, "`n`")
    assert not out.exists()


def test_runner_removes_the_directory_it_created_when_prepare_fails(tmp_path):
    def prepare(config):
        raise ValueError("`data` is missing")

    exp = dataclasses.replace(_toy(), prepare=prepare)
    out = tmp_path / "new"
    _raises(lambda: run_experiment(exp, _Toy(), out, progress=False), ValueError, "`data`")
    assert not out.exists()


def test_result_files_have_the_usual_mode(tmp_path):
    run_experiment(_toy(), _Toy(), tmp_path, progress=False)
    mask = os.umask(0)
    os.umask(mask)
    for name in ("results.json", "report.md"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask


def test_cli_interrupt_says_what_was_saved(tmp_path, capsys, monkeypatch):
    from ssldyn.experiments import _registry

    exp = _toy(interrupt_at=2)
    monkeypatch.setattr(_registry, "get_experiment", lambda name: exp)
    import ssldyn.experiments as E

    monkeypatch.setattr(E, "get_experiment", lambda name: exp)
    code = main(["run", "toy", "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGINT
    assert "interrupted" in err and "2 finished cell(s)" in err and "resume" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# 6. damaged results on resume
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["no_records", "empty_records"])
def test_damaged_cells_are_recomputed(tmp_path, damage):
    exp = _toy()
    run_experiment(exp, _Toy(), tmp_path, progress=False)
    path = tmp_path / "results.json"
    saved = json.loads(path.read_text())
    if damage == "no_records":
        del saved["cells"]["c1"]["records"]
    else:
        saved["cells"]["c1"]["records"] = []
    path.write_text(json.dumps(saved))
    CALLS.clear()
    logs = []
    done = run_experiment(exp, _Toy(), tmp_path, progress=False, log=logs.append)
    assert CALLS == ["c1"] and done["status"] == "complete"
    assert any("recomputing cell c1" in line for line in logs)

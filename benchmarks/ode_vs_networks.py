"""Benchmark the esser-mnist sweep: training the networks vs the width-independent output ODE.

Sweep (the main job's, `ssldyn.experiments.esser_mnist.Config`): digits 0 vs 1, 200 training images
per class (m = 3n = 1200 stacked views, 600 evaluation inputs), k = 5, activations sigmoid / relu /
tanh, widths 10…1000 (7, log-spaced), 10 seeds; GD lr 0.01 for 100 steps (t = 1); feature scale
c_h = 1. The data and views come from `esser_mnist.prepare`, the seeds' keys from its `_cell_key`.

Measured (each jitted as the outermost function, compiled once with the compile timed separately,
best of `--repeats` runs, the repeats of the alternatives of one cell interleaved):

- **training**, per activation and width, vmapped over seeds, float32 (as in the experiment), data
  passed as arguments: arm A `train_network(..., train="last")` on all seeds and arm B
  `train="all"` on the first `arm_b_seeds` seeds (the main job's 3), each followed by
  `network_apply` on the 600 evaluation inputs (what the experiment compares);
- **ODE side, infinite width**, float64, exactly as the experiment computes it: once per activation
  the *setup* (`esser_mnist._inf_kernel`: NNGP kernel of the 1400 distinct inputs, its Cholesky
  factor, and `OutputSolution`, i.e. one eigendecomposition of LᵀBL); per width the *closed-form*
  predictions of all seeds (sampling R(0) and evaluating the solution; one compilation serves every
  width and activation: the width is a traced scale);
- **the same ODE by the adaptive solver** (`predict_outputs`, Tsit5, rtol 1e-6, vmapped over seeds,
  kernel shared), from the same R(0): its cost, and its agreement with the closed form
  (max relative Gram gap of the evaluation representations). `--no-solver` skips it.

Final JSON line: `speedup = total training time / total ODE-side time` (setup included, compile
excluded), and the arm-A-only, arm-B-only, per-network, setup-free, solver-based and
compile-inclusive ratios.

Run: `python benchmarks/ode_vs_networks.py [--quick] [--repeats R] [--no-solver] [--json out.jsonl]`.
"""

from __future__ import annotations

import functools
import time

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import jax
import jax.numpy as jnp
import numpy as np


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], float32_flag=False, repeats=3)
    p.add_argument("--widths", type=int, nargs="+", default=None, help="default: the main job's 10 … 1000")
    p.add_argument("--activations", nargs="+", default=None, help="default: sigmoid relu tanh")
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell (default 10; quick 3)")
    p.add_argument("--arm-b-seeds", type=int, default=None, help="seeds of arm B (default: the main job's 3; quick 2)")
    p.add_argument("--n-per-class", type=int, default=None, help="training images per class (default 200; quick 100)")
    p.add_argument("--steps", type=int, default=100, help="GD steps (t = lr × steps)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--budget", type=float, default=3.0,
                   help="stop repeating a measurement once its runs took this many seconds (it always runs once)")
    p.add_argument("--no-solver", action="store_true",
                   help="skip the adaptive-solver solves of the same ODE (cost and agreement with the closed form)")
    args = p.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 2)
        defaults = dict(widths=[10, 50, 250], activations=["relu"], seeds=3, arm_b_seeds=2, n_per_class=100)
    else:
        defaults = dict(widths=None, activations=None, seeds=None, arm_b_seeds=None, n_per_class=None)
    for name, val in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, val)
    return args


def make_config(args):
    from ssldyn.experiments.esser_mnist import Config

    over = dict(digit_pairs=((0, 1),), lr=args.lr, epochs=args.steps)
    for field, val in (("widths", args.widths), ("activations", args.activations), ("n_seeds", args.seeds),
                       ("arm_b_seeds", args.arm_b_seeds), ("n_per_class", args.n_per_class)):
        if val is not None:
            over[field] = tuple(val) if isinstance(val, list) else val
    if "n_seeds" in over and "arm_b_seeds" not in over:
        over["arm_b_seeds"] = min(Config.arm_b_seeds, over["n_seeds"])
    return Config(**over)


def main():
    args = parse_args()
    C.setup_precision(False)  # float64 available: the ODE runs in float64, the networks in float32
    import ssldyn
    from ssldyn._compare import predict_outputs
    from ssldyn.experiments import esser_mnist as E

    env = C.environment()
    wall0 = time.perf_counter()
    config = make_config(args)
    ctx = E.prepare(config)
    pname = E._pair_name(config.digit_pairs[0])
    P = ctx["pairs"][pname]
    m, d, k, S, SB = P["Z"].shape[0], P["Z"].shape[1], config.k, config.n_seeds, config.arm_b_seeds
    Z32, B32, Xe32 = (P[n].astype(jnp.float32) for n in ("Z", "B", "X_eval"))
    n_steps, lr = config.epochs, config.loss_constant * config.lr
    R = args.repeats
    cfg_rec = {"digits": list(config.digit_pairs[0]), "n_per_class": config.n_per_class, "m": m,
               "m_eval": int(P["X_eval"].shape[0]), "d": d, "k": k, "widths": list(config.widths),
               "activations": list(config.activations), "seeds": S, "arm_b_seeds": SB, "lr": lr,
               "steps": n_steps, "t_end": config.t_end, "feature_scale": config.feature_scale,
               "kernel_order": config.kernel_order, "ode_rtol": config.rtol, "ode_atol": config.atol,
               "network_dtype": "float32", "ode_dtype": "float64", "budget_s": args.budget}
    rep = C.Reporter("ode_vs_networks", env, "float32 networks / float64 ODE", args, cfg_rec)

    closed = functools.partial(E._infinite_width_predictions, m=m, k=k, t1=config.t_end)

    def solver(machinery, K_train, keys, h, scale):
        """The same predictions by integrating the output ODE (R(0) sampled exactly as in `closed`)."""
        sol, L_u, eval_rows = machinery

        def one(kk):
            R0_u = ssldyn.sample_initial_outputs(kk, None, k, width=h, root=jnp.sqrt(scale) * L_u)
            return predict_outputs(P["B"], scale * K_train, scale * sol.K_eval, R0_u[:m], R0_u[eval_rows],
                                   config.t_end, rtol=config.rtol, atol=config.atol)[1]

        return jax.vmap(one)(keys)

    def train_fn(spec, train):
        def f(p, Z, B, Xe):
            res = ssldyn.train_network(spec, p, Z, B, lr=lr, n_steps=n_steps, train=train)
            return ssldyn.network_apply(spec, res.params, Xe)

        return jax.vmap(f, in_axes=(0, None, None, None))

    def gram_gap(Ra, Rb):  # relative Gram gap per seed, max over seeds
        return float(np.max(np.asarray(jax.vmap(ssldyn.gram_gap)(Ra, Rb))))

    compiled, setups, cells, setup_cache = {}, {}, [], {}
    for act in config.activations:
        # ---- setup once per activation (as the experiment: kernel, Cholesky factor, eigendecomposition)
        build = lambda: E._inf_kernel({"kernels": {}, "compiled": setup_cache}, config, pname, act, P)[0]  # noqa: E731
        t0 = time.perf_counter()
        jax.block_until_ready(build())
        cold = time.perf_counter() - t0
        tS = C.time_python(build, repeats=R)
        tS["compile_s"] = max(cold - tS["run_s"], 0.0)  # first call minus a warm call: tracing/compilation
        machinery = tS["out"]
        setups[act] = tS
        rep.record("ode_setup", tS, activation=act, cold_s=cold, dtype="float64",
                   note="NNGP kernel + Cholesky factor + OutputSolution (one eigh), once per activation")
        keys_cell = {h: jax.random.split(E._cell_key(config, {"id": f"{pname}/{act}/h{h}"}), S + 1)
                     for h in config.widths}
        K_train = None
        if not args.no_solver:
            L = machinery[1][:m, :m]
            K_train = L @ L.T  # the (jittered) kernel the closed form uses
        for h in config.widths:
            spec = ssldyn.NetworkSpec(d=d, h=h, k=k, activation=act, feature_scale=config.c_h)
            keys = keys_cell[h]
            p64 = jax.vmap(lambda kk: ssldyn.init_network(kk, spec, dtype=jnp.float64))(keys[:S])
            p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), p64)
            pB = jax.tree_util.tree_map(lambda a: a[:SB], p32)
            hh = jnp.asarray(float(h))
            scale = hh if config.feature_scale == "1" else jnp.asarray(1.0)
            ode_keys = jax.random.split(keys[S], S)
            # One compilation of each ODE-side function serves every width and activation.
            for name, fn, fargs in (("closed", closed, (machinery, ode_keys, hh, scale)),
                                    ("solver", solver, (machinery, K_train, ode_keys, hh, scale))):
                if name == "solver" and args.no_solver:
                    continue
                if name not in compiled:
                    compiled[name] = C.compile_jit(fn, *fargs)
                    rep.record(f"compile_{name}", C.Timing(compile_s=compiled[name][1], run_s=0.0, runs_s=[]),
                               dtype="float64", note="once for the whole sweep")
            jobs = {"A": (train_fn(spec, "last"), (p32, Z32, B32, Xe32))}
            if SB:
                jobs["B"] = (train_fn(spec, "all"), (pB, Z32, B32, Xe32))
            t = C.time_interleaved(jobs, repeats=R, budget_s=args.budget)
            t["closed"] = C.time_compiled(compiled["closed"][0], machinery, ode_keys, hh, scale, repeats=max(R, 3),
                                          budget_s=args.budget)
            R_cf = t["closed"]["out"]
            if not np.all(np.isfinite(np.asarray(R_cf))):
                raise RuntimeError(f"non-finite closed-form prediction at {act}, h={h}")
            gap = None
            if not args.no_solver:
                t["solver"] = C.time_compiled(compiled["solver"][0], machinery, K_train, ode_keys, hh, scale,
                                              repeats=1)
                gap = gram_gap(R_cf, t["solver"]["out"])
            cells.append({"activation": act, "width": h, **{n: t.get(n) for n in ("A", "B", "closed", "solver")},
                          "gap": gap})
            rep.record("train_A", t["A"], activation=act, width=h, seeds=S, steps=n_steps, dtype="float32",
                       per_network_s=t["A"]["run_s"] / S)
            if SB:
                rep.record("train_B", t["B"], activation=act, width=h, seeds=SB, steps=n_steps, dtype="float32",
                           per_network_s=t["B"]["run_s"] / SB)
            rep.record("ode_closed_form", t["closed"], activation=act, width=h, seeds=S, dtype="float64",
                       per_seed_s=t["closed"]["run_s"] / S, note="compile_s 0: shared (see compile_closed)")
            if not args.no_solver:
                rep.record("ode_solver", t["solver"], activation=act, width=h, seeds=S, dtype="float64",
                           max_rel_gram_gap_vs_closed_form=gap, note="compile_s 0: shared (see compile_solver)")

    # ---------------------------------------------------------------- tables and summary
    run = lambda c, n: c[n]["run_s"] if c.get(n) else 0.0  # noqa: E731
    rows = [(c["activation"], c["width"], run(c, "A"), run(c, "B") if SB else None, run(c, "closed"),
             run(c, "solver") if not args.no_solver else None, c["gap"], c["A"]["compile_s"],
             (run(c, "A") + run(c, "B")) / run(c, "closed")) for c in cells]
    print()
    print(C.table(["act", "h", f"train A ({S})", f"train B ({SB})", f"closed form ({S})", f"ODE solver ({S})",
                   "Gram gap", "A compile", "(A+B)/closed"], rows,
                  title=f"ode_vs_networks: digits {cfg_rec['digits']}, m={m}, m_eval={cfg_rec['m_eval']}, k={k}, "
                        f"{n_steps} GD steps at lr {lr} (t={config.t_end:g}); seconds, best of {R} (budget "
                        f"{args.budget:g} s); {env['device']}; networks float32, ODE float64"))
    print()
    print(C.table(["act", "setup_s (kernel+chol+eigh)", "setup cold_s"],
                  [(a, v["run_s"], v["run_s"] + v["compile_s"]) for a, v in setups.items()],
                  title="ODE setup, once per activation"))

    tot_A = sum(run(c, "A") for c in cells)
    tot_B = sum(run(c, "B") for c in cells)
    tot_cf = sum(run(c, "closed") for c in cells)
    tot_solver = sum(run(c, "solver") for c in cells)
    tot_setup = sum(v["run_s"] for v in setups.values())
    comp_train = sum(c["A"]["compile_s"] + (c["B"]["compile_s"] if c.get("B") else 0.0) for c in cells)
    comp_ode = compiled["closed"][1] + sum(v["compile_s"] for v in setups.values())
    ode_all = tot_cf + tot_setup
    per_w = {}
    for h in config.widths:
        cs = [c for c in cells if c["width"] == h]
        per_w[h] = {"train_A_s": sum(run(c, "A") for c in cs), "train_B_s": sum(run(c, "B") for c in cs),
                    "closed_form_s": sum(run(c, "closed") for c in cs), "solver_s": sum(run(c, "solver") for c in cs)}
    n_cells = len(cells)
    summary = {
        "speedup": (tot_A + tot_B) / ode_all,
        "setup_included": True,
        "speedup_without_setup": (tot_A + tot_B) / tot_cf,
        "speedup_arm_A_only": tot_A / ode_all,
        "speedup_arm_B_only": tot_B / ode_all if SB else None,
        "speedup_per_network": ((tot_A + tot_B) / (S + SB)) / (ode_all / S),
        "speedup_including_compile": (tot_A + tot_B + comp_train) / (ode_all + comp_ode),
        "speedup_solver_instead_of_closed_form": (tot_A + tot_B) / (tot_solver + tot_setup) if tot_solver else None,
        "solver_over_closed_form": tot_solver / tot_cf if tot_solver else None,
        "max_rel_gram_gap_solver_vs_closed_form": max((c["gap"] for c in cells if c["gap"] is not None), default=None),
        "target": 100.0,
        "total_train_A_s": tot_A, "total_train_B_s": tot_B, "total_closed_form_s": tot_cf,
        "total_setup_s": tot_setup, "total_solver_s": tot_solver, "total_train_compile_s": comp_train,
        "total_ode_compile_s": comp_ode, "networks_A": S * n_cells, "networks_B": SB * n_cells,
        "ode_predictions": S * n_cells, "per_width": per_w, "wall_s": time.perf_counter() - wall0,
    }
    wrows = [(h, v["train_A_s"], v["train_B_s"], v["closed_form_s"], v["solver_s"],
              (v["train_A_s"] + v["train_B_s"]) / v["closed_form_s"]) for h, v in per_w.items()]
    print()
    print(C.table(["h", "train A", "train B", "closed form", "ODE solver", "(A+B)/closed"], wrows,
                  title="cost vs width, summed over activations (seconds): the ODE side is flat in h"))
    print()
    print(f"totals: training A {tot_A:.3g} s ({S * n_cells} networks), B {tot_B:.3g} s ({SB * n_cells} networks); "
          f"ODE side {ode_all:.3g} s = setup {tot_setup:.3g} s + closed form {tot_cf:.3g} s ({S * n_cells} "
          f"predictions); adaptive solver {tot_solver:.3g} s; compile: training {comp_train:.3g} s, ODE side "
          f"{comp_ode:.3g} s")
    print("speedup (training / ODE side): " + ", ".join(
        f"{key} = {val:.3g}" for key, val in summary.items() if key.startswith("speedup") and val is not None))
    rep.final(**summary)


if __name__ == "__main__":
    main()

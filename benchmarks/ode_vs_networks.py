"""Benchmark the esser-mnist sweep: training the networks vs solving the width-independent output ODE.

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
- **ODE, infinite-width kernel**, float64: per activation the NNGP kernel of `[Z; X_eval]` (1800 inputs,
  `infinite_width_kernel`, order `kernel_order`) and its root (`kernel_root`, one eigendecomposition),
  both once; per width the initial outputs of all seeds (`sample_initial_outputs(..., root=...)`) and
  `predict_outputs` vmapped over seeds with the kernel shared (one compilation serves every width and
  activation: the width is a traced scale). The solver's step counts come from an identical, untimed
  `solve` call.
- **profile of the ODE**: the cost of one right-hand side (all seeds) and the predicted solve time
  `(6·steps + 2) × RHS` (Tsit5, FSAL); the run_cell variant that broadcasts the kernel to every seed;
  the kernel root by eigendecomposition vs a jittered Cholesky factor.

Final JSON line: `speedup = total training time / total ODE time` (kernels included), and the
arm-A-only, arm-B-only, kernel-free, per-network and compile-inclusive ratios.

Run: `python benchmarks/ode_vs_networks.py [--quick] [--repeats R] [--json out.jsonl]`.
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
    p.add_argument("--no-step-counts", action="store_true",
                   help="skip the untimed solves that count the solver's steps (--quick skips them too: one compile less)")
    p.add_argument("--budget", type=float, default=3.0,
                   help="stop repeating a measurement once its runs took this many seconds (it always runs once)")
    p.add_argument("--no-profile", action="store_true",
                   help="skip the ODE profile (RHS cost; broadcast K and Cholesky root, which --quick skips too)")
    args = p.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.no_step_counts = True
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
    from ssldyn._compare import predict_outputs, split_joint
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

    # ---------------------------------------------------------------- the ODE side (shared pieces)
    c_h_is_one = config.feature_scale == "1"

    def initial_outputs(keys, root, h):
        """As esser_mnist.run_cell: columns of [R0; R0_eval] ~ N(0, scale K_inf / h)."""
        scale = h if c_h_is_one else jnp.ones_like(h)
        return jax.vmap(lambda kk: ssldyn.sample_initial_outputs(kk, None, k, width=h, root=jnp.sqrt(scale) * root))(keys)

    def ode_inputs(keys, root, K_all, h):
        scale = h if c_h_is_one else jnp.ones_like(h)
        R0_all = initial_outputs(keys, root, h)
        Ki, Kie, _, _ = split_joint(scale * K_all, R0_all[0], m)
        return Ki, Kie, R0_all[:, :m], R0_all[:, m:]

    solve_kw = dict(t1=config.t_end, rtol=config.rtol, atol=config.atol)

    def ode_predict(keys, root, K_all, B, h):
        """All seeds' ODE predictions at one width: sample R(0), then predict_outputs vmapped over seeds."""
        Ki, Kie, R0, R0e = ode_inputs(keys, root, K_all, h)
        ode = jax.vmap(functools.partial(predict_outputs, **solve_kw), in_axes=(None, None, None, 0, 0))
        return ode(B, Ki, Kie, R0, R0e)[1]

    def ode_steps(keys, root, K_all, B, h):
        """The same solves as `predict_outputs` (same options), returning the solver statistics."""
        Ki, Kie, R0, R0e = ode_inputs(keys, root, K_all, h)

        def one(R0, R0e):
            flow = ssldyn.OutputFlow(B, Ki, K_test=Kie)
            traj = ssldyn.solve(flow, (R0, R0e), 0.0, config.t_end, ts=1, rtol=config.rtol, atol=config.atol)
            return traj.stats

        return jax.vmap(one)(R0, R0e)

    def ode_rhs(flow, R0, R0e):
        """One right-hand side of the output ODE for all seeds (the flow, with its kernels, shared)."""
        return jax.vmap(lambda a, b: flow.vector_field(0.0, (a, b)))(R0, R0e)

    def ode_broadcast(keys, root, K_all, B, h):
        """run_cell's variant: the shared kernel broadcast to every seed and vmapped with them."""
        Ki, Kie, R0, R0e = ode_inputs(keys, root, K_all, h)
        ode = jax.vmap(functools.partial(predict_outputs, B, **solve_kw))
        return ode(jnp.broadcast_to(Ki, (S, *Ki.shape)), jnp.broadcast_to(Kie, (S, *Kie.shape)), R0, R0e)[1]

    def train_fn(spec, train):
        def f(p, Z, B, Xe):
            res = ssldyn.train_network(spec, p, Z, B, lr=lr, n_steps=n_steps, train=train)
            return ssldyn.network_apply(spec, res.params, Xe)

        return jax.vmap(f, in_axes=(0, None, None, None))

    A_inputs = jnp.concatenate([P["Z"], P["X_eval"]])
    compiled = {}
    kernels, cells, profile = {}, [], {}
    h_first = jnp.asarray(float(config.widths[0]))

    for act in config.activations:
        # ---- kernel and root, once per activation (as esser_mnist._inf_kernel)
        t0 = time.perf_counter()
        K_all = jax.block_until_ready(ssldyn.infinite_width_kernel(A_inputs, activation=act, order=config.kernel_order))
        k_cold = time.perf_counter() - t0
        tK = C.time_python(lambda: ssldyn.infinite_width_kernel(A_inputs, activation=act, order=config.kernel_order),
                           repeats=R)
        tK["compile_s"] = max(k_cold - tK["run_s"], 0.0)  # first call minus a warm call: tracing/compilation
        # The eigendecomposition is slow and its first run often slower still: always two runs, no budget.
        tRoot = C.time_jit(ssldyn.kernel_root, K_all, repeats=min(R, 2))
        root = tRoot["out"]
        kernels[act] = {"kernel": tK, "root": tRoot, "kernel_cold_s": k_cold}
        rep.record("kernel", tK, activation=act, shape=list(K_all.shape), cold_s=k_cold, dtype="float64")
        rep.record("kernel_root", tRoot, activation=act, method="eigh", dtype="float64")

        keys_cell = {h: jax.random.split(E._cell_key(config, {"id": f"{pname}/{act}/h{h}"}), S + 1)
                     for h in config.widths}
        # ---- compile the ODE once (shapes do not depend on the width or the activation)
        ode_args0 = (jax.random.split(keys_cell[config.widths[0]][S], S), root, K_all, P["B"], h_first)
        for name, fn in (("ode", ode_predict), ("steps", ode_steps), ("inputs", ode_inputs)):
            if name == "steps" and args.no_step_counts:
                continue
            if name not in compiled:
                compiled[name] = C.compile_jit(fn, *(ode_args0[:3] + ode_args0[4:] if name == "inputs" else ode_args0))
        if act == config.activations[0]:
            rep.record("ode_compile", C.Timing(compile_s=compiled["ode"][1], run_s=0.0, runs_s=[]),
                       note="one compilation of the vmapped predict_outputs serves every width and activation",
                       dtype="float64")

        if not args.no_profile:
            # Sampling R(0) for all seeds, then one right-hand side for all seeds (both width independent).
            inputs_args = ode_args0[:3] + ode_args0[4:]
            ts = C.time_compiled(compiled["inputs"][0], *inputs_args, repeats=max(R, 5), compile_s=compiled["inputs"][1])
            Ki, Kie, R0, R0e = ts["out"]
            tr = C.time_jit(ode_rhs, ssldyn.OutputFlow(P["B"], Ki, K_test=Kie), R0, R0e, repeats=max(R, 5))
            profile.setdefault("rhs", {})[act] = tr
            profile.setdefault("sample", {})[act] = ts
            rep.record("ode_sample_inputs", ts, activation=act, seeds=S, dtype="float64",
                       note="R(0) of all seeds from the root, and the scaled kernel blocks")
            rep.record("ode_rhs", tr, activation=act, seeds=S, dtype="float64",
                       note="one right-hand side evaluation for all seeds (width independent)")

        for h in config.widths:
            spec = ssldyn.NetworkSpec(d=d, h=h, k=k, activation=act, feature_scale=config.c_h)
            keys = keys_cell[h]
            p64 = jax.vmap(lambda kk: ssldyn.init_network(kk, spec, dtype=jnp.float64))(keys[:S])
            p32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), p64)
            pB = jax.tree_util.tree_map(lambda a: a[:SB], p32)
            hh = jnp.asarray(float(h))
            ode_args = (jax.random.split(keys[S], S), root, K_all, P["B"], hh)
            # Training arms (compiled per width), interleaved; the ODE (compiled once) in the same rounds.
            jobs = {"A": (train_fn(spec, "last"), (p32, Z32, B32, Xe32))}
            if SB:
                jobs["B"] = (train_fn(spec, "all"), (pB, Z32, B32, Xe32))
            t = C.time_interleaved(jobs, repeats=R, budget_s=args.budget)
            t["ode"] = C.time_compiled(compiled["ode"][0], *ode_args, repeats=R, budget_s=args.budget,
                                       compile_s=0.0)
            steps = rejected = None
            if "steps" in compiled:
                stats = compiled["steps"][0](*ode_args)
                steps = int(np.max(np.asarray(stats["num_steps"])))
                rejected = int(np.max(np.asarray(stats["num_rejected_steps"])))
            R_ode = np.asarray(t["ode"]["out"])
            if not np.all(np.isfinite(R_ode)):
                raise RuntimeError(f"non-finite ODE prediction at {act}, h={h}")
            cell = {"activation": act, "width": h, "train_A": t["A"], "train_B": t.get("B"), "ode": t["ode"],
                    "steps": steps, "rejected": rejected}
            cells.append(cell)
            rep.record("train_A", t["A"], activation=act, width=h, seeds=S, steps=n_steps, dtype="float32",
                       per_network_s=t["A"]["run_s"] / S)
            if SB:
                rep.record("train_B", t["B"], activation=act, width=h, seeds=SB, steps=n_steps, dtype="float32",
                           per_network_s=t["B"]["run_s"] / SB)
            rep.record("ode_solve", t["ode"], activation=act, width=h, seeds=S, steps=steps, rejected_steps=rejected,
                       per_seed_s=t["ode"]["run_s"] / S, dtype="float64",
                       note="compile_s 0: the compilation is shared (see ode_compile)")

    # ---------------------------------------------------------------- profile: run_cell variant, Cholesky root
    if not (args.no_profile or args.quick):
        act = config.activations[0]
        h = config.widths[len(config.widths) // 2]
        K_all = ssldyn.infinite_width_kernel(A_inputs, activation=act, order=config.kernel_order)
        root = kernels[act]["root"]["out"]
        keys = jax.random.split(E._cell_key(config, {"id": f"{pname}/{act}/h{h}"}), S + 1)
        ode_args = (jax.random.split(keys[S], S), root, K_all, P["B"], jnp.asarray(float(h)))
        tt = C.time_interleaved({"shared": (ode_predict, ode_args), "broadcast": (ode_broadcast, ode_args)},
                                repeats=R, budget_s=args.budget)
        gap = float(np.max(np.abs(np.asarray(tt["shared"]["out"]) - np.asarray(tt["broadcast"]["out"]))))
        profile["broadcast"] = {"activation": act, "width": h, **tt}
        rep.record("ode_shared_K", tt["shared"], activation=act, width=h, dtype="float64")
        rep.record("ode_broadcast_K_as_run_cell", tt["broadcast"], activation=act, width=h, dtype="float64",
                   max_abs_diff_vs_shared=gap)
        # Root by eigendecomposition vs a Cholesky factor of K + eps·I (K is singular: the anchors are also
        # evaluation inputs, so [Z; X_eval] has repeated rows).
        eps = 1e-10 * float(jnp.trace(K_all)) / K_all.shape[0]
        tch = C.time_jit(lambda K: jnp.linalg.cholesky(K + eps * jnp.eye(K.shape[0], dtype=K.dtype)), K_all,
                         repeats=R, budget_s=args.budget)
        chol_ok = bool(np.all(np.isfinite(np.asarray(tch["out"]))))
        n_zero = int(np.sum(np.abs(np.asarray(jnp.linalg.norm(root, axis=0))) < 1e-6 * float(jnp.max(jnp.abs(root)))))
        profile["root"] = {"activation": act, "eigh": kernels[act]["root"], "cholesky": tch, "cholesky_finite": chol_ok}
        rep.record("root_cholesky_jitter", tch, activation=act, dtype="float64", jitter=eps, finite=chol_ok,
                   eigh_run_s=kernels[act]["root"]["run_s"], zero_columns_of_eigh_root=n_zero,
                   note="compare with kernel_root (eigh) of the same kernel; K is singular (repeated inputs)")

    # ---------------------------------------------------------------- tables and summary
    rows = []
    for c in cells:
        tA, tB, tO = c["train_A"], c["train_B"], c["ode"]
        train = tA["run_s"] + (tB["run_s"] if tB else 0.0)
        rows.append((c["activation"], c["width"], tA["run_s"], tB["run_s"] if tB else None, tO["run_s"],
                     c["steps"], tO["run_s"] / c["steps"] if c["steps"] else None, tA["compile_s"],
                     tB["compile_s"] if tB else None, train / tO["run_s"], tA["run_s"] / tO["run_s"]))
    print()
    print(C.table(["act", "h", f"train A ({S})", f"train B ({SB})", f"ODE ({S})", "ODE steps", "ODE s/step",
                   "A compile", "B compile", "(A+B)/ODE", "A/ODE"], rows,
                  title=f"ode_vs_networks: digits {cfg_rec['digits']}, m={m}, m_eval={cfg_rec['m_eval']}, k={k}, "
                        f"{n_steps} GD steps at lr {lr} (t={config.t_end:g}); seconds, best of {R} (budget "
                        f"{args.budget:g} s); {env['device']}; networks float32, ODE float64"))
    krows = []
    for act, kv in kernels.items():
        rhs = profile.get("rhs", {}).get(act)
        acells = [c for c in cells if c["activation"] == act]
        samp = profile.get("sample", {}).get(act)
        pred = [(6 * c["steps"] + 2) * rhs["run_s"] + samp["run_s"] for c in acells] \
            if rhs and all(c["steps"] is not None for c in acells) else None
        meas = [c["ode"]["run_s"] for c in acells]
        krows.append((act, kv["kernel"]["run_s"], kv["kernel_cold_s"], kv["root"]["run_s"], kv["root"]["compile_s"],
                      rhs["run_s"] if rhs else None,
                      float(np.sum(pred) / np.sum(meas)) if pred else None))
    print()
    print(C.table(["act", "kernel_s", "kernel cold_s", "root(eigh)_s", "root compile_s", "RHS_s (all seeds)",
                   "(6 steps+2) RHS + sampling / ODE"], krows,
                  title=f"once per activation: NNGP kernel of {A_inputs.shape[0]} inputs and its root; ODE compile "
                        f"{compiled['ode'][1]:.3g} s (once)"))

    tot_A = sum(c["train_A"]["run_s"] for c in cells)
    tot_B = sum(c["train_B"]["run_s"] for c in cells if c["train_B"])
    tot_ode = sum(c["ode"]["run_s"] for c in cells)
    tot_kern = sum(kv["kernel"]["run_s"] + kv["root"]["run_s"] for kv in kernels.values())
    comp_train = sum(c["train_A"]["compile_s"] + (c["train_B"]["compile_s"] if c["train_B"] else 0.0) for c in cells)
    comp_ode = compiled["ode"][1] + sum(kv["root"]["compile_s"] + kv["kernel"]["compile_s"] for kv in kernels.values())
    ode_all = tot_ode + tot_kern
    per_w = {}
    for h in config.widths:
        cs = [c for c in cells if c["width"] == h]
        per_w[h] = {"train_A_s": sum(c["train_A"]["run_s"] for c in cs),
                    "train_B_s": sum(c["train_B"]["run_s"] for c in cs if c["train_B"]),
                    "ode_s": sum(c["ode"]["run_s"] for c in cs), "ode_steps": [c["steps"] for c in cs]}
    n_cells = len(cells)
    summary = {
        "speedup": (tot_A + tot_B) / ode_all,
        "kernels_included": True,
        "speedup_without_kernels": (tot_A + tot_B) / tot_ode,
        "speedup_arm_A_only": tot_A / ode_all,
        "speedup_arm_A_only_without_kernels": tot_A / tot_ode,
        "speedup_arm_B_only": tot_B / ode_all if SB else None,
        "speedup_arm_B_only_without_kernels": tot_B / tot_ode if SB else None,
        "speedup_arm_B_per_network": (tot_B / SB) / (ode_all / S) if SB else None,
        "speedup_including_compile": (tot_A + tot_B + comp_train) / (ode_all + comp_ode),
        "target": 100.0,
        "total_train_A_s": tot_A, "total_train_B_s": tot_B, "total_ode_solve_s": tot_ode,
        "total_kernels_s": tot_kern, "total_train_compile_s": comp_train, "total_ode_compile_s": comp_ode,
        "networks_A": S * n_cells, "networks_B": SB * n_cells, "ode_solves": S * n_cells,
        "per_width": per_w, "wall_s": time.perf_counter() - wall0,
    }
    wrows = [(h, v["train_A_s"], v["train_B_s"], v["ode_s"], "/".join("-" if x is None else str(x) for x in v["ode_steps"]),
              (v["train_A_s"] + v["train_B_s"]) / v["ode_s"]) for h, v in per_w.items()]
    print()
    print(C.table(["h", "train A", "train B", "ODE", "ODE steps (" + "/".join(config.activations) + ")", "(A+B)/ODE"],
                  wrows, title="cost vs width, summed over activations (seconds)"))
    if "broadcast" in profile:
        b = profile["broadcast"]
        summary["ode_broadcast_K_over_shared_K"] = b["broadcast"]["run_s"] / b["shared"]["run_s"]
    if "root" in profile:
        summary["root_eigh_over_cholesky"] = profile["root"]["eigh"]["run_s"] / profile["root"]["cholesky"]["run_s"]
    print()
    print(f"totals: training A {tot_A:.3g} s ({S * n_cells} networks), B {tot_B:.3g} s ({SB * n_cells} networks); "
          f"ODE solves {tot_ode:.3g} s ({S * n_cells} solves) + kernels {tot_kern:.3g} s; compile: training "
          f"{comp_train:.3g} s, ODE side {comp_ode:.3g} s")
    print("speedup (training / ODE): " + ", ".join(
        f"{key} = {val:.3g}" for key, val in summary.items() if key.startswith("speedup") and val is not None))
    for key in ("ode_broadcast_K_over_shared_K", "root_eigh_over_cholesky"):
        if key in summary:
            print(f"{key} = {summary[key]:.3g}")
    rep.final(**summary)


if __name__ == "__main__":
    main()

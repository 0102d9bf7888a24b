"""Benchmark the esser-mnist sweep: training the networks vs the width-independent output ODE.

Sweep (the main job's, `ssldyn.experiments.esser_mnist.Config`): digits 0 vs 1, 200 training images
per class (m = 3n = 1200 stacked views, 600 evaluation inputs), k = 5, activations sigmoid / relu /
tanh, widths 10…1000 (7, log-spaced), 10 seeds in every arm; GD lr 0.01 for 100 steps (t = 1);
feature scale c_h = 1.

**One code path with the main job.** Each cell is the main job's own sweep cell
(`esser_mnist._run_sweep`), which times every program it runs (jitted as the outermost function,
compiled once per shape with the compile timed separately, `block_until_ready`, data on the device
first), and the ratio is the main job's `esser_mnist.speed_summary`, so this script and
`ssldyn run esser-mnist` report the same numbers. What is timed:

- **training**, per activation and width, all seeds of a cell vmapped in one float32 program: arm A
  (`train_network(..., train="last")`, V frozen) and arm B (`train="all"`), each followed by
  `network_apply` on the 600 evaluation inputs;
- **ODE side, infinite width**, float64: once per activation the NNGP kernel of the 1400 distinct
  inputs and its factorisations (Cholesky factor and `OutputSolution`, one eigendecomposition); per
  width the closed-form predictions of all seeds (one compilation serves every width: the width is a
  traced scale);
- **ODE side, empirical kernel**: each network's features and `S = ΦᵀBΦ`, and the adaptive solve
  (Tsit5, rtol 1e-6) of the output ODE from the network's own R(0) through its weights (`R = ΦW`,
  Oja's flow in the eigenbasis of S: one (h, h) eigendecomposition per network), vmapped over seeds.

The sweep runs `--repeats` times in one process; every run time is the best over the repeats (the
first repeat compiles). XLA compilations are counted process-wide with `jax.monitoring`.

Final JSON line: `speed_summary`'s fields (`speedup` = training / infinite-width ODE side, compile
excluded; `speedup_with_compile`; `speedup_without_setup`; `speedup_empirical_vs_arm_A`; the seconds
of each part; the numbers of networks) plus the compile counts and the wall time.

Run: `python benchmarks/ode_vs_networks.py [--quick] [--repeats R] [--json out.jsonl]`.
"""

from __future__ import annotations

import time

import _common as C  # noqa: I001  (adds the repository root to sys.path)


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], float32_flag=False, repeats=2)
    p.add_argument("--widths", type=int, nargs="+", default=None, help="default: the main job's 10 … 1000")
    p.add_argument("--activations", nargs="+", default=None, help="default: sigmoid relu tanh")
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell in every arm (default 10; quick 3)")
    p.add_argument("--arm-b-seeds", type=int, default=None, help="seeds of arm B (default: all seeds)")
    p.add_argument("--n-per-class", type=int, default=None, help="training images per class (default 200)")
    p.add_argument("--steps", type=int, default=100, help="GD steps (t = lr × steps)")
    p.add_argument("--lr", type=float, default=0.01)
    args = p.parse_args()
    if args.quick:  # the main job's --quick grid (one pair, two activations, three widths, 3 seeds)
        args.repeats = min(args.repeats, 2)
        defaults = dict(widths=[10, 100, 1000], activations=["relu", "tanh"], seeds=3)
    else:
        defaults = {}
    for name, val in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, val)
    return args


def make_config(args):
    from ssldyn.experiments.esser_mnist import Config

    over = dict(digit_pairs=((0, 1),), lr=args.lr, epochs=args.steps, check_data="")
    for field, val in (("widths", args.widths), ("activations", args.activations), ("n_seeds", args.seeds),
                       ("arm_b_seeds", args.arm_b_seeds), ("n_per_class", args.n_per_class)):
        if val is not None:
            over[field] = tuple(val) if isinstance(val, list) else val
    return Config(**over)


TIMINGS = ("train_A_seconds", "train_B_seconds", "kernel_empirical_seconds", "ode_empirical_seconds",
           "ode_infinite_seconds", "kernel_infinite_seconds_once", "setup_infinite_seconds_once")


def float32_ode_side(config, ctx, E, rep) -> dict:
    """The infinite-width ODE side in float32: kernel cast from float64, Cholesky factor, OutputSolution
    and closed-form predictions of every width and seed in float32, timed (compiled, best of 3) against
    the same float64 path; error = max relative Gram gap of the evaluation representations over
    widths, seeds and activations against float64 (`ssldyn.gram_gap`)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import ssldyn

    pname = E._pair_name(config.digit_pairs[0])
    P = ctx["pairs"][pname]
    m, k, S = P["Z"].shape[0], config.k, config.n_seeds
    inputs = ctx["inputs"][pname]
    eval_rows = ctx["kernels"][(pname, config.activations[0])][0][2]
    worst, t64, t32, refused, per_act = 0.0, 0.0, 0.0, {}, {}
    for act in config.activations:
        K_u = ssldyn.infinite_width_kernel(inputs, activation=act, order=config.kernel_order)
        outs, times_act = {}, {}
        for dtype in (jnp.float64, jnp.float32):
            def side(K_u, B, Z0, hs, dtype=dtype):  # factorisations + predictions of every width and seed
                sol, L_u, rows = E._solution_machinery(K_u.astype(dtype), B.astype(dtype), eval_rows, m=m, n=P["n"])

                def one(h, z):  # as E._inf_over_time at one time, with the standard normals z given
                    sc = h if config.feature_scale == "1" else jnp.ones_like(h)
                    R0_u = jnp.sqrt(sc) * (L_u @ z.astype(dtype)) / jnp.sqrt(h)
                    return sol(config.t_end, R0_u[:m], R0_u[rows], scale=sc)[1]

                return jax.vmap(lambda h: jax.vmap(lambda z: one(h, z))(Z0))(hs)

            # the same standard normals for both precisions (float32 draws from a key differ from float64 ones)
            Z0 = jax.random.normal(jax.random.PRNGKey(0), (S, K_u.shape[0], k), jnp.float64)
            hs = jnp.asarray([float(h) for h in config.widths], dtype)
            args = (K_u, P["B"], Z0, hs)
            fn = jax.jit(side).lower(*args).compile()
            try:
                outs[dtype] = jax.block_until_ready(fn(*args))
            except Exception as err:  # e.g. the closed form's own check: N(t) numerically singular in float32
                lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
                # the closed form's own message (an equinox runtime error) sits below the callback's traceback
                msg = next((ln for ln in lines if "OutputSolution" in ln or "singular" in ln), lines[0] if lines else "")
                msg = msg.split("RuntimeError: ")[-1][:200]
                print(f"float32 ODE side refused ({act}, {jnp.dtype(dtype).name}): {msg}")
                rep.record("ode_side_precision", failed=True, activation=act, error=msg)
                refused[act] = msg
                break
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(*args))
                times.append(time.perf_counter() - t0)
            times_act[dtype] = min(times)
        if act in refused:
            continue  # the timing sums below compare the activations both precisions could solve
        t64, t32 = t64 + times_act[jnp.float64], t32 + times_act[jnp.float32]
        gaps = jax.vmap(jax.vmap(ssldyn.gram_gap))(outs[jnp.float32].astype(jnp.float64), outs[jnp.float64])
        per_act[act] = float(np.max(np.asarray(gaps)))
        worst = max(worst, per_act[act])
    rep.record("ode_side_precision", float32_s=t32, float64_s=t64, max_rel_gram_gap_float32=worst,
               per_activation=per_act, refused=refused,
               note="factorisations + closed form of every width and seed, per activation, summed over the "
                    "activations both precisions solve")
    print(f"ODE side (factorisations + closed form, all widths and seeds) in float32: {t32:.3g} s vs float64 "
          f"{t64:.3g} s; max relative Gram gap float32 vs float64 {worst:.1e} "
          f"({', '.join(f'{a} {g:.1e}' for a, g in per_act.items())})"
          + (f"; refused in float32: {', '.join(refused)}" if refused else ""))
    out = {"ode_side_float32_s": t32, "ode_side_float64_s": t64, "ode_side_float32_max_rel_gram_gap": worst}
    if refused:
        out["ode_side_float32_refused"] = "; ".join(f"{a}: {m_}" for a, m_ in refused.items())
    return out


def factorisation_reduction(config, ctx, E, rep) -> dict:
    """The infinite-width setup (Cholesky factor of the kernel of the distinct inputs + `OutputSolution`) with
    B's block structure (`OutputSolution(pair=...)`: the thin factor `pair_factor` gives a (2n, 2n)
    eigenproblem, B's products are block-wise sums) against the same with a dense B ((m, m), m = 3n),
    compiled, best of 3 each, per activation, in one run; and the largest relative Gram gap of the
    predictions of both at the protocol time (every width, the same sampled R(0))."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import ssldyn

    pname = E._pair_name(config.digit_pairs[0])
    P = ctx["pairs"][pname]
    m, k = P["Z"].shape[0], config.k
    inputs = ctx["inputs"][pname]
    eval_rows = ctx["kernels"][(pname, config.activations[0])][0][2]

    def full(K_u, B, rows):
        L_u = ssldyn.kernel_root(K_u, method="cholesky", jitter=1e-10)
        return ssldyn.OutputSolution(B, root=L_u[:m, :m], K_eval=K_u[rows, :m], renormalise=False), L_u

    def reduced(K_u, B, rows):
        return E._solution_machinery(K_u, B, rows, m=m, n=P["n"])[:2]

    best, worst = {"full": 0.0, "reduced": 0.0}, 0.0
    q = int(ssldyn.pair_factor(P["n"], "contrastive")[1].shape[0])
    for act in config.activations:
        K_u = ssldyn.infinite_width_kernel(inputs, activation=act, order=config.kernel_order)
        sols = {}
        for name, fn, args in (("full", full, (K_u, P["B"], eval_rows)),
                               ("reduced", reduced, (K_u, P["B"], eval_rows))):
            compiled = jax.jit(fn).lower(*args).compile()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                sols[name] = jax.block_until_ready(compiled(*args))
                times.append(time.perf_counter() - t0)
            best[name] += min(times)
        L_u = sols["full"][1]
        for h in config.widths:
            R0_u = ssldyn.sample_initial_outputs(jax.random.PRNGKey(h), None, k, width=h, root=jnp.sqrt(h) * L_u)
            a, b = (sols[nm][0](config.t_end, R0_u[:m], R0_u[eval_rows], scale=float(h))[1] for nm in ("full", "reduced"))
            worst = max(worst, float(np.asarray(ssldyn.gram_gap(b, a))))
    ratio = best["full"] / best["reduced"]
    rep.record("factorisation_reduction", full_s=best["full"], reduced_s=best["reduced"], speedup=ratio,
               max_rel_gram_gap=worst, m=m, q=q)
    print(f"infinite-width setup with B's block structure (thin factor: {q} of {m} modes): "
          f"{best['reduced']:.3g} s vs {best['full']:.3g} s without ({ratio:.2f}x); max relative Gram gap {worst:.1e}")
    return {"setup_reduced_s": best["reduced"], "setup_full_s": best["full"], "setup_reduction_speedup": ratio,
            "setup_reduction_max_rel_gram_gap": worst}


def main():
    args = parse_args()
    C.setup_precision(False)  # float64 available: the ODE runs in float64, the networks in float32
    from ssldyn.experiments._profiling import COMPILES
    from ssldyn.experiments import esser_mnist as E

    env = C.environment()
    wall0, c0 = time.perf_counter(), COMPILES.snapshot()
    config = make_config(args)
    ctx = E.prepare(config)
    cells = [c for c in E.cells(config) if c["kind"] == "sweep"]
    P = ctx["pairs"][E._pair_name(config.digit_pairs[0])]
    m, d, k, S, SB = P["Z"].shape[0], P["Z"].shape[1], config.k, config.n_seeds, config.b_seeds
    cfg_rec = {"digits": list(config.digit_pairs[0]), "n_per_class": config.n_per_class, "m": m,
               "m_eval": int(P["X_eval"].shape[0]), "d": d, "k": k, "widths": list(config.widths),
               "activations": list(config.activations), "seeds": S, "arm_b_seeds": SB, "lr": config.lr,
               "steps": config.epochs, "t_end": config.t_end, "feature_scale": config.feature_scale,
               "kernel_order": config.kernel_order, "ode_rtol": config.rtol, "ode_atol": config.atol,
               "network_dtype": "float32", "ode_dtype": "float64"}
    rep = C.Reporter("ode_vs_networks", env, "float32 networks / float64 ODE", args, cfg_rec)

    best, compiles = {}, []
    for r in range(max(args.repeats, 1)):
        if r:
            ctx["kernels"].clear()  # time the once-per-activation kernels and factorisations again (compiled),
            ctx.pop("inf_sweep", None)  # and the closed form of all widths of each activation
        c_rep = COMPILES.snapshot()
        for cell in cells:
            rec = E._run_sweep(config, ctx, cell)[0]  # seed 0 carries the cell's timings
            old = best.get(cell["id"])
            best[cell["id"]] = rec if old is None else {
                **old, **{f: min(old[f], rec[f]) for f in TIMINGS}}  # compile fields: from the first repeat
        compiles.append(COMPILES.since(c_rep))
    records = list(best.values())
    summary = E.speed_summary(records)

    for rec in records:
        rep.record("cell", activation=rec["activation"], width=rec["width"], seeds=S, arm_b_seeds=SB,
                   **{f: rec[f] for f in TIMINGS + ("train_A_compile_seconds", "train_B_compile_seconds",
                                                    "ode_empirical_compile_seconds", "ode_infinite_compile_seconds")})
    rows = [(r["activation"], r["width"], r["train_A_seconds"], r["train_B_seconds"], r["kernel_empirical_seconds"],
             r["ode_empirical_seconds"], r["ode_infinite_seconds"],
             (r["train_A_seconds"] + r["train_B_seconds"]) / r["ode_infinite_seconds"]) for r in records]
    print()
    print(C.table(["act", "h", f"train A ({S})", f"train B ({SB})", f"emp. kernels ({S})", f"emp. ODE ({S})",
                   f"closed form ({S})", "(A+B)/closed"], rows,
                  title=f"ode_vs_networks: digits {cfg_rec['digits']}, m={m}, m_eval={cfg_rec['m_eval']}, k={k}, "
                        f"{config.epochs} GD steps at lr {config.lr} (t={config.t_end:g}); seconds per cell, best of "
                        f"{args.repeats}; {env['device']}; networks float32, ODE float64"))
    print()
    for name, (n, sec) in zip(("first repeat", *(f"repeat {i + 1}" for i in range(1, len(compiles)))), compiles):
        print(f"XLA compilations, {name}: {n} programs, {sec:.1f} s")
    precision = float32_ode_side(config, ctx, E, rep)
    precision.update(factorisation_reduction(config, ctx, E, rep))
    n_all, s_all = COMPILES.since(c0)
    summary.update(**precision, compiles_total=n_all, compile_seconds_total=s_all, compiles_first_repeat=compiles[0][0],
                   compiles_later_repeats=sum(n for n, _ in compiles[1:]), target=100.0,
                   wall_s=time.perf_counter() - wall0)
    print("speed_summary (the main job's claim uses the same function): " + ", ".join(
        f"{key} = {val:.3g}" for key, val in summary.items() if isinstance(val, float)))
    rep.final(**summary)


if __name__ == "__main__":
    main()

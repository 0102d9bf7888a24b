"""Benchmark how the output-space ODE's cost scales with the number of anchors n, the output
dimension k and the network width h (the state is m × k, m = 3n, whatever the width).

Problem: n real MNIST digits (embedded MNIST) with positives and negatives from `make_views`
(default augmentation), stacked as `Z = [X; X₊; X₋]` (m = 3n inputs, d = 784), contrastive pair
matrix `B = pair_matrix(n)`, the infinite-width ReLU kernel `K_∞ = relu_kernel(Z)` and initial
outputs `R(0) = L z · sqrt(c_h²)` with `L Lᵀ = K_∞` (a Cholesky factor, set-up, not timed) and a
fixed Gaussian `z` (m, k). The flow is the constrained `OutputFlow(B, h c_h² K_∞)` solved from 0 to
t = 1 (the main job's horizon) with Tsit5 at rtol 1e-6, atol 1e-8 (the main job's tolerances).

Sweeps (each point jitted as the outermost function; one compilation per shape, timed separately;
best of `--repeats` runs, the points of a sweep interleaved):

- **n** (anchors) at k = 5, h = 100, c_h = 1: solve time, steps, time per step and the cost of one
  right-hand side (O(m² k); timed as 20 dependent evaluations in one program); the fitted exponent of time per step against m.
- **k** (output dimension) at the base n, h = 100, c_h = 1.
- **h** (width) at the base n and k = 5, where only the kernel's scale changes (one compilation serves
  every width, which is a traced argument): with c_h = 1 (the main job's model, `K = h K_∞`,
  `R(0) ~ N(0, K_∞)`: rates grow ∝ h, so the solver needs more steps) and with c_h = 1/√h
  (`K = K_∞`, `R(0) ~ N(0, K_∞/h)`). The cost of a step is width independent in both.

Run: `python benchmarks/scaling.py [--quick] [--repeats R] [--json out.jsonl]`.
"""

from __future__ import annotations

import time

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import jax
import jax.numpy as jnp
import numpy as np


RHS_LOOP = 20  # right-hand sides per timed call of the RHS measurement


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--ns", type=int, nargs="+", default=None, help="anchors (default 50 … 800; quick 50 100 200)")
    p.add_argument("--ks", type=int, nargs="+", default=None, help="output dimensions (default 1 2 5 10 20; quick 1 5 20)")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="widths h (default 10 100 1000 10000; quick 10 100 1000)")
    p.add_argument("--base-n", type=int, default=None, help="n of the k and width sweeps (default 200; quick 100)")
    p.add_argument("--base-k", type=int, default=5)
    p.add_argument("--base-h", type=int, default=100)
    p.add_argument("--t1", type=float, default=1.0)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--atol", type=float, default=1e-8)
    p.add_argument("--budget", type=float, default=3.0,
                   help="stop repeating a measurement once its runs took this many seconds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    quick = args.quick
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.budget = min(args.budget, 1.0)
    for name, full, small in (("ns", [50, 100, 200, 400, 800], [50, 100, 200]), ("ks", [1, 2, 5, 10, 20], [1, 5, 20]),
                              ("widths", [10, 100, 1000, 10000], [10, 100, 1000]), ("base_n", 200, 100)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    return args


def make_data(n: int, k_max: int, seed: int):
    """B, K_∞ and L z (the unscaled initial outputs) for n anchors; NumPy/closed-form set-up, untimed."""
    import ssldyn

    X_all, _ = ssldyn.data.load_embedded_mnist()
    key = jax.random.PRNGKey(seed)
    k_sub, k_views, k_z = jax.random.split(key, 3)
    idx = np.asarray(jax.random.permutation(k_sub, X_all.shape[0])[:n])
    X = jnp.asarray(X_all[idx], jnp.float64)
    views = ssldyn.data.make_views(k_views, X)
    Z = ssldyn.stack_views(views.anchors, views.positives, views.negatives)
    K = np.asarray(ssldyn.relu_kernel(Z), np.float64)
    K = 0.5 * (K + K.T)
    jitter = 1e-10 * np.trace(K) / K.shape[0]
    L = np.linalg.cholesky(K + jitter * np.eye(K.shape[0]))
    z = np.asarray(jax.random.normal(k_z, (K.shape[0], k_max), jnp.float64))
    B = ssldyn.pair_matrix(n, dtype=jnp.float64)
    return jax.block_until_ready((B, jnp.asarray(K), jnp.asarray(L @ z)))


def fit_exponent(xs, ys):
    if len(xs) < 2:
        return None
    return float(np.polyfit(np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float)), 1)[0])


def main():
    args = parse_args()
    dtype_name = C.setup_precision(False)
    import ssldyn

    env = C.environment()
    wall0 = time.perf_counter()
    R = args.repeats
    config = {"ns": args.ns, "ks": args.ks, "widths": args.widths, "base_n": args.base_n, "base_k": args.base_k,
              "base_h": args.base_h, "t1": args.t1, "rtol": args.rtol, "atol": args.atol, "budget_s": args.budget,
              "flow": "constrained OutputFlow(B, h c_h^2 K_inf), relu NNGP kernel, Tsit5",
              "data": "embedded MNIST, make_views default augmentation, m = 3n stacked views, d = 784"}
    rep = C.Reporter("scaling", env, dtype_name, args, config)
    tol = (jnp.asarray(args.rtol), jnp.asarray(args.atol), jnp.asarray(args.t1))

    def ode(B, K, R0, kscale, rtol, atol, t1):
        flow = ssldyn.OutputFlow(B, kscale * K)
        traj = ssldyn.solve(flow, R0, 0.0, t1, ts=1, rtol=rtol, atol=atol)
        return traj.ys[-1], traj.stats["num_steps"], traj.status

    def rhs(flow, R):
        """RHS_LOOP dependent evaluations in one program (per-call dispatch amortised): Euler steps of 1e-9."""
        return jax.lax.fori_loop(0, RHS_LOOP, lambda i, R: R + 1e-9 * flow.vector_field(0.0, R), R)

    data = {n: make_data(n, max(max(args.ks), args.base_k), args.seed) for n in sorted(set(args.ns) | {args.base_n})}
    compiled = {}  # (n, k) -> (compiled ode, compile_s, compiled rhs, rhs compile_s)

    def get(n, k):
        if (n, k) not in compiled:
            B, K, Lz = data[n]
            a = (B, K, Lz[:, :k], jnp.asarray(1.0), *tol)
            c, cs = C.compile_jit(ode, *a)
            flow = ssldyn.OutputFlow(B, K)
            cr, crs = C.compile_jit(rhs, flow, Lz[:, :k])
            compiled[(n, k)] = (c, cs, cr, crs)
        return compiled[(n, k)]

    def sweep(points):
        """points: {name: (n, k, kscale, r0scale)} -> timings of the solve and of one RHS."""
        jobs, first = {}, set()
        for name, (n, k, ks, r0s) in points.items():
            B, K, Lz = data[n]
            c, cs, cr, crs = get(n, k)
            new = (n, k) not in first
            first.add((n, k))
            jobs[name] = (c, (B, K, r0s * Lz[:, :k], jnp.asarray(float(ks)), *tol), cs if new else 0.0)
            jobs[name + "/rhs"] = (cr, (ssldyn.OutputFlow(B, ks * K), r0s * Lz[:, :k]), crs if new else 0.0)
        return C.run_interleaved(jobs, R, budget_s=args.budget)

    results = []

    def collect(kind, points, t):
        for name, (n, k, ks, r0s) in points.items():
            tm, tr = t[name], t[name + "/rhs"]
            _, steps, status = tm["out"]
            steps, status = int(steps), int(status)
            if status != 0:
                raise RuntimeError(f"solve failed at {name}: status {status}")
            res = {"sweep": kind, "point": name, "n": n, "m": 3 * n, "k": k, "kernel_scale": ks, "r0_scale": r0s,
                   "steps": steps, "run_s": tm["run_s"], "compile_s": tm["compile_s"], "per_step_s": tm["run_s"] / steps,
                   "rhs_s": tr["run_s"] / RHS_LOOP, "rhs_share": 6 * steps * tr["run_s"] / RHS_LOOP / tm["run_s"]}
            res.update(points_meta.get(name, {}))
            results.append(res)
            rep.record(f"{kind}_solve", tm, **{k_: v for k_, v in res.items() if k_ not in ("run_s", "compile_s")},
                       rhs_loop_runs_s=tr["runs_s"], rhs_loop_length=RHS_LOOP, rhs_compile_s=tr["compile_s"])

    points_meta = {}
    h0 = float(args.base_h)
    # ---- n sweep
    pts = {f"n={n}": (n, args.base_k, h0, 1.0) for n in args.ns}
    collect("n", pts, sweep(pts))
    # ---- k sweep
    pts = {f"k={k}": (args.base_n, k, h0, 1.0) for k in args.ks}
    collect("k", pts, sweep(pts))
    # ---- width sweep: both parametrisations in one interleaved sweep (one compilation)
    pts = {}
    for h in args.widths:
        pts[f"h={h},c_h=1"] = (args.base_n, args.base_k, float(h), 1.0)
        points_meta[f"h={h},c_h=1"] = {"width": h, "feature_scale": "1"}
        pts[f"h={h},c_h=1/sqrt(h)"] = (args.base_n, args.base_k, 1.0, 1.0 / np.sqrt(h))
        points_meta[f"h={h},c_h=1/sqrt(h)"] = {"width": h, "feature_scale": "1/sqrt(h)"}
    collect("width", pts, sweep(pts))
    width_programs = len({(n, k) for n, k, _, _ in pts.values()})  # widths are arguments, not shapes: 1

    # ---- tables and summary
    def rows_of(kind):
        return [r for r in results if r["sweep"] == kind]

    nrows = rows_of("n")
    base_n = nrows[0]
    print()
    print(C.table(["n", "m", "compile_s", "solve_s", "steps", "s/step", "RHS_s", "6*steps*RHS/solve",
                   "solve/solve(n0)", "(m/m0)^2"],
                  [(r["n"], r["m"], r["compile_s"], r["run_s"], r["steps"], r["per_step_s"], r["rhs_s"], r["rhs_share"],
                    r["run_s"] / base_n["run_s"], (r["m"] / base_n["m"]) ** 2) for r in nrows],
                  title=f"scaling in n: k={args.base_k}, h={args.base_h}, c_h=1, t1={args.t1:g}, rtol={args.rtol:g}; "
                        f"{env['device']}, {dtype_name}; best of {R}"))
    krows = rows_of("k")
    base_k = krows[0]
    print()
    print(C.table(["k", "compile_s", "solve_s", "steps", "s/step", "RHS_s", "solve/solve(k0)", "s/step / s/step(k0)"],
                  [(r["k"], r["compile_s"], r["run_s"], r["steps"], r["per_step_s"], r["rhs_s"],
                    r["run_s"] / base_k["run_s"], r["per_step_s"] / base_k["per_step_s"]) for r in krows],
                  title=f"scaling in k: n={args.base_n} (m={3 * args.base_n}), h={args.base_h}, c_h=1"))
    wrows = rows_of("width")
    print()
    wtab = []
    for fs in ("1", "1/sqrt(h)"):
        rs = [r for r in wrows if r["feature_scale"] == fs]
        for r in rs:
            wtab.append((fs, r["width"], r["run_s"], r["steps"], r["per_step_s"], r["rhs_s"],
                         r["run_s"] / rs[0]["run_s"], r["per_step_s"] / rs[0]["per_step_s"]))
    print(C.table(["c_h", "h", "solve_s", "steps", "s/step", "RHS_s", "solve/solve(h0)", "s/step / s/step(h0)"], wtab,
                  title=f"scaling in width: n={args.base_n}, k={args.base_k}; one compilation for all widths "
                        f"(state {3 * args.base_n} x {args.base_k} at every width)"))

    def spread(rs, key):
        vals = [r[key] for r in rs]
        return max(vals) / min(vals)

    w1 = [r for r in wrows if r["feature_scale"] == "1"]
    ws = [r for r in wrows if r["feature_scale"] == "1/sqrt(h)"]
    big = [r for r in nrows if r["m"] >= 300] or nrows
    ratios = {
        "n_per_step_exponent_in_m": fit_exponent([r["m"] for r in big], [r["per_step_s"] for r in big]),
        "n_rhs_exponent_in_m": fit_exponent([r["m"] for r in big], [r["rhs_s"] for r in big]),
        "n_solve_largest_over_smallest": nrows[-1]["run_s"] / nrows[0]["run_s"],
        "k_per_step_exponent": fit_exponent([r["k"] for r in krows], [r["per_step_s"] for r in krows]),
        "k_solve_largest_over_smallest": krows[-1]["run_s"] / krows[0]["run_s"],
        "width_c1_solve_max_over_min": spread(w1, "run_s"),
        "width_c1_per_step_max_over_min": spread(w1, "per_step_s"),
        "width_rhs_max_over_min": spread(wrows, "rhs_s"),
        "width_c1_steps_max_over_min": spread(w1, "steps"),
        "width_csqrt_solve_max_over_min": spread(ws, "run_s"),
        "width_csqrt_per_step_max_over_min": spread(ws, "per_step_s"),
        "width_csqrt_steps_max_over_min": spread(ws, "steps"),
    }
    flat = 1.5  # allowance for timing noise on a shared machine
    targets = [
        {"target": f"ODE state and right-hand side flat in width (h = {args.widths[0]}…{args.widths[-1]}, both "
                   "c_h): max/min time of one RHS",
         "measured": ratios["width_rhs_max_over_min"], "op": "<=", "threshold": flat},
        {"target": "ODE cost flat in width, c_h = 1/sqrt(h) (kernel fixed, R(0) ∝ 1/√h): max/min solve time",
         "measured": ratios["width_csqrt_solve_max_over_min"], "op": "<=", "threshold": flat},
        {"target": "ODE cost flat in width, c_h = 1 (the main job's model: kernel ∝ h, t = 1): max/min solve time",
         "measured": ratios["width_c1_solve_max_over_min"], "op": "<=", "threshold": flat},
    ]
    for t in targets:
        t["met"] = bool(t["measured"] <= t["threshold"])
    print()
    print("ratios: " + ", ".join(f"{a} = {b:.3g}" for a, b in ratios.items() if b is not None))
    for t in targets:
        print(f"target: {t['target']}: measured {t['measured']:.3g} ({'met' if t['met'] else 'NOT met'})")
    print(f"compiled programs serving the {len(pts)} width points: {width_programs}")
    rep.final(ratios=ratios, targets=targets, width_programs=width_programs,
              compile_s={f"n={n},k={k}": v[1] for (n, k), v in compiled.items()},
              wall_s=time.perf_counter() - wall0)


if __name__ == "__main__":
    main()

"""Benchmark compile times per problem shape for ssldyn's main solve paths, and check that a
hyperparameter sweep does not recompile.

**Compile times.** Every path is jitted as the outermost function and compiled with
`jax.jit(f).lower(*args).compile()`; tracing + lowering (`lower_s`) and the XLA compilation
(`compile_s`) are timed separately (wall clock; `cpu_s` is the process CPU time of both, which
a loaded machine inflates less). Each measurement starts cold (`jax.clear_caches()` first, so no
trace or executable is reused), the paths of one round are interleaved, and the best of `--repeats`
rounds is reported. The arrays are synthetic (compilation depends on shapes and dtypes only):

| path | what is compiled |
|---|---|
| `solve_grassmann_dense` | `solve(grassmann_flow(S), W0, 0, T)` (d × k state, O(d²k) RHS; d = 64, 784) |
| `solve_grassmann_eigen` | the same with `grassmann_flow(S, eigenbasis=True)` (the eigh included) |
| `closed_form` | `GrassmannSolution(S, W0).projector(T)` (build + one evaluation) |
| `simulate_gd` | `simulate_gd(grassmann_flow(S), W0, lr, 100)` |
| `predict_outputs` | `predict_outputs(B, K, K_eval, R0, R0_eval, t1)` (the output ODE with evaluation inputs; m = 60, 1200) |
| `predict_outputs_vmap10` | the main job's ODE: `predict_outputs` vmapped over 10 seeds, kernels shared |
| `solve_ensemble16` | `solve_ensemble` of 16 output ODEs (kernel scale per member) |
| `factored_flow` | `lowrank_predict(factored_output_flow(F, n=n, diagonal=d), R0, t1)` (rank r, structured B) |

**No recompilation across a sweep.** A listener on JAX's compilation events
(`jax.monitoring`, `/jax/core/compile/backend_compile_duration` and `.../jaxpr_trace_duration`) counts
the XLA compilations and traces while the public API is called eagerly, as a user would, over a sweep
of new values (tolerances, horizons, kernel scales = widths, learning rates, initial conditions),
after one warm-up call. Expected: 0 compilations. Three negative controls show that the counter
sees recompilations (a new shape, a new `max_steps`, a fresh `make_flow` lambda per call).

Run: `python benchmarks/compile_times.py [--quick] [--repeats R] [--json out.jsonl]`.
"""

from __future__ import annotations

import statistics
import time

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import jax
import jax.numpy as jnp
import numpy as np

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
TRACE = "/jax/core/compile/jaxpr_trace_duration"


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], repeats=2)
    p.add_argument("--threshold", type=float, default=3.0, help="the compile-time target per shape (seconds)")
    p.add_argument("--sweep", type=int, default=6, help="calls per hyperparameter sweep (after one warm-up call)")
    args = p.parse_args()
    if args.quick:
        args.repeats = 1
        args.sweep = min(args.sweep, 3)
    return args


class CompileCounter:
    """Counts JAX's backend compilations and jaxpr traces (process-wide) through `jax.monitoring`."""

    def __init__(self):
        self.compiles = 0
        self.traces = 0
        self.compile_s = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            self.compiles += 1
            self.compile_s += duration
        elif event == TRACE:
            self.traces += 1

    def snapshot(self):
        return self.compiles, self.traces


def rng_arrays(seed, dtype):
    rng = np.random.default_rng(seed)

    def sym_psd(d, rank=None):
        A = rng.normal(size=(d, rank or d)) / np.sqrt(rank or d)
        return jnp.asarray(A @ A.T, dtype)

    def stiefel(d, k):
        return jnp.asarray(np.linalg.qr(rng.normal(size=(d, k)))[0], dtype)

    def normal(*shape):
        return jnp.asarray(rng.normal(size=shape), dtype)

    return sym_psd, stiefel, normal


def build_paths(quick: bool, dtype):
    """{(path, shape label): (fn, args)} for the compile-time table."""
    import ssldyn

    sym_psd, stiefel, normal = rng_arrays(0, dtype)
    tol = dict(rtol=1e-6, atol=1e-9)
    T = jnp.asarray(1.0, dtype)
    ds = [784] if quick else [64, 784]
    ns = [200] if quick else [20, 400]
    paths = {}
    for d in ds:
        S, W0 = sym_psd(d), stiefel(d, 10)
        paths[("solve_grassmann_dense", f"d={d}, k=10")] = (
            lambda S, W0, T: ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, T, **tol), (S, W0, T))
        if not quick:
            paths[("solve_grassmann_eigen", f"d={d}, k=10")] = (
                lambda S, W0, T: ssldyn.solve(ssldyn.grassmann_flow(S, eigenbasis=True), W0, 0.0, T, **tol),
                (S, W0, T))
        paths[("closed_form", f"d={d}, k=10")] = (
            lambda S, W0, T: ssldyn.GrassmannSolution(S, W0).projector(T), (S, W0, T))
        paths[("simulate_gd", f"d={d}, k=10, 100 steps")] = (
            lambda S, W0, lr: ssldyn.simulate_gd(ssldyn.grassmann_flow(S), W0, lr, 100).final, (S, W0, jnp.asarray(0.01, dtype)))
    for n in ns:
        m, me, k = 3 * n, 2 * n, 5
        B = ssldyn.pair_matrix(n, dtype=dtype)
        Kall = sym_psd(m + me, rank=64)
        K, Ke = Kall[:m, :m], Kall[m:, :m]
        R0, R0e = normal(m, k), normal(me, k)
        paths[("predict_outputs", f"m={m}, m_eval={me}, k={k}")] = (
            lambda B, K, Ke, R0, R0e, t1: ssldyn.predict_outputs(B, K, Ke, R0, R0e, t1), (B, K, Ke, R0, R0e, T))
        if not quick:
            seeds = 10
            R0s, R0es = normal(seeds, m, k), normal(seeds, me, k)
            paths[("predict_outputs_vmap10", f"m={m}, m_eval={me}, k={k}, 10 seeds")] = (
                lambda B, K, Ke, R0s, R0es, s, t1: jax.vmap(
                    lambda a, b: ssldyn.predict_outputs(B, s * K, s * Ke, a, b, t1))(R0s, R0es),
                (B, K, Ke, R0s, R0es, jnp.asarray(100.0, dtype), T))
    for n in ([20] if quick else [20, 200]):
        m, E = 3 * n, 16
        B, K = ssldyn.pair_matrix(n, dtype=dtype), sym_psd(m)
        paths[("solve_ensemble16", f"m={m}, k=3, E={E}")] = (
            lambda sc, R0s, B, K, t1: ssldyn.solve_ensemble(_ens_flow, {"scale": sc}, R0s, 0.0, t1, ts=1,
                                                            shared={"B": B, "K": K}, throw=False, **tol),
            (jnp.linspace(0.5, 2.0, E, dtype=dtype), normal(E, m, 3), B, K, T))
    for n, r in ([] if quick else [(200, 50), (1000, 200)]):
        m = 3 * n
        F, dg, R0 = normal(m, r) / np.sqrt(r), jnp.abs(normal(m)) * 0.01, normal(m, 5)
        paths[("factored_flow", f"m={m}, r={r}, k=5")] = (
            lambda F, dg, R0, t1, n=n: ssldyn.lowrank_predict(ssldyn.factored_output_flow(F, n=n, diagonal=dg), R0, t1),
            (F, dg, R0, T))
    return paths


def _ens_flow(p, sh):
    import ssldyn

    return ssldyn.OutputFlow(sh["B"], p["scale"] * sh["K"])


def time_compiles(paths: dict, repeats: int) -> dict:
    """Cold lower + compile of every path, interleaved over `repeats` rounds:
    {key: [(lower_s, compile_s, cpu_s), ...]} (wall times, and the process CPU time of both)."""
    out = {key: [] for key in paths}
    for _ in range(max(1, repeats)):
        for key, (fn, args) in paths.items():
            args = jax.block_until_ready(args)
            jax.clear_caches()
            c0, t0 = time.process_time(), time.perf_counter()
            lowered = jax.jit(fn).lower(*args)
            t1 = time.perf_counter()
            lowered.compile()
            t2, c2 = time.perf_counter(), time.process_time()
            out[key].append((t1 - t0, t2 - t1, c2 - c0))
    return out


def sweeps(counter: CompileCounter, n_calls: int, dtype, quick: bool):
    """Eager public-API calls over hyperparameter sweeps; compilations and traces counted per sweep."""
    import ssldyn

    sym_psd, stiefel, normal = rng_arrays(1, dtype)
    rng = np.random.default_rng(2)
    d, k, n = 64, 4, 20
    m, me = 3 * n, 2 * n
    S, W0 = sym_psd(d), stiefel(d, k)
    B = ssldyn.pair_matrix(n, dtype=dtype)
    Kall = sym_psd(m + me)
    K, Ke = Kall[:m, :m], Kall[m:, :m]
    L = np.linalg.cholesky(np.asarray(Kall) + 1e-9 * np.eye(m + me))
    E = 8

    def R0_pair(i, h):
        R = L @ np.random.default_rng(100 + i).normal(size=(m + me, 3)) / np.sqrt(h)
        return jnp.asarray(R[:m], dtype), jnp.asarray(R[m:], dtype)

    def vals(i):
        """The i-th point of the sweep: new tolerance, horizon, width, learning rate."""
        return dict(rtol=float(10.0 ** -rng.uniform(4, 8)), t1=float(rng.uniform(0.5, 3.0)),
                    h=float(10 ** rng.uniform(1, 3)), lr=float(10 ** -rng.uniform(1.5, 3)))

    def grassmann(i, v):
        return ssldyn.solve(ssldyn.grassmann_flow(S), W0 if i == 0 else stiefel(d, k), 0.0, v["t1"], rtol=v["rtol"],
                            atol=1e-3 * v["rtol"]).final

    def grassmann_eigen(i, v):
        return ssldyn.solve(ssldyn.grassmann_flow(S * (1 + 0.1 * i), eigenbasis=True), W0, 0.0, v["t1"],
                            rtol=v["rtol"], atol=1e-3 * v["rtol"]).final

    def output_width(i, v):
        R0, R0e = R0_pair(i, v["h"])
        return ssldyn.predict_outputs(B, v["h"] * K, v["h"] * Ke, R0, R0e, v["t1"], rtol=v["rtol"],
                                      atol=1e-2 * v["rtol"])

    def ensemble(i, v):
        scales = jnp.asarray(rng.uniform(0.5, 2.0, E) * v["h"], dtype)
        R0s = jnp.asarray(np.stack([np.asarray(R0_pair(i * E + e, v["h"])[0]) for e in range(E)]), dtype)
        return ssldyn.solve_ensemble(_ens_flow, {"scale": scales}, R0s, 0.0, v["t1"], ts=3,
                                     shared={"B": B, "K": K * (1 + 0.1 * i)}, rtol=v["rtol"], atol=1e-2 * v["rtol"]).ys

    def gd(i, v):
        return ssldyn.simulate_gd(ssldyn.grassmann_flow(S), W0, v["lr"], 50).final

    def closed_form(i, v):
        return ssldyn.GrassmannSolution(S * (1 + 0.1 * i), W0).projector(v["t1"])

    # negative controls: each call changes something that is compiled in
    def new_shape(i, v):
        return ssldyn.solve(ssldyn.grassmann_flow(S), stiefel(d, k + 1 + i), 0.0, v["t1"], rtol=v["rtol"]).final

    def new_max_steps(i, v):
        return ssldyn.solve(ssldyn.grassmann_flow(S), W0, 0.0, v["t1"], rtol=v["rtol"], max_steps=1000 + i).final

    def fresh_lambda(i, v):
        return ssldyn.solve_ensemble(lambda p, sh: ssldyn.OutputFlow(sh["B"], p * sh["K"]), jnp.ones(E, dtype),
                                     jnp.asarray(np.stack([np.asarray(R0_pair(e, 100.0)[0]) for e in range(E)])),
                                     0.0, v["t1"], shared={"B": B, "K": K}, rtol=v["rtol"]).ys

    cases = [
        ("solve_grassmann_dense", grassmann, "t1, rtol, atol, W0", True),
        ("solve_grassmann_eigen", grassmann_eigen, "S (values), t1, rtol, atol", True),
        ("predict_outputs_width", output_width, "width h (kernel scale, R0 scale), t1, rtol, atol, R0", True),
        ("solve_ensemble", ensemble, "per-member scales, R0s, shared K values, t1, rtol, atol", True),
        ("simulate_gd", gd, "learning rate", True),
        ("closed_form", closed_form, "S (values), t", True),
        ("control_new_shape", new_shape, "k (a shape): recompiles by design", False),
        ("control_new_max_steps", new_max_steps, "max_steps (static): recompiles by design", False),
        ("control_fresh_lambda", fresh_lambda, "a new make_flow lambda per call: recompiles by design", False),
    ]
    if quick:  # one sweep per main entry point and one control
        keep = {"solve_grassmann_dense", "predict_outputs_width", "solve_ensemble", "control_new_max_steps"}
        cases = [c for c in cases if c[0] in keep]
    results = []
    for name, fn, varied, expect_none in cases:
        c0, tr0 = counter.snapshot()
        t0 = time.perf_counter()
        jax.block_until_ready(fn(0, vals(0)))  # warm-up: compiles
        first_s = time.perf_counter() - t0
        c1, tr1 = counter.snapshot()
        times = []
        calls = n_calls if expect_none else min(n_calls, 2)  # a control recompiles on every call
        for i in range(1, calls + 1):
            v = vals(i)
            t0 = time.perf_counter()
            jax.block_until_ready(fn(i, v))
            times.append(time.perf_counter() - t0)
        c2, tr2 = counter.snapshot()
        results.append({"sweep": name, "varied": varied, "calls": calls, "warmup_compiles": c1 - c0,
                        "warmup_traces": tr1 - tr0, "sweep_compiles": c2 - c1, "sweep_traces": tr2 - tr1,
                        "first_call_s": first_s, "warm_call_median_s": statistics.median(times),
                        "expect_no_recompile": expect_none,
                        "ok": (c2 - c1 == 0) if expect_none else (c2 - c1 > 0)})
    return results


def main():
    args = parse_args()
    dtype_name = C.setup_precision(args.float32)
    dtype = jnp.float64 if dtype_name == "float64" else jnp.float32
    counter = CompileCounter()
    env = C.environment()
    wall0 = time.perf_counter()
    paths = build_paths(args.quick, dtype)
    config = {"paths": sorted({p for p, _ in paths}), "shapes": len(paths), "threshold_s": args.threshold,
              "sweep_calls": args.sweep, "cold": "jax.clear_caches() before every lower+compile"}
    rep = C.Reporter("compile_times", env, dtype_name, args, config)

    times = time_compiles(paths, args.repeats)
    rows = []
    best_total = {}
    best_cpu = {}
    for (path, shape), runs in times.items():
        lower_s, compile_s, cpu_s = min(runs, key=lambda r: r[0] + r[1])
        best_total[(path, shape)] = lower_s + compile_s
        best_cpu[(path, shape)] = cpu_s
        rep.record("compile", None, path=path, shape=shape, lower_s=lower_s, compile_s=compile_s,
                   total_s=lower_s + compile_s, cpu_s=cpu_s, runs_s=[list(r) for r in runs])
        rows.append((path, shape, lower_s, compile_s, lower_s + compile_s, cpu_s, lower_s + compile_s <= args.threshold))
    print()
    print(C.table(["path", "shape", "lower_s", "compile_s", "total_s", "cpu_s", f"<= {args.threshold:g} s"], rows,
                  title=f"compile times (cold, best of {args.repeats}); {env['device']}, {dtype_name}"))

    sw = sweeps(counter, args.sweep, dtype, args.quick)
    for r in sw:
        rep.record("sweep", None, **r)
    print()
    print(C.table(["sweep", "varied", "calls", "warm-up compiles", "sweep compiles", "sweep traces", "first call_s",
                   "warm call_s", "as expected"],
                  [(r["sweep"], r["varied"], r["calls"], r["warmup_compiles"], r["sweep_compiles"], r["sweep_traces"],
                    r["first_call_s"], r["warm_call_median_s"], r["ok"]) for r in sw],
                  title="hyperparameter sweeps through the eager public API (compilations counted by jax.monitoring)"))

    worst_key = max(best_total, key=best_total.get)
    real = [r for r in sw if r["expect_no_recompile"]]
    controls = [r for r in sw if not r["expect_no_recompile"]]
    ratios = {
        "max_compile_total_s": best_total[worst_key],
        "median_compile_total_s": statistics.median(best_total.values()),
        "max_compile_cpu_s": max(best_cpu.values()),
        "wall_over_cpu_worst_shape": best_total[worst_key] / best_cpu[worst_key],
        "first_over_warm_call_median": statistics.median(r["first_call_s"] / r["warm_call_median_s"] for r in real),
        "sweep_compiles_total": sum(r["sweep_compiles"] for r in real),
        "controls_detected": sum(r["ok"] for r in controls),
    }
    n_over = sum(v > args.threshold for v in best_total.values())
    targets = [
        {"target": f"compile time under {args.threshold:g} s per problem shape ({env['device']}): worst shape "
                   f"({worst_key[0]}, {worst_key[1]}; CPU time {best_cpu[worst_key]:.2g} s); "
                   f"{n_over} of {len(best_total)} shapes over",
         "measured": ratios["max_compile_total_s"], "op": "<=", "threshold": args.threshold},
        {"target": f"no recompilation across hyperparameter sweeps ({len(real)} sweeps x {args.sweep} calls; "
                   f"the counter caught {ratios['controls_detected']} of {len(controls)} recompiling controls)",
         "measured": float(ratios["sweep_compiles_total"]), "op": "<=", "threshold": 0.0},
    ]
    for t in targets:
        t["met"] = bool(t["measured"] <= t["threshold"])
    print()
    print("ratios: " + ", ".join(f"{a} = {b:.3g}" for a, b in ratios.items()))
    for t in targets:
        print(f"target: {t['target']}: measured {t['measured']:.3g} ({'met' if t['met'] else 'NOT met'})")
    rep.final(ratios=ratios, targets=targets, compile_total_s={f"{p} [{s}]": v for (p, s), v in best_total.items()},
              wall_s=time.perf_counter() - wall0)


if __name__ == "__main__":
    main()

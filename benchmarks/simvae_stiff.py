"""Benchmark the stiff linear SimVAE: explicit (Tsit5) vs implicit (Kvaerno5) solves of the per-mode flow
at several likelihood variances σ_x².

The per-mode system (`ssldyn.simvae.ModeFlow`) has fast rates of order `α = J/σ_x²` (decoder and
variance) and slow rates of order γ_i (the modes near the survival threshold), so it becomes stiff as
σ_x² shrinks. For each σ_x² in the sweep both solvers integrate the same `n_modes` modes (content and
style variances spread over two decades, J = 10, σ² = 0.15, κ = 1, e = 1, w = v = 1e-3, Λ = Λ₀) to
the horizon `T` with the same PID tolerances (`rtol`, `atol`). σ_x² is a traced argument, so each
solver is compiled once (timed separately) for the whole sweep; every run waits for its output
(`block_until_ready`), inputs are made ready first, and the two solvers' runs are interleaved. A run
that fails (explicit solver out of `max_steps`, non-finite state) is reported with its status; the
error is the largest absolute difference of the final (w, v, Λ) from a reference implicit solve at
rtol 1e-10 (the same executable), when that reference succeeds.

Output: a table and JSON lines (`{"bench": "simvae_stiff", ...}`) with the ratio
explicit time / implicit time per σ_x² in the final summary line.

Run: `python benchmarks/simvae_stiff.py [--quick] [--repeats R] [--float32] [--json out.jsonl]`.
"""

from __future__ import annotations

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import diffrax
import jax.numpy as jnp
import numpy as np

STATUS = {0: "ok", 1: "max_steps", 2: "non-finite", 3: "solver failure"}


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--sigma-x2", type=float, nargs="+", default=[1.0, 0.3, 0.1, 0.03, 0.01, 0.003])
    p.add_argument("--modes", type=int, default=32)
    p.add_argument("--horizon", type=float, default=5.0)
    p.add_argument("--max-steps", type=int, default=200_000)
    p.add_argument("--rtol", type=float, default=1e-6)
    args = p.parse_args()
    if args.quick:
        args.repeats = 1
        args.sigma_x2 = [1.0, 0.1, 0.01]
        args.horizon = 2.0
        args.max_steps = 50_000
    return args


def main():
    args = parse_args()
    dtype_name = C.setup_precision(args.float32)
    from ssldyn import simvae as sv  # after the precision switch
    import ssldyn

    env = C.environment()
    config = {"sigma_x2": args.sigma_x2, "modes": args.modes, "horizon": args.horizon, "J": 10, "sigma2": 0.15,
              "kappa": 1.0, "e": 1.0, "rtol": args.rtol, "atol": args.rtol * 1e-3, "max_steps": args.max_steps}
    rep = C.Reporter("simvae_stiff", env, dtype_name, args, config)
    dt = jnp.float32 if args.float32 else jnp.float64
    c = jnp.asarray(np.logspace(-2, 0, args.modes)[::-1], dt)
    a = jnp.asarray(np.logspace(-2, 0, args.modes), dt) * 0.5

    def make(solver, max_steps):
        def run(sx2, rtol, c, a):  # σ_x² and rtol are traced: one compilation per solver
            knobs = sv.SimVAEKnobs(10, sx2, 0.15, kappa=1.0, e=1.0)
            flow = sv.ModeFlow.from_variances(c, a, knobs)
            y0 = sv.ModeState(jnp.full_like(c, 1e-3), jnp.full_like(c, 1e-3), jnp.ones_like(c) * sv.origin_variance(knobs))
            traj = ssldyn.solve(flow, y0, 0.0, args.horizon, ts=1, solver=solver, rtol=rtol, atol=rtol * 1e-3,
                                max_steps=max_steps, throw=False)
            return traj.final, traj.status, traj.stats["num_steps"]
        return run

    solvers = {"explicit (Tsit5)": diffrax.Tsit5(), "implicit (Kvaerno5)": diffrax.Kvaerno5()}
    compiled = {}
    sx0, rtol = jnp.asarray(args.sigma_x2[0], dt), jnp.asarray(args.rtol, dt)
    for name, solver in solvers.items():
        compiled[name] = C.compile_jit(make(solver, args.max_steps), sx0, rtol, c, a)
    ref_c = compiled["implicit (Kvaerno5)"][0]  # the reference: the same executable at rtol 1e-10

    rows, ratios = [], {}
    for sx2 in args.sigma_x2:
        s = jnp.asarray(sx2, dt)
        ref, ref_status, _ = ref_c(s, jnp.asarray(1e-10, dt), c, a)
        ref_ok = int(ref_status) == 0
        jobs = {name: (cf, (s, rtol, c, a), cs) for name, (cf, cs) in compiled.items()}
        timings = C.run_interleaved(jobs, args.repeats)
        per = {}
        for name, tm in timings.items():
            final, status, steps = tm["out"]
            status = int(status)
            err = float(max(jnp.max(jnp.abs(x - y)) for x, y in zip(final, ref))) if status == 0 and ref_ok else None
            per[name] = (tm, status, int(steps), err)
            rep.record(f"{name} sigma_x2={sx2:g}", tm, solver=name, sigma_x2=sx2, status=STATUS[status],
                       steps=int(steps), max_abs_error=err, stiffness=sv.stiffness(*sv.mode_parameters(c, a, sv.SimVAEKnobs(10, sx2, 0.15, kappa=1.0)), sv.SimVAEKnobs(10, sx2, 0.15, kappa=1.0)))
        (te, se, ne, ee), (ti, si, ni, ei) = per["explicit (Tsit5)"], per["implicit (Kvaerno5)"]
        ratio = te["run_s"] / ti["run_s"]
        ratios[f"{sx2:g}"] = ratio
        rows.append([sx2, STATUS[se], ne, te["run_s"], ee, STATUS[si], ni, ti["run_s"], ei, ratio])
    print()
    print(C.table(["sigma_x2", "Tsit5", "steps", "run_s", "err", "Kvaerno5", "steps", "run_s", "err",
                   "Tsit5/Kvaerno5 time"], rows,
                  title=f"Per-mode linear SimVAE, {args.modes} modes, T = {args.horizon:g}, rtol {args.rtol:g} "
                        f"({dtype_name}); compile: Tsit5 {compiled['explicit (Tsit5)'][1]:.2f} s, "
                        f"Kvaerno5 {compiled['implicit (Kvaerno5)'][1]:.2f} s"))
    print("(a Tsit5 run that stops at max_steps has its time capped by the step budget; its ratio is a lower bound)")
    rep.final(ratio_explicit_over_implicit=ratios,
              compile_s={k: v[1] for k, v in compiled.items()})


if __name__ == "__main__":
    main()

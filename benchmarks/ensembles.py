"""Benchmark ensemble throughput: `solve_ensemble` solves per second against the ensemble size, on one
device and sharded over several devices (`sharded=True`, `jax.shard_map` over a 1-D device mesh).

Problem (one member): the constrained output ODE `OutputFlow(B, s_e K_∞)` of n = 20 real MNIST digits
(embedded MNIST, `make_views` default augmentation, m = 3n = 60 stacked views, relu NNGP kernel `K_∞`),
k = 3, from `R_e(0) = L z_e` (`L Lᵀ = K_∞`, z_e Gaussian: the c_h = 1 infinite-width initial outputs),
kernel scale `s_e` (a width, log-uniform in [50, 200]) and seed per member, solved to t = 1 at rtol 1e-6,
atol 1e-8 (Tsit5). An ensemble of E members is one `solve_ensemble` call (vmapped; each member keeps
its own adaptive steps, the while loop runs until the slowest member is done).

Measured, for every E of `--sizes` (each E is a new shape: one compilation per E and variant, timed
separately; best of `--repeats` runs, variants interleaved):

- **one device, this process**: `solve_ensemble(..., sharded=False)` in a plain process; and, as an
  alternative, an ensemble over seeds only whose members share one kernel (`params=None`, kernel
  scale 100 for all): `make_flow` then builds no per-member E × m × m kernel, and `K @ (B R)` becomes
  one matrix product for all members;
- **in a subprocess with `XLA_FLAGS=--xla_force_host_platform_device_count=D`** (the flag must be set
  before JAX starts; D = `--devices`, default 4): the same one-device call and the sharded call over
  all D devices of the default backend, interleaved. Sharded inputs are placed on the mesh
  beforehand (`shard_ensemble`, `replicate`); outputs stay distributed (no gather is timed).
  On CPU the forced devices share the machine's cores, so the ideal speedup is min(D, cores).
  On a backend with a single device (e.g. one GPU) the sharded variant is skipped.

Reported: throughput E / run_s, batching gain throughput(E) / throughput(1), and sharded / one device.

Run: `python benchmarks/ensembles.py [--quick] [--sizes E ...] [--devices D] [--json out.jsonl]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import jax
import jax.numpy as jnp
import numpy as np

N_ANCHORS, K_OUT = 20, 3


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0], float32_flag=False, repeats=3)
    p.add_argument("--sizes", type=int, nargs="+", default=None,
                   help="ensemble sizes (default 1 16 64 256 1024; quick 1 32)")
    p.add_argument("--devices", type=int, default=4, help="forced host devices of the sharded subprocess")
    p.add_argument("--budget", type=float, default=3.0,
                   help="stop repeating a measurement once its runs took this many seconds")
    p.add_argument("--no-subprocess", action="store_true", help="skip the multi-device subprocess")
    p.add_argument("--worker", action="store_true", help=argparse_hidden())
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.sizes is None:
        args.sizes = [1, 32] if args.quick else [1, 16, 64, 256, 1024]
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.budget = min(args.budget, 1.0)
    return args


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def make_problem(E_max: int, seed: int):
    import ssldyn

    X_all, _ = ssldyn.data.load_embedded_mnist()
    key = jax.random.PRNGKey(seed)
    k_sub, k_views, k_z, k_s = jax.random.split(key, 4)
    idx = np.asarray(jax.random.permutation(k_sub, X_all.shape[0])[:N_ANCHORS])
    views = ssldyn.data.make_views(k_views, jnp.asarray(X_all[idx], jnp.float64))
    Z = ssldyn.stack_views(views.anchors, views.positives, views.negatives)
    K = np.asarray(ssldyn.relu_kernel(Z), np.float64)
    K = 0.5 * (K + K.T)
    L = np.linalg.cholesky(K + 1e-10 * np.trace(K) / K.shape[0] * np.eye(K.shape[0]))
    z = np.asarray(jax.random.normal(k_z, (E_max, K.shape[0], K_OUT), jnp.float64))
    scales = np.exp(np.asarray(jax.random.uniform(k_s, (E_max,), jnp.float64, np.log(50.0), np.log(200.0))))
    shared = {"B": np.asarray(ssldyn.pair_matrix(N_ANCHORS, dtype=jnp.float64)), "K": K}
    return shared, scales, np.einsum("mn,enk->emk", L, z)


def make_flow(p, sh):
    import ssldyn

    return ssldyn.OutputFlow(sh["B"], p["scale"] * sh["K"])


def make_flow_shared(p, sh):
    import ssldyn

    return ssldyn.OutputFlow(sh["B"], sh["K"])


def ensemble_fn(sharded: bool, shared_kernel: bool = False):
    import ssldyn

    mk = make_flow_shared if shared_kernel else make_flow

    def f(params, y0s, shared, t1, rtol, atol):
        traj = ssldyn.solve_ensemble(mk, params, y0s, 0.0, t1, ts=1, shared=shared, rtol=rtol, atol=atol,
                                     throw=False, sharded=sharded)
        return traj.ys[:, -1], traj.stats["num_steps"], traj.status

    return f


def measure(args, variants: tuple[str, ...]) -> list[dict]:
    """Throughput of `solve_ensemble` for every size and variant ("one_device", "sharded")."""
    import ssldyn

    shared, scales, R0s = make_problem(max(args.sizes), args.seed)
    tol = (jnp.asarray(1.0), jnp.asarray(1e-6), jnp.asarray(1e-8))
    n_dev = len(jax.devices())
    out = []
    for E in args.sizes:
        jobs = {}
        for v in variants:
            params, y0s, sh = {"scale": jnp.asarray(scales[:E])}, jnp.asarray(R0s[:E]), jax.tree_util.tree_map(
                jnp.asarray, shared)
            if v == "shared_kernel":  # seeds only: one kernel (scale 100) for all members, params None
                a = (None, y0s, {"B": sh["B"], "K": 100.0 * sh["K"]}, *tol)
                c, cs = C.compile_jit(ensemble_fn(False, shared_kernel=True), *a)
                jobs[v] = (c, a, cs)
                continue
            if v == "sharded":
                mesh = ssldyn.ensemble_mesh()
                if E % n_dev == 0:  # otherwise solve_ensemble pads inside the program
                    params, y0s = ssldyn.shard_ensemble((params, y0s), mesh)
                sh = ssldyn.replicate(sh, mesh)
                a = (params, y0s, sh, *ssldyn.replicate(tol, mesh))
            else:
                a = (params, y0s, sh, *tol)
            c, cs = C.compile_jit(ensemble_fn(v == "sharded"), *a)
            jobs[v] = (c, a, cs)
        t = C.run_interleaved(jobs, args.repeats, budget_s=args.budget)
        for v, tm in t.items():
            _, steps, status = tm["out"]
            steps, status = np.asarray(steps), np.asarray(status)
            if np.any(status != 0):
                raise RuntimeError(f"{int(np.sum(status != 0))} members failed at E={E} ({v})")
            out.append({"variant": v, "E": E, "devices": n_dev if v == "sharded" else 1, "compile_s": tm["compile_s"],
                        "run_s": tm["run_s"], "runs_s": tm["runs_s"], "throughput": E / tm["run_s"],
                        "steps_mean": float(steps.mean()), "steps_max": int(steps.max())})
        print(f"  E={E}: " + ", ".join(f"{r['variant']} {r['throughput']:.4g} solves/s (compile {r['compile_s']:.2g} s, "
                                       f"steps mean {r['steps_mean']:.3g} max {r['steps_max']})" for r in out[-len(t):]),
              file=sys.stderr, flush=True)
    return out


def worker(args):
    """The multi-device subprocess: one device vs sharded, interleaved; prints one `WORKER {json}` line."""
    C.setup_precision(False)
    devs = jax.devices()
    info = {"n_devices": len(devs), "platform": devs[0].platform, "device_kind": devs[0].device_kind,
            "xla_flags": os.environ.get("XLA_FLAGS", "")}
    variants = ("one_device", "sharded") if len(devs) > 1 else ("one_device",)
    if len(devs) == 1:
        info["note"] = "the default backend has one device: the sharded variant is skipped"
    info["results"] = measure(args, variants)
    print("WORKER " + json.dumps(info), flush=True)


def run_worker(args) -> tuple[dict | None, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.devices}").strip()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--repeats", str(args.repeats),
           "--budget", str(args.budget), "--seed", str(args.seed), "--sizes", *map(str, args.sizes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    sys.stderr.write(proc.stderr[-4000:] if proc.returncode else "")
    for line in proc.stdout.splitlines():
        if line.startswith("WORKER "):
            return json.loads(line[len("WORKER "):]), ""
    return None, f"worker exited with {proc.returncode}: {proc.stderr[-2000:]}"


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    dtype_name = C.setup_precision(False)
    env = C.environment()
    wall0 = time.perf_counter()
    config = {"sizes": args.sizes, "n": N_ANCHORS, "m": 3 * N_ANCHORS, "k": K_OUT, "t1": 1.0, "rtol": 1e-6,
              "atol": 1e-8, "kernel_scale": "log-uniform [50, 200] per member", "forced_devices": args.devices,
              "budget_s": args.budget, "flow": "constrained OutputFlow(B, s K_inf), relu NNGP kernel, Tsit5"}
    rep = C.Reporter("ensembles", env, dtype_name, args, config)

    print("one device, this process:", file=sys.stderr, flush=True)
    local = measure(args, ("one_device", "shared_kernel"))
    for r in local:
        r["process"] = "plain"
    sub, err = (None, "skipped (--no-subprocess)") if args.no_subprocess else run_worker(args)
    remote = []
    if sub is not None:
        for r in sub["results"]:
            r["process"] = f"forced {args.devices} host devices"
            remote.append(r)
    for r in local + remote:
        timing = C.Timing(compile_s=r["compile_s"], run_s=r["run_s"], runs_s=r["runs_s"])
        rep.record(f"ensemble_{r['variant']}", timing,
                   **{k: v for k, v in r.items() if k not in ("compile_s", "run_s", "runs_s")})

    def by(rows, variant):
        return {r["E"]: r for r in rows if r["variant"] == variant}

    plain, one, shard = by(local, "one_device"), by(remote, "one_device"), by(remote, "sharded")
    shk = by(local, "shared_kernel")
    E0 = min(args.sizes)
    rows, per_size = [], {}
    for E in args.sizes:
        p, o, s = plain.get(E), one.get(E), shard.get(E)
        rec = {"plain_solves_per_s": p and p["throughput"], "one_device_solves_per_s": o and o["throughput"],
               "sharded_solves_per_s": s and s["throughput"],
               "batching_gain_plain": p and p["throughput"] / plain[E0]["throughput"],
               "sharded_over_one_device": (s["throughput"] / o["throughput"]) if (s and o) else None,
               "sharded_over_plain": (s["throughput"] / p["throughput"]) if (s and p) else None,
               "shared_kernel_solves_per_s": shk[E]["throughput"] if E in shk else None,
               "shared_kernel_over_per_member_kernel": shk[E]["throughput"] / p["throughput"] if (E in shk and p) else None,
               "steps_max": p and p["steps_max"], "steps_max_shared_kernel": shk[E]["steps_max"] if E in shk else None}
        per_size[E] = rec
        rows.append((E, rec["plain_solves_per_s"], rec["batching_gain_plain"], rec["shared_kernel_solves_per_s"],
                     rec["one_device_solves_per_s"], rec["sharded_solves_per_s"], rec["sharded_over_one_device"],
                     rec["sharded_over_plain"], p and p["compile_s"], s and s["compile_s"], rec["steps_max"]))
    n_dev = sub["n_devices"] if sub else None
    print()
    print(C.table(["E", "plain solves/s", "gain vs E0", "shared K solves/s", f"1 of {n_dev} dev solves/s", "sharded solves/s",
                   "sharded/1 dev", "sharded/plain", "compile plain_s", "compile sharded_s", "steps max"], rows,
                  title=f"ensembles: OutputFlow m={3 * N_ANCHORS}, k={K_OUT}, t=1, rtol 1e-6; {env['device']}; "
                        f"sharded over {n_dev} devices ({args.devices} forced host devices on CPU); "
                        f"{env['cpu_count']} CPU cores; best of {args.repeats}"))
    Emax = max(args.sizes)
    ratios = {
        "batching_gain_at_max_E": per_size[Emax]["batching_gain_plain"],
        "best_plain_solves_per_s": max(r["throughput"] for r in local if r["variant"] == "one_device"),
        "best_shared_kernel_solves_per_s": max((r["throughput"] for r in local if r["variant"] == "shared_kernel"),
                                               default=None),
        "shared_kernel_over_per_member_kernel_at_max_E": per_size[Emax]["shared_kernel_over_per_member_kernel"],
        "best_sharded_solves_per_s": max((r["throughput"] for r in remote if r["variant"] == "sharded"), default=None),
        "sharded_over_one_device_at_max_E": per_size[Emax]["sharded_over_one_device"],
        "sharded_over_plain_at_max_E": per_size[Emax]["sharded_over_plain"],
    }
    if err:
        print(f"subprocess: {err}")
    print("ratios: " + ", ".join(f"{a} = {b:.3g}" for a, b in ratios.items() if b is not None))
    rep.final(ratios=ratios, per_size={str(E): v for E, v in per_size.items()}, n_devices_sharded=n_dev,
              subprocess_error=err or None, subprocess_note=(sub or {}).get("note"),
              wall_s=time.perf_counter() - wall0)


if __name__ == "__main__":
    main()

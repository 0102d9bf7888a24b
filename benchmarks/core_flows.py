"""Benchmark the core Grassmann (Oja) flow on an MNIST-sized problem: eigenbasis ODE vs dense ODE vs
closed form vs step-by-step gradient descent.

Problem: d = 784 pixels, n = 400 real MNIST digits (embedded MNIST, pixels in [0, 1]) with positives
and negatives from `ssldyn.data.make_views` (default augmentation: ≤1-pixel shift + noise 0.1),
`S = view_stats(X, X₊, X₋).matrix("contrastive")`, k = 10, `W0 = stiefel_init(key, 784, 10)`,
horizon `T = lr · N` (lr 0.01, N = 1000 steps by default).

Measured (each jitted as the outermost function, compiled once and timed separately, best of
`--repeats` runs):

(a) eigenbasis fast path: the eigendecomposition (`grassmann_flow(S, eigenbasis=True)`, once) and
    `solve(flow, W0, 0, T, rtol=1e-6, atol=1e-9)` (Tsit5, O(d k²) per step plus two O(d² k) rotations);
(b) dense path: `solve(grassmann_flow(S), ...)` (O(d² k) per right-hand side);
(c) closed form `GrassmannSolution(S, W0)`: build (one eigendecomposition) and evaluation of
    `.projector(T)` and `.basis(T)`;
(d) `simulate_gd(grassmann_flow(S), W0, lr, N)`: QR-retracted GD with `lax.scan`, N steps; and the
    same GD in the eigenbasis (`W̃ = UᵀW0`, the QR retraction is equivariant), as an extra row.

Accuracy: `‖P − P_cf‖_F` with `P = W(T) W(T)ᵀ` and `P_cf = GrassmannSolution(S, W0).projector(T)`.

Run: `python benchmarks/core_flows.py [--quick] [--steps N] [--repeats R] [--json out.jsonl]`.
"""

from __future__ import annotations

import time

import _common as C  # noqa: I001  (adds the repository root to sys.path)
import jax
import jax.numpy as jnp
import numpy as np


def parse_args():
    p = C.base_parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help="GD steps N (horizon T = lr·N); default 1000 (quick: 300)")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--n", type=int, default=400, help="number of anchors")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--atol", type=float, default=1e-9)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.steps is None:
        args.steps = 300 if args.quick else 1000
    if args.quick:
        args.repeats = min(args.repeats, 3)
    return args


def make_problem(args, dtype):
    import ssldyn

    X_all, _ = ssldyn.data.load_embedded_mnist()
    key = jax.random.PRNGKey(args.seed)
    k_sub, k_views, k_w = jax.random.split(key, 3)
    idx = np.asarray(jax.random.permutation(k_sub, X_all.shape[0])[: args.n])
    X = jnp.asarray(X_all[idx], dtype)
    views = ssldyn.data.make_views(k_views, X)
    S = ssldyn.view_stats(views.anchors, views.positives, views.negatives).matrix("contrastive")
    W0 = ssldyn.stiefel_init(k_w, X.shape[1], args.k, dtype=dtype)
    return jax.block_until_ready((S, W0))


def main():
    args = parse_args()
    dtype_name = C.setup_precision(args.float32)
    import ssldyn

    dtype = jnp.float64 if dtype_name == "float64" else jnp.float32
    env = C.environment()
    wall0 = time.perf_counter()
    S, W0 = make_problem(args, dtype)
    d, k, N, lr = S.shape[0], args.k, args.steps, args.lr
    T = jnp.asarray(lr * N, dtype)
    rtol, atol, R = args.rtol, args.atol, args.repeats
    config = {"d": d, "n": args.n, "k": k, "steps": N, "lr": lr, "T": float(T), "rtol": rtol, "atol": atol,
              "data": "embedded MNIST, make_views default augmentation, S = C+ - C-"}
    rep = C.Reporter("core_flows", env, dtype_name, args, config)
    mu = np.linalg.eigvalsh(np.asarray(S, np.float64))[::-1]

    # The eager constructor runs the closed form's principal-angle check (skipped under jit).
    ssldyn.GrassmannSolution(S, W0)

    def solve_fn(flow, W0, T):
        return ssldyn.solve(flow, W0, 0.0, T, rtol=rtol, atol=atol)

    # Stage 1: the one-off factorisations / flow builds. Stage 2: the solves, evaluations and GD.
    # Within a stage the repeats are interleaved (see `_common.time_interleaved`).
    t1 = C.time_interleaved({
        "eigh": (lambda S: ssldyn.grassmann_flow(S, eigenbasis=True), (S,)),
        "dense_build": (lambda S: ssldyn.grassmann_flow(S), (S,)),
        "cf_build": (lambda S, W0: ssldyn.GrassmannSolution(S, W0), (S, W0)),
    }, repeats=R)
    flow_eig, flow_dense, sol = (t1[n]["out"] for n in ("eigh", "dense_build", "cf_build"))
    t2 = C.time_interleaved({
        # (a) eigenbasis fast path and (b) dense path
        "eig": (solve_fn, (flow_eig, W0, T)),
        "dense": (solve_fn, (flow_dense, W0, T)),
        # (c) closed form evaluations
        "cf_proj": (lambda sol, T: sol.projector(T), (sol, T)),
        "cf_basis": (lambda sol, T: sol.basis(T), (sol, T)),
        # (d) gradient descent, N steps of lr, dense and in the eigenbasis (W̃ = UᵀW0)
        "gd": (lambda flow, W0: ssldyn.simulate_gd(flow, W0, lr, N), (flow_dense, W0)),
        "gd_eig": (lambda flow, W0: flow.U @ ssldyn.simulate_gd(flow, flow.U.T @ W0, lr, N), (flow_eig, W0)),
    }, repeats=R)
    t_eigh, t_dense_build, t_cf_build = t1["eigh"], t1["dense_build"], t1["cf_build"]
    t_eig, t_dense, t_cf_proj, t_cf_basis, t_gd, t_gd_eig = (
        t2[n] for n in ("eig", "dense", "cf_proj", "cf_basis", "gd", "gd_eig"))
    traj_eig, traj_dense = t_eig["out"].check(), t_dense["out"].check()
    P_cf = np.asarray(t_cf_proj["out"], np.float64)

    def dist(W):
        W = np.asarray(W, np.float64)
        return float(np.linalg.norm(W @ W.T - P_cf))

    steps_eig = int(traj_eig.stats["num_steps"])
    steps_dense = int(traj_dense.stats["num_steps"])
    rows = []

    def row(label, name, timing, steps=None, err=None, **extra):
        per_step = timing["run_s"] / steps if steps else None
        rep.record(name, timing, steps=steps, run_per_step_s=per_step, proj_dist_vs_closed_form=err, **extra)
        rows.append((label, steps, timing["compile_s"], timing["run_s"], per_step, err))

    row("(a) eigh of S (eigenbasis flow build)", "eigenbasis_eigh", t_eigh)
    row("(a) ODE solve, eigenbasis", "eigenbasis_solve", t_eig, steps_eig, dist(traj_eig.final),
        accepted=int(traj_eig.stats["num_accepted_steps"]), rejected=int(traj_eig.stats["num_rejected_steps"]))
    row("(b) dense flow build (sym S)", "dense_build", t_dense_build)
    row("(b) ODE solve, dense", "dense_solve", t_dense, steps_dense, dist(traj_dense.final),
        accepted=int(traj_dense.stats["num_accepted_steps"]), rejected=int(traj_dense.stats["num_rejected_steps"]))
    row("(c) closed form build (eigh + graph coords)", "closed_form_build", t_cf_build)
    row("(c) closed form .projector(T)", "closed_form_projector", t_cf_proj, err=0.0)
    row("(c) closed form .basis(T)", "closed_form_basis", t_cf_basis, err=dist(t_cf_basis["out"]))
    row(f"(d) GD lax.scan, dense, lr={lr}", "gd_dense", t_gd, N, dist(t_gd["out"]))
    row(f"(d') GD lax.scan, eigenbasis, lr={lr}", "gd_eigenbasis", t_gd_eig, N, dist(t_gd_eig["out"]))

    # A check, not a timing: `simulate_gd` on an eigenbasis flow without the manual change of
    # coordinates (it does not call `to_internal`/`from_internal`).
    W_direct = ssldyn.simulate_gd(flow_eig, W0, lr, N)
    rep.record("check_simulate_gd_eigenbasis_flow_without_rotation", None, steps=N,
               proj_dist_vs_closed_form=dist(W_direct),
               note="simulate_gd(grassmann_flow(S, eigenbasis=True), W0, ...) treats W0 as eigen coordinates")

    eig_total = t_eigh["run_s"] + t_eig["run_s"]
    cf_total = t_cf_build["run_s"] + t_cf_proj["run_s"]
    ratios = {
        "dense_over_eigen_solve": t_dense["run_s"] / t_eig["run_s"],
        "dense_over_eigen_per_step": (t_dense["run_s"] / steps_dense) / (t_eig["run_s"] / steps_eig),
        "eigen_solve_over_closed_form_projector": t_eig["run_s"] / t_cf_proj["run_s"],
        "eigen_total_over_closed_form_total": eig_total / cf_total,
        "gd_dense_over_eigen_solve": t_gd["run_s"] / t_eig["run_s"],
        "gd_dense_over_dense_solve": t_gd["run_s"] / t_dense["run_s"],
        "gd_eigen_over_eigen_solve": t_gd_eig["run_s"] / t_eig["run_s"],
        "gd_dense_over_gd_eigen": t_gd["run_s"] / t_gd_eig["run_s"],
    }
    print()
    print(C.table(["path", "steps", "compile_s", "run_s", "run/step_s", "|P-P_cf|_F"], rows,
                  title=f"core_flows: d={d}, n={args.n}, k={k}, T={float(T):g} (lr {lr} x {N} steps), "
                        f"rtol={rtol:g}, atol={atol:g}; {env['device']}, {dtype_name}; best of {R}"))
    print(f"\nspectrum of S: mu_1..mu_{k + 1} = {np.array2string(mu[:k + 1], precision=3)}, "
          f"mu_d = {mu[-1]:.3f}; gap mu_k - mu_k+1 = {mu[k - 1] - mu[k]:.3g}")
    print("ratios: " + ", ".join(f"{a} = {b:.3g}" for a, b in ratios.items()))
    print(f"simulate_gd on the eigenbasis flow without the change of coordinates: |P - P_cf|_F = {dist(W_direct):.3g}")
    rep.final(ratios=ratios, eigen_total_s=eig_total, closed_form_total_s=cf_total,
              steps={"eigen": steps_eig, "dense": steps_dense, "gd": N},
              wall_s=time.perf_counter() - wall0)


if __name__ == "__main__":
    main()

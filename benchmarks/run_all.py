"""Run the ssldyn benchmark suite and write `benchmarks/RESULTS.md`.

Every benchmark script runs in its own subprocess (a clean JAX process each); its JSON lines (stdout
lines starting with `{`) are stored per device in `benchmarks/device_results/<device-slug>.jsonl`, and
`RESULTS.md` is regenerated from all stored devices, so a run on another device kind (a GPU later)
replaces only that device's section. A rerun of some scripts (`--only`) replaces only their results.
A script that fails (non-zero exit, timeout) is recorded as failed, with the tail of its stderr,
and the run goes on. Files are written atomically (temporary file + `os.replace`).

Usage:
    python benchmarks/run_all.py [--quick] [--only NAME ...] [--timeout S] [--verbose]
    python benchmarks/run_all.py --render          # only regenerate RESULTS.md from the stored results
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["core_flows", "ode_vs_networks", "scaling", "ensembles", "compile_times"]
TITLES = {
    "core_flows": "(a) core flows: closed form vs eigenbasis ODE vs dense ODE vs GD (work-precision)",
    "ode_vs_networks": "(b) ODE vs network training, the main job's sweep",
    "scaling": "(c) scaling in n, k and width",
    "ensembles": "(d) ensemble throughput, one device vs sharded",
    "compile_times": "(e) compile times per problem shape, recompilation across sweeps",
}


# --------------------------------------------------------------------------- running


def discover() -> list[str]:
    names = [p.stem for p in HERE.glob("*.py") if not p.name.startswith("_") and p.stem != "run_all"]
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


def probe_environment() -> dict:
    """Device, versions and CPU count, from a fresh subprocess (this process never imports JAX)."""
    code = ("import json, sys; sys.path.insert(0, %r); import _common as C; C.setup_precision(False); "
            "print(json.dumps(C.environment()))" % str(HERE))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"cannot import jax / ssldyn to probe the device:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def slug(device: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "unknown"


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover (not on every platform)
        return None


def run_script(name: str, quick: bool, timeout: float | None, verbose: bool) -> tuple[list[dict], dict]:
    """Run one benchmark; return (its JSON records, a run record)."""
    cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
    load0 = loadavg()
    t0 = time.perf_counter()
    cpu0 = os.times()
    # Its own session (process group), so that a timeout also ends the script's own subprocesses.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        rc = "timeout"
        err = (err or "") + f"\n[timed out after {timeout} s]"
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    wall = time.perf_counter() - t0
    cpu1 = os.times()
    if verbose:
        sys.stdout.write(out)
        sys.stderr.write(err)
    records = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    has_summary = any(r.get("kind") == "summary" for r in records)
    ok = rc == 0 and has_summary
    run = {"bench": name, "kind": "run", "ok": ok, "returncode": rc,
           "command": f"python benchmarks/{name}.py" + (" --quick" if quick else ""), "quick": quick, "wall_s": round(wall, 2),
           "children_cpu_s": round((cpu1.children_user - cpu0.children_user)
                                   + (cpu1.children_system - cpu0.children_system), 2),
           "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "loadavg_before": load0, "loadavg_after": loadavg()}
    if not ok:
        run["stderr_tail"] = err[-3000:]
        if rc == 0 and not has_summary:
            run["error"] = "exited 0 without a summary line"
    return records, run


# --------------------------------------------------------------------------- storage


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_store(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def update_store(path: Path, env: dict, new: dict[str, list[dict]]) -> None:
    """Replace the records of the benchmarks in `new` (and the environment record); keep the rest."""
    old = load_store(path)
    kept = [r for r in old if r.get("kind") != "environment" and r.get("bench") not in new]
    env_rec = {"bench": "_environment", "kind": "environment", **env}
    lines = [env_rec] + kept + [r for recs in new.values() for r in recs]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in lines))


# --------------------------------------------------------------------------- markdown


def fmt(x, digits=3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x:
            return "nan"
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            mant, exp = f"{x:.{digits - 1}e}".split("e")
            if "." in mant:
                mant = mant.rstrip("0").rstrip(".")
            return f"{mant}e{int(exp)}"
        if abs(x) >= 10 ** digits:
            return f"{x:.0f}"
        return f"{x:.{digits}g}"
    if isinstance(x, (list, tuple)):
        return "/".join(fmt(v, digits) for v in x)
    return str(x).replace("|", "\\|")


def md_table(headers, rows) -> str:
    """A markdown table; columns holding only numbers (or blanks) are right-aligned, others left-aligned."""
    def numeric(i):
        vals = [r[i] for r in rows if r[i] is not None and r[i] != ""]
        return bool(vals) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def ratio_table(ratios: dict) -> str:
    rows = [(k.replace("_", " "), v) for k, v in ratios.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return md_table(["ratio", "value"], rows) if rows else ""


def measurements(recs, name=None):
    return [r for r in recs if r.get("kind") == "measurement" and (name is None or r.get("name") == name)]


def summary_of(recs):
    return next((r for r in recs if r.get("kind") == "summary"), None)


def config_of(recs):
    return next((r for r in recs if r.get("kind") == "config"), {})


def render_core_flows(recs):
    s, cfg = summary_of(recs), config_of(recs).get("config", {})
    parts = [f"d = {cfg.get('d')}, n = {cfg.get('n')}, k = {cfg.get('k')}, T = {fmt(cfg.get('T'))}; ODE atol = 1e-3 rtol; "
             f"reference error = the eigenbasis ODE's at rtol {fmt(s.get('ref_rtol'))}: "
             f"‖P − P_cf‖_F = {fmt(s.get('reference_error'))}."]
    label = {"closed_form_build": "closed form build", "closed_form_projector": "closed form .projector(T)",
             "closed_form_basis": "closed form .basis(T)", "eigenbasis_eigh": "eigh (eigenbasis flow build)",
             "dense_build": "dense flow build", "eigenbasis_solve": "ODE eigenbasis", "dense_solve": "ODE dense",
             "gd_eigenbasis": "GD eigenbasis", "gd_dense": "GD dense"}
    rows = []
    for m in measurements(recs):
        if m["name"] not in label:
            continue
        setting = f"rtol {fmt(m['rtol'])}" if "rtol" in m else (f"lr {fmt(m['lr'])}" if "lr" in m else "")
        rows.append((label[m["name"]], setting, m.get("steps"), m.get("compile_s"), m.get("run_s"),
                     m.get("proj_dist_vs_closed_form")))
    parts.append(md_table(["path", "setting", "steps", "compile (s)", "run (s)", "‖P − P_cf‖_F"], rows))
    mc = s.get("matched_cost_s", {})
    fit = s.get("gd_fit", {})
    mrows = [("closed form, one evaluation (build amortised)", mc.get("closed_form_projector"), "measured"),
             ("closed form, build + evaluation", mc.get("closed_form_total"), "measured"),
             ("ODE eigenbasis, solve only", mc.get("eigen_solve"), "measured"),
             ("ODE eigenbasis, eigh + solve", mc.get("eigen_total"), "measured"),
             ("ODE dense", mc.get("dense_solve"), "interpolated on the rtol sweep"),
             ("GD dense", mc.get("gd_dense"), "extrapolated: {} steps".format(fmt(fit.get("gd_dense", {}).get("steps_needed")))),
             ("GD eigenbasis", mc.get("gd_eigen"), "extrapolated: {} steps".format(fmt(fit.get("gd_eig", {}).get("steps_needed"))))]
    parts.append(f"Cost to reach ‖P − P_cf‖_F ≤ {fmt(s.get('reference_error'))} (matched accuracy):\n\n"
                 + md_table(["method", "cost (s)", "how"], mrows))
    if fit:
        parts.append("GD error fit (O(lr)): " + "; ".join(
            f"{k}: {fmt(v.get('c'))} · lr^{fmt(v.get('p'))}" for k, v in fit.items()) + ".")
    parts.append(ratio_table(s.get("ratios", {})))
    return parts


def render_scaling(recs):
    s = summary_of(recs)
    parts = []
    n_rows = [(m["n"], m["m"], m["compile_s"], m["run_s"], m["steps"], m["per_step_s"], m["rhs_s"])
              for m in measurements(recs, "n_solve")]
    if n_rows:
        parts.append("In n (k = 5, h = 100, c_h = 1, t = 1, rtol 1e-6):\n\n" + md_table(
            ["n", "m = 3n", "compile (s)", "solve (s)", "steps", "s / step", "one RHS (s)"], n_rows))
    k_rows = [(m["k"], m["compile_s"], m["run_s"], m["steps"], m["per_step_s"], m["rhs_s"])
              for m in measurements(recs, "k_solve")]
    if k_rows:
        parts.append("In k:\n\n" + md_table(["k", "compile (s)", "solve (s)", "steps", "s / step", "one RHS (s)"], k_rows))
    w = measurements(recs, "width_solve")
    if w:
        rows = []
        for fs in ("1", "1/sqrt(h)"):
            ws = [m for m in w if m.get("feature_scale") == fs]
            for m in ws:
                rows.append((fs, m["width"], m["run_s"], m["steps"], m["per_step_s"], m["run_s"] / ws[0]["run_s"]))
        parts.append(f"In width (one compilation serves all {len(w)} points; the state is m × k at every width):\n\n"
                     + md_table(["c_h", "h", "solve (s)", "steps", "s / step", "solve / solve(h_min)"], rows))
    parts.append(ratio_table(s.get("ratios", {})))
    return parts


def render_ensembles(recs):
    s = summary_of(recs)
    cfg = config_of(recs).get("config", {})
    per = s.get("per_size", {})
    rows = [(int(E), v.get("plain_solves_per_s"), v.get("batching_gain_plain"), v.get("shared_kernel_solves_per_s"),
             v.get("one_device_solves_per_s"), v.get("sharded_solves_per_s"), v.get("sharded_over_one_device"),
             v.get("steps_max")) for E, v in sorted(per.items(), key=lambda kv: int(kv[0]))]
    nd = s.get("n_devices_sharded")
    parts = [f"Member: OutputFlow, m = {cfg.get('m')}, k = {cfg.get('k')}, t = 1, rtol 1e-6; sharded over {fmt(nd)} "
             f"devices (on CPU: {cfg.get('forced_devices')} forced host devices sharing the cores). Kernel scale per "
             "member (a width in [50, 200]), except the shared-kernel column: seeds only, one kernel for all members.",
             md_table(["E", "solves/s (plain process)", "gain vs E = 1", "solves/s (shared kernel)",
                       f"solves/s (1 of {fmt(nd)} devices)", "solves/s (sharded)", "sharded / 1 device", "max steps"],
                      rows)]
    comp = [(m["E"], m["variant"], m.get("process"), m["compile_s"]) for m in measurements(recs)
            if m["name"].startswith("ensemble_")]
    if comp:
        parts.append("Compile time per ensemble size:\n\n" + md_table(["E", "variant", "process", "compile (s)"], comp))
    if s.get("subprocess_error") or s.get("subprocess_note"):
        parts.append(f"Subprocess: {s.get('subprocess_error') or s.get('subprocess_note')}")
    parts.append(ratio_table(s.get("ratios", {})))
    return parts


def render_compile_times(recs):
    s = summary_of(recs)
    rows = [(m["path"], m["shape"], m["lower_s"], m["compile_s"], m["total_s"], m.get("cpu_s"))
            for m in measurements(recs, "compile")]
    parts = ["Cold compilation (`jax.clear_caches()` first), best of the repeats:\n\n"
             + md_table(["path", "shape", "trace + lower (s)", "XLA compile (s)", "total (s)", "CPU (s)"], rows)]
    sw = [(m["sweep"], m["varied"], m["calls"], m["sweep_compiles"], m["sweep_traces"], m["first_call_s"],
           m["warm_call_median_s"], m["ok"]) for m in measurements(recs, "sweep")]
    parts.append("Eager public-API sweeps (compilations counted with `jax.monitoring`; `control_*` rows must recompile):"
                 "\n\n" + md_table(["sweep", "varied", "calls", "compilations", "traces", "first call (s)",
                                    "warm call (s)", "as expected"], sw))
    parts.append(ratio_table(s.get("ratios", {})))
    return parts


def render_ode_vs_networks(recs):
    """Per cell (activation, width): the main job's timings of that cell, and the summary (`speed_summary`)."""
    s = summary_of(recs)
    parts = []
    fields = [("train_A_seconds", "train A (s)"), ("train_B_seconds", "train B (s)"),
              ("kernel_empirical_seconds", "empirical kernels (s)"), ("ode_empirical_seconds", "empirical ODE (s)"),
              ("ode_infinite_seconds", "infinite-width closed form (s)")]
    rows = [(m["activation"], m["width"], *(m.get(f) for f, _ in fields),
             (m["train_A_seconds"] + m["train_B_seconds"]) / m["ode_infinite_seconds"]
             if m.get("ode_infinite_seconds") else None)
            for m in measurements(recs, "cell")]
    if rows:
        parts.append(md_table(["activation", "h", *(label for _, label in fields), "training / closed form"], rows))
    scal = {k: v for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    parts.append(ratio_table(scal))
    return parts


def render_generic(recs):
    s = summary_of(recs)
    scal = {k: v for k, v in s.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    scal.update({k: v for k, v in s.get("ratios", {}).items() if isinstance(v, (int, float))})
    return [ratio_table(scal)]


RENDER = {"core_flows": render_core_flows, "scaling": render_scaling, "ensembles": render_ensembles,
          "compile_times": render_compile_times, "ode_vs_networks": render_ode_vs_networks}


def targets_of(name, recs):
    """[(target, measured, met)] of one benchmark: the summary's `targets`, or derived (ode_vs_networks)."""
    s = summary_of(recs)
    if s is None:
        return []
    if s.get("targets"):
        return [(t["target"], t.get("measured"), t.get("met")) for t in s["targets"]]
    if name == "ode_vs_networks" and s.get("speedup") is not None:
        thr = s.get("target", 100.0)
        out = [(f"ODE side >= {fmt(thr)}x faster than training over the sweep (`speedup`)", s["speedup"],
                s["speedup"] >= thr)]
        for k, v in s.items():
            if k.startswith("speedup_without") and isinstance(v, (int, float)):
                out.append((f"the same, `{k}`", v, v >= thr))
        return out
    return []


def render_device(path: Path) -> str:
    recs = load_store(path)
    env = next((r for r in recs if r.get("kind") == "environment"), {})
    benches = {}
    for r in recs:
        if r.get("bench", "").startswith("_"):
            continue
        benches.setdefault(r["bench"], []).append(r)
    names = [n for n in ORDER if n in benches] + sorted(n for n in benches if n not in ORDER)
    v = env.get("versions", {})
    runs = {n: next((r for r in benches[n] if r.get("kind") == "run"), {}) for n in names}
    dtypes = sorted({config_of(benches[n]).get("dtype") for n in names if config_of(benches[n]).get("dtype")})
    dates = sorted(r.get("date", "") for r in runs.values() if r.get("date"))
    out = [f"## Device: `{env.get('device', path.stem)}`", ""]
    out.append(md_table(["", ""], [
        ("last run", dates[-1] if dates else "–"),
        ("device", env.get("device")),
        ("CPU cores", env.get("cpu_count")),
        ("python", env.get("python")),
        ("jax / jaxlib", f"{v.get('jax')} / {v.get('jaxlib')}"),
        ("diffrax", v.get("diffrax")), ("equinox", v.get("equinox")), ("optax", v.get("optax")),
        ("numpy", v.get("numpy")), ("ssldyn", v.get("ssldyn")),
        ("dtype", "; ".join(dtypes) or "–"),
    ]))
    out.append("")
    out.append(md_table(["benchmark", "mode", "status", "wall (s)", "child CPU (s)", "load avg before → after", "date"], [
        (n, ("quick" if runs[n].get("quick") else "full") if runs[n] else "–",
         "ok" if runs[n].get("ok") else f"FAILED ({runs[n].get('returncode')})" if runs[n] else "–",
         runs[n].get("wall_s"), runs[n].get("children_cpu_s"),
         f"{fmt(runs[n].get('loadavg_before'))} → {fmt(runs[n].get('loadavg_after'))}" if runs[n] else "–",
         runs[n].get("date")) for n in names]))
    out.append("")
    trows = []
    for n in names:
        if not runs[n].get("ok", True):
            trows.append((n, "(benchmark failed: not measured)", None, None))
            continue
        for t, meas, met in targets_of(n, benches[n]):
            trows.append((n, t, meas, met))
    out += ["### Targets", "", md_table(["benchmark", "target", "measured", "met"], trows) if trows else "none", ""]
    for n in names:
        out += [f"### {TITLES.get(n, n)}", "", f"`{runs[n].get('command', n)}`", ""]
        run = runs[n]
        if run and not run.get("ok"):
            out += [f"**FAILED** (exit {run.get('returncode')}) after {fmt(run.get('wall_s'))} s"
                    + (f": {run['error']}" if run.get("error") else "") + ". Tail of stderr:", "", "```",
                    run.get("stderr_tail", "").rstrip(), "```", ""]
            continue
        if summary_of(benches[n]) is None:
            out += ["(no summary line)", ""]
            continue
        try:
            parts = RENDER.get(n, render_generic)(benches[n])
        except Exception as e:  # a renderer must not lose the other sections
            parts = [f"(could not render this section: {type(e).__name__}: {e})"] + render_generic(benches[n])
        for p in parts:
            if p:
                out += [p, ""]
    return "\n".join(out)


def render_all(results_dir: Path, output: Path) -> None:
    files = sorted(results_dir.glob("*.jsonl"))
    head = ["# ssldyn benchmark results", "",
            "Generated by `python benchmarks/run_all.py` from the raw JSON lines in `benchmarks/device_results/<device>.jsonl`"
            " (one file per device; a run replaces only its own device's results, and `--only` only the scripts it ran)."
            " Do not edit by hand: rerun, or `python benchmarks/run_all.py --render`. Times are wall-clock seconds,"
            " best of the repeats; ratios compare alternatives measured in the same run. Nothing here is asserted.", ""]
    if not files:
        head.append("No results stored yet.")
    body = [render_device(f) for f in files]
    atomic_write(output, "\n".join(head + body).rstrip() + "\n")


# --------------------------------------------------------------------------- main


def main(argv=None):
    all_names = discover()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to every script")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=all_names, help=f"run only these: {', '.join(all_names)}")
    p.add_argument("--timeout", type=float, default=None, help="seconds per script before it is killed (default none)")
    p.add_argument("--results-dir", type=Path, default=HERE / "device_results")
    p.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--render", action="store_true", help="only regenerate the markdown from the stored results")
    p.add_argument("--verbose", action="store_true", help="echo every script's output")
    args = p.parse_args(argv)
    if args.render:
        render_all(args.results_dir, args.output)
        print(f"wrote {args.output}")
        return 0
    names = args.only or all_names
    t_all = time.perf_counter()
    env = probe_environment()
    store = args.results_dir / f"{slug(env['device'])}.jsonl"
    print(f"device {env['device']} ({env['cpu_count']} CPUs), jax {env['versions'].get('jax')}; "
          f"{'quick' if args.quick else 'full'} run of {len(names)} scripts; results -> {store}", flush=True)
    n_failed = 0
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
        recs, run = run_script(name, args.quick, args.timeout, args.verbose)
        n_failed += not run["ok"]
        status = "ok" if run["ok"] else f"FAILED (exit {run['returncode']})"
        print(f"{status} in {run['wall_s']:.1f} s (load {fmt(run['loadavg_before'])})", flush=True)
        if not run["ok"]:
            print("    " + "\n    ".join(run.get("stderr_tail", "").strip().splitlines()[-5:]), flush=True)
        # store after every script, so an interrupted run keeps what it measured
        update_store(store, env, {name: recs + [run]})
        render_all(args.results_dir, args.output)
    print(f"wrote {args.output} ({time.perf_counter() - t_all:.0f} s in all, {n_failed} failed)", flush=True)
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())

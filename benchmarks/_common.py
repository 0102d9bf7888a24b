"""Shared helpers of the ssldyn benchmarks: environment record, timing, table and JSON-line output.

Timing protocol (JAX benchmarking guidance, see the project's design guide):

- the outermost function is jitted; it is compiled once with `jax.jit(f).lower(*args).compile()`
  and that compilation is timed on its own (`compile_s`);
- inputs are made ready (`jax.block_until_ready`) before the clock starts and the output is waited
  for before it stops, so asynchronous dispatch is never billed to the wrong call;
- the compiled executable is called `repeats` times and the best (minimum) run is reported
  (`run_s`), together with all runs (`runs_s`) so the noise of a shared machine stays visible.

Output: a human-readable table on stdout, and one JSON object per line for every measurement (each
line starts with `{"bench": ...}`, so `grep '^{' out.txt` extracts them), then a final JSON line with
the ratios. Everything printed as JSON is also written to `--json PATH` when given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np

# The repository root, so that `python benchmarks/x.py` works from a source checkout too.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


def base_parser(description: str, *, float32_flag: bool = True, repeats: int = 5) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="reduced size (finishes in well under a minute on 2 cores)")
    p.add_argument("--repeats", type=int, default=repeats, help="timed runs per measurement; the best is reported")
    if float32_flag:
        p.add_argument("--float32", action="store_true", help="run in float32 instead of float64")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON lines to this file")
    return p


def setup_precision(float32: bool) -> str:
    """Enable float64 unless `float32` is asked for; return the dtype name."""
    jax.config.update("jax_enable_x64", not float32)
    return "float32" if float32 else "float64"


def environment() -> dict:
    """Versions, device, CPU count and date of this run."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("ssldyn", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    dev = jax.devices()[0]
    return {
        "versions": versions,
        "python": platform.python_version(),
        "device": f"{dev.platform}: {dev.device_kind} x{len(jax.devices())}",
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


class Timing(dict):
    """`compile_s`, `run_s` (best), `runs_s` (all) and `out` (the output of the last run)."""


def compile_jit(fn: Callable, *args):
    """`jax.jit(fn).lower(*args).compile()`, timed: returns `(compiled, compile_s)`."""
    args = jax.block_until_ready(args)
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def time_jit(fn: Callable, *args, repeats: int = 5, budget_s: float | None = None) -> Timing:
    """Compile `jax.jit(fn)` for `args` (timed), then run it `repeats` times (best time reported).

    `budget_s`: stop repeating once the runs so far took longer than this (at least one run is always
    made); used for measurements that take many seconds each.
    """
    compiled, compile_s = compile_jit(fn, *args)
    return time_compiled(compiled, *args, repeats=repeats, budget_s=budget_s, compile_s=compile_s)


def _run_once(compiled, args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    return out, time.perf_counter() - t0


def time_compiled(compiled: Callable, *args, repeats: int = 5, budget_s: float | None = None,
                  compile_s: float = 0.0) -> Timing:
    """Time an already compiled callable (see `time_jit`)."""
    args = jax.block_until_ready(args)
    runs, out = [], None
    for _ in range(max(1, repeats)):
        out, dt = _run_once(compiled, args)
        runs.append(dt)
        if budget_s is not None and sum(runs) > budget_s:
            break
    return Timing(compile_s=compile_s, run_s=min(runs), runs_s=runs, out=out)


def run_interleaved(jobs: dict, repeats: int = 5, budget_s: float | None = None) -> dict[str, Timing]:
    """Time already compiled callables fairly on a shared, noisy machine.

    `jobs`: `{name: (compiled, args, compile_s)}`. The runs are interleaved, round `r` running each
    alternative once, so a burst of load from other processes hits all alternatives alike; the best
    run of each is reported. `budget_s` stops a job's repeats once its own runs took longer than that
    (it always runs at least once).
    """
    jobs = {name: (c, jax.block_until_ready(a), cs) for name, (c, a, cs) in jobs.items()}
    runs, outs = {name: [] for name in jobs}, {}
    for _ in range(max(1, repeats)):
        for name, (c, a, _) in jobs.items():
            if runs[name] and budget_s is not None and sum(runs[name]) > budget_s:
                continue
            outs[name], dt = _run_once(c, a)
            runs[name].append(dt)
    return {name: Timing(compile_s=jobs[name][2], run_s=min(runs[name]), runs_s=runs[name], out=outs[name])
            for name in jobs}


def time_interleaved(jobs: dict, repeats: int = 5, budget_s: float | None = None) -> dict[str, Timing]:
    """`run_interleaved` for `jobs = {name: (fn, args)}`: each function is compiled first (timed)."""
    compiled = {}
    for name, (fn, args) in jobs.items():
        c, compile_s = compile_jit(fn, *args)
        compiled[name] = (c, args, compile_s)
    return run_interleaved(compiled, repeats=repeats, budget_s=budget_s)


def time_python(fn: Callable, *args, repeats: int = 5) -> Timing:
    """Time a Python-level call (no separate compilation, e.g. one-off NumPy/host work)."""
    runs, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return Timing(compile_s=0.0, run_s=min(runs), runs_s=runs, out=out)


class Reporter:
    """Collects JSON records (printed immediately) and table rows (printed at the end)."""

    def __init__(self, bench: str, env: dict, dtype: str, args: argparse.Namespace, config: dict):
        self.bench, self.env, self.dtype = bench, env, dtype
        self.lines: list[dict] = []
        self.json_path = args.json
        header = {"bench": bench, "kind": "config", "quick": bool(args.quick), "repeats": args.repeats,
                  "dtype": dtype, **env, "config": config}
        self._emit(header)

    def _emit(self, rec: dict) -> None:
        rec = {k: _jsonable(v) for k, v in rec.items()}
        self.lines.append(rec)
        print(json.dumps(rec), flush=True)

    def record(self, name: str, timing: Timing | None = None, **fields) -> dict:
        rec = {"bench": self.bench, "kind": "measurement", "name": name, "device": self.env["device"],
               "versions": self.env["versions"], "dtype": fields.pop("dtype", self.dtype)}
        if timing is not None:
            rec.update(compile_s=timing["compile_s"], run_s=timing["run_s"], runs_s=timing["runs_s"])
        rec.update(fields)
        self._emit(rec)
        return rec

    def final(self, **fields) -> dict:
        rec = {"bench": self.bench, "kind": "summary", "device": self.env["device"], "dtype": self.dtype,
               "versions": self.env["versions"], "date": self.env["date"], **fields}
        self._emit(rec)
        if self.json_path is not None:
            self.json_path.write_text("".join(json.dumps(r) + "\n" for r in self.lines))
        return rec


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.generic, jax.Array, np.ndarray)):
        a = np.asarray(x)
        return a.item() if a.ndim == 0 else a.tolist()
    if isinstance(x, float):
        return float(f"{x:.6g}")
    return x


def table(headers: Sequence[str], rows: Sequence[Sequence], title: str | None = None) -> str:
    """A plain-text table (right-aligned numbers)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    sep = "  "
    out = []
    if title:
        out.append(title)
    out.append(sep.join(str(h).rjust(w) for h, w in zip(headers, widths)))
    out.append(sep.join("-" * w for w in widths))
    for r in cells:
        out.append(sep.join(c.rjust(w) for c, w in zip(r, widths)))
    return "\n".join(out)


def _fmt(c) -> str:
    if c is None:
        return "-"
    if isinstance(c, (float, np.floating)):
        c = float(c)
        if c == 0.0:
            return "0"
        if abs(c) >= 1e4 or abs(c) < 1e-3:
            return f"{c:.2e}"
        return f"{c:.4g}"
    return str(c)

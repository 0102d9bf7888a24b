"""Experiment runner: cells → results.json (atomic, resumable) → figures → report.md.

An experiment is an `Experiment` record of plain functions. The runner owns everything that is
the same for every reproduction: configuration and overrides, the progress bar, saving each finished
cell atomically (so an interrupted run loses nothing and a rerun with the same output directory
resumes), the environment record (versions, device, dtype), figures as PNG and PDF, and `report.md`.

Layout of `results.json`:

    {"experiment": NAME, "paper": ..., "config": {...}, "environment": {...},
     "cells": {CELL_ID: {"cell": {...}, "records": [{...}, ...], "seconds": float,
                         "compiles": int, "compile_seconds": float}, ...},
     "claims": [{"claim": str, "measured": str, "reproduced": bool | null}, ...],
     "status": "running" | "complete"}
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._profiling import COMPILES


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproduction.

    **Fields:**
    - `name`: CLI name, e.g. `"esser-mnist"`.
    - `summary`: one line on what it shows.
    - `paper`: the source paper (citation).
    - `config_cls`: a frozen dataclass whose defaults are the full protocol; it may define `dtype`
      (`"float64"` enables JAX's 64-bit mode before anything runs).
    - `quick`: field overrides for `--quick`.
    - `prepare(config) -> context`: shared, deterministic setup (data, kernels), recomputed on resume.
    - `cells(config) -> list[dict]`: JSON-able cell descriptions, each with a unique `"id"` and a
      `"kind"` naming its entry in `cell_kinds`.
    - `cell_kinds`: `{kind: run(config, context, cell) -> list[dict]}`, the records of one cell
      (JSON-able); the runner dispatches on `cell["kind"]`.
    - `claims`: claim functions `(config, records) -> Claim | None` (see `ssldyn.experiments.Claim`).
    - `report(config, context, records, out_dir) -> str`: draws the figures into `out_dir` and returns
      the Markdown body of `report.md` (the claims table is rendered by the runner).
    - `order`: position in `ssldyn list` and the README table (then by name; the main job is 0).
    - `validate(config)`: optional check of the whole configuration (raise `ValueError`/`TypeError`
      naming the field); `run_experiment` calls it before anything is written or computed, so a bad
      value is refused at once rather than after hours of cells. `from_namespace` picks up a module
      function called `validate_config`.
    """

    name: str
    summary: str
    paper: str
    config_cls: type
    quick: dict
    prepare: Callable[[Any], Any]
    cells: Callable[[Any], list[dict]]
    cell_kinds: dict = dataclasses.field(default_factory=dict)
    claims: tuple = ()
    report: Callable[[Any, Any, list[dict], Path], str] | None = None
    order: int = 100
    # transitional: experiments not yet on the kit pass their own if-chain and claim dicts
    run_cell: Callable[[Any, Any, dict], list[dict]] | None = None
    finalize: Callable[[Any, Any, list[dict], Path], tuple[list[dict], str]] | None = None
    validate: Callable[[Any], None] | None = None

    @classmethod
    def from_namespace(cls, namespace: dict, **fields) -> Experiment:
        """An experiment from a module's conventional names: `Config`, `QUICK`, `prepare`, `cells`,
        `CELL_KINDS`, `CLAIMS` and `report` (pass `globals()`); `fields` give the rest (`name`,
        `summary`, `paper`, `order`) and may override any of them."""
        names = {"config_cls": "Config", "quick": "QUICK", "prepare": "prepare", "cells": "cells",
                 "cell_kinds": "CELL_KINDS", "claims": "CLAIMS", "report": "report", "validate": "validate_config"}
        kw = {field: namespace[name] for field, name in names.items() if name in namespace and field not in fields}
        return cls(**kw, **fields)

    def dispatch(self, config, context, cell: dict) -> list[dict]:
        """The records of one cell, from the function registered for its kind."""
        if self.run_cell is not None:
            return self.run_cell(config, context, cell)
        kind = cell.get("kind")
        if kind not in self.cell_kinds:
            raise ValueError(f"experiment {self.name!r}: cell {cell.get('id')!r} has kind {kind!r}; "
                             f"known kinds: {', '.join(self.cell_kinds)}")
        return self.cell_kinds[kind](config, context, cell)

    def run_size(self, config) -> dict:
        """How `config` relates to the paper's protocol (the config's defaults) and to `--quick`.

        A run is *reduced* when a setting that `--quick` shrinks differs from the protocol; its label is
        `"quick"` when those settings are exactly `--quick`'s, `"reduced"` otherwise, and `"full"` when
        none differs (other settings, e.g. the seed, do not change the size).
        **Returns:** `{"label", "reduced", "changed": {setting: [value, protocol value]}}`."""
        protocol = self.config_cls()
        changed = {k: [getattr(config, k), getattr(protocol, k)] for k in self.quick
                   if getattr(config, k) != getattr(protocol, k)}
        if not changed:
            label = "full"
        elif all(getattr(config, k) == v for k, v in self.quick.items()):
            label = "quick"
        else:
            label = "reduced"
        return {"label": label, "reduced": bool(changed), "changed": changed}

    def finish(self, config, context, records: list[dict], out_dir: Path) -> tuple[list[dict], str]:
        """Claims (as result records) and the report body from all records."""
        from ._kit import evaluate_claims

        if self.finalize is not None:
            return self.finalize(config, context, records, out_dir)
        claims = evaluate_claims(self.claims, config, records, reduced=self.run_size(config)["reduced"])
        body = self.report(config, context, records, out_dir) if self.report is not None else ""
        return [c.to_record() for c in claims], body


def to_jsonable(x):
    """Convert numpy/JAX scalars and arrays (and nested containers) to JSON types."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_jsonable(dataclasses.asdict(x))
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return to_jsonable(np.asarray(x).tolist())
    if isinstance(x, float) and not np.isfinite(x):
        return None if np.isnan(x) else (1e308 if x > 0 else -1e308)
    return x


def _file_mode() -> int:
    """0o666 minus the process umask: the mode `open()` would give a new file (`mkstemp` gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (temporary file in the same directory, then rename); the file
    gets the usual mode (0644 under the common umask 022), not `mkstemp`'s 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1, sort_keys=False) + "\n")


def save_figure(fig, out_dir: Path, name: str) -> list[str]:
    """Save a matplotlib figure as `name.png` and `name.pdf` (atomically); return the file names."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    names = []
    for ext in ("png", "pdf"):
        target = out_dir / f"{name}.{ext}"
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=f".{ext}")
        os.close(fd)
        fig.savefig(tmp, dpi=130, bbox_inches="tight", format=ext)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
        names.append(target.name)
    plt.close(fig)
    return names


def environment() -> dict:
    """Versions, device and dtype of this run."""
    import importlib.metadata as md

    import jax

    versions = {}
    for pkg in ("ssldyn", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy", "matplotlib", "mlxtend"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    devices = jax.devices()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": f"{devices[0].platform}: {devices[0].device_kind} x{len(devices)}",
        "x64": bool(jax.config.jax_enable_x64),
        "default_float": "float64" if jax.config.jax_enable_x64 else "float32",
        "cpu_count": os.cpu_count(),
        "compile_cache": jax.config.jax_compilation_cache_dir or None,
    }


def parse_overrides(config_cls: type, items: list[str] | None) -> dict:
    """Parse `key=value` strings into typed overrides for `config_cls` (comma-separated tuples)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ValueError(f"unknown configuration field {key!r}; known: {', '.join(sorted(fields))}")
        default = fields[key].default
        if default is dataclasses.MISSING and fields[key].default_factory is not dataclasses.MISSING:
            default = fields[key].default_factory()
        out[key] = _convert(raw, default, key)
    return out


def _convert(raw: str, default, key: str):
    def scalar(text: str, like):
        if isinstance(like, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{key}: expected true/false, got {text!r}")
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, tuple):  # tuple of tuples, e.g. digit pairs "0-1,4-9"
            return tuple(int(p) for p in text.split("-"))
        return text

    try:
        if isinstance(default, tuple):
            like = default[0] if default else ""
            return tuple(scalar(p.strip(), like) for p in raw.split(",") if p.strip())
        return scalar(raw.strip(), default)
    except ValueError as err:
        raise ValueError(f"bad value for {key!r}: {err}") from err


_COUNT_PREFIXES = ("n_",)
_COUNT_SUFFIXES = ("_steps", "_saves", "_save", "_batch", "_size", "_samples", "_every", "_order", "_width",
                   "_inits", "_per_class")
_COUNT_NAMES = {"n_seeds", "epochs", "batch_size", "n_save"}
_POSITIVE_FLOATS = ("lr", "rtol", "atol", "temperature")


def int_minimum(name: str) -> int:
    """The least value the generic check accepts for an int setting, by naming convention: a count
    (`n_*`, `*_steps`, `*_saves`, `*_batch`, `*_size`, `*_samples`, `*_every`, `*_order`, `*_width`,
    `*_inits`, `*_per_class`, `epochs`, `batch_size`) is ≥ 1; every other int (a seed, a shift, an offset,
    a dimension or a number of seeds of one arm, which the experiment's `validate` bounds) is ≥ 0."""
    if name in _COUNT_NAMES or name.startswith(_COUNT_PREFIXES) or name.endswith(_COUNT_SUFFIXES):
        return 1
    return 0


def _must_be_positive(name: str) -> bool:
    """Floats named `lr`, `*_lr`, `rtol`, `atol`, `*_rtol`, `*_atol`, `temperature`, `*_temperature` are > 0."""
    return any(name == p or name.endswith("_" + p) for p in _POSITIVE_FLOATS)


def _type_name(like) -> str:
    if isinstance(like, bool):
        return "a bool (true/false)"
    if isinstance(like, int):
        return "an int"
    if isinstance(like, float):
        return "a finite number"
    if isinstance(like, str):
        return "a string"
    return f"a {type(like).__name__}"


def _check_value(name: str, value, like, where: str) -> None:
    """Raise unless `value` has the type of the default `like` (recursively for tuples)."""
    what = f"configuration field `{name}`{where}"
    if isinstance(like, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{what} must be true or false, got {value!r}")
    elif isinstance(like, (int, np.integer)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{what} must be an int, got {value!r}")
        if not where and value < int_minimum(name):
            raise ValueError(f"{what} must be an int >= {int_minimum(name)}, got {value!r}")
        if where and value < 0:
            raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    elif isinstance(like, (float, np.floating)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{what} must be a number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"{what} must be a finite number, got {value!r}")
        if not where and _must_be_positive(name) and value <= 0:
            raise ValueError(f"{what} must be positive, got {value!r}")
    elif isinstance(like, str):
        if not isinstance(value, str):
            raise TypeError(f"{what} must be a string, got {value!r}")
    elif isinstance(like, tuple):
        if not isinstance(value, (tuple, list)):
            raise TypeError(f"{what} must be a tuple, got {value!r}")
        if not value:
            raise ValueError(f"{what} must not be empty")
        if not like:
            return
        if len({type(x) for x in like}) > 1:  # a record, e.g. (J, sigma_x2, kappa, e): position by position
            if len(value) != len(like):
                raise ValueError(f"{what} must have {len(like)} entries like {like!r}, got {value!r}")
            for i, (item, lx) in enumerate(zip(value, like)):
                _check_value(name, item, lx, f"{where}[{i}]")
            return
        for i, item in enumerate(value):
            _check_value(name, item, like[0], f"{where}[{i}]")


def check_config(config) -> None:
    """The generic check of every setting, derived from the config dataclass's defaults: a setting has
    the type of its default (bools are bools, ints are ints, floats are finite numbers, strings are
    strings, tuples are non-empty tuples whose items have the type of the default's items); ints are
    ≥ 1 for counts and ≥ 0 otherwise (`int_minimum`); `lr`, `rtol`, `atol`, `temperature` (and
    `*_lr`, ...) are > 0. Ranges that depend on the experiment are its `validate`'s job.
    Raises `TypeError`/`ValueError` naming the field."""
    for field in dataclasses.fields(config):
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        if default is dataclasses.MISSING or default is None:
            continue
        _check_value(field.name, getattr(config, field.name), default, "")


def make_config(exp: Experiment, *, quick: bool = False, seed: int | None = None, overrides: dict | None = None):
    kw = dict(exp.quick) if quick else {}
    if seed is not None:
        if "seed" not in {f.name for f in dataclasses.fields(exp.config_cls)}:
            raise ValueError(f"experiment {exp.name!r} has no `seed` setting")
        kw["seed"] = seed
    kw.update(overrides or {})
    return exp.config_cls(**kw)


def run_experiment(
    exp: Experiment,
    config,
    out_dir: str | os.PathLike,
    *,
    progress: bool = True,
    fresh: bool = False,
    max_cells: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) an experiment and write `results.json`, figures and `report.md` in `out_dir`.

    **Arguments:**
    - `exp`, `config`: the experiment and its configuration (`make_config`).
    - `out_dir`: output directory; if it holds a `results.json` of the same experiment and
      configuration, finished cells are kept and only missing cells run.
    - `progress`: show a progress bar over cells.
    - `fresh`: ignore existing results in `out_dir`.
    - `max_cells`: stop after this many new cells (for testing interruption); the report is not written.

    **Returns:** the results dictionary (as written to `results.json`).

    Refused before anything is written: a configuration that `check_config` (types and signs of every
    setting, from the dataclass's defaults) or `exp.validate` rejects, an `out_dir` that
    is an existing file or cannot be created. A directory created by this call is removed again if
    the run fails before anything was saved in it. A stored cell without records is recomputed.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"`config` must be a {exp.config_cls.__name__} instance (see `make_config`), "
                        f"got {type(config).__name__}.")
    dtype = getattr(config, "dtype", None)
    if dtype is not None and dtype not in ("float32", "float64"):
        raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}")
    check_config(config)  # every setting's type and sign, from the dataclass's defaults
    if exp.validate is not None:
        exp.validate(config)  # the whole configuration, before anything is written or computed
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output directory (--out) {out} is an existing file, not a directory")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the output directory (--out) {out}: {err.strerror or err}") from err
    try:
        return _run(exp, config, out, dtype, progress=progress, fresh=fresh, max_cells=max_cells, log=log)
    except BaseException:
        # A refused configuration (or a failure before the first cell was saved) leaves no empty directory.
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _stored_ok(stored) -> bool:
    """A stored cell is usable when it holds a non-empty list of records."""
    return isinstance(stored, dict) and isinstance(stored.get("records"), list) and len(stored["records"]) > 0


def _run(exp, config, out: Path, dtype, *, progress, fresh, max_cells, log) -> dict:
    import jax

    if dtype is not None:
        jax.config.update("jax_enable_x64", dtype == "float64")
    cfg = to_jsonable(dataclasses.asdict(config))
    path = out / "results.json"
    results = None
    if path.exists() and not fresh:
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON ({err}); remove it or pass --fresh") from err
        if not isinstance(old, dict) or not isinstance(old.get("cells", {}), dict):
            raise ValueError(f"{path} is not an ssldyn results file; remove it, pass --fresh or use another --out")
        if old.get("experiment") != exp.name:
            raise ValueError(f"{path} holds results of {old.get('experiment')!r}, not {exp.name!r}; use another --out")
        if old.get("config") != cfg:
            diff = sorted(k for k in set(cfg) | set(old.get("config", {})) if cfg.get(k) != old.get("config", {}).get(k))
            raise ValueError(
                f"{path} was made with a different configuration (fields: {', '.join(diff)}); "
                "use another --out, or --fresh to overwrite"
            )
        results = old
    if results is None:
        results = {"experiment": exp.name, "paper": exp.paper, "summary": exp.summary, "config": cfg,
                   "cells": {}, "claims": [], "status": "running"}
    results["environment"] = environment()
    results["started"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    cells = exp.cells(config)
    ids = [c["id"] for c in cells]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"experiment {exp.name!r}: the configuration gives duplicate cells {dup[:5]} "
                         "(a tuple setting with a repeated value?)")
    results.setdefault("cells", {})
    for c in cells:
        stored = results["cells"].get(c["id"])
        if stored is not None and not _stored_ok(stored):
            what = "no records" if not (isinstance(stored, dict) and stored.get("records")) else "damaged records"
            log(f"recomputing cell {c['id']}: its stored result in {path} has {what}")
            del results["cells"][c["id"]]
    todo = [c for c in cells if c["id"] not in results["cells"]]
    if len(todo) < len(cells):
        log(f"resuming: {len(cells) - len(todo)} of {len(cells)} cells already in {path}")
    t_prep, c_prep = time.perf_counter(), COMPILES.snapshot()
    context = exp.prepare(config)
    results["prepare_seconds"] = time.perf_counter() - t_prep
    results["prepare_compiles"], results["prepare_compile_seconds"] = COMPILES.since(c_prep)
    results["prepare_compile_cache_hits"] = COMPILES.cache_hits_since(c_prep)

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=exp.name, unit="cell", dynamic_ncols=True)
    done_new = 0
    try:
        for cell in todo:
            if max_cells is not None and done_new >= max_cells:
                break
            if bar is not None:
                bar.set_postfix_str(cell["id"][:40])
            t0, c0 = time.perf_counter(), COMPILES.snapshot()
            records = exp.dispatch(config, context, cell)
            n_comp, s_comp = COMPILES.since(c0)
            results["cells"][cell["id"]] = {"cell": cell, "records": records, "seconds": time.perf_counter() - t0,
                                            "compiles": n_comp, "compile_seconds": s_comp,
                                            "compile_cache_hits": COMPILES.cache_hits_since(c0)}
            atomic_write_json(path, results)
            done_new += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if any(c["id"] not in results["cells"] for c in cells):
        results["status"] = "running"
        atomic_write_json(path, results)
        return results

    records = [r for c in cells for r in results["cells"][c["id"]]["records"]]
    results["run_size"] = to_jsonable(exp.run_size(config))
    claims, body = exp.finish(config, context, records, out)
    results["claims"] = claims
    results["status"] = "complete"
    results["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(path, results)
    atomic_write_text(out / "report.md", render_report(exp, results, body, out))
    return results


def run_totals(results: dict) -> tuple[float, int, float]:
    """`(seconds, compilations, compile seconds)` of a run's setup and all its stored cells."""
    cells = results["cells"].values()
    return (results.get("prepare_seconds", 0.0) + sum(c["seconds"] for c in cells),
            results.get("prepare_compiles", 0) + sum(c.get("compiles", 0) for c in cells),
            results.get("prepare_compile_seconds", 0.0) + sum(c.get("compile_seconds", 0.0) for c in cells))


def _cache_note(results: dict) -> str:
    """Report text on the persistent compilation cache: how many of the programs were loaded from it."""
    where = results["environment"].get("compile_cache")
    if not where:
        return "; no persistent compilation cache"
    hits = results.get("prepare_compile_cache_hits", 0) + sum(
        c.get("compile_cache_hits", 0) for c in results["cells"].values())
    return (f"; persistent compilation cache {where}: {hits} of the programs were loaded from it (their seconds are "
            "load times), the others compiled and stored")


def _verdict(claim: dict) -> str:
    if "verdict" in claim:
        return "**no**" if claim["verdict"] == "no" else claim["verdict"]
    return {True: "yes", False: "**no**", None: "partly / not testable"}.get(claim["reproduced"], "?")


def _short(value) -> str:
    """A setting's value in a report line: tuples and lists in brackets, long ones cut."""
    text = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def render_report(exp: Experiment, results: dict, body: str, out: Path) -> str:
    env = results["environment"]
    from ._kit import REDUCED_NOTE

    lines = [f"# {exp.name}: reproduction report", ""]
    size = results.get("run_size")
    if size and size["reduced"]:
        changed = ", ".join(f"`{k}` = {_short(v)} (protocol {_short(p)})" for k, (v, p) in size["changed"].items())
        n_full = sum(1 for c in results["claims"] if REDUCED_NOTE in c.get("measured", ""))
        lines += [
            f"> **{'Quick' if size['label'] == 'quick' else 'Reduced'} run, not the paper's protocol.** Smaller than "
            f"the protocol in: {changed}. {n_full} claim(s) are defined at the full protocol only and are marked "
            "\"not testable\" here; the other verdicts are for this run size. `ssldyn run "
            f"{exp.name}` runs the protocol.",
            "",
        ]
    lines += [
        f"**Paper.** {exp.paper}",
        "",
        f"**What it shows.** {exp.summary}",
        "",
        "## Claims",
        "",
        "| claim | measured | criterion (fixed before the run) | reproduced |",
        "|---|---|---|---|",
    ]
    for c in results["claims"]:
        lines.append(f"| {c['claim']} | {c['measured']} | {c.get('criterion', '')} | {_verdict(c)} |")
    lines += ["", body.strip(), "", "## Figures", ""]
    for fig in sorted(p.name for p in out.glob("*.png")):
        lines.append(f"![{fig}]({fig})")
    total = sum(c["seconds"] for c in results["cells"].values())
    _, n_comp, s_comp = run_totals(results)
    lines += [
        "",
        "## Run",
        "",
        f"- cells: {len(results['cells'])}, cell time {total:.1f} s, setup {results.get('prepare_seconds', 0):.1f} s",
        f"- XLA compilations: {n_comp} programs, {s_comp:.1f} s of compiling (setup and cells; counted from JAX's "
        "compilation events; after a resume: the stored cells' counts plus this run's setup)" + _cache_note(results),
        f"- device: {env['device']}; default float: {env['default_float']}; CPUs: {env['cpu_count']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v),
        f"- configuration: `{json.dumps(results['config'])}`",
        "",
    ]
    return "\n".join(lines)

"""Command line: `ssldyn list` and `ssldyn run NAME [--quick] [--out DIR] [--seed N] [--set k=v ...]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssldyn", description="Learning dynamics of self-supervised learning: reproductions.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the reproductions")
    run = sub.add_parser("run", help="run (or resume) a reproduction")
    run.add_argument("name", help="experiment name (see `ssldyn list`)")
    run.add_argument("--quick", action="store_true", help="reduced grid (about a minute on 2 CPU cores)")
    run.add_argument("--out", type=Path, default=None, help="output directory (default results/NAME/)")
    run.add_argument("--seed", type=int, default=None, help="base random seed")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a configuration field (repeatable; tuples comma-separated)")
    run.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--compile-cache", default=None, metavar="DIR",
                     help="JAX's persistent compilation cache, so that reruns and resumed runs load their compiled "
                          "programs instead of compiling them again (default: $SSLDYN_COMPILE_CACHE, else "
                          "~/.cache/ssldyn/xla; 'off' disables; a JAX_COMPILATION_CACHE_DIR you set is kept)")
    show = sub.add_parser("config", help="print an experiment's default configuration")
    show.add_argument("name")
    show.add_argument("--quick", action="store_true")
    return p


def _error(message) -> int:
    """Print one line `ssldyn: error: ...` on stderr and return the usage-error status 2."""
    text = " ".join(str(message).split())
    print(f"ssldyn: error: {text}", file=sys.stderr)
    return 2


def _interrupted(out: Path | None) -> int:
    """What was saved when the run was interrupted (Ctrl-C), and how to resume; exit status 130."""
    import json

    saved = "nothing was saved yet"
    path = None if out is None else out / "results.json"
    if path is not None and path.is_file():
        try:
            cells = json.loads(path.read_text()).get("cells", {})
            saved = f"{len(cells)} finished cell(s) are saved in {path}"
        except (OSError, ValueError, AttributeError):
            saved = f"the results saved so far are in {path}"
    print(f"\nssldyn: interrupted: {saved}; rerun the same command (same --out) to resume.", file=sys.stderr)
    return 130


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":  # before anything compiles: JAX decides once per process whether to use the cache
        from .experiments._profiling import configure_compile_cache, default_compile_cache

        try:
            configure_compile_cache(args.compile_cache if args.compile_cache is not None else default_compile_cache())
        except OSError as err:
            return _error(f"--compile-cache: cannot create {err.filename or args.compile_cache}: {err.strerror or err}")
    from .experiments import REGISTRY, get_experiment, make_config, parse_overrides, run_experiment

    if args.command == "list":
        width = max(len(n) for n in REGISTRY.names())
        for name in REGISTRY.names():
            exp = REGISTRY[name]
            print(f"{name:<{width}}  {exp.summary}\n{'':<{width}}  [{exp.paper}]")
        return 0
    out = None
    try:
        exp = get_experiment(args.name)
        if args.command == "config":
            import dataclasses
            import json

            print(json.dumps(dataclasses.asdict(make_config(exp, quick=args.quick)), indent=1))
            return 0
        config = make_config(exp, quick=args.quick, seed=args.seed, overrides=parse_overrides(exp.config_cls, args.overrides))
        out = args.out if args.out is not None else Path("results") / exp.name
        results = run_experiment(exp, config, out, progress=not args.no_progress, fresh=args.fresh)
    except KeyboardInterrupt:
        return _interrupted(out)
    except (ValueError, TypeError, ArithmeticError) as err:  # ArithmeticError: a run that diverged (names the cause)
        return _error(err)
    except RuntimeError as err:
        from . import SolveError

        if not isinstance(err, SolveError):
            raise
        return _error(err)
    except OSError as err:  # e.g. a data folder that cannot be read, a full disk
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        return _error(f"{err.strerror or err}{where}")
    print(f"\n{exp.name}: results in {out}/ (results.json, report.md, figures)")
    size = results.get("run_size") or {}
    if size.get("reduced"):
        print(f"  {size['label']} run, smaller than the paper's protocol in: {', '.join(size['changed'])}; claims "
              "defined at the full protocol only are NOT TESTABLE here")
    for c in results["claims"]:
        mark = {"yes": "REPRODUCED", "no": "NOT REPRODUCED", "partly": "PARTLY", "not testable": "NOT TESTABLE"}.get(
            c.get("verdict"), {True: "REPRODUCED", False: "NOT REPRODUCED", None: "PARTLY"}.get(c["reproduced"], "?"))
        print(f"  [{mark}] {c['claim']}\n      measured: {c['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

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
    show = sub.add_parser("config", help="print an experiment's default configuration")
    show.add_argument("name")
    show.add_argument("--quick", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from .experiments import REGISTRY, get_experiment, make_config, parse_overrides, run_experiment

    if args.command == "list":
        width = max(len(n) for n in REGISTRY.names())
        for name in REGISTRY.names():
            exp = REGISTRY[name]
            print(f"{name:<{width}}  {exp.summary}\n{'':<{width}}  [{exp.paper}]")
        return 0
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
    except (ValueError, TypeError) as err:
        print(f"ssldyn: error: {err}", file=sys.stderr)
        return 2
    print(f"\n{exp.name}: results in {out}/ (results.json, report.md, figures)")
    for c in results["claims"]:
        mark = {True: "REPRODUCED", False: "NOT REPRODUCED", None: "PARTLY"}.get(c["reproduced"], "?")
        print(f"  [{mark}] {c['claim']}\n      measured: {c['measured']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

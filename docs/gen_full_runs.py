"""Record full-protocol runs and write the README's table of full-run verdicts.

    python docs/gen_full_runs.py [OUT_DIR ...]    # add runs, then rewrite the README table
    python docs/gen_full_runs.py --check          # exit 1 if the README table is out of date

Each OUT_DIR is the `--out` folder of an `ssldyn run NAME` (no `--quick`). A run is recorded only
when its `results.json` is complete and its `run_size` says it is not reduced, i.e. the verdicts are
those of the paper's protocol as ssldyn defines it. The record (`docs/full_runs.json`, committed)
keeps per experiment: the date, the run's cell + setup time, its compilations, the device, the
ssldyn version, and each claim with its verdict and criterion; a later run of the same experiment
replaces the earlier one. The README table between the markers
`<!-- full-run verdicts -->` and `<!-- end full-run verdicts -->` is generated from the record
(`tests/test_kit.py` checks that it is up to date); every registered experiment appears, those
without a recorded full run say so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "docs" / "full_runs.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- full-run verdicts -->", "<!-- end full-run verdicts -->"


def load_record(path: Path = RECORD) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def entry_from_results(results: dict) -> dict:
    """The record of one finished full run (ValueError when the run is incomplete or reduced)."""
    name = results.get("experiment", "?")
    if results.get("status") != "complete":
        raise ValueError(f"{name}: the run is not complete (status {results.get('status')!r})")
    size = results.get("run_size") or {}
    if size.get("reduced", True):
        raise ValueError(f"{name}: a reduced run ({size.get('label', 'unknown size')}) is not a full-protocol run")
    sys.path.insert(0, str(ROOT))
    from ssldyn.experiments._runner import run_totals

    seconds, compiles, _ = run_totals(results)
    env = results["environment"]
    return {
        "finished": results.get("finished"),
        "seconds": round(seconds, 1),
        "compiles": compiles,
        "device": f"{env['device']}, {env['cpu_count']} CPU cores",
        "ssldyn": env["versions"].get("ssldyn"),
        "claims": [{"claim": c["claim"], "verdict": c.get("verdict") or str(c.get("reproduced")),
                    "criterion": c.get("criterion", "")} for c in results["claims"]],
    }


def render(record: dict, names: list[str]) -> str:
    """Markdown: one row per claim of every experiment in `names` (the registry's order)."""
    lines = [BEGIN, "", "| reproduction | claim | verdict in the full run |", "|---|---|---|"]
    for name in names:
        e = record.get(name)
        if e is None:
            lines.append(f"| `{name}` | (no full-protocol run recorded yet; `--quick` reports only) | – |")
            continue
        for i, c in enumerate(e["claims"]):
            first = f"`{name}` ({e['finished'][:10]}, {e['seconds'] / 60:.1f} min)" if i == 0 else ""
            lines.append(f"| {first} | {c['claim']} | {c['verdict']} |")
    lines += ["", END]
    return "\n".join(lines)


def _names() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from ssldyn.experiments import REGISTRY

    return REGISTRY.names()


def readme_section() -> str:
    """The table as it should stand in the README now."""
    return render(load_record(), _names())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="--out folders of full runs")
    p.add_argument("--check", action="store_true", help="only check that the README is up to date")
    args = p.parse_args(argv)
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md lacks the markers {BEGIN} / {END}", file=sys.stderr)
        return 1
    if args.check:
        ok = readme_section() in text
        print("README full-run table up to date" if ok else "README full-run table out of date")
        return 0 if ok else 1
    record = load_record()
    for out in args.runs:
        results = json.loads((out / "results.json").read_text())
        try:
            record[results["experiment"]] = entry_from_results(results)
        except ValueError as err:
            print(f"skipped {out}: {err}", file=sys.stderr)
            continue
        print(f"recorded {results['experiment']} from {out}")
    RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(head + render(record, _names()) + tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

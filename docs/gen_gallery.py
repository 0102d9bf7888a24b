"""Generate the reproductions gallery of the documentation site.

    python docs/gen_gallery.py [NAME ...] [--work DIR] [--max-width PX]

For each reproduction (default: every registered one) this runs

    ssldyn run NAME --quick --out WORK/NAME

one after the other, copies the PNG figures (only PNG; recompressed as 256-colour palette PNGs and
downscaled to at most --max-width pixels) to `docs/gallery/NAME/`, and writes `docs/gallery/NAME.md`
from the run's `results.json` and `report.md`: command, paper, claims table, the report's text,
figures and the run record. The pages say that they show a quick run.

WORK defaults to a fresh temporary directory. Passing an existing WORK reuses finished runs there
(`ssldyn run` resumes from `results.json`), so the pages can be rewritten without rerunning.
The outputs are committed; the documentation build never runs an experiment.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
GALLERY = DOCS / "gallery"
NAMES = ("esser-mnist", "directpred", "wen-li-head", "wen-li-sparse", "barlow-stepwise", "dimensional-collapse",
         "simvae", "hssl")


def _ssldyn() -> list[str]:
    exe = Path(sys.executable).with_name("ssldyn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ssldyn.cli"]


def run_quick(name: str, out: Path) -> dict:
    """Run (or resume) the quick protocol of `name` into `out`; return its results.json."""
    results = out / "results.json"
    if results.exists() and json.loads(results.read_text()).get("status") == "complete":
        print(f"[gallery] {name}: reusing the finished run in {out}", flush=True)
    else:
        print(f"[gallery] {name}: ssldyn run {name} --quick --out {out}", flush=True)
        subprocess.run([*_ssldyn(), "run", name, "--quick", "--out", str(out)], check=True)
    return json.loads(results.read_text())


def compress_png(src: Path, dst: Path, max_width: int) -> int:
    """Write `src` as a palette PNG of at most `max_width` pixels wide to `dst`; return its size."""
    from PIL import Image

    with Image.open(src) as img:
        img = img.convert("RGB")
        if img.width > max_width:
            img = img.resize((max_width, round(img.height * max_width / img.width)), Image.LANCZOS)
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            dst, format="PNG", optimize=True)
    return dst.stat().st_size


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _verdict(claim: dict) -> str:
    if "verdict" in claim:
        return "**no**" if claim["verdict"] == "no" else _cell(claim["verdict"])
    return {True: "yes", False: "**no**", None: "partly / not testable"}.get(claim.get("reproduced"), "?")


def _sections(report: str) -> tuple[str, str]:
    """The report's own text (between the claims table and `## Figures`) and its `## Run` section."""
    lines = report.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("## Claims")), 0)
    i = start + 1
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("|")):
        i += 1
    figures = next((j for j in range(i, len(lines)) if lines[j].startswith("## Figures")), len(lines))
    run = next((j for j in range(figures, len(lines)) if lines[j].startswith("## Run")), len(lines))
    body = "\n".join(lines[i:figures]).strip()
    # figure references of the report point into the run directory; the gallery lists figures itself
    body = re.sub(r"!\[[^\]]*\]\([^)]*\)\n?", "", body)
    return body, "\n".join(lines[run + 1:]).strip()


def write_page(name: str, results: dict, report: str, figures: list[str]) -> str:
    from ssldyn.experiments import REGISTRY

    exp = REGISTRY[name]
    notebook = name.replace("-", "_") + ".ipynb"
    body, run = _sections(report)
    n_yes = sum(c.get("reproduced") is True for c in results["claims"])
    out = [
        f"# {name}",
        "",
        f"**What it shows.** {exp.summary}",
        "",
        f"**Paper.** {results.get('paper', exp.paper)}",
        "",
        '!!! note "Quick run"',
        f"    The numbers and figures on this page come from the **quick** protocol "
        f"(`ssldyn run {name} --quick`), a reduced grid that runs in minutes on 2 CPU cores; they are a "
        f"committed reference run, regenerated with `python docs/gen_gallery.py`. The full protocol is "
        f"`ssldyn run {name}`; claims that need its sample sizes, seeds or horizons may fail in a quick run.",
        "",
        "## Command",
        "",
        "```bash",
        f"ssldyn run {name}            # full protocol, writes results/{name}/",
        f"ssldyn run {name} --quick    # the reduced grid shown here",
        f"ssldyn config {name}         # the configuration fields",
        "```",
        "",
        f"Notebook: [`notebooks/{notebook}`](../notebooks/{notebook}).",
        "",
        f"## Claims ({n_yes} of {len(results['claims'])} reproduced in this quick run)",
        "",
        "| claim | measured | criterion (fixed before the run) | reproduced |",
        "|---|---|---|---|",
    ]
    for c in results["claims"]:
        out.append(f"| {_cell(c['claim'])} | {_cell(c['measured'])} | {_cell(c.get('criterion', ''))} | {_verdict(c)} |")
    if body:
        out += ["", "## Report", "", re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)]
    out += ["", "## Figures", ""]
    for fig in figures:
        out += [f"![{name}: {Path(fig).stem}]({name}/{fig})", "", f"*{Path(fig).stem}*", ""]
    if run:
        out += ["## Run (quick)", "", run, ""]
    return "\n".join(out).rstrip() + "\n"


def write_index(names: list[str], tallies: dict[str, str]) -> None:
    from ssldyn.experiments import REGISTRY

    lines = [
        "# Reproductions gallery",
        "",
        "One page per reproduction: the command, the paper, the claims table and the figures of a committed "
        "**quick** reference run (`ssldyn run NAME --quick`). Regenerate every page with",
        "",
        "```bash",
        "python docs/gen_gallery.py",
        "```",
        "",
        "| reproduction | paper | what it shows | claims reproduced (quick run) |",
        "|---|---|---|---|",
    ]
    for name in names:
        exp = REGISTRY[name]
        lines.append(f"| [`{name}`]({name}.md) | {_cell(exp.paper)} | {_cell(exp.summary)} | {tallies.get(name, '')} |")
    (GALLERY / "index.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(NAMES))
    parser.add_argument("--work", type=Path, default=None, help="run directory (default: a temporary one)")
    parser.add_argument("--max-width", type=int, default=1400)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"not in the gallery: {unknown}; choose from {list(NAMES)}")
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="ssldyn-gallery-")
        args.work = Path(tmp.name)
    GALLERY.mkdir(exist_ok=True)
    tallies = {}
    for name in NAMES:  # pages not regenerated in this call keep their tally in the index
        page = GALLERY / f"{name}.md"
        m = re.search(r"^## Claims \((\d+ of \d+) reproduced", page.read_text(), re.M) if page.exists() else None
        if m:
            tallies[name] = m.group(1)
    try:
        for name in args.names:
            out = args.work / name
            results = run_quick(name, out)
            dest = GALLERY / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir()
            figures, total = [], 0
            for png in sorted(out.glob("*.png")):
                total += compress_png(png, dest / png.name, args.max_width)
                figures.append(png.name)
            page = write_page(name, results, (out / "report.md").read_text(), figures)
            (GALLERY / f"{name}.md").write_text(page)
            tallies[name] = f"{sum(c.get('reproduced') is True for c in results['claims'])} of {len(results['claims'])}"
            print(f"[gallery] {name}: {len(figures)} figures, {total / 1024:.0f} KiB", flush=True)
        write_index(list(NAMES), tallies)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""MkDocs hooks of the ssldyn site.

1. API members. A line `<!-- api-members: ssldyn.data -->` in a page is replaced by one
   `::: ssldyn.data.NAME` block per public name of that module: the names of `__all__` when the
   module defines it, else every name it binds that has no leading underscore and is not a
   sub-module (the sub-packages re-export with `from ._x import name as name`, which griffe does
   not count as public, so `::: ssldyn.data` alone would render no members). New names therefore
   appear without editing the page.

2. Notebooks. Publish the notebooks of `notebooks/` (outside `docs/`) under `notebooks/` of the site.

mkdocs-jupyter renders them as stored, without executing them (`execute: false` in mkdocs.yml); the
notebooks are committed without outputs, so the pages show the code and text only. A "Notebooks"
section listing every notebook present is appended to the navigation, so notebooks added later need
no change here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


_MARKER = re.compile(r"^<!-- api-members: ([\w.]+) -->$", re.M)


@lru_cache(maxsize=None)
def public_names(module: str) -> tuple[str, ...]:
    """Public names of `module` (a dotted path inside ssldyn), read statically with griffe."""
    import griffe

    mod = griffe.load(module, search_paths=[str(ROOT)], resolve_aliases=False)
    exports = getattr(mod, "exports", None)
    if exports:
        return tuple(str(n) for n in exports)
    return tuple(n for n, obj in mod.members.items()
                 if not n.startswith("_") and (obj.is_alias or not obj.is_module))


def _members_markdown(match: re.Match) -> str:
    module = match.group(1)
    blocks = [f"::: {module}.{name}\n    options:\n      heading_level: 2\n" for name in public_names(module)]
    return "\n".join(blocks)


def on_page_markdown(markdown, page, config, files):
    return _MARKER.sub(_members_markdown, markdown)


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").capitalize()


def on_config(config):
    nav = config.get("nav")
    if nav is not None and _notebooks():
        entries = [{_title(p): f"notebooks/{p.name}"} for p in _notebooks()]
        nav[:] = [item for item in nav if not (isinstance(item, dict) and "Notebooks" in item)]
        nav.append({"Notebooks": entries})
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files, config):
    for path in _notebooks():
        files.append(File(f"notebooks/{path.name}", src_dir=str(ROOT), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files

"""Every notebook in notebooks/ executes top to bottom (at the tiny size, to keep CI short)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_every_reproduction_has_a_notebook_that_checks_its_results():
    """One notebook per registered reproduction (name with '-' → '_'), and each asserts its key
    results in code (so executing it below is a check, not just a run)."""
    from ssldyn.experiments import REGISTRY

    names = {p.stem for p in NOTEBOOKS}
    missing = [n for n in REGISTRY.names() if n.replace("-", "_") not in names]
    assert not missing, f"reproductions without a notebook: {missing}"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "assert " in code, f"{path.name} asserts none of its results"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SSLDYN_NOTEBOOK_SIZE", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

"""The layout is the design: data flows one way (validation → linear algebra → statistics → losses →
flows and closed forms → solve and training → compare → experiments → CLI). This test reads every
module's imports (also the ones inside functions) and fails when a module imports a later stage,
when a new module has no declared stage, or when an experiment reaches past the public API."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent / "ssldyn"

# Stage of each core module (a module may import only strictly earlier stages).
CORE = {
    "ssldyn._validation": 0,
    "ssldyn._linalg": 1,
    "ssldyn._solution": 2,
    "ssldyn._training": 2,
    "ssldyn.data": 2,
    "ssldyn._stats": 3,
    "ssldyn._kernels": 3,
    "ssldyn._metrics": 3,
    "ssldyn._losses": 4,
    "ssldyn._manifolds": 4,
    "ssldyn._flows": 5,
    "ssldyn._closed_form": 5,
    "ssldyn.scaling._lowrank": 5.2,
    "ssldyn.scaling._sharding": 5.5,
    "ssldyn._solve": 6,
    "ssldyn._networks": 6,
    "ssldyn.scaling._ensemble": 6.5,
    "ssldyn._compare": 7,
    "ssldyn": 7.9,  # the public API (top-level package)
    "ssldyn.experiments": 8,
    "ssldyn.cli": 9,
}
# Stage-ordered files of a paper package (ssldyn/<paper>/<file>.py).
# Each sits just after the core stage of the same name, so it may build on that core stage.
PAPER_FILES = {"_model": 3.5, "_data": 3.5, "_loss": 4.5, "_flows": 5.5, "_train": 6.6, "_metrics": 6.7, "_analysis": 6.7}
PAPERS = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()
                and p.name not in ("data", "experiments", "scaling", "__pycache__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage(module: str) -> float | None:
    if module in CORE:
        return CORE[module]
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in ("data", "experiments"):
        return CORE[f"ssldyn.{parts[1]}"]
    if len(parts) == 3 and parts[1] in PAPERS:
        return PAPER_FILES.get(parts[2])
    if len(parts) == 2 and parts[1] in PAPERS:
        return 7.5  # a paper package's public namespace
    return None


def imports(path: Path) -> set[str]:
    """Absolute ssldyn module names imported anywhere in the file."""
    tree = ast.parse(path.read_text())
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "ssldyn"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "ssldyn":
                continue
            # `from . import data` / `from .scaling import x`: the imported names may be sub-modules
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add(sub if stage(sub) is not None and (ROOT.parent / sub.replace(".", "/")).exists()
                        or (ROOT.parent / (sub.replace(".", "/") + ".py")).exists() else mod)
    return out


MODULES = sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) or "ssldyn" for p in MODULES])
def test_no_module_imports_a_later_stage(path):
    name = _module_name(path)
    if path.name == "__init__.py" and name != "ssldyn.experiments":
        return  # namespaces re-export their own modules
    own = stage(name)
    assert own is not None, f"{name} has no stage: add it to CORE or name it after a paper stage {list(PAPER_FILES)}"
    for dep in imports(path):
        if dep == name or dep.startswith(name + "."):
            continue
        if any(name.startswith(f"ssldyn.{p}.") and dep.startswith(f"ssldyn.{p}") for p in ("data", "experiments")):
            continue  # inside one stage-package (data sets, the experiment kit) modules may share code
        dep_stage = stage(dep)
        assert dep_stage is not None, f"{name} imports {dep}, which has no stage"
        assert dep_stage < own, f"{name} (stage {own}) imports {dep} (stage {dep_stage}): a later or equal stage"


def test_paper_packages_do_not_import_each_other_or_the_public_namespace():
    for path in MODULES:
        name = _module_name(path)
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in PAPERS or path.name == "__init__.py":
            continue
        for dep in imports(path):
            dparts = dep.split(".")
            assert dep != "ssldyn", f"{name} imports the top-level namespace"
            assert len(dparts) < 2 or dparts[1] not in PAPERS or dparts[1] == parts[1], f"{name} imports {dep}"


def test_experiments_use_only_the_public_api():
    for path in (ROOT / "experiments").glob("*.py"):
        for dep in imports(path):
            parts = dep.split(".")
            if parts[:2] == ["ssldyn", "experiments"]:
                continue
            assert all(not p.startswith("_") for p in parts), f"experiments/{path.name} imports private {dep}"


def test_the_rule_catches_a_backward_import(tmp_path):
    """The checker itself: a flow module importing `solve` is a breach it must see."""
    assert stage("ssldyn._flows") < stage("ssldyn._solve")
    assert stage("ssldyn._closed_form") == stage("ssldyn._flows")  # neither may import the other
    fake = ROOT / "_flows.py"
    assert "ssldyn._solve" not in imports(fake)

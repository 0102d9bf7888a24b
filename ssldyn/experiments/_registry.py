"""The experiment registry. Each reproduction module calls `register(Experiment(...))` at import.

Modules are discovered, not listed: every public module of `ssldyn.experiments` is a reproduction.
`ssldyn list`, the CLI and the README's reproduction table all read this one registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._runner import Experiment

_EXPERIMENTS: dict[str, Experiment] = {}
_LOADED = False


def register(exp: Experiment) -> Experiment:
    """Add a reproduction to the registry (called by each experiment module); returns it."""
    if not isinstance(exp, Experiment):
        raise TypeError(f"register() takes an Experiment, got {type(exp).__name__}")
    old = _EXPERIMENTS.get(exp.name)
    if old is not None and old.config_cls.__module__ != exp.config_cls.__module__:
        raise ValueError(f"two experiments are called {exp.name!r} ({old.config_cls.__module__}, "
                         f"{exp.config_cls.__module__})")
    _EXPERIMENTS[exp.name] = exp
    return exp


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    package = importlib.import_module("ssldyn.experiments")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"ssldyn.experiments.{info.name}")
    _LOADED = True


def _load_one(name: str) -> None:
    """Import the module conventionally named after `name` (`esser-mnist` → `esser_mnist`) if it
    exists, so that running one reproduction does not depend on every other module importing."""
    if name in _EXPERIMENTS or _LOADED:
        return
    module = name.replace("-", "_")
    package = importlib.import_module("ssldyn.experiments")
    if any(info.name == module for info in pkgutil.iter_modules(package.__path__)) and not module.startswith("_"):
        importlib.import_module(f"ssldyn.experiments.{module}")


class _Registry:
    """Read-only mapping from CLI names to `Experiment`s, filled by discovering the experiment modules."""

    def __getitem__(self, name: str) -> Experiment:
        _load_one(name)
        if name not in _EXPERIMENTS:
            _load_all()
        return _EXPERIMENTS[name]

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.names())

    def __contains__(self, name) -> bool:
        if isinstance(name, str):
            _load_one(name)
        if name not in _EXPERIMENTS:
            _load_all()
        return name in _EXPERIMENTS

    def names(self) -> list[str]:
        _load_all()
        return sorted(_EXPERIMENTS, key=lambda n: (_EXPERIMENTS[n].order, n))

    def items(self):
        return [(n, self[n]) for n in self.names()]


REGISTRY = _Registry()


def get_experiment(name: str) -> Experiment:
    """The experiment called `name` (ValueError listing the known names otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY.names())}")
    return REGISTRY[name]


def reproduction_table() -> str:
    """The README's reproduction table (Markdown), generated from the registry."""
    lines = ["| command | paper | what it shows |", "|---|---|---|"]
    for name, exp in REGISTRY.items():
        lines.append(f"| `ssldyn run {name}` | {exp.paper} | {exp.summary} |")
    return "\n".join(lines)

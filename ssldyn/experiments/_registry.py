"""The experiment registry. Each reproduction module defines one `EXPERIMENT`; add it to `_MODULES`."""

from __future__ import annotations

import importlib

from ._runner import Experiment

_MODULES = {
    "esser-mnist": "ssldyn.experiments.esser_mnist",
    "wen-li-head": "ssldyn.experiments.wen_li_head",
    "directpred": "ssldyn.experiments.directpred",
    "wen-li-sparse": "ssldyn.experiments.wen_li_sparse",
}


class _Registry(dict):
    """Maps names to `Experiment`s, importing each module lazily on first access."""

    def __getitem__(self, name: str) -> Experiment:
        if name not in _MODULES:
            raise KeyError(name)
        if not dict.__contains__(self, name):
            dict.__setitem__(self, name, importlib.import_module(_MODULES[name]).EXPERIMENT)
        return dict.__getitem__(self, name)

    def __iter__(self):
        return iter(_MODULES)

    def __len__(self):
        return len(_MODULES)

    def __contains__(self, name) -> bool:
        return name in _MODULES

    def names(self) -> list[str]:
        return list(_MODULES)


REGISTRY = _Registry()


def get_experiment(name: str) -> Experiment:
    """The experiment called `name` (ValueError listing the known names otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY.names())}")
    return REGISTRY[name]

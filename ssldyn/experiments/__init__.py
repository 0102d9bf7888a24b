"""Reproductions, one module per paper; `REGISTRY` maps CLI names to `Experiment` records."""

from ._runner import (
    Experiment as Experiment,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    make_config as make_config,
    parse_overrides as parse_overrides,
    run_experiment as run_experiment,
    save_figure as save_figure,
)
from ._registry import REGISTRY as REGISTRY, get_experiment as get_experiment

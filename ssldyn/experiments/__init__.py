"""Reproductions, one module per paper; each registers itself, `REGISTRY` maps CLI names to them.

The kit every reproduction uses: `Experiment` (cells dispatched by kind, claims as functions, a
report function), `Claim`, `select`, and the figure helpers in `ssldyn.experiments` (`band`,
`ode_vs_networks`, `spectra_over_time`, `reference_line`, `share_ylim`).
"""

from ._kit import (
    Claim as Claim,
    band as band,
    column as column,
    evaluate_claims as evaluate_claims,
    full_run_only as full_run_only,
    mean_se as mean_se,
    ode_vs_networks as ode_vs_networks,
    reference_line as reference_line,
    select as select,
    share_ylim as share_ylim,
    spectra_over_time as spectra_over_time,
    unique as unique,
    verdict as verdict,
)
from ._registry import (
    REGISTRY as REGISTRY,
    get_experiment as get_experiment,
    register as register,
    reproduction_table as reproduction_table,
)
from ._runner import (
    Experiment as Experiment,
    atomic_write_json as atomic_write_json,
    atomic_write_text as atomic_write_text,
    make_config as make_config,
    parse_overrides as parse_overrides,
    run_experiment as run_experiment,
    save_figure as save_figure,
)

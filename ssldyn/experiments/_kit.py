r"""The experiment kit: claims as functions, record selection, cell dispatch, shared figure helpers.

A reproduction is a configuration dataclass, a list of cells, one function per *kind* of cell
(`cell_kinds`, dispatched by the runner on `cell["kind"]`), a tuple of claim functions and a report
function that draws the figures. Each claim function maps `(config, records)` to a `Claim` (or to
None when the claim is not defined at this run size), so it can be unit-tested on synthetic records
for both verdicts. The criterion is part of the function, written before any run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

VERDICTS = ("yes", "partly", "no", "not testable")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of a paper, what was measured, the criterion and the verdict.

    **Fields:**
    - `claim`: the claim in ssldyn's words (one sentence).
    - `paper`: the paper's wording, or a close paraphrase with its section.
    - `measured`: the numbers, as the report prints them.
    - `criterion`: the rule that turns the numbers into the verdict, fixed before the run.
    - `verdict`: `"yes"`, `"partly"`, `"no"` or `"not testable"` (an observation, not a test).
    """

    claim: str
    measured: str
    verdict: str
    criterion: str = ""
    paper: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"`verdict` must be one of {VERDICTS}, got {self.verdict!r}.")

    @property
    def reproduced(self) -> bool | None:
        """True for "yes", False for "no", None otherwise (the `results.json` convention)."""
        return {"yes": True, "no": False}.get(self.verdict)

    def to_record(self) -> dict:
        return {"claim": self.claim, "paper": self.paper, "measured": self.measured, "criterion": self.criterion,
                "verdict": self.verdict, "reproduced": self.reproduced}


class ConfigCheck:
    """Range checks of one experiment configuration for its `validate_config`, each raising a
    ValueError that names the field and what was expected (the runner has already checked types and
    signs against the defaults)."""

    def __init__(self, config):
        self.config = config

    @staticmethod
    def is_int(v) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    @staticmethod
    def is_num(v) -> bool:
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and bool(np.isfinite(v))

    def need(self, name: str, ok: bool, want: str) -> None:
        """Raise unless `ok`: "configuration field `name` must be {want}, got {value!r}"."""
        if not ok:
            raise ValueError(f"configuration field `{name}` must be {want}, got {getattr(self.config, name)!r}")

    def int(self, name: str, minimum: int, maximum: int | None = None, *, odd: bool = False) -> int:
        """The field as an int in [minimum, maximum] (odd if asked: a centred window)."""
        v = getattr(self.config, name)
        self.need(name, self.is_int(v) and v >= minimum and (maximum is None or v <= maximum),
                  f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]")
        if odd:
            self.need(name, v % 2 == 1, "an odd int (a centred window)")
        return int(v)

    def positive(self, name: str, *, allow_zero: bool = False) -> None:
        """The field as a positive (or non-negative) finite number."""
        v = getattr(self.config, name)
        self.need(name, self.is_num(v) and (v >= 0 if allow_zero else v > 0),
                  f"a {'non-negative' if allow_zero else 'positive'} finite number")


def verdict(ok: bool | None, partly: bool = False) -> str:
    """`"yes"` when `ok`, `"partly"` when not ok but `partly`, `"no"` otherwise; None → `"not testable"`."""
    if ok is None:
        return "not testable"
    return "yes" if ok else ("partly" if partly else "no")


ClaimFn = Callable[[Any, list], "Claim | None"]

REDUCED_NOTE = "reduced run: this claim is judged at the full protocol only"


def full_run_only(fn: ClaimFn) -> ClaimFn:
    """Mark a claim function whose criterion is defined only at the full protocol's size (its horizon,
    seeds or grid). In a reduced run (`--quick`) the runner still shows what was measured, but the
    verdict is "not testable" and the measured text says what the criterion would have said."""
    fn.full_run_only = True
    return fn


def evaluate_claims(claim_fns: Iterable[ClaimFn], config, records: list[dict], *, reduced: bool = False
                    ) -> list[Claim]:
    """Apply every claim function; drop the ones that return None (not defined at this run size).

    With `reduced=True` (a run smaller than the protocol), claims marked `full_run_only` get the
    verdict "not testable"; their measured text keeps the numbers and the verdict the criterion
    would give."""
    out = []
    for fn in claim_fns:
        c = fn(config, records)
        if c is None:
            continue
        if not isinstance(c, Claim):
            raise TypeError(f"claim function {getattr(fn, '__name__', fn)!r} returned {type(c).__name__}, not Claim")
        if reduced and getattr(fn, "full_run_only", False):
            c = dataclasses.replace(c, verdict="not testable",
                                    measured=f"{c.measured} ({REDUCED_NOTE}; the criterion would say {c.verdict})")
        out.append(c)
    return out


def _matches(value, want) -> bool:
    if callable(want):
        return bool(want(value))
    if isinstance(want, (set, frozenset)):
        return value in want
    return value == want


def select(records: Sequence[dict], **fields) -> list[dict]:
    """The records whose fields match: `select(records, kind="ode", arm="head")`.

    A value may be a plain value (equality), a set (membership) or a predicate
    (`width=lambda h: h >= 100`). Records without the field never match.
    """
    missing = object()
    return [r for r in records if all(_matches(r.get(k, missing), v) and r.get(k, missing) is not missing
                                      for k, v in fields.items())]


def column(records: Sequence[dict], field: str, dtype=float) -> np.ndarray:
    """The values of `field` over `records` as a NumPy array (None becomes NaN for floats)."""
    vals = [r[field] for r in records]
    if dtype is float:
        return np.array([np.nan if v is None else v for v in vals], dtype=float)
    return np.array(vals, dtype=dtype)


def unique(records: Sequence[dict], field: str) -> list:
    """Sorted distinct values of `field` (records without it are skipped)."""
    return sorted({r[field] for r in records if field in r})


def mean_se(x) -> tuple[float, float]:
    """Mean and standard error of the finite values of `x` (SE 0 for one value, NaN for none)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


# ----------------------------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------------------------


def band(ax, t, Y, *, label: str, color=None, linestyle="-", alpha: float = 0.2):
    """Plot the mean over the first axis of `Y` (seeds × times) with a ±1 std band; label says n."""
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[None]
    m = np.nanmean(Y, axis=0)
    n = Y.shape[0]
    (line,) = ax.plot(t, m, color=color, linestyle=linestyle, label=f"{label} (mean ± std, n = {n})" if n > 1
                      else label)
    if n > 1:
        s = np.nanstd(Y, axis=0)
        ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def ode_vs_networks(ax, t_ode, y_ode, t_net, Y_net, *, ode_label="ODE", net_label="networks", color=None):
    """The canonical comparison panel: the ODE as a solid line, the networks' mean ± std as a band
    with markers, so a network curve lying exactly on the ODE stays visible."""
    (line,) = ax.plot(t_ode, y_ode, color=color, linewidth=2.0, label=ode_label, zorder=3)
    Y = np.asarray(Y_net, dtype=float)
    Y = Y[None] if Y.ndim == 1 else Y
    m = np.nanmean(Y, axis=0)
    ax.plot(t_net, m, linestyle="none", marker="o", markersize=3.5, markerfacecolor="none",
            color=line.get_color(), label=f"{net_label} (n = {Y.shape[0]})", zorder=4)
    if Y.shape[0] > 1:
        s = np.nanstd(Y, axis=0)
        ax.fill_between(t_net, m - s, m + s, color=line.get_color(), alpha=0.15, linewidth=0)
    return line


def spectra_over_time(ax, ts, spectra, *, label: str = "eigenvalue", cmap: str = "viridis", log: bool = False):
    """Each column of `spectra` (times × modes) as a line over `ts`, coloured by mode index."""
    import matplotlib.pyplot as plt

    spectra = np.asarray(spectra, dtype=float)
    colors = plt.get_cmap(cmap)(np.linspace(0.0, 0.9, spectra.shape[1]))
    for j in range(spectra.shape[1]):
        ax.plot(ts, spectra[:, j], color=colors[j], label=f"{label} {j + 1}" if j < 10 else None)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("t = lr × steps")


def reference_line(ax, y: float, label: str, *, color="0.5", linestyle=":"):
    """A labelled horizontal reference (chance level, a baseline, a converged value)."""
    ax.axhline(y, color=color, linestyle=linestyle, linewidth=1.0, label=label)


def share_ylim(axes) -> None:
    """Give panels that are compared with each other the same y-range."""
    lows, highs = zip(*(ax.get_ylim() for ax in axes))
    for ax in axes:
        ax.set_ylim(min(lows), max(highs))

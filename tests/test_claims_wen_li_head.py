"""Claims of `wen-li-head` on hand-built records: each claim function gives "yes" on records that meet
its criterion and "no" on records that break it (or None where it is not defined at that size)."""

import copy

import pytest

from ssldyn.experiments import Claim
from ssldyn.experiments import wen_li_head as wl

CFG = wl.Config(alpha2s=(0.8,), w2_v1=(0.15,), w2_v2=(0.15,), lr_ratios=(0.01, 0.1, 1.0, 3.0), gd_lrs=(0.2, 0.1))
HEAD_PHASES = dict(t_strong=0.2, t_substitution=2.0, t_peak=12.0, e21_peak=0.35, t_weak=14.0, t_return=15.0)
NOHEAD_PHASES = dict(t_strong=0.2, t_substitution=None, t_peak=None, e21_peak=0.0, t_weak=None, t_return=None)


def run(kind, arm, *, distinct, seed=0, **fields):
    """One run record: phase times of a working head run or of a frozen head, outcome, extra fields."""
    phases = HEAD_PHASES if distinct else NOHEAD_PHASES
    return {"kind": kind, "arm": arm, "seed": seed, **phases, "distinct": distinct, "collapsed": not distinct,
            **fields}


def ode(arm, seed, distinct):
    # final cosines [feature, neuron]: distinct = neuron 1 on v1, neuron 2 on v2; else both on v1
    cos = [[0.97, 0.05], [0.03, 0.95]] if distinct else [[0.97, 0.96], [0.03, 0.05]]
    rec = run("ode", arm, distinct=distinct, seed=seed, alpha2=0.8, init=0, final_cos=cos)
    if seed == 0:
        rec["curves"] = {"e": [[0.0, 0.0], [0.0, 0.35], [0.0, 1e-8]]}
    return rec


def good_records():
    """Records on which every claim holds (a small version of a successful run)."""
    recs = [ode("head", s, True) for s in (0, 1)] + [ode("nohead", s, False) for s in (0, 1)]
    recs += [run("random", "head", distinct=True, seed=s, both_prefer_v1=s == 0) for s in (0, 1)]
    recs += [run("random", "nohead", distinct=False, seed=s, both_prefer_v1=s == 0) for s in (0, 1)]
    recs += [run("sgd", "head", distinct=True, seed=s, t_weak=14.0 + 0.1 * s) for s in (0, 1)]
    recs += [run("sgd", "nohead", distinct=False, seed=s) for s in (0, 1)]
    recs += [run("nostopgrad", "head", distinct=False, seed=s, alpha2=0.8, init=0) for s in (0, 1)]
    recs += [run("gd", None, distinct=True, lr=0.2, t_weak=16.0), run("gd", None, distinct=True, lr=0.1, t_weak=15.0)]
    for rho, peak in ((0.01, 0.001), (0.1, 0.01), (1.0, 0.35), (3.0, 0.35 * 3**0.5)):  # Θ(√ρ) where it works
        recs += [run("ratio", None, distinct=rho >= 1.0, seed=s, lr_ratio=rho, e21_peak=peak) for s in (0, 1)]
    return recs


def edit(records, change, **match):
    """A deep copy of `records` with `change(record)` applied to those matching `match`."""
    out = copy.deepcopy(records)
    for r in out:
        if all(r.get(k) == v for k, v in match.items()):
            change(r)
    return out


def flip(r):
    r["distinct"], r["collapsed"] = not r["distinct"], r["distinct"]


def set_(**fields):
    return lambda r: r.update(fields)


def test_every_claim_holds_on_good_records():
    claims = [fn(CFG, good_records()) for fn in wl.CLAIMS]
    assert all(isinstance(c, Claim) for c in claims)
    assert [c.verdict for c in claims] == ["yes"] * len(wl.CLAIMS)
    assert all(c.criterion and c.paper for c in claims)
    assert wl.EXPERIMENT.claims == wl.CLAIMS
    assert {c["kind"] for c in wl.cells(CFG)} == set(wl.EXPERIMENT.cell_kinds)


@pytest.mark.parametrize("claim_fn, records", [
    # most head runs learn the weak feature: here none does
    (wl.claim_head_learns_weak, edit(good_records(), flip, kind="ode", arm="head")),
    # the head decides: one SGD run without the head learns v2
    (wl.claim_head_decides, edit(good_records(), flip, kind="sgd", arm="nohead", seed=1)),
    # no run without the head learns v2: one ODE run does
    (wl.claim_nohead_collapse, edit(good_records(), flip, kind="ode", arm="nohead", seed=1)),
    # E21 returns: one distinct run never falls below 10% of its peak ...
    (wl.claim_head_returns, edit(good_records(), set_(t_return=None), kind="ode", arm="head", seed=1)),
    # ... or the peak is too small ...
    (wl.claim_head_returns, edit(good_records(), set_(e21_peak=0.01), kind="ode", arm="head")),
    # ... or no run ends distinct
    (wl.claim_head_returns, edit(good_records(), flip, kind="ode", arm="head")),
    # phase order: acceleration before substitution in one run
    (wl.claim_phase_order, edit(good_records(), set_(t_weak=1.0), kind="ode", arm="head", seed=1)),
    # ODE vs SGD: SGD's acceleration far from the ODE's ...
    (wl.claim_ode_matches_sgd, edit(good_records(), set_(t_weak=30.0), kind="sgd", arm="head")),
    # ... or a different outcome
    (wl.claim_ode_matches_sgd, edit(good_records(), flip, kind="sgd", arm="nohead", seed=0)),
    # ρ caveat: a small ρ works
    (wl.claim_ratio_caveat, edit(good_records(), flip, kind="ratio", lr_ratio=0.1, seed=0)),
    # peak |E21| ∝ ρ in the collapsing regime: here ∝ √ρ
    (wl.claim_peak_linear, edit(good_records(), set_(e21_peak=0.001 * 10**0.5), kind="ratio", lr_ratio=0.1)),
    # peak |E21| grows with ρ where it works: here it falls
    (wl.claim_peak_grows, edit(good_records(), set_(e21_peak=0.2), kind="ratio", lr_ratio=3.0)),
    # Θ(√ρ) where it works: here |E21| grows faster than ρ (exponent 1.12)
    (wl.claim_peak_sqrt_law, edit(good_records(), set_(e21_peak=1.2), kind="ratio", lr_ratio=3.0)),
    # without the head no run learns v2: one controlled ODE run does
    (wl.claim_nohead_collapse, edit(good_records(), flip, kind="sgd", arm="nohead", seed=0)),
    # learned cleanly: one distinct run's neuron 1 is below the phase threshold too
    (wl.claim_learned_close_to_one, edit(good_records(), set_(final_cos=[[0.45, 0.05], [0.03, 0.95]]), kind="ode",
                                         arm="head", seed=1)),
    # the stop-gradient is needed: half of the runs without it still learn v2
    (wl.claim_stop_gradient_needed, edit(good_records(), flip, kind="nostopgrad", seed=0)),
    # GD within O(η): the gap does not shrink with η
    (wl.claim_gd_order, edit(good_records(), set_(t_weak=16.0), kind="gd", lr=0.1)),
])
def test_claim_fails_when_its_criterion_is_broken(claim_fn, records):
    assert claim_fn(CFG, good_records()).verdict == "yes"
    assert claim_fn(CFG, records).verdict == "no"


def test_learned_close_to_one_is_partly_between_the_threshold_and_close_cos():
    """A neuron at cosine 0.7 has learned its feature by the phase threshold (0.5), not cleanly (0.9)."""
    recs = edit(good_records(), set_(final_cos=[[0.7, 0.05], [0.03, 0.95]]), kind="ode", arm="head", seed=1)
    c = wl.claim_learned_close_to_one(CFG, recs)
    assert c.verdict == "partly" and "neuron 1 min 0.700" in c.measured
    assert wl.claim_learned_close_to_one(CFG, edit(good_records(), flip, kind="ode", arm="head")) is None


def test_nohead_collapse_is_partly_when_only_conditioned_inits_collapse():
    """Random initialisations whose neurons do not both start closer to v1 may end distinct without the
    head; the paper's unconditional statement then holds only in part."""
    recs = edit(good_records(), flip, kind="random", arm="nohead", seed=1)  # seed 1: not both closer to v1
    c = wl.claim_nohead_collapse(CFG, recs)
    assert c.verdict == "partly" and "unconditioned random inits: 1/2 collapsed, 1 distinct" in c.measured


def test_sqrt_law_between_linear_and_flat():
    partial = edit(good_records(), set_(e21_peak=0.35 * 3**0.8), kind="ratio", lr_ratio=3.0)  # exponent 0.8
    c = wl.claim_peak_sqrt_law(CFG, partial)
    assert c.verdict == "partly" and "1, 3): 0.80" in c.measured
    one_working = [r for r in good_records() if not (r["kind"] == "ratio" and r["lr_ratio"] == 3.0)]
    assert wl.claim_peak_sqrt_law(CFG, one_working) is None


def test_ode_vs_sgd_is_undecided_when_the_seeds_scatter():
    """The issue's example: an SGD t_substitution of 2.59 ± 0.5 (SE, two seeds) against the ODE's 2.0
    lies within the tolerance only because the SE is large; such a comparison decides nothing, so the
    verdict is "partly", not "yes". Tight seeds give "yes"; a gap beyond the tolerance gives "no"."""
    scattered = edit(edit(good_records(), set_(t_substitution=2.09), kind="sgd", arm="head", seed=0),
                     set_(t_substitution=3.09), kind="sgd", arm="head", seed=1)
    c = wl.claim_ode_matches_sgd(CFG, scattered)
    assert "t_substitution: ODE 2.000, GD(η=0.2) 2.000, SGD 2.590 ± 0.500 (SE, n=2)" in c.measured
    assert c.verdict == "partly"
    far = edit(edit(good_records(), set_(t_substitution=3.0), kind="sgd", arm="head", seed=0),
               set_(t_substitution=3.2), kind="sgd", arm="head", seed=1)
    assert wl.claim_ode_matches_sgd(CFG, far).verdict == "no"  # 1.1 > 2 × 0.1 + 0.02
    assert wl.claim_ode_matches_sgd(CFG, good_records()).verdict == "yes"
    assert getattr(wl.claim_ode_matches_sgd, "full_run_only", False)  # two quick seeds cannot decide it


def test_claims_not_defined_at_small_sizes_return_none():
    recs = good_records()
    few_ratios = [r for r in recs if not (r["kind"] == "ratio" and r["lr_ratio"] in (0.01, 3.0))]
    assert wl.claim_peak_linear(CFG, few_ratios) is None  # one ρ ≤ 0.1
    assert wl.claim_peak_grows(CFG, few_ratios) is None  # one ρ ≥ 1 and one working ρ
    assert wl.claim_gd_order(CFG, [r for r in recs if not (r["kind"] == "gd" and r["lr"] == 0.1)]) is None
    no_reference = [r for r in recs if not (r["kind"] == "ode" and r["seed"] == 0)]
    for fn in (wl.claim_phase_order, wl.claim_ode_matches_sgd, wl.claim_gd_order):
        assert fn(CFG, no_reference) is None


def test_measured_strings_report_the_counts():
    c = wl.claim_head_decides(CFG, good_records())
    assert c.measured == ("ODE with head 2/2 distinct; ODE without head 2/2 collapsed; SGD with head 2/2 distinct, "
                          "without 2/2 collapsed")
    assert wl.claim_head_returns(CFG, edit(good_records(), flip, kind="ode", arm="head")).measured == "no distinct run"
    measured = wl.claim_gd_order(CFG, good_records()).measured
    assert measured == "t_weak gap η=0.2: 2.000, η=0.1: 1.000; successive ratios 2.00"
    # the trajectory gap (compare_along) is reported with its fitted order when the records carry it
    with_gap = edit(edit(good_records(), set_(cos_gap=0.4), kind="gd", lr=0.2), set_(cos_gap=0.1), kind="gd", lr=0.1)
    c = wl.claim_gd_order(CFG, with_gap)
    assert "largest cosine gap along the trajectory 0.400, 0.100 (order 2.00 in η" in c.measured
    assert c.verdict == "yes"  # informative only: the verdict is the phase-time criterion's

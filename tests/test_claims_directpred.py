"""The claims of `ssldyn run directpred` on tiny hand-built records: each claim function gives the verdict its
criterion says, for records that should pass and records that should not (no solve, no training)."""

import numpy as np
import pytest

from ssldyn.experiments import directpred as dp

CONFIG = dp.Config()


def portrait(dev=1e-8, p_minus_eigs=(-0.2, 0.08), p_plus_eigs=(-0.45, -0.2), max_dev=1e-12):
    eigs = {"p_plus": list(p_plus_eigs), "p_minus": list(p_minus_eigs)}
    return {"kind": "portrait", "collapsed": [True, False, False], "invariant_max_abs_dev": dev,
            "invariant_rel_drift_t10": 1e-8, "p_plus": 0.65, "p_minus": 0.12, "max_dev_to_p_plus": max_dev,
            "jacobian_eigs": {"simsiam": eigs, "ema": {"p_plus": list(p_plus_eigs) + [-1.0],
                                                       "p_minus": list(p_minus_eigs) + [-1.1]}}}


def sweep(param, value, fraction, exists=True):
    return {"kind": "sweep", "param": param, "value": value, "collapsed_fraction": fraction, "exists": exists}


def network(gap=0.01, align=(0.5, 0.3, 0.2, 0.1, 0.05, 0.02)):
    return {"kind": "network", "max_abs_s_gap": gap, "s_ode": [[1.0, 0.5], [0.9, 0.4]], "align_0": align[0],
            "align_ode": list(align), "align_net": list(align)}


def directpred(trained_final, dp_final, T=11, norm_final=(1e-20, 0.0)):
    """Trajectories that are constant over the last 10% (converged) and end at the given spectra."""
    def traj(final):
        return [list(final)] * T

    return {"kind": "directpred", "trained_s": traj(trained_final), "dp_sqrt_s": traj(dp_final),
            "dp_norm_s": traj(norm_final), "pred_trained": [0.4, 0.2], "pred_dp_sqrt": [0.4, 0.2]}


def placement(name, final, s0=(0.1, 0.01), status=0, s_star=0.98):
    """A stop-gradient record: eigenvalues from s0 to `final` (None = non-finite)."""
    if None in final:  # a non-finite state: the whole row is unknown, the row before holds what was reached
        rows = [list(s0), [b if b is not None else 100 * a for a, b in zip(s0, final)], [None] * len(s0)]
    else:
        rows = [list(s0), [(a + b) / 2 for a, b in zip(s0, final)], list(final)]
    return {"kind": "stopgrad", "stop_gradient": name, "t": [0.0, 1.0, 2.0], "s0": list(s0), "status": status,
            "s": rows, "s_star": s_star}


def isoloss(loss, t_half_net, t_half_cf, err=1e-9):
    return {"kind": "isoloss", "loss": loss, "s0": [1e-3, 1e-2, 1e-1], "t_half_ode": list(t_half_cf),
            "t_half_net": list(t_half_net), "t_half_closed_form": list(t_half_cf),
            "max_abs_p_ode_vs_closed_form": err}


def test_claims_return_none_without_their_records():
    for fn in (dp.claim_invariant, dp.claim_fixed_points, dp.claim_network_follows_ode,
               dp.claim_eigenspace_alignment, dp.claim_directpred_modes, dp.claim_normalised_directpred,
               dp.claim_isoloss_rates, dp.claim_no_stop_gradient_collapses, dp.claim_wrong_stop_gradient,
               dp.claim_stop_gradient_isotropic):
        assert fn(CONFIG, [sweep("omega", 0.0, 0.3)]) is None


def test_every_claim_has_a_criterion_and_the_papers_wording():
    records = [portrait(), sweep("omega", 0.3, 1.0, exists=False), network(), directpred([0.4, 0.2], [0.4, 0.2]),
               isoloss("byol", [10.0, 3.0, 1.0], [10.0, 3.0, 1.0]), isoloss("isoloss", [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]),
               placement("none", (1e-9, 1e-10)), placement("online", (1e-9, 1e-10)), placement("target", (0.98, 0.98))]
    claims = [fn(CONFIG, records) for fn in dp.CLAIMS]
    assert len(claims) == 12 and all(c is not None and c.criterion and c.paper for c in claims)


@pytest.mark.parametrize("dev, want", [(1e-8, "yes"), (1e-3, "no")])
def test_claim_invariant(dev, want):
    c = dp.claim_invariant(CONFIG, [portrait(dev=dev)])
    assert c.verdict == want and "3 grid trajectories" in c.measured


@pytest.mark.parametrize("kw, want", [
    ({}, "yes"),
    ({"p_minus_eigs": (0.2, 0.08)}, "no"),  # two unstable directions at p−: not a saddle
    ({"p_plus_eigs": (-0.45, 0.01)}, "no"),  # p+ does not attract
    ({"max_dev": 1e-2}, "no"),  # the converged points miss p+
])
def test_claim_fixed_points(kw, want):
    assert dp.claim_fixed_points(CONFIG, [portrait(**kw)]).verdict == want


@pytest.mark.parametrize("beyond, inside, want", [((1.0, 1.0), 0.2, "yes"), ((1.0, 0.9), 0.2, "no"),
                                                   ((1.0, 1.0), 1.0, "no"), ((), 0.2, "not testable"),
                                                   ((1.0,), 0.2, "not testable")])  # one ω beyond is not enough
def test_claim_collapse_boundary(beyond, inside, want):
    records = [sweep("omega", 0.0, 0.3), sweep("omega", 0.1, inside)]
    records += [sweep("omega", 0.3 + 0.1 * i, b, exists=False) for i, b in enumerate(beyond)]
    c = dp.claim_collapse_boundary(CONFIG, records)
    assert c.verdict == want and c.measured.startswith("collapsed fraction vs ω: 0: 0.30, 0.1:")


def test_claim_sweep_regions_is_descriptive():
    c = dp.claim_sweep_regions(CONFIG, [sweep("sigma2", 1.0, 0.25), sweep("sigma2", 0.0, 0.1), sweep("beta", 1.0, 0.5)])
    assert c.verdict == "not testable" and c.reproduced is None
    assert "sigma2: 0 → 0.10, 1 → 0.25; beta: 1 → 0.50" in c.measured


@pytest.mark.parametrize("gap, want", [(0.04, "yes"), (0.06, "no")])
def test_claim_network_follows_ode(gap, want):
    assert dp.claim_network_follows_ode(CONFIG, [network(), network(gap=gap)]).verdict == want


@pytest.mark.parametrize("align, want", [
    ((0.5, 0.3, 0.2, 0.1, 0.05, 0.02), "yes"),
    ((0.5, 0.3, 0.2, 0.1, 0.12, 0.02), "no"),  # rises in the second half
    ((0.5, 0.4, 0.35, 0.3, 0.2, 0.15), "no"),  # monotone but ends above 20% of the start
])
def test_claim_eigenspace_alignment(align, want):
    assert dp.claim_eigenspace_alignment(CONFIG, [network(), network(align=align)]).verdict == want


@pytest.mark.parametrize("trained, direct, norm, want", [
    ([0.4, 0.0], [0.4, 0.2], (0.3, 0.1), "yes"),  # DirectPred keeps the mode the trained predictor loses, and
    # the paper's normalised map does not collapse either
    ([0.4, 0.0], [0.4, 0.2], (1e-20, 0.0), "partly"),  # only the unnormalised map avoids collapse
    ([0.4, 0.2], [0.4, 0.2], (0.3, 0.1), "no"),  # no mode gained anywhere
    ([0.4, 0.2], [0.4, 0.0], (0.3, 0.1), "no"),  # DirectPred loses a mode
    ([0.4, 0.0], [0.4, 0.25], (0.3, 0.1), "no"),  # a converged mode misses its fixed point by 25%
])
def test_claim_directpred_modes(trained, direct, norm, want):
    records = [directpred([0.4, 0.2], [0.4, 0.2], norm_final=norm), directpred(trained, direct, norm_final=norm)]
    c = dp.claim_directpred_modes(CONFIG, records)
    assert c.verdict == want
    assert getattr(dp.claim_directpred_modes, "full_run_only", False)  # two quick initialisations decide nothing


@pytest.mark.parametrize("none_final, want", [((1e-9, 1e-10), "yes"), ((1e-9, 0.005), "no")])
def test_claim_no_stop_gradient_collapses(none_final, want):
    assert dp.claim_no_stop_gradient_collapses(CONFIG, [placement("none", none_final)]).verdict == want


@pytest.mark.parametrize("final, status, want", [
    ((1e-9, 1e-10), 0, "yes"),  # every mode collapses
    ((500.0, 1e-10), 0, "yes"),  # one collapses, one diverges (above 1e3× its start)
    ((1e-9, None), 5, "yes"),  # a mode collapsed, then the other diverged and the solve stopped non-finite
    ((0.05, 1e-10), 0, "no"),  # a mode neither collapses nor diverges
    ((500.0, 500.0), 0, "no"),  # nothing collapses
])
def test_claim_wrong_stop_gradient(final, status, want):
    assert dp.claim_wrong_stop_gradient(CONFIG, [placement("online", final, status=status)]).verdict == want


@pytest.mark.parametrize("final, want", [((0.98, 0.97), "yes"), ((0.98, 0.5), "partly"), ((0.5, 0.5), "no")])
def test_claim_stop_gradient_isotropic(final, want):
    assert dp.claim_stop_gradient_isotropic(CONFIG, [placement("target", final)]).verdict == want


def test_claim_normalised_directpred_is_descriptive():
    c = dp.claim_normalised_directpred(CONFIG, [directpred([0.4, 0.2], [0.4, 0.2])])
    assert c.verdict == "not testable" and "1.0e-20" in c.measured


@pytest.mark.parametrize("net_scale, err, want", [(1.0, 1e-9, "yes"), (1.1, 1e-9, "no"), (1.0, 1e-3, "no")])
def test_claim_isoloss_rates(net_scale, err, want):
    # p0 = s0^½ = (0.032, 0.1, 0.32): BYOL half-times ∝ 1/p0 (slope −1), IsoLoss nearly flat.
    p0 = np.sqrt([1e-3, 1e-2, 1e-1])
    t_byol = list(1.0 / p0)
    t_iso = list(np.log(1.0 / p0) + 1.0)
    records = [isoloss("byol", [net_scale * t for t in t_byol], t_byol, err),
               isoloss("isoloss", t_iso, t_iso, err)]
    c = dp.claim_isoloss_rates(CONFIG, records)
    assert c.verdict == want
    assert "BYOL -1.00" in c.measured


def test_claim_isoloss_rates_needs_equal_rates_under_isoloss():
    """If IsoLoss scales like BYOL (slope −1), its rates are not equalised: no."""
    p0 = np.sqrt([1e-3, 1e-2, 1e-1])
    t = list(1.0 / p0)
    c = dp.claim_isoloss_rates(CONFIG, [isoloss("byol", t, t), isoloss("isoloss", t, t)])
    assert c.verdict == "no"

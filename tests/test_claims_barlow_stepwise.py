"""Each barlow-stepwise claim function on small synthetic records, for both verdicts."""

import numpy as np

from ssldyn.experiments import barlow_stepwise as E

CFG = E.BarlowStepwiseConfig(k=2, n_seeds=2, widths=(10, 100), kernel_seeds=1)


def aligned(err=0.0, step_rel=0.0, dloss=0.0):
    lam = [[0.1, 0.01], [0.9, 0.5]]
    return {"kind": "aligned", "ts": [0.0, 1.0], "lr": 0.01, "n_steps": 100, "pred_steps": [1.0, 2.0],
            "gd_steps": [1.0 * (1 + step_rel), 2.0], "eig_cf": lam, "eig_ode": (np.asarray(lam) + err).tolist(),
            "loss_cf": [1.0, 0.0], "loss_gd": [1.0 + dloss, 0.0]}


def random(seed, rel_norm, rel_qr):
    return {"kind": "random", "seed": seed, "gd_steps": [1.0, 2.0], "pred_norm": [1.0, 2.0 / (1 + rel_norm)],
            "pred_qr": [1.0, 2.0 / (1 + rel_qr)], "gammas": [2.0, 1.0]}


def kernel(h, err, rel):
    return {"kind": "kernel", "width": h, "seed": 0, "eig_net": [[0.5, 0.1]], "eig_ode_emp": [[0.5 + err, 0.1]],
            "net_steps": [1.0, 2.0], "pred_inf": [1.0 / (1 + rel), 2.0 / (1 + rel)], "pred_emp": [1.0, 2.0]}


def test_closed_form_both_ways():
    assert E.claim_closed_form_exact(CFG, [aligned(err=1e-6)]).verdict == "yes"
    assert E.claim_closed_form_exact(CFG, [aligned(err=1e-2)]).verdict == "no"
    assert E.claim_closed_form_exact(CFG, []) is None


def test_staircase_three_ways():
    assert E.claim_gd_follows_staircase(CFG, [aligned(step_rel=0.01, dloss=0.01)]).verdict == "yes"
    assert E.claim_gd_follows_staircase(CFG, [aligned(step_rel=0.1)]).verdict == "partly"
    assert E.claim_gd_follows_staircase(CFG, [aligned(step_rel=0.3)]).verdict == "no"


def test_random_start_claims_both_ways():
    good = [random(s, 0.05, 0.01) for s in range(2)]
    bad = [random(s, 0.5, 0.2) for s in range(2)]
    assert E.claim_random_note_heuristic(CFG, good).verdict == "yes"
    assert E.claim_random_note_heuristic(CFG, bad).verdict == "no"
    assert E.claim_random_qr(CFG, good).verdict == "yes"
    assert E.claim_random_qr(CFG, bad).verdict == "no"


def test_kernel_claims_both_ways():
    good = [kernel(10, 0.01, 0.2), kernel(100, 0.01, 0.05)]
    bad = [kernel(10, 0.2, 0.05), kernel(100, 0.01, 0.2)]
    assert E.claim_kernel_ode_exact(CFG, good).verdict == "yes"
    assert E.claim_kernel_ode_exact(CFG, bad).verdict == "no"
    assert E.claim_kernel_width_limit(CFG, good).verdict == "yes"
    assert E.claim_kernel_width_limit(CFG, bad).verdict == "no"
    assert E.claim_kernel_width_limit(CFG, good[:1]) is None

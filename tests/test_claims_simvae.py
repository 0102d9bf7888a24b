"""Claim functions of the `simvae` experiment on synthetic records: each verdict is reachable."""

import dataclasses

import pytest

from ssldyn.experiments import simvae as ex

CFG = ex.Config(n_seeds=2, simvae_arms=((4, 0.01, 1.0, 1.0),), linear_sigma_x2=(0.01, 0.1), linear_e=(1.0,))
MAIN = ex._arm_name(CFG.simvae_arms[0])


def _net(arm, content, style):
    return [{"kind": "network", "arm": arm, "seed": s, "finite": True, "acc_content": content + 0.001 * s,
             "acc_style_mean": style + 0.001 * s, **{f"acc_{k}": style for k in ex.STYLE_LABELS}}
            for s in range(2)]


def _records(sim=(0.6, 0.5), vae=(0.5, 0.5), beta=(0.45, 0.45), cr=(0.5, 0.5), disc=(0.65, 0.4)):
    recs = _net(MAIN, *sim) + _net("vae", *vae) + _net("beta_vae", *beta) + _net("cr_vae", *cr)
    for a in ex.DISCRIMINATIVE:
        recs += _net(a, *disc)
    return recs


def test_content_claim_verdicts():
    assert ex.claim_content(CFG, _records()).verdict == "yes"
    assert ex.claim_content(CFG, _records(vae=(0.7, 0.5))).verdict == "partly"
    assert ex.claim_content(CFG, _records(vae=(0.7, 0.5), beta=(0.7, 0.5))).verdict == "no"
    assert ex.claim_content(CFG, []) is None


def test_gap_claim_verdicts():
    assert ex.claim_gap(CFG, _records()).verdict == "yes"
    # SimVAE above the discriminative methods by more than a point: only the narrower gap holds
    assert ex.claim_gap(CFG, _records(sim=(0.7, 0.5))).verdict == "partly"
    assert ex.claim_gap(CFG, _records(sim=(0.4, 0.5))).verdict == "no"


def test_style_claim_verdicts():
    assert ex.claim_style(CFG, _records()).verdict == "yes"
    recs = _records(disc=(0.65, 0.6))
    recs = [dict(r, acc_style_mean=0.3) if r["arm"] == "vicreg" else r for r in recs]
    assert ex.claim_style(CFG, recs).verdict == "partly"
    assert ex.claim_style(CFG, _records(disc=(0.65, 0.6))).verdict == "no"


def _lin(pred, kept, unresolved=(False, False)):
    return [{"kind": "linear", "e": 1.0, "sigma_x2": s, "predicted": p, "kept_gd": k, "finite": True,
             "unresolved": u} for s, p, k, u in zip(CFG.linear_sigma_x2, pred, kept, unresolved)]


@pytest.mark.parametrize("pred,kept,unres,want", [
    ((8, 5), (8, 5), (False, False), "yes"),
    ((8, 5), (8, 6), (False, False), "partly"),
    ((8, 5), (8, 2), (False, False), "no"),
    ((8, 5), (3, 5), (True, False), "yes"),  # an unresolved cell is not judged
    ((5, 8), (5, 8), (False, False), "no"),  # counts must not grow with σ_x²
])
def test_linear_trend_verdicts(pred, kept, unres, want):
    assert ex.claim_linear_trend(CFG, _lin(pred, kept, unres)).verdict == want


def test_quick_config_is_smaller():
    q = dataclasses.replace(ex.Config(), **ex.QUICK)
    assert q.n_steps < ex.Config().n_steps and q.n_seeds <= ex.Config().n_seeds

"""Claim functions of the `simvae` experiment on synthetic records: each verdict is reachable."""

import dataclasses

import pytest

from ssldyn.experiments import simvae as ex

CFG = ex.Config(n_seeds=2, simvae_arms=((4, 0.01, 1.0, 1.0),), linear_sigma_x2=(0.01, 0.1), linear_e=(1.0,))
MAIN = ex._arm_name(CFG.simvae_arms[0])


def _net(arm, content, style, data="mnist1d", probes=("acc", "mlp")):
    return [{"kind": "network", "data": data, "arm": arm, "seed": s, "finite": True,
             **{f"{p}_content": content + 0.001 * s for p in probes},
             **{f"{p}_style_mean": style + 0.001 * s for p in probes},
             **{f"{p}_{k}": style for k in ex.STYLE_LABELS for p in probes}}
            for s in range(2)]


def _records(sim=(0.6, 0.5), vae=(0.5, 0.5), beta=(0.45, 0.45), cr=(0.5, 0.5), disc=(0.65, 0.4), data="mnist1d",
             probes=("acc", "mlp")):
    kw = dict(data=data, probes=probes)
    recs = _net(MAIN, *sim, **kw) + _net("vae", *vae, **kw) + _net("beta_vae", *beta, **kw) + _net("cr_vae", *cr, **kw)
    for a in ex.DISCRIMINATIVE:
        recs += _net(a, *disc, **kw)
    return recs


def _probe_only(recs, probe, factor):
    """Scale every field of one probe (the other probe's numbers stay): makes the probes disagree."""
    return [{k: (v * factor if k.startswith(probe + "_") else v) for k, v in r.items()} for r in recs]


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


def test_claims_combine_the_linear_and_mlp_probes():
    # the MLP probe alone flips the content claim: the combined verdict is "partly" and names both probes
    recs = _records()
    recs = [dict(r, mlp_content=0.3) if r["arm"] == MAIN else r for r in recs]
    c = ex.claim_content(CFG, recs)
    assert c.verdict == "partly" and "linear probe" in c.measured and "MLP probe" in c.measured
    assert "→ yes" in c.measured and "→ no" in c.measured
    # both probes say no -> no; only one probe recorded -> its verdict alone
    recs = [dict(r, acc_content=0.3, mlp_content=0.3) if r["arm"] == MAIN else r for r in _records()]
    assert ex.claim_content(CFG, recs).verdict == "no"
    assert ex.claim_content(CFG, _records(probes=("acc",))).verdict == "yes"
    assert "MLP" not in ex.claim_content(CFG, _records(probes=("acc",))).measured
    # style: the MLP probe disagrees -> partly; gap: likewise
    recs = [dict(r, mlp_style_mean=0.9) if r["arm"] in ex.DISCRIMINATIVE else r for r in _records()]
    assert ex.claim_style(CFG, recs).verdict == "partly"
    recs = [dict(r, mlp_content=0.2) if r["arm"] == MAIN else r for r in _records()]
    assert ex.claim_gap(CFG, recs).verdict == "partly"


@pytest.mark.parametrize("fn", [ex.claim_content_images, ex.claim_gap_images, ex.claim_style_images])
def test_image_claims_read_only_the_image_records(fn):
    main_fn = {ex.claim_content_images: ex.claim_content, ex.claim_gap_images: ex.claim_gap,
               ex.claim_style_images: ex.claim_style}[fn]
    cfg = dataclasses.replace(CFG, image_data="embedded")
    good = _records(data="embedded")
    bad = _records(sim=(0.3, 0.2), data="embedded")
    assert fn(cfg, good).verdict == "yes" and fn(cfg, bad).verdict == "no"
    assert "embedded MNIST" in fn(cfg, good).claim
    # main-data records do not leak into the image claim and vice versa
    assert fn(cfg, _records(sim=(0.3, 0.2)) + good).verdict == "yes"
    assert main_fn(cfg, _records(sim=(0.3, 0.2)) + good).verdict == "no"
    assert fn(cfg, _records()) is None
    assert fn(dataclasses.replace(CFG, image_data="none"), good) is None


def test_quick_config_is_smaller():
    q = dataclasses.replace(ex.Config(), **ex.QUICK)
    assert q.n_steps < ex.Config().n_steps and q.n_seeds <= ex.Config().n_seeds

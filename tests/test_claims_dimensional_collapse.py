"""Each dimensional-collapse claim function on small synthetic records, for both verdicts."""

from ssldyn.experiments import dimensional_collapse as E

CFG = E.DimensionalCollapseConfig(sigmas=(1.5, 0.01), n_seeds=2)


def rec(kind, sigma, seed, clean, noised, sep, x_noised=(-0.1, 0.2)):
    return {"kind": kind, "sigma": sigma, "seed": seed, "ts": [0.0, 1.0], "clean_mean": [0.05, clean],
            "noised_mean": [0.05, noised], "separation": [0.1, sep], "spectrum": [[0.1] * 16, [0.1] * 16],
            "X_noised_min": [x_noised[0]] * 2, "X_noised_max": [x_noised[1]] * 2, "X_clean_min": [0.1] * 2,
            "X_clean_max": [0.3] * 2}


def runs(strong_sep=11.0, weak_sep=0.8, weak_ratio=1.0, frozen_factor=1.0, strong_ratio=10.0, clean=0.1):
    out = []
    for s in range(2):
        out.append(rec("sgd", 1.5, s, clean, clean / strong_ratio, strong_sep))
        out.append(rec("sgd", 0.01, s, clean, clean / weak_ratio, weak_sep))
        out.append(rec("frozen", 1.5, s, clean * frozen_factor, clean / strong_ratio, strong_sep))
        out.append(rec("frozen", 0.01, s, clean * frozen_factor, clean / weak_ratio, weak_sep))
    return out


def test_separation_claims_both_ways():
    assert E.claim_strong_separates(CFG, runs()).verdict == "yes"
    assert E.claim_strong_separates(CFG, runs(strong_sep=0.9)).verdict == "no"
    assert E.claim_weak_no_split(CFG, runs()).verdict == "yes"
    assert E.claim_weak_no_split(CFG, runs(weak_sep=1.2)).verdict == "no"
    assert E.claim_weak_no_split(CFG, runs(weak_ratio=2.0)).verdict == "no"
    assert E.claim_strong_separates(CFG, []) is None


def test_frozen_flow_claim_three_ways():
    assert E.claim_frozen_tracks_sgd(CFG, runs(frozen_factor=1.1)).verdict == "yes"
    assert E.claim_frozen_tracks_sgd(CFG, runs(frozen_factor=1.25)).verdict == "partly"
    assert E.claim_frozen_tracks_sgd(CFG, runs(frozen_factor=2.0)).verdict == "no"


def test_infinite_negative_claims_both_ways():
    assert E.claim_infinite_split(CFG, runs(strong_ratio=11.0)).verdict == "yes"
    assert E.claim_infinite_split(CFG, runs(strong_ratio=30.0)).verdict == "no"
    assert E.claim_infinite_levels(CFG, runs(clean=0.11)).verdict == "yes"
    assert E.claim_infinite_levels(CFG, runs(clean=0.15)).verdict == "no"


def test_mechanism_is_an_observation():
    c = E.claim_mechanism(CFG, runs())
    assert c.verdict == "not testable" and "negative eigenvalue at 100%" in c.measured

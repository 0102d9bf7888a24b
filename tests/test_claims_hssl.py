"""Each hssl claim function on small synthetic records, for the verdicts it can give."""

from ssldyn.experiments import hssl as E

CFG = E.Config()


def net(arch, mode, accs, *, rf=9, m=3, sweep=False, eq=0.0, pool=0.0):
    return [{"kind": "network", "arch": arch, "mode": mode, "rf": rf, "max_offset": m, "sweep": sweep,
             "dilations": [1, 1], "seed": s, "acc": a, "equivariance_error": eq, "pooling_gap": pool,
             "train_seconds": 1.0, "loss": [], "ts": []} for s, a in enumerate(accs)]


def test_equivalence_all_verdicts():
    same = (net("cnn", "hssl", [0.80, 0.81, 0.79]) + net("cnn", "assl_fiber", [0.80, 0.80, 0.81])
            + net("cnn", "hssl_aug", [0.85, 0.84, 0.86]) + net("cnn", "assl_fiber_aug", [0.85, 0.85, 0.84]))
    assert E.claim_equivalence(CFG, same).verdict == "yes"
    one_off = [r for r in same if r["mode"] != "hssl_aug"] + net("cnn", "hssl_aug", [0.60, 0.61, 0.60])
    assert E.claim_equivalence(CFG, one_off).verdict == "partly"
    both_off = [r for r in one_off if r["mode"] != "hssl"] + net("cnn", "hssl", [0.50, 0.51, 0.50])
    assert E.claim_equivalence(CFG, both_off).verdict == "no"
    assert E.claim_equivalence(CFG, []) is None


def test_structure_all_verdicts():
    base = net("lc", "random", [0.40, 0.41, 0.39]) + net("cnn", "random", [0.70, 0.71, 0.69])
    yes = base + net("lc", "hssl", [0.40, 0.40, 0.41]) + net("cnn", "hssl", [0.80, 0.81, 0.79])
    assert E.claim_structure(CFG, yes).verdict == "yes"
    partly = base + net("lc", "hssl", [0.40, 0.40, 0.41]) + net("cnn", "hssl", [0.70, 0.70, 0.71])
    assert E.claim_structure(CFG, partly).verdict == "partly"
    no = base + net("lc", "hssl", [0.50, 0.51, 0.50]) + net("cnn", "hssl", [0.70, 0.70, 0.71])
    assert E.claim_structure(CFG, no).verdict == "no"


def test_random_baseline_all_verdicts():
    lc = net("lc", "random", [0.3, 0.3])
    assert E.claim_random_baseline(CFG, lc + net("cnn", "random", [0.78, 0.78]) + net("cnn", "assl", [0.8, 0.8])).verdict == "yes"
    assert E.claim_random_baseline(CFG, lc + net("cnn", "random", [0.65, 0.65]) + net("cnn", "assl", [0.8, 0.8])).verdict == "partly"
    assert E.claim_random_baseline(CFG, lc + net("cnn", "random", [0.40, 0.40]) + net("cnn", "assl", [0.8, 0.8])).verdict == "no"


def test_parameters_all_verdicts():
    def grid(acc):  # acc[(rf, m)]
        return sum((net("cnn", "hssl", [a, a + 0.002, a - 0.002], rf=rf, m=m, sweep=True) for (rf, m), a in acc.items()), [])

    assert E.claim_parameters(CFG, grid({(9, 1): 0.8, (9, 8): 0.7, (29, 1): 0.7, (29, 8): 0.6})).verdict == "yes"
    assert E.claim_parameters(CFG, grid({(9, 1): 0.7, (9, 8): 0.8, (29, 1): 0.7, (29, 8): 0.6})).verdict == "partly"
    assert E.claim_parameters(CFG, grid({(9, 1): 0.6, (9, 8): 0.7, (29, 1): 0.7, (29, 8): 0.8})).verdict == "no"
    assert E.claim_parameters(CFG, grid({(9, 1): 0.6, (9, 8): 0.7})) is None          # one receptive field only


def test_linear_and_equivariance_verdicts():
    lin = {"kind": "linear", "T": 10.0, "lrs": [0.2, 0.1, 0.05], "mc_rel_error_Cp": 0.01}
    assert E.claim_linear_gd(CFG, [dict(lin, gaps=[0.04, 0.02, 0.01], order=1.0)]).verdict == "yes"
    assert E.claim_linear_gd(CFG, [dict(lin, gaps=[0.04, 0.035, 0.03], order=0.2)]).verdict == "no"
    ok = net("cnn", "hssl", [0.8], eq=1e-7, pool=1e-7) + net("lc", "hssl", [0.4], eq=1.3)
    assert E.claim_exact_equivariance(CFG, ok).verdict == "yes"
    bad = net("cnn", "hssl", [0.8], eq=1e-2, pool=1e-7) + net("lc", "hssl", [0.4], eq=1.3)
    assert E.claim_exact_equivariance(CFG, bad).verdict == "no"


def net2d(ds, arch, mode, accs):
    return [{"kind": "network2d", "dataset": ds, "group": E.DATASETS_2D[ds], "arch": arch, "mode": mode, "seed": s,
             "acc": a, "equivariance_error": 0.0, "train_seconds": 1.0, "loss": [], "ts": []} for s, a in enumerate(accs)]


def test_2d_equivalence_all_verdicts():
    def recs(h_mnist, h_digits):
        return (net2d("mnist", "cnn", "assl_fiber", [0.80, 0.81, 0.79]) + net2d("mnist", "cnn", "hssl", h_mnist)
                + net2d("digits", "cnn", "assl_fiber", [0.60, 0.61, 0.59]) + net2d("digits", "cnn", "hssl", h_digits))

    assert E.claim_2d_equivalence(CFG, recs([0.80, 0.80, 0.81], [0.60, 0.60, 0.61])).verdict == "yes"
    assert E.claim_2d_equivalence(CFG, recs([0.80, 0.80, 0.81], [0.40, 0.40, 0.41])).verdict == "partly"
    assert E.claim_2d_equivalence(CFG, recs([0.60, 0.60, 0.61], [0.40, 0.40, 0.41])).verdict == "no"
    assert E.claim_2d_equivalence(CFG, net("cnn", "hssl", [0.8, 0.8])) is None          # 1-D records only
    both = E.claim_2d_equivalence(CFG, recs([0.80, 0.80, 0.81], [0.60, 0.60, 0.61])).claim
    digits_only = E.claim_2d_equivalence(CFG, [r for r in recs([0.8, 0.8, 0.81], [0.6, 0.6, 0.61])
                                                if r["dataset"] == "digits"]).claim
    assert "MNIST" in both and "8×8 digits" in both
    assert "MNIST" not in digits_only and "8×8 digits" in digits_only  # the quick run measures the digits only


def test_2d_structure_all_verdicts():
    def recs(cnn_h, lc_h):
        out = []
        for ds in ("mnist", "digits"):
            out += (net2d(ds, "cnn", "random", [0.50, 0.51, 0.49]) + net2d(ds, "lc", "random", [0.60, 0.61, 0.59])
                    + net2d(ds, "cnn", "hssl", cnn_h) + net2d(ds, "lc", "hssl", lc_h))
        return out

    assert E.claim_2d_structure(CFG, recs([0.70, 0.71, 0.69], [0.60, 0.60, 0.61])).verdict == "yes"
    assert E.claim_2d_structure(CFG, recs([0.50, 0.50, 0.51], [0.60, 0.60, 0.61])).verdict == "partly"
    assert E.claim_2d_structure(CFG, recs([0.50, 0.50, 0.51], [0.80, 0.80, 0.81])).verdict == "no"
    assert E.claim_2d_structure(CFG, []) is None

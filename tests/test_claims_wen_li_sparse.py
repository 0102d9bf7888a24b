"""Each wen-li-sparse claim function on small synthetic records, for both verdicts (and "partly")."""

import dataclasses

from ssldyn.experiments import wen_li_sparse as E

CFG = dataclasses.replace(
    E.WenLiSparseConfig(), d=4, n_seeds=2, lr=0.1, n_steps=20, small_lr_factor=0.5, sigma0=0.02,
    conditions=("mask-bias", "mask-nobias", "none-bias", "none-nobias"), small_lr_conditions=("mask-bias",),
    ode_conditions=("mask-bias",), ode_n_samples=(100, 200), rate_sigma0s=(0.02, 0.005),
)
TS = [0.0, 1.0, 2.0]
GAP = CFG.p * (1 - 1 / CFG.batch_size) / CFG.temperature  # the atom-dense rate gap κp/τ


def sgd(condition, seed, *, energy=0.95, share=0.0, covered=0, probe=0.3, lr=CFG.lr, path=None):
    """One SGD record; `path` overrides the energy over time (else it rises to `energy`)."""
    return {"kind": "sgd", "condition": condition, "lr": lr, "seed": seed, "ts": TS,
            "energy": path if path is not None else [0.25, 0.6, energy], "alignment": [0.3, 0.5, 0.7],
            "single_atom_share": [0.0, share / 2, share], "atoms_covered": [0, 0, covered], "probe_r2": probe,
            "probe_baseline": 0.45}


def all_sgd(**per_condition):
    """Two seeds of every condition of CFG; keyword `c_name=dict(...)` overrides a condition's fields."""
    defaults = {"mask-bias": dict(energy=0.95, share=0.6, covered=3), "mask-nobias": dict(energy=0.97),
                "none-bias": dict(energy=0.5), "none-nobias": dict(energy=0.4)}
    recs = []
    for c in CFG.conditions:
        kw = {**defaults[c], **per_condition.get(c.replace("-", "_"), {})}
        recs += [sgd(c, s, **kw) for s in range(CFG.n_seeds)]
    return recs


def rates(augmentation, sigma0, *, atoms, dense, table=None, ratio=1.0):
    table_atoms, table_dense = table if table is not None else (atoms, dense)
    return [{"kind": "rates", "augmentation": augmentation, "sigma0": sigma0, "ratio": ratio, "seed": s,
             "measured_atoms": atoms, "measured_dense": dense, "table_atoms": table_atoms,
             "table_dense": table_dense, "linear_atoms": table_atoms, "linear_dense": table_dense}
            for s in range(CFG.n_seeds)]


def ode(n, energy):
    return {"kind": "ode", "condition": "mask-bias", "n_samples": n, "ts": TS, "status": 0, "num_steps": 10,
            "solve_seconds": 0.1, "energy": energy}


def test_every_claim_function_is_registered():
    names = {n for n in dir(E) if n.startswith("claim_")}
    assert names == {fn.__name__ for fn in E.CLAIMS}
    assert E.EXPERIMENT.claims == E.CLAIMS


def test_mask_energy_both_ways():
    assert E.claim_mask_energy(CFG, all_sgd()).verdict == "yes"
    c = E.claim_mask_energy(CFG, all_sgd(mask_bias=dict(energy=0.8)))
    assert c.verdict == "no" and c.reproduced is False
    assert "masking + bias: [0.8, 0.8]" in c.measured and c.criterion and c.paper
    assert E.claim_mask_energy(dataclasses.replace(CFG, conditions=("none-bias",)), all_sgd()) is None


def test_no_augmentation_dense_both_ways():
    assert E.claim_no_augmentation_dense(CFG, all_sgd()).verdict == "yes"
    assert E.claim_no_augmentation_dense(CFG, all_sgd(none_bias=dict(energy=0.9))).verdict == "no"


def test_single_atom_yes_partly_no():
    assert E.claim_single_atom(CFG, all_sgd()).verdict == "yes"  # share 0.6 ≥ 0.5, covered 3 ≥ d/2 = 2
    partly = E.claim_single_atom(CFG, all_sgd(mask_bias=dict(share=0.1, covered=1)))
    assert partly.verdict == "partly" and partly.reproduced is None
    assert E.claim_single_atom(CFG, all_sgd(mask_bias=dict(share=0.0, covered=0))).verdict == "no"


def test_no_single_atom_without_threshold_both_ways():
    assert E.claim_no_single_atom_without_threshold(CFG, all_sgd()).verdict == "yes"
    bad = all_sgd(mask_nobias=dict(energy=0.97, share=0.0625, covered=1))
    assert E.claim_no_single_atom_without_threshold(CFG, bad).verdict == "no"


def test_early_growth_signs_both_ways():
    good = rates("mask", 0.02, atoms=0.1, dense=-0.05) + rates("none", 0.02, atoms=0.3, dense=0.1)
    assert E.claim_early_growth_signs(CFG, good).verdict == "yes"
    bad = rates("mask", 0.02, atoms=0.1, dense=0.01) + rates("none", 0.02, atoms=0.3, dense=0.1)
    assert E.claim_early_growth_signs(CFG, bad).verdict == "no"
    assert E.claim_early_growth_signs(CFG, all_sgd()) is None


def test_rate_match_both_ways_at_each_sigma0():
    exact = rates("mask", 0.02, atoms=0.1, dense=-0.05) + rates("none", 0.02, atoms=0.3, dense=0.1)
    off = rates("mask", 0.005, atoms=0.1 + 0.2 * GAP, dense=-0.05, table=(0.1, -0.05))
    off += rates("none", 0.005, atoms=0.3, dense=0.1)
    protocol = E.claim_rates_match_protocol(CFG, exact + off)
    small = E.claim_rates_match_small_weight(CFG, exact + off)
    assert protocol.verdict == "yes" and "σ₀ = 0.02, protocol scale" in protocol.claim
    assert small.verdict == "no" and "σ₀ = 0.005, small-weight regime" in small.claim
    assert "within 15% at 1 of 2" in small.measured
    within = rates("mask", 0.005, atoms=0.1 + 0.1 * GAP, dense=-0.05, table=(0.1, -0.05))
    assert E.claim_rates_match_small_weight(CFG, exact + within).verdict == "yes"
    assert E.claim_rates_match_small_weight(CFG, exact) is None


def test_ode_tracks_sgd_both_ways():
    base = all_sgd()  # seed-mean SGD energy of masking + bias: [0.25, 0.6, 0.95]
    close = [ode(100, [0.25, 0.6, 0.8]), ode(200, [0.25, 0.62, 0.93])]  # only the largest N_f counts
    assert E.claim_ode_tracks_sgd(CFG, base + close).verdict == "yes"
    c = E.claim_ode_tracks_sgd(CFG, base + [ode(100, [0.25, 0.6, 0.95]), ode(200, [0.25, 0.7, 0.95])])
    assert c.verdict == "no" and "first > 0.05 at t = 1" in c.measured
    assert E.claim_ode_tracks_sgd(CFG, base) is None


def test_ode_improves_with_samples_both_ways():
    base = all_sgd()
    better = [ode(100, [0.25, 0.7, 0.8]), ode(200, [0.25, 0.6, 0.9])]  # departs at t = 1 then t = never
    assert E.claim_ode_improves_with_samples(CFG, base + better).verdict == "yes"
    worse = [ode(100, [0.25, 0.6, 0.9]), ode(200, [0.25, 0.7, 0.8])]
    assert E.claim_ode_improves_with_samples(CFG, base + worse).verdict == "no"
    one_size = dataclasses.replace(CFG, ode_n_samples=(200,))
    assert E.claim_ode_improves_with_samples(one_size, base + better) is None


def test_lr_converged_both_ways():
    small_lr = CFG.lr * CFG.small_lr_factor
    same = [sgd("mask-bias", s, energy=0.95, share=0.6, covered=3, lr=small_lr) for s in range(2)]
    assert E.claim_lr_converged(CFG, all_sgd() + same).verdict == "yes"
    apart = [sgd("mask-bias", s, energy=0.85, share=0.6, covered=3, lr=small_lr) for s in range(2)]
    c = E.claim_lr_converged(CFG, all_sgd() + apart)
    assert c.verdict == "no" and "max ΔE 0.100" in c.measured
    assert E.claim_lr_converged(CFG, all_sgd()) is None


def test_probe_both_ways():
    good = all_sgd(mask_bias=dict(probe=0.5), none_bias=dict(probe=0.3))
    c = E.claim_probe(CFG, good)
    assert c.verdict == "yes" and "best linear readout of x: 0.450" in c.measured
    bad = all_sgd(mask_bias=dict(probe=0.3), none_bias=dict(probe=0.4))
    assert E.claim_probe(CFG, bad).verdict == "no"
    assert E.claim_probe(dataclasses.replace(CFG, conditions=("mask-bias",)), good) is None

r"""`hssl`: Homomorphic SSL (Keller, Suau & Zappella, TMLR 2023) on MNIST-1D-style signals, CPU-sized.

Protocol (theory note §4; every size is a library choice, the paper's runs are GPU-scale):

- data: `ssldyn.data.make_mnist1d` (10 templates, scale / stretch / shear / cyclic shift / correlated
  and white noise, length 40), a train / held-out test split;
- backbones: the circular 1-D CNN (exactly equivariant to cyclic shifts; fibers = positions;
  receptive field `1 + 4 Σ d` set by dilations, kernel 5, pointwise layers up to `n_layers`) and the
  locally connected control (untied weights, identical receptive fields and shapes);
- SSL: MLP head, NT-Xent τ = 0.1, Adam, minibatches, seeds vmapped; modes `assl` (SimCLR, pooled
  head), `assl_fiber` (input shifted, identity fiber), `hssl` (two fibers of one forward pass, offset
  `Δ ~ U{−m..m}`), `assl_fiber_aug` / `hssl_aug` (plus non-group augmentations), `random`;
- evaluation: a logistic probe on globally pooled backbone features, held-out split;
- sweep of `hssl` on the CNN over receptive field × offset range;
- linear dynamics: the tied spectral-contrastive flow on the closed-form fiber `ViewStats` of the
  training signals against full-batch GD on the same statistics at three learning rates;
- 2-D cells (the CPU-sized analogue of the paper's Table 1): the embedded real MNIST digits
  (`ssldyn.data.load_mnist("embedded")`, 2×2 average-pooled to 14×14) with cyclic translations of the
  torus (circular 2-D CNN, fibers = the 196 positions) and scikit-learn's 8×8 digits zero-padded to
  12×12 with p4 (lifting + group convolution, fibers = the 4 spatially pooled orientations), each
  against its untied control, in the modes `assl`, `assl_fiber`, `hssl` and `random`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ssldyn
from ssldyn import data as ssl_data
from ssldyn import hssl

from ._kit import Claim, ConfigCheck, band, mean_se, select, verdict
from ._registry import register
from ._runner import Experiment, save_figure

PAPER = ("T. A. Keller, X. Suau, L. Zappella. Homomorphic Self-Supervised Learning. TMLR 2023. "
         "arXiv:2211.08282")

MAIN_MODES = ("assl", "assl_fiber", "hssl", "assl_fiber_aug", "hssl_aug")


@dataclasses.dataclass(frozen=True)
class Config:
    """Configuration of `hssl` (defaults: the full CPU protocol).

    `dilations` / `max_offset`: the main receptive field (1 + 4·Σd) and offset range m of p(Δ) =
    U{−m..m}. `rf_sweep` (tuples of dilations) × `offset_sweep` is the `hssl` parameter sweep on the
    CNN. `lc_modes`: modes trained on the locally connected control. `linear_*`: the linear-dynamics
    cell (receptive field r, output dimension k, horizon, the three GD learning rates).
    """

    n_train: int = 6000
    n_test: int = 2000
    length: int = 40
    channels: int = 16
    kernel: int = 5
    n_layers: int = 3
    dilations: tuple = (1, 1)
    max_offset: int = 3
    modes: tuple = MAIN_MODES
    lc_modes: tuple = ("hssl", "assl_fiber")
    rf_sweep: tuple = ((1, 1), (1, 2), (1, 2, 4))
    offset_sweep: tuple = (1, 3, 10)
    n_seeds: int = 5
    n_steps: int = 400
    batch_size: int = 128
    lr: float = 1e-3
    temperature: float = 0.1
    head: tuple = (128, 64)
    linear_r: int = 9
    linear_k: int = 4
    linear_T: float = 40.0
    linear_lrs: tuple = (0.2, 0.1, 0.05)
    seed: int = 0
    dtype: str = "float64"
    # 2-D cells: `datasets_2d` ⊂ ("mnist", "digits"); sizes are multiples of 100 (digits: at most 1,200 / 500)
    datasets_2d: tuple = ("mnist", "digits")
    modes_2d: tuple = ("assl", "assl_fiber", "hssl")
    n_train_2d: int = 2000
    n_test_2d: int = 1000
    channels_translation: int = 16
    layers_translation: int = 2
    channels_p4: int = 8
    kernel_2d: int = 3
    max_offset_translation: int = 2
    max_offset_p4: int = 1
    n_steps_2d: int = 200
    batch_size_2d: int = 64
    lr_2d: float = 3e-3
    head_2d: tuple = (64, 32)
    noise_2d: float = 0.1


QUICK = dict(n_train=1000, n_test=500, n_seeds=3, n_steps=100, batch_size=64, modes=("assl", "assl_fiber", "hssl"),
             lc_modes=("hssl",), rf_sweep=((1, 1), (1, 2, 4)), offset_sweep=(8,),
             datasets_2d=("digits",), modes_2d=("assl_fiber", "hssl"), n_train_2d=500, n_test_2d=500, n_steps_2d=40, batch_size_2d=32)

DATASETS_2D = {"mnist": "translation", "digits": "p4"}


def prepare(config: Config) -> dict:
    X, y, nu = ssl_data.make_mnist1d(config.seed, config.n_train + config.n_test, length=config.length)
    n = config.n_train
    ctx = {"X_train": X[:n], "y_train": y[:n], "X_test": X[n:], "y_test": y[n:]}
    for name in config.datasets_2d:
        ctx[name] = _load_2d(name, config)
    return ctx


def _load_2d(name: str, config: Config) -> dict:
    """Train / held-out images of one 2-D data set, class-balanced for MNIST, a fixed permutation for digits."""
    if name == "mnist":
        Xtr, ytr, Xte, yte = ssl_data.load_mnist("embedded")          # 4,000 / 1,000, sorted by label
        n_tr, n_te = min(config.n_train_2d, len(Xtr)), min(config.n_test_2d, len(Xte))
        # interleave the label-sorted pools so that any prefix is (nearly) class-balanced
        itr = np.argsort(np.arange(len(Xtr)) % 400, kind="stable")[:n_tr]
        ite = np.argsort(np.arange(len(Xte)) % 100, kind="stable")[:n_te]
        Xtr = hssl.downsample_images(Xtr.reshape(-1, 28, 28), 2)
        Xte = hssl.downsample_images(Xte.reshape(-1, 28, 28), 2)
        return {"X_train": Xtr[itr], "y_train": ytr[itr], "X_test": Xte[ite], "y_test": yte[ite]}
    if name == "digits":
        X, y = hssl.load_digits_padded(12)
        perm = np.random.default_rng(config.seed).permutation(len(X))
        n_te = min(config.n_test_2d, 500)
        n_tr = min(config.n_train_2d, (len(X) - n_te) // 100 * 100)
        te, tr = perm[:n_te], perm[n_te:n_te + n_tr]
        return {"X_train": X[tr], "y_train": y[tr], "X_test": X[te], "y_test": y[te]}
    raise ValueError(f"`datasets_2d` entries must be among {tuple(DATASETS_2D)}, got {name!r}.")


def _spec_2d(config: Config, dataset: str, arch: str):
    if DATASETS_2D[dataset] == "translation":
        return hssl.backbone2d_spec("translation", arch, side=14, channels=config.channels_translation,
                                    kernel=config.kernel_2d, n_layers=config.layers_translation)
    return hssl.backbone2d_spec("p4", arch, side=12, channels=config.channels_p4, kernel=config.kernel_2d, n_layers=2)


def _rf(dilations, kernel) -> int:
    return 1 + (kernel - 1) * sum(dilations)


def cells(config: Config) -> list[dict]:
    out = [{"id": "linear", "kind": "linear"}]
    main = (list(config.dilations), config.max_offset)
    for arch in ("cnn", "lc"):
        out.append({"id": f"{arch}-random", "kind": "network", "arch": arch, "mode": "random",
                    "dilations": main[0], "max_offset": main[1]})
    for mode in config.modes:
        out.append({"id": f"cnn-{mode}", "kind": "network", "arch": "cnn", "mode": mode,
                    "dilations": main[0], "max_offset": main[1]})
    for mode in config.lc_modes:
        out.append({"id": f"lc-{mode}", "kind": "network", "arch": "lc", "mode": mode,
                    "dilations": main[0], "max_offset": main[1]})
    for dil in config.rf_sweep:
        for m in config.offset_sweep:
            if (list(dil), m) == main:
                continue
            out.append({"id": f"sweep-rf{_rf(dil, config.kernel)}-m{m}", "kind": "network", "arch": "cnn",
                        "mode": "hssl", "dilations": list(dil), "max_offset": m})
    for ds in config.datasets_2d:
        for arch in ("cnn", "lc"):
            for mode in ("random",) + tuple(config.modes_2d):
                out.append({"id": f"{ds}-{arch}-{mode}", "kind": "network2d", "dataset": ds, "arch": arch, "mode": mode})
    return out


def _run_network_2d(config: Config, ctx: dict, cell: dict) -> list[dict]:
    data = ctx[cell["dataset"]]
    spec = _spec_2d(config, cell["dataset"], cell["arch"])
    m = config.max_offset_translation if spec.group == "translation" else config.max_offset_p4
    steps = 0 if cell["mode"] == "random" else config.n_steps_2d
    cfg = hssl.ssl_config(cell["mode"], n_steps=steps, batch_size=config.batch_size_2d, lr=config.lr_2d,
                          temperature=config.temperature, max_offset=m, head=config.head_2d, noise_std=config.noise_2d,
                          save_every=max(steps // 10, 1) if steps else None)
    keys = jax.random.split(jax.random.key(config.seed + 11), config.n_seeds)  # same inits across modes
    t0 = time.perf_counter()
    params, losses, ts = hssl.train_ssl_2d(keys, data["X_train"], spec, cfg)
    jax.block_until_ready(params)
    t_train = time.perf_counter() - t0
    acc = np.asarray(hssl.probe_pooled_2d(params["backbone"], spec, data["X_train"], data["y_train"],
                                          data["X_test"], data["y_test"]))
    p0 = jax.tree_util.tree_map(lambda a: a[0], params["backbone"])
    g = 3 * spec.moduli[1] + 5 % spec.moduli[1]                   # translation (3, 5); p4: three quarter turns
    eq = float(hssl.fiber_equivariance_error(p0, jnp.asarray(data["X_test"][:16], jnp.float32), g, spec))
    base = {"kind": "network2d", "dataset": cell["dataset"], "group": spec.group, "arch": cell["arch"],
            "mode": cell["mode"], "max_offset": m, "equivariance_error": eq, "train_seconds": t_train}
    return [dict(base, seed=s, acc=float(acc[s]), loss=np.asarray(losses[s]).tolist() if losses.size else [],
                 ts=np.asarray(ts).tolist() if losses.size else []) for s in range(config.n_seeds)]


def _run_network(config: Config, ctx: dict, cell: dict) -> list[dict]:
    spec = hssl.backbone_spec(cell["arch"], length=config.length, channels=config.channels, kernel=config.kernel,
                              dilations=tuple(cell["dilations"]), n_layers=max(config.n_layers, len(cell["dilations"])))
    n_save = 10
    steps = 0 if cell["mode"] == "random" else config.n_steps
    cfg = hssl.ssl_config(cell["mode"], n_steps=steps, batch_size=config.batch_size, lr=config.lr,
                          temperature=config.temperature, max_offset=cell["max_offset"], head=config.head,
                          save_every=max(steps // n_save, 1) if steps else None)
    keys = jax.random.split(jax.random.key(config.seed + 1), config.n_seeds)   # same inits across cells
    t0 = time.perf_counter()
    params, losses, ts = hssl.train_ssl(keys, ctx["X_train"], spec, cfg)
    jax.block_until_ready(params)
    t_train = time.perf_counter() - t0
    acc = np.asarray(hssl.probe_pooled(params["backbone"], spec, ctx["X_train"], ctx["y_train"], ctx["X_test"],
                                       ctx["y_test"]))
    p0 = jax.tree_util.tree_map(lambda a: a[0], params["backbone"])
    Xs = jnp.asarray(ctx["X_test"][:64], jnp.float32)
    eq = float(hssl.equivariance_error(p0, Xs, 7, spec))
    pool = float(hssl.network_pooling_degeneracy(jax.random.key(0), p0, Xs, spec))
    base = {"kind": "network", "arch": cell["arch"], "mode": cell["mode"], "dilations": cell["dilations"],
            "rf": spec.receptive_field, "max_offset": cell["max_offset"], "sweep": cell["id"].startswith("sweep"),
            "equivariance_error": eq, "pooling_gap": pool, "train_seconds": t_train}
    return [dict(base, seed=s, acc=float(acc[s]), loss=np.asarray(losses[s]).tolist() if losses.size else [],
                 ts=np.asarray(ts).tolist() if losses.size else []) for s in range(config.n_seeds)]


def _run_linear(config: Config, ctx: dict, cell: dict) -> list[dict]:
    X = jnp.asarray(ctx["X_train"], jnp.float64)
    r, k, T = config.linear_r, config.linear_k, config.linear_T
    p = hssl.offset_probs(config.max_offset, config.length)
    st = hssl.fiber_view_stats(X, r, p)
    flow = hssl.tied_flow(st, "spectral")
    W0 = 0.05 * jax.random.normal(jax.random.key(config.seed + 7), (r, k), jnp.float64)
    gaps, curves = [], {}
    n_save = 20
    for lr in config.linear_lrs:
        n = int(round(T / lr))
        n -= n % n_save
        gd = ssldyn.simulate_gd(flow, W0, lr, n, save_every=n // n_save, include_initial=True)
        ode = ssldyn.solve(flow, W0, 0.0, float(gd.ts[-1]), ts=gd.ts, rtol=1e-10, atol=1e-12)
        gaps.append(float(ssldyn.compare_along(gd, ode, invariant="state").max_gap))
        curves[lr] = {"ts": np.asarray(gd.ts).tolist(),
                      "loss_gd": np.asarray(jax.vmap(lambda W: hssl.linear_loss(W, st))(gd.saved)).tolist(),
                      "loss_ode": np.asarray(jax.vmap(lambda W: hssl.linear_loss(W, st))(ode.ys)).tolist()}
    order = ssldyn.lr_order(config.linear_lrs, gaps)
    # Monte-Carlo fiber statistics against the closed form (a check of the sampler on the real data)
    mc = hssl.sampled_fiber_view_stats(jax.random.key(config.seed + 3), X, r, p, 50_000)
    mc_err = float(jnp.max(jnp.abs(mc.Cp - st.Cp)) / jnp.max(jnp.abs(st.Cp)))
    return [{"kind": "linear", "r": r, "k": k, "T": T, "lrs": list(config.linear_lrs), "gaps": gaps, "order": order,
             "curves": {str(lr): c for lr, c in curves.items()}, "mc_rel_error_Cp": mc_err,
             "C0_eigs": np.asarray(jnp.linalg.eigvalsh(st.C0)).tolist(),
             "Cp_eigs": np.asarray(jnp.linalg.eigvalsh(st.Cp)).tolist()}]


CELL_KINDS = {"network": _run_network, "linear": _run_linear, "network2d": _run_network_2d}


# ------------------------------------------------------------------------------------------------
# Claims (criteria fixed before running)
# ------------------------------------------------------------------------------------------------

def _acc(records, **fields) -> np.ndarray:
    return np.array([r["acc"] for r in select(records, kind="network", sweep=False, **fields)], float)


def _ms(x) -> str:
    m, s = mean_se(x)
    return f"{100 * m:.1f} ± {100 * s:.1f}%"


def _close(a, b, floor: float = 0.02) -> tuple[bool, float, float]:
    """Means within max(2 SE of the difference, floor)."""
    (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
    tol = max(2 * np.hypot(sa, sb), floor)
    return bool(abs(ma - mb) <= tol), ma - mb, tol


def claim_equivalence(config, records) -> Claim | None:
    pairs = [("hssl", "assl_fiber"), ("hssl_aug", "assl_fiber_aug")]
    got = [(h, a, _acc(records, arch="cnn", mode=h), _acc(records, arch="cnn", mode=a)) for h, a in pairs]
    got = [g for g in got if g[2].size and g[3].size]
    if not got:
        return None
    res = [(h, a, *_close(x, y)) for h, a, x, y in got]
    n_ok = sum(ok for _, _, ok, _, _ in res)
    meas = "; ".join(f"{h} {_ms(x)} vs {a} {_ms(y)} (diff {100 * d:+.1f} pp, tolerance {100 * t:.1f} pp)"
                     for (h, a, x, y), (_, _, _, d, t) in zip(got, res))
    return Claim(
        claim="With the equivariant CNN, H-SSL and A-SSL with the identity-fiber head reach comparable probe accuracy, "
              "with and without the extra non-group augmentations",
        paper="§4 (Table 1): 'H-SSL performs comparably to A-SSL with the same transformations' for equivariant backbones",
        measured=meas,
        criterion="|mean difference| ≤ max(2 SE of the difference, 2 pp) for each pair (hssl vs assl_fiber, "
                  "hssl_aug vs assl_fiber_aug); yes if all pairs pass, partly if some, no if none",
        verdict=verdict(n_ok == len(res), partly=n_ok > 0),
    )


def claim_structure(config, records) -> Claim | None:
    lc_h, lc_r = _acc(records, arch="lc", mode="hssl"), _acc(records, arch="lc", mode="random")
    cnn_h, cnn_r = _acc(records, arch="cnn", mode="hssl"), _acc(records, arch="cnn", mode="random")
    if not (lc_h.size and lc_r.size and cnn_h.size and cnn_r.size):
        return None
    (mlh, slh), (mlr, slr) = mean_se(lc_h), mean_se(lc_r)
    (mch, sch), (mcr, scr) = mean_se(cnn_h), mean_se(cnn_r)
    lc_no_better = mlh - mlr <= 2 * np.hypot(slh, slr)
    cnn_better = mch - mcr > 2 * np.hypot(sch, scr)
    return Claim(
        claim="With the locally connected control H-SSL is no better than that architecture's random initialisation, "
              "while with the equivariant CNN it improves on its random initialisation",
        paper="§4: 'demonstrate the necessity of representational structure for feature-space SSL' (H-SSL fails "
              "when the structure is removed)",
        measured=(f"LC: hssl {_ms(lc_h)} vs random {_ms(lc_r)} ({100 * (mlh - mlr):+.1f} pp); CNN: hssl {_ms(cnn_h)} "
                  f"vs random {_ms(cnn_r)} ({100 * (mch - mcr):+.1f} pp)"),
        criterion="LC hssl − LC random ≤ 2 SE AND CNN hssl − CNN random > 2 SE; yes if both, partly if one, no if neither",
        verdict=verdict(lc_no_better and cnn_better, partly=lc_no_better or cnn_better),
    )


def claim_random_baseline(config, records) -> Claim | None:
    cnn_r, lc_r = _acc(records, arch="cnn", mode="random"), _acc(records, arch="lc", mode="random")
    trained = {m: _acc(records, arch="cnn", mode=m) for m in config.modes}
    trained = {m: a for m, a in trained.items() if a.size}
    if not (cnn_r.size and lc_r.size and trained):
        return None
    best_mode = max(trained, key=lambda m: trained[m].mean())
    best = trained[best_mode].mean()
    ratio = cnn_r.mean() / best
    hs = trained.get("hssl")
    beats = "n/a" if hs is None else ("yes" if hs.mean() - cnn_r.mean() > 2 * np.hypot(mean_se(hs)[1], mean_se(cnn_r)[1]) else "no")
    return Claim(
        claim="A random circular CNN with a pooled readout is already a strong baseline; translation-only SSL may not beat it",
        paper="theory note §4.4 (3), from exploratory runs; the paper reports random-init baselines alongside SSL",
        measured=(f"random CNN {_ms(cnn_r)}, random LC {_ms(lc_r)}, best trained CNN mode {best_mode} "
                  f"{_ms(trained[best_mode])} (random/best = {ratio:.2f}); translation-only hssl beats random CNN "
                  f"by > 2 SE: {beats}"),
        criterion="random CNN ≥ 0.9 × best trained CNN mode → yes; ≥ 0.75 × → partly; else no",
        verdict=verdict(bool(ratio >= 0.9), partly=bool(ratio >= 0.75)),
    )


def claim_parameters(config, records) -> Claim | None:
    recs = select(records, kind="network", arch="cnn", mode="hssl")
    grid = {}
    for r in recs:
        grid.setdefault((r["rf"], r["max_offset"]), []).append(r["acc"])
    if len({rf for rf, _ in grid}) < 2 or len({m for _, m in grid}) < 2:
        return None
    stats = {key: mean_se(v) for key, v in grid.items()}
    best = max(stats, key=lambda key: stats[key][0])
    small = (min(rf for rf, _ in grid), min(m for _, m in grid))
    if small not in stats:
        return None
    tol = np.hypot(stats[best][1], stats[small][1])
    ok = stats[best][0] - stats[small][0] <= tol
    partly = best[0] == small[0] or best[1] == small[1]
    table = ", ".join(f"RF {rf}/m {m}: {100 * v[0]:.1f}" for (rf, m), v in sorted(stats.items()))
    return Claim(
        claim="Smaller receptive fields with nearby offsets work best for H-SSL (receptive field ≈ crop size)",
        paper="§5 parameter study; theory note §4.4 (4): a hypothesis from single-seed exploratory runs",
        measured=f"hssl probe accuracy (%) over {len(recs) // max(len(grid), 1)} seeds: {table}; best RF {best[0]}, m {best[1]}",
        criterion="the (smallest RF, smallest offset) cell is within 1 SE (of the difference) of the best cell → yes; "
                  "else partly if the best cell has the smallest RF or the smallest offset; else no",
        verdict=verdict(bool(ok), partly=bool(partly)),
    )


def claim_linear_gd(config, records) -> Claim | None:
    lin = select(records, kind="linear")
    if not lin:
        return None
    r = lin[0]
    return Claim(
        claim="The linear H-SSL flow on fiber statistics predicts a linear equivariant encoder trained by GD, to O(lr)",
        paper="theory note §3 and §5 (7): derived linear reduction (not a claim of the paper)",
        measured=(f"max relative gap GD vs ODE over t ≤ {r['T']:g} at lr {r['lrs']}: "
                  f"{', '.join(f'{g:.2e}' for g in r['gaps'])}; fitted order {r['order']:.2f}; Monte-Carlo vs closed-form "
                  f"C+ max relative error {r['mc_rel_error_Cp']:.1e} (50,000 pairs)"),
        criterion="fitted order of the gap in lr within [0.8, 1.2] and smallest gap < 5%",
        verdict=verdict(bool(0.8 <= r["order"] <= 1.2 and min(r["gaps"]) < 0.05)),
    )


def claim_exact_equivariance(config, records) -> Claim | None:
    cnn = select(records, kind="network", arch="cnn")
    lc = select(records, kind="network", arch="lc")
    if not cnn or not lc:
        return None
    e_c = max(r["equivariance_error"] for r in cnn)
    e_l = min(r["equivariance_error"] for r in lc)
    p_c = max(r["pooling_gap"] for r in cnn)
    return Claim(
        claim="The circular CNN is exactly equivariant (so pooled features are exactly invariant, the pooling "
              "degeneracy), the locally connected control is not",
        paper="§3: the equivalence is exact for an augmentation-homomorphic feature extractor",
        measured=(f"max relative ‖f(T_g x) − Γ_g f(x)‖ over trained CNNs {e_c:.1e}; min over LCs {e_l:.2f}; "
                  f"pooled C+ vs C0 under group-only augmentation (CNN) {p_c:.1e} (float32 networks)"),
        criterion="CNN error < 1e-5 and pooled gap < 1e-4 (float32 rounding), LC error > 0.1",
        verdict=verdict(bool(e_c < 1e-5 and p_c < 1e-4 and e_l > 0.1)),
    )


def _acc2d(records, **fields) -> np.ndarray:
    return np.array([r["acc"] for r in select(records, kind="network2d", **fields)], float)


_DATASET_LABEL = {"mnist": "MNIST 14×14 / translations", "digits": "8×8 digits in 12×12 / p4"}
_BACKBONE_2D = {"mnist": "translation CNN on MNIST", "digits": "p4 network on the 8×8 digits"}


def claim_2d_equivalence(config, records) -> Claim | None:
    got = []
    for ds in DATASETS_2D:
        h, a = _acc2d(records, dataset=ds, arch="cnn", mode="hssl"), _acc2d(records, dataset=ds, arch="cnn", mode="assl_fiber")
        if h.size and a.size:
            got.append((ds, h, a, *_close(h, a)))
    if not got:
        return None
    n_ok = sum(ok for _, _, _, ok, _, _ in got)
    return Claim(
        claim=f"On 2-D images with an equivariant backbone ({', '.join(_BACKBONE_2D[g[0]] for g in got)}), H-SSL "
              "reaches the probe accuracy of A-SSL with the same group (input transformed, identity fiber)",
        paper="§4.4 / Table 1: H-SSL 'performs comparably to A-SSL with the same transformations' for "
              "augmentation-homomorphic backbones",
        measured="; ".join(f"{_DATASET_LABEL[ds]}: hssl {_ms(h)} vs assl_fiber {_ms(a)} (diff {100 * d:+.1f} pp, "
                           f"tolerance {100 * t:.1f} pp)" for ds, h, a, _, d, t in got),
        criterion="per data set |mean difference| ≤ max(2 SE of the difference, 2 pp) (the two modes draw their group "
                  "elements independently, so they are separate runs); yes if every data set passes, partly if some, "
                  "no if none",
        verdict=verdict(n_ok == len(got), partly=n_ok > 0),
    )


def claim_2d_structure(config, records) -> Claim | None:
    conds, parts = [], []
    for ds in DATASETS_2D:
        a = {(arch, mode): _acc2d(records, dataset=ds, arch=arch, mode=mode)
             for arch in ("cnn", "lc") for mode in ("hssl", "random")}
        if not all(v.size for v in a.values()):
            continue
        gain = {}
        for arch in ("cnn", "lc"):
            (mh, sh), (mr, sr) = mean_se(a[arch, "hssl"]), mean_se(a[arch, "random"])
            gain[arch] = (mh - mr, 2 * np.hypot(sh, sr))
        cnn_ok = bool(gain["cnn"][0] > gain["cnn"][1])
        lc_ok = bool(gain["lc"][0] <= gain["lc"][1])
        conds += [cnn_ok, lc_ok]
        lc_f = _acc2d(records, dataset=ds, arch="lc", mode="assl_fiber")
        extra = f", LC assl_fiber {_ms(lc_f)}" if lc_f.size else ""
        parts.append(f"{_DATASET_LABEL[ds]}: CNN hssl − random {100 * gain['cnn'][0]:+.1f} pp (2 SE "
                     f"{100 * gain['cnn'][1]:.1f}), LC hssl − random {100 * gain['lc'][0]:+.1f} pp (2 SE "
                     f"{100 * gain['lc'][1]:.1f}){extra}")
    if not conds:
        return None
    return Claim(
        claim="On 2-D images H-SSL improves the equivariant backbone over its random initialisation, while the untied "
              "(locally connected / per-orientation) control does not benefit in the same way",
        paper="§4.4: 'demonstrate the necessity of representational structure for feature-space SSL'",
        measured="; ".join(parts),
        criterion="per data set two conditions, CNN hssl − CNN random > 2 SE and LC hssl − LC random ≤ 2 SE (SE of the "
                  "difference over seeds); yes if all conditions hold on every data set, partly if some, no if none",
        verdict=verdict(all(conds), partly=any(conds)),
    )


CLAIMS = (claim_equivalence, claim_structure, claim_random_baseline, claim_parameters, claim_linear_gd,
          claim_exact_equivariance, claim_2d_equivalence, claim_2d_structure)


# ------------------------------------------------------------------------------------------------
# Figures and report
# ------------------------------------------------------------------------------------------------

def _finish_axes(ax, xlabel, ylabel, title=None, *, legend_size=7):
    """Axis labels, optional title, a grid and a small legend: the decoration of the line panels."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def _accuracy_figure(config, records, out):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
    labels, x = [], 0
    for arch, color in (("cnn", "C0"), ("lc", "C3")):
        for mode in ("random",) + tuple(config.modes):
            a = _acc(records, arch=arch, mode=mode)
            if not a.size:
                continue
            m, s = mean_se(a)
            ax.bar(x, 100 * m, yerr=100 * s, color=color, alpha=0.6, capsize=3)
            ax.scatter(np.full(a.size, x) + np.linspace(-0.15, 0.15, a.size), 100 * a, color="k", s=8, zorder=3)
            labels.append(f"{arch}\n{mode}")
            x += 1
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("probe accuracy (%), held-out")
    ax.axhline(10, color="0.5", ls=":", lw=1)
    ax.set_title("Logistic probe on pooled backbone features (bars: mean ± SE; dots: seeds)")
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, out, "accuracy_by_mode")


def _sweep_figure(config, records, out):
    import matplotlib.pyplot as plt

    recs = select(records, kind="network", arch="cnn", mode="hssl")
    rfs = sorted({r["rf"] for r in recs})
    ms = sorted({r["max_offset"] for r in recs})
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    rand = _acc(records, arch="cnn", mode="random")
    for i, m in enumerate(ms):
        mean, se, xs = [], [], []
        for rf in rfs:
            a = [r["acc"] for r in recs if r["rf"] == rf and r["max_offset"] == m]
            if a:
                mu, s = mean_se(a)
                mean.append(100 * mu)
                se.append(100 * s)
                xs.append(rf)
        ax.errorbar(xs, mean, yerr=se, marker="o", capsize=3, label=f"offset range m = {m}", color=f"C{i}")
    if rand.size:
        ax.axhline(100 * rand.mean(), color="0.4", ls=":", label="random CNN (main RF)")
    _finish_axes(ax, "receptive field (positions)", "probe accuracy (%)",
                 "H-SSL on the CNN: receptive field × offset range")
    return save_figure(fig, out, "accuracy_vs_rf_offset")


def _linear_figure(config, records, out):
    import matplotlib.pyplot as plt

    lin = select(records, kind="linear")
    if not lin:
        return []
    r = lin[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    lr0 = str(r["lrs"][-1])
    c = r["curves"][lr0]
    axes[0].plot(c["ts"], c["loss_ode"], lw=2, label="linear flow (ODE)")
    for lr, cc in r["curves"].items():
        axes[0].plot(cc["ts"], cc["loss_gd"], "o", ms=3, mfc="none", label=f"GD, lr {lr}")
    _finish_axes(axes[0], "t = lr × steps", "spectral-contrastive loss",
                 f"Tied linear encoder, r = {r['r']}, k = {r['k']}")
    axes[1].loglog(r["lrs"], r["gaps"], "o-", label=f"max gap (order {r['order']:.2f})")
    lrs = np.array(r["lrs"])
    axes[1].loglog(lrs, r["gaps"][0] * lrs / lrs[0], "k:", label="slope 1")
    _finish_axes(axes[1], "learning rate", "max relative gap GD vs ODE")
    return save_figure(fig, out, "linear_ode_vs_gd")


def _loss_figure(config, records, out):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    for i, (arch, mode) in enumerate([("cnn", m) for m in config.modes] + [("lc", m) for m in config.lc_modes]):
        recs = select(records, kind="network", arch=arch, mode=mode, sweep=False)
        if not recs or not recs[0]["loss"]:
            continue
        band(ax, recs[0]["ts"], [r["loss"] for r in recs], label=f"{arch} {mode}", color=f"C{i}",
             linestyle="-" if arch == "cnn" else "--")
    _finish_axes(ax, "t = lr × steps", "NT-Xent loss (minibatch)", legend_size=6)
    return save_figure(fig, out, "training_loss")


def _figure_2d(config, records, out):
    import matplotlib.pyplot as plt

    from ._kit import reference_line

    dsets = [ds for ds in DATASETS_2D if select(records, kind="network2d", dataset=ds)]
    if not dsets:
        return []
    fig, axes = plt.subplots(1, len(dsets), figsize=(5.2 * len(dsets), 3.8), layout="constrained", squeeze=False)
    modes = ("random",) + tuple(config.modes_2d)
    for ax, ds in zip(axes[0], dsets):
        for j, (arch, color) in enumerate((("cnn", "C0"), ("lc", "C3"))):
            xs, means, ses = [], [], []
            for i, mode in enumerate(modes):
                a = _acc2d(records, dataset=ds, arch=arch, mode=mode)
                if not a.size:
                    continue
                m, se = mean_se(a)
                x = i + (j - 0.5) * 0.3
                xs.append(x)
                means.append(100 * m)
                ses.append(100 * se)
                ax.scatter(np.full(a.size, x), 100 * a, color=color, s=10, alpha=0.7, zorder=3)
            ax.errorbar(xs, means, yerr=ses, color=color, marker="o", mfc="white", capsize=4, lw=1.2,
                        label="equivariant (tied)" if arch == "cnn" else "untied control")
            ax.fill_between(xs, np.subtract(means, ses), np.add(means, ses), color=color, alpha=0.15)
        reference_line(ax, 10.0, "chance (10 classes)")
        ax.set_xticks(range(len(modes)), modes)
        ax.set_ylabel("probe accuracy (%), held-out")
        ax.set_title(_DATASET_LABEL[ds], fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    return save_figure(fig, out, "accuracy_2d")


def _max_pair_diff(records) -> float:
    diffs = [0.0]
    for h, a in (("hssl", "assl_fiber"), ("hssl_aug", "assl_fiber_aug")):
        x = {r["seed"]: r["acc"] for r in select(records, kind="network", arch="cnn", mode=h, sweep=False)}
        y = {r["seed"]: r["acc"] for r in select(records, kind="network", arch="cnn", mode=a, sweep=False)}
        diffs += [abs(x[s] - y[s]) for s in x if s in y]
    return max(diffs)


def report(config: Config, ctx, records: list[dict], out: Path) -> str:
    out = Path(out)
    _accuracy_figure(config, records, out)
    _sweep_figure(config, records, out)
    _linear_figure(config, records, out)
    _loss_figure(config, records, out)
    _figure_2d(config, records, out)
    quick = config.n_steps < Config.n_steps or config.n_seeds < Config.n_seeds
    rows = ["| architecture | mode | probe accuracy (mean ± SE) | seeds | train s (all seeds) |", "|---|---|---|---|---|"]
    for arch in ("cnn", "lc"):
        for mode in ("random",) + tuple(config.modes):
            recs = select(records, kind="network", arch=arch, mode=mode, sweep=False)
            if recs:
                rows.append(f"| {arch} | {mode} | {_ms([r['acc'] for r in recs])} | {len(recs)} | "
                            f"{recs[0]['train_seconds']:.1f} |")
    rows2d = ["| data / group | architecture | mode | probe accuracy (mean ± SE) | seeds | fiber equivariance error | "
              "train s (all seeds) |", "|---|---|---|---|---|---|---|"]
    for ds in DATASETS_2D:
        for arch in ("cnn", "lc"):
            for mode in ("random",) + tuple(config.modes_2d):
                recs = select(records, kind="network2d", dataset=ds, arch=arch, mode=mode)
                if recs:
                    rows2d.append(f"| {_DATASET_LABEL[ds]} | {arch} | {mode} | {_ms([r['acc'] for r in recs])} | "
                                  f"{len(recs)} | {recs[0]['equivariance_error']:.1e} | {recs[0]['train_seconds']:.1f} |")
    rf_main = _rf(config.dilations, config.kernel)
    return f"""
{"**This is a reduced (`--quick`) run**: fewer samples, channels, steps and seeds than the full protocol, and only the p4 (8×8 digits) 2-D data set; its verdicts are indicative only." if quick else "Full CPU protocol."}

## Protocol actually run
MNIST-1D-style signals (`ssldyn.data.make_mnist1d`, length {config.length}), {config.n_train} training / {config.n_test}
held-out signals. Backbones: circular 1-D CNN and its locally connected control, {config.channels} channels, kernel
{config.kernel}, {config.n_layers} layers (dilated layers then pointwise), main receptive field {rf_main}; MLP head
{config.channels}–{'–'.join(str(h) for h in config.head)}; NT-Xent τ = {config.temperature}; Adam lr {config.lr}, batch
{config.batch_size}, {config.n_steps} steps (t = lr × steps = {config.lr * config.n_steps:g}); {config.n_seeds} seeds; offset law
p(Δ) = U{{−m..m}} with m = {config.max_offset}. Probe: logistic regression on globally mean-pooled backbone features.
The paper's own runs (MNIST / CIFAR-10 / Tiny ImageNet, SESN backbones, LARS, 500–1300 epochs) are GPU-scale and are
not reproduced; this is the CPU-sized analogue of theory note §4.

## Probe accuracy
{chr(10).join(rows)}

## 2-D cells (CPU-sized analogue of the paper's Table 1)
Embedded real MNIST digits ({config.n_train_2d} train / {config.n_test_2d} held-out, class-balanced, 2×2 average-pooled
to 14×14) with cyclic translations of the torus: circular 2-D CNN, {config.layers_translation} layers, kernel
{config.kernel_2d}, {config.channels_translation} channels, fibers = the 196 positions, offsets Δ ∈ {{−{config.max_offset_translation}..{config.max_offset_translation}}}²
pixels. scikit-learn's 8×8 digits (÷16, zero-padded to 12×12; at most 1,200 train / 500 held-out) with p4: lifting +
one group convolution, kernel {config.kernel_2d}, {config.channels_p4} channels, fibers = the 4 spatially pooled
orientations, Δ ∈ {{−{config.max_offset_p4}..{config.max_offset_p4}}} quarter turns. Controls: untied weights per
position (translation) or per orientation (p4), same shapes. Head {'–'.join(str(h) for h in config.head_2d)}, NT-Xent
τ = {config.temperature}, Adam lr {config.lr_2d}, batch {config.batch_size_2d}, {config.n_steps_2d} steps (t =
{config.lr_2d * config.n_steps_2d:g}), {config.n_seeds} seeds vmapped. `assl`: independent uniform group element and
Gaussian pixel noise (σ = {config.noise_2d}) per arm, pooled head; `assl_fiber`: input transformed, identity fiber (its
own group-element draws, so not the same run as `hssl`); `hssl`: two fibers of one forward pass. Probe: logistic
regression on the mean of all fibers. The fiber equivariance error is max ‖fib(T_g x) − Γ_g fib(x)‖/‖fib(x)‖ of
seed 0 on 16 held-out images.

{chr(10).join(rows2d)}

## How to read this
- For the CNN, `assl_fiber` and `hssl` (and their `_aug` variants) see *identical* pairs for the same seed
  (f(T_g x)[e] = f(x)[g⁻¹] holds exactly and both modes draw the same g, Δ and batches). In this run the largest
  per-seed probe-accuracy difference between them is {_max_pair_diff(records):.2e}: H-SSL and A-SSL with the
  identity-fiber head are the same training run computed two ways. Claim 1 therefore tests the implementation
  (and the exactness of the equivariance) as much as the paper.
- `assl` (pooled head) is ordinary SimCLR; with group-only augmentation its pooled features would be exactly
  invariant (pooling degeneracy), so it relies on the non-group augmentations.
- The random-initialisation rows are the baselines every trained mode must be judged against.
"""


def validate_config(config: Config) -> None:
    """Ranges of the settings, checked before the first cell (the runner has already checked every
    setting's type and sign); raises ValueError/TypeError naming the field (`Experiment.validate`,
    picked up by `from_namespace`)."""

    check = ConfigCheck(config)
    need, is_int, is_num, ints = check.need, check.is_int, check.is_num, check.int

    def choices(name, allowed, allow_empty=False):
        v = getattr(config, name)
        need(name, isinstance(v, (tuple, list)) and (allow_empty or len(v) > 0)
             and all(isinstance(m, str) and m in allowed for m in v) and len(set(v)) == len(v),
             f"different names among {tuple(allowed)}")

    c = config
    need("dtype", c.dtype in ("float32", "float64"), "'float32' or 'float64'")
    length = ints("length", 2)
    ints("n_train", 10)      # the probe is fitted on the ten MNIST-1D classes
    ints("n_test", 10)
    ints("channels", 1)
    kernel = ints("kernel", 1, odd=True)
    ints("n_layers", 1)
    ints("n_seeds", 1)
    ints("n_steps", 1)
    ints("batch_size", 2)    # NT-Xent needs in-batch negatives
    ints("seed", 0)
    for name in ("lr", "temperature", "linear_T", "lr_2d"):
        check.positive(name)
    check.positive("noise_2d", allow_zero=True)
    for name in ("head", "head_2d"):
        v = getattr(c, name)
        need(name, isinstance(v, (tuple, list)) and len(v) > 0 and all(is_int(h) and h >= 1 for h in v),
             "a non-empty tuple of positive ints (the head's widths)")

    def dilations_ok(dil) -> bool:
        return (isinstance(dil, (tuple, list)) and len(dil) > 0 and all(is_int(d) and d >= 1 for d in dil)
                and _rf(dil, kernel) <= length)

    rf_want = f"a non-empty tuple of positive ints with receptive field 1 + (kernel - 1)·Σd <= length = {length}"
    need("dilations", dilations_ok(c.dilations), rf_want)
    need("rf_sweep", isinstance(c.rf_sweep, (tuple, list)) and all(dilations_ok(d) for d in c.rf_sweep),
         f"a tuple of dilation tuples, each {rf_want}")
    need("max_offset", is_int(c.max_offset) and 0 <= c.max_offset <= length - 1,
         f"an int in [0, length - 1 = {length - 1}] (offsets inside the signal)")
    need("offset_sweep", isinstance(c.offset_sweep, (tuple, list)) and len(set(c.offset_sweep)) == len(c.offset_sweep)
         and all(is_int(m) and 0 <= m <= length - 1 for m in c.offset_sweep),
         f"different ints in [0, length - 1 = {length - 1}]")
    trained = tuple(m for m in hssl.MODES if m != "random")   # "random" is always a cell of its own
    choices("modes", trained)
    choices("lc_modes", trained, allow_empty=True)
    choices("datasets_2d", tuple(DATASETS_2D), allow_empty=True)
    choices("modes_2d", tuple(m for m in hssl.MODES_2D if m != "random"))
    linear_r = ints("linear_r", 1)
    need("linear_r", linear_r <= length, f"an int <= length = {length} (a receptive field inside the signal)")
    need("linear_k", is_int(c.linear_k) and 1 <= c.linear_k <= linear_r, f"an int in [1, linear_r = {linear_r}]")
    lrs = c.linear_lrs
    need("linear_lrs", isinstance(lrs, (tuple, list)) and len(lrs) >= 2 and len(set(lrs)) == len(lrs)
         and all(is_num(a) and a > 0 for a in lrs), "at least two different positive learning rates")
    need("linear_lrs", all(round(c.linear_T / a) >= 20 for a in lrs),
         f"at most linear_T / 20 = {c.linear_T / 20:g} each (the GD run saves 20 times)")
    if c.datasets_2d:
        ints("n_train_2d", 10)
        ints("n_test_2d", 10)
        ints("n_steps_2d", 1)
        ints("batch_size_2d", 2)
        k2 = ints("kernel_2d", 1, odd=True)
        ints("channels_p4", 1)
        ints("channels_translation", 1)
        if "mnist" in c.datasets_2d:   # 14x14 torus: translations mod 14
            layers = ints("layers_translation", 1)
            need("layers_translation", 1 + (k2 - 1) * layers <= 14,
                 f"such that 1 + (kernel_2d - 1)·layers <= 14 (the image side), with kernel_2d = {k2}")
            need("max_offset_translation", is_int(c.max_offset_translation) and 0 <= c.max_offset_translation <= 13,
                 "an int in [0, 13] (pixels of the 14x14 torus)")
        if "digits" in c.datasets_2d:  # p4 on 12x12: two layers, four rotations
            need("kernel_2d", 1 + (k2 - 1) * 2 <= 12, "such that 1 + 2·(kernel_2d - 1) <= 12 (the p4 image side)")
            need("max_offset_p4", is_int(c.max_offset_p4) and 0 <= c.max_offset_p4 <= 3,
                 "an int in [0, 3] (quarter turns of p4)")

EXPERIMENT = register(Experiment.from_namespace(
    globals(),
    name="hssl",
    summary="Homomorphic SSL: fiber pairs of an equivariant 1-D CNN vs input augmentations, with the linear fiber flow",
    paper=PAPER,
    order=60,
))

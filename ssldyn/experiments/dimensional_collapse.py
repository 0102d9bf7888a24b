r"""`ssldyn run dimensional-collapse`: dimensional collapse under strong augmentation (Jing et al., ICLR 2022).

Protocol (theory file `peers_eigenmode_dynamics.md` §5, the paper's case 1): a pool of 10,000 inputs
`x ~ N(0, I_16)`; views `x + σ_aug[0_8; ε]`; encoder `z = Wx + b` (PyTorch's default uniform fan-in
initialisation); InfoNCE with dot-product logits `z⁽¹⁾z⁽²⁾ᵀ/τ`, τ = 0.1; SGD (optax), η = 1e-3,
10,000 steps, batches of 128 without replacement; σ_aug = 1.5 (strong) and 0.01 (weak); 5 seeds.
Diagnostic: the spectrum of the embedding covariance `WWᵀ` (population covariance of Wx over clean
inputs; the paper estimates it from 1000 samples) and its split into the clean and noised blocks of WᵀW.

Cells (one function per kind):
- `sgd:s<σ>`: SGD vmapped over seeds; spectra over time; the paper's mechanism check (the X matrix,
  distance form, with the current softmax weights of the trained dot-product model on a fixed batch);
- `frozen:s<σ>`: the frozen-minibatch flow (mean InfoNCE over M frozen batches with their noise,
  autodiff, `ssldyn.solve`) from each seed's initialisation: the deterministic counterpart of SGD;
- `infinite:s<σ>`: the infinite-negative Gaussian flow from each seed's W(0) and its stationary spectrum.

Runtime: `--quick` about 35 s of CPU, the full protocol about 80 s of CPU (wall times on a 2-core machine
shared with other jobs: 1.5 and 3.2 minutes; see docs/peers.md).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ssldyn
from ssldyn import collapse
from ssldyn.experiments import Claim, Experiment, full_run_only, register, save_figure, select, verdict
from ssldyn.experiments._kit import ConfigCheck


@dataclasses.dataclass(frozen=True)
class DimensionalCollapseConfig:
    """Configuration of `dimensional-collapse`; the defaults are the paper's protocol (case 1)."""

    d: int = 16
    n_noised: int = 8
    n_pool: int = 10000
    batch_size: int = 128
    temperature: float = 0.1
    lr: float = 1e-3
    n_steps: int = 10000
    n_saves: int = 50
    sigmas: tuple = (1.5, 0.01)
    strong_threshold: float = 0.5  # σ_aug ≥ this is "strong"
    n_seeds: int = 5
    n_frozen_batches: int = 32
    ode_rtol: float = 1e-5
    seed: int = 0
    dtype: str = "float64"


QUICK = dict(n_steps=2000, n_saves=20, n_seeds=2, n_frozen_batches=8)


def prepare(config: DimensionalCollapseConfig) -> dict:
    if config.n_steps % config.n_saves:
        raise ValueError(f"`n_steps` ({config.n_steps}) must be a multiple of `n_saves` ({config.n_saves})")
    key = jax.random.PRNGKey(config.seed)
    k_pool, k_init, k_train, k_frozen, k_check = jax.random.split(key, 5)
    pool = collapse.sample_inputs(k_pool, config.n_pool, config.d)
    init_keys = jax.random.split(k_init, config.n_seeds)
    params0 = jax.vmap(lambda k: collapse.fanin_uniform_init(k, config.d, config.d))(init_keys)
    return dict(pool=pool, params0=params0, train_keys=jax.random.split(k_train, config.n_seeds), k_frozen=k_frozen,
                k_check=k_check)


def cells(config: DimensionalCollapseConfig) -> list[dict]:
    return [{"id": f"{kind}:s{s:g}", "kind": kind, "sigma": float(s)} for s in config.sigmas
            for kind in ("sgd", "frozen", "infinite")]


def _series(Ws, n_noised):
    """Spectra, block means and separation of a stack of W (times, k, d)."""
    spec = np.asarray(collapse.embedding_spectrum(Ws))
    clean, noised = (np.asarray(x) for x in collapse.block_spectra(Ws, n_noised))
    return {"spectrum": spec.tolist(), "clean_mean": clean.mean(-1).tolist(), "noised_mean": noised.mean(-1).tolist(),
            "separation": (clean[:, -1] / noised[:, 0]).tolist()}


def run_sgd(config, context, cell) -> list[dict]:
    """Cell kind `sgd`: SGD (optax) over seeds, spectra over time, mechanism check."""
    sig = cell["sigma"]
    every = config.n_steps // config.n_saves
    t0 = time.perf_counter()
    res = collapse.train_collapse_sgd(context["train_keys"], context["params0"], context["pool"], sigma_aug=sig,
                                      temperature=config.temperature, lr=config.lr, n_steps=config.n_steps,
                                      batch_size=config.batch_size, n_noised=config.n_noised, save_every=every)
    Ws, bs = res.saved
    jax.block_until_ready(Ws)
    seconds = time.perf_counter() - t0
    # mechanism check on one fixed batch of this σ (same batch for every seed and time)
    k1, k2, k3 = jax.random.split(context["k_check"], 3)
    Xb = context["pool"][jax.random.permutation(k1, config.n_pool)[:config.batch_size]]
    X1 = collapse.augment(k2, Xb, sig, config.n_noised)
    X2 = collapse.augment(k3, Xb, sig, config.n_noised)
    dn = config.d - config.n_noised

    def blocks(W, b):
        Xm = collapse.mechanism_matrix(W, X1, X2, config.temperature, b=b, logits="dot") / config.batch_size
        en = jnp.linalg.eigvalsh(Xm[dn:, dn:])
        ec = jnp.linalg.eigvalsh(Xm[:dn, :dn])
        return en[0], en[-1], ec[0], ec[-1]

    mech = [np.asarray(v) for v in jax.vmap(jax.vmap(blocks))(Ws, bs)]
    out = []
    for s in range(config.n_seeds):
        out.append({"kind": "sgd", "sigma": sig, "seed": s, "ts": np.asarray(res.ts[s]).tolist(),
                    **_series(Ws[s], config.n_noised), "seconds": seconds,
                    "X_noised_min": mech[0][s].tolist(), "X_noised_max": mech[1][s].tolist(),
                    "X_clean_min": mech[2][s].tolist(), "X_clean_max": mech[3][s].tolist()})
    return out


def run_frozen(config, context, cell) -> list[dict]:
    """Cell kind `frozen`: the frozen-minibatch flow from each seed's initialisation (one ensemble per seed)."""
    sig = cell["sigma"]
    T = config.lr * config.n_steps
    ts = jnp.linspace(0.0, T, config.n_saves + 1)
    out = []
    keys = jax.random.split(jax.random.fold_in(context["k_frozen"], int(round(sig * 1e6))), config.n_seeds)
    for s in range(config.n_seeds):
        X1b, X2b = collapse.sample_frozen_batches(keys[s], context["pool"], config.n_frozen_batches, config.batch_size,
                                                  sigma_aug=sig, n_noised=config.n_noised)
        flow = collapse.frozen_minibatch_flow(X1b, X2b, config.temperature)
        p0 = jax.tree_util.tree_map(lambda a: a[s], context["params0"])
        t0 = time.perf_counter()
        traj = ssldyn.solve(flow, p0, 0.0, T, ts=ts, rtol=config.ode_rtol, atol=1e-9)
        seconds = time.perf_counter() - t0
        out.append({"kind": "frozen", "sigma": sig, "seed": s, "ts": np.asarray(ts).tolist(),
                    **_series(traj.ys[0], config.n_noised), "seconds": seconds,
                    "solver_steps": int(np.max(np.asarray(traj.stats["num_steps"])))})
    return out


def run_infinite(config, context, cell) -> list[dict]:
    """Cell kind `infinite`: the infinite-negative Gaussian flow from each seed's W(0), and its stationary spectrum."""
    sig = cell["sigma"]
    C, C0 = collapse.toy_moments(sig, d=config.d, n_noised=config.n_noised)
    flow = collapse.GaussianInfoNCEFlow(C, C0, config.temperature)
    T = config.lr * config.n_steps
    ts = jnp.linspace(0.0, T, config.n_saves + 1)
    stat = np.asarray(collapse.stationary_spectrum(C, C0, config.temperature)).tolist()
    out = []
    for s in range(config.n_seeds):
        traj = ssldyn.solve(flow, context["params0"][0][s], 0.0, T, ts=ts, rtol=1e-8, atol=1e-12)
        out.append({"kind": "infinite", "sigma": sig, "seed": s, "ts": np.asarray(ts).tolist(),
                    **_series(traj.ys, config.n_noised), "stationary": stat})
    return out


# ------------------------------------------------------------------------------------------------
# claims (criteria fixed before the first run)
# ------------------------------------------------------------------------------------------------


def _final(records, kind, sig, key):
    return np.array([r[key][-1] for r in select(records, kind=kind, sigma=sig)])


def _strong(config):
    return [s for s in config.sigmas if s >= config.strong_threshold]


def _weak(config):
    return [s for s in config.sigmas if s < config.strong_threshold]


def _fmt(v, p=3):
    return "[" + ", ".join(f"{x:.{p}g}" for x in np.atleast_1d(v)) + "]"


def claim_strong_separates(config, records) -> Claim | None:
    sigs = [s for s in _strong(config) if select(records, kind="sgd", sigma=s)]
    if not sigs:
        return None
    seps = {s: _final(records, "sgd", s, "separation") for s in sigs}
    return Claim(
        claim="Strong augmentation: the 8 noised directions end below all 8 clean ones in every seed (SGD)",
        measured="; ".join(f"σ = {s:g}: min clean / max noised eigenvalue = {_fmt(v)}" for s, v in seps.items()),
        criterion="yes iff for every strong σ and every seed, at the final time, the smallest eigenvalue of the clean "
                  "block of WᵀW exceeds the largest of the noised block (separation > 1)",
        paper="Jing et al. 2022, §4 (Fig. 3): with strong augmentation the embedding spectrum collapses in the "
              "augmented directions",
        verdict=verdict(all(bool(np.all(v > 1)) for v in seps.values())),
    )


def claim_weak_no_split(config, records) -> Claim | None:
    sigs = [s for s in _weak(config) if select(records, kind="sgd", sigma=s)]
    if not sigs:
        return None
    rows = {s: (_final(records, "sgd", s, "separation"),
                _final(records, "sgd", s, "clean_mean") / _final(records, "sgd", s, "noised_mean")) for s in sigs}
    ok = all(bool(np.all(sep < 1) and np.all(np.abs(np.log(r)) < np.log(1.25))) for sep, r in rows.values())
    return Claim(
        claim="Weak augmentation: no split: the clean and noised blocks overlap and have the same mean level",
        measured="; ".join(f"σ = {s:g}: separation {_fmt(a)}, clean/noised mean ratio {_fmt(b)}"
                           for s, (a, b) in rows.items()),
        criterion="yes iff for every weak σ and seed the final separation is < 1 and the ratio of the block means is "
                  "within a factor 1.25 of 1",
        paper="Jing et al. 2022, §4: with weak augmentation (case 1) there is no collapse",
        verdict=verdict(ok),
    )


def claim_frozen_tracks_sgd(config, records) -> Claim | None:
    rows = []
    for s in config.sigmas:
        sgd, fr = select(records, kind="sgd", sigma=s), select(records, kind="frozen", sigma=s)
        if not sgd or not fr:
            continue
        for key in ("clean_mean", "noised_mean"):
            a = np.mean([r[key] for r in sgd], 0)
            b = np.mean([r[key] for r in fr], 0)
            rows.append((s, key, float(np.max(np.abs(b / a - 1)))))
    if not rows:
        return None
    return Claim(
        claim="The frozen-minibatch flow (deterministic counterpart of SGD) tracks SGD's spectrum over time",
        measured="; ".join(f"σ = {s:g} {k.replace('_mean', '')}: max relative gap {g:.3f}" for s, k, g in rows)
                 + f" (M = {config.n_frozen_batches} frozen batches of {config.batch_size})",
        criterion="yes iff for every σ the seed-mean of the clean-block and of the noised-block mean eigenvalue of the "
                  "flow is within 15% of SGD's at every save time; partly iff within 30%",
        paper="Not a claim of the paper: theory note §5 (ODE arms): the frozen-minibatch flow is the deterministic "
              "counterpart of SGD",
        verdict=verdict(all(g <= 0.15 for *_, g in rows), partly=all(g <= 0.30 for *_, g in rows)),
    )


@full_run_only
def claim_infinite_split(config, records) -> Claim | None:
    sigs = [s for s in _strong(config) if select(records, kind="sgd", sigma=s)]
    if not sigs:
        return None
    rows = {s: float(np.mean(_final(records, "sgd", s, "clean_mean") / _final(records, "sgd", s, "noised_mean")))
            for s in sigs}
    pred = {s: (1 + s**2) ** 2 for s in sigs}
    return Claim(
        claim="Strong augmentation: SGD's clean/noised split matches the infinite-negative prediction (1 + σ²)² "
              "within a factor 1.5",
        measured="; ".join(f"σ = {s:g}: SGD ratio {rows[s]:.2f} vs predicted {pred[s]:.2f}" for s in sigs),
        criterion="yes iff for every strong σ the seed-mean ratio of the final clean and noised block means lies in "
                  "[pred/1.5, 1.5·pred]",
        paper="Not a claim of the paper: theory note §5 (derived): stationary w_i² = τ c_i/λ_i², a suppression "
              "(1 + σ²)² of the noised directions (shrinkage, not exact collapse)",
        verdict=verdict(all(pred[s] / 1.5 <= rows[s] <= 1.5 * pred[s] for s in sigs)),
    )


def claim_infinite_levels(config, records) -> Claim | None:
    sigs = [s for s in config.sigmas if select(records, kind="sgd", sigma=s)]
    if not sigs:
        return None
    rows = {s: float(np.mean(_final(records, "sgd", s, "clean_mean"))) for s in sigs}
    tau = config.temperature
    return Claim(
        claim=f"At batch {config.batch_size}, SGD's clean-direction level is the infinite-negative stationary value τ "
              "within 20%",
        measured="; ".join(f"σ = {s:g}: SGD clean level {v:.4f} vs τ = {tau:g}" for s, v in rows.items()),
        criterion="yes iff for every σ the seed-mean final clean-block mean eigenvalue is within 20% of τ",
        paper="Not a claim of the paper: theory note §5: 'large-batch SGD settles near these levels' (a batch of "
              "128 is finite: the note expects a finite-negative deviation)",
        verdict=verdict(all(abs(v / tau - 1) <= 0.2 for v in rows.values())),
    )


def claim_mechanism(config, records) -> Claim | None:
    sigs = [s for s in config.sigmas if select(records, kind="sgd", sigma=s)]
    if not sigs:
        return None
    parts = []
    for s in sigs:
        recs = select(records, kind="sgd", sigma=s)
        nmin = np.array([r["X_noised_min"] for r in recs])
        nmax = np.array([r["X_noised_max"] for r in recs])
        cmin = np.array([r["X_clean_min"] for r in recs])
        neg_any = float(np.mean(nmin < 0))
        neg_all = float(np.mean(nmax < 0))
        parts.append(f"σ = {s:g}: noised block of X/N has a negative eigenvalue at {neg_any:.0%} and is negative "
                     f"definite at {neg_all:.0%} of (seed, time); final noised eigenvalues of X/N in "
                     f"[{nmin[:, -1].min():.3g}, {nmax[:, -1].max():.3g}], clean block min {cmin[:, -1].min():.3g}")
    return Claim(
        claim="The paper's mechanism: with the current softmax weights, the X matrix (distance form) has negative "
              "eigenvalues on the noised subspace while the split develops (recorded, not asserted)",
        measured="; ".join(parts),
        criterion="observation only: the mechanism is stated for distance logits, the toy trains with dot-product "
                  "logits; whether it carries over is not established (theory note §5, item 4)",
        paper="Jing et al. 2022, §4 (Eq. for X): strong augmentation makes X negative on the augmented directions, "
              "whose singular values then vanish",
        verdict="not testable",
    )


CLAIMS = (claim_strong_separates, claim_weak_no_split, claim_frozen_tracks_sgd, claim_infinite_split,
          claim_infinite_levels, claim_mechanism)


# ------------------------------------------------------------------------------------------------
# figures and report
# ------------------------------------------------------------------------------------------------


def _fig_spectra(config, records):
    import matplotlib.pyplot as plt

    from ssldyn.experiments import band

    sigs = list(config.sigmas)
    fig, axes = plt.subplots(2, len(sigs), figsize=(5.5 * len(sigs), 8), squeeze=False)
    for c, s in enumerate(sigs):
        ax = axes[0, c]
        for kind, ls, lab in (("sgd", "-", "SGD"), ("frozen", "--", "frozen-minibatch flow"),
                              ("infinite", ":", "infinite-negative flow")):
            recs = select(records, kind=kind, sigma=s)
            if not recs:
                continue
            ts = np.asarray(recs[0]["ts"])
            for key, color in (("clean_mean", "tab:blue"), ("noised_mean", "tab:red")):
                band(ax, ts, np.array([r[key] for r in recs]), label=f"{lab}, {key.split('_')[0]}", color=color,
                     linestyle=ls)
        inf = select(records, kind="infinite", sigma=s)
        if inf:
            for v in sorted(set(np.round(inf[0]["stationary"], 12))):
                ax.axhline(v, color="0.5", lw=0.7)
        ax.set_yscale("log")
        ax.set_xlabel("t = η × steps")
        ax.set_ylabel("block-mean eigenvalue of WᵀW")
        ax.set_title(f"σ_aug = {s:g} ({'strong' if s >= config.strong_threshold else 'weak'}); grey: stationary "
                     "values", fontsize=9)
        ax.legend(fontsize=6)
        ax = axes[1, c]
        for kind, marker, lab in (("sgd", "o", "SGD"), ("frozen", "s", "frozen flow"), ("infinite", "^", "infinite")):
            recs = select(records, kind=kind, sigma=s)
            if recs:
                spec = np.array([r["spectrum"][-1] for r in recs])
                ax.plot(np.arange(1, config.d + 1), spec.mean(0), marker + "-", mfc="none", label=f"{lab} (final)")
        if select(records, kind="sgd", sigma=s):
            sgd = select(records, kind="sgd", sigma=s)[0]
            spec = np.asarray(sgd["spectrum"])
            colors = plt.get_cmap("viridis")(np.linspace(0, 1, spec.shape[0]))
            for i in range(0, spec.shape[0], max(1, spec.shape[0] // 6)):
                ax.plot(np.arange(1, config.d + 1), spec[i], color=colors[i], lw=0.6, alpha=0.7)
        ax.set_yscale("log")
        ax.set_xlabel("eigenvalue index")
        ax.set_ylabel("embedding covariance eigenvalue")
        ax.set_title("final spectra (mean over seeds); thin: SGD seed 0 over time", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fig_mechanism(config, records):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(config.sigmas), figsize=(5.5 * len(config.sigmas), 3.8), squeeze=False)
    for ax, s in zip(axes[0], config.sigmas):
        for r in select(records, kind="sgd", sigma=s):
            ts = np.asarray(r["ts"])
            ax.plot(ts, r["X_noised_max"], color="tab:red", lw=0.8, label="noised block, max" if r["seed"] == 0 else None)
            ax.plot(ts, r["X_noised_min"], color="tab:red", lw=0.8, ls="--", label="noised block, min" if r["seed"] == 0 else None)
            ax.plot(ts, r["X_clean_min"], color="tab:blue", lw=0.8, label="clean block, min" if r["seed"] == 0 else None)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xlabel("t = η × steps")
        ax.set_ylabel("eigenvalues of X / N")
        ax.set_title(f"mechanism check, σ_aug = {s:g}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def report(config, context, records, out_dir: Path) -> str:
    save_figure(_fig_spectra(config, records), out_dir, "spectra_over_time")
    save_figure(_fig_mechanism(config, records), out_dir, "mechanism_check")
    lines = []
    if config.n_steps != DimensionalCollapseConfig.n_steps or config.n_seeds != DimensionalCollapseConfig.n_seeds:
        lines += [f"**This is a reduced (`--quick`) run**: {config.n_steps} SGD steps (t = "
                  f"{config.lr * config.n_steps:g}), {config.n_seeds} seeds, {config.n_frozen_batches} frozen batches; "
                  "rerun without `--quick` for the protocol.", ""]
    lines += ["## Final block means (seed mean [min, max]) and separation", "",
              "| σ_aug | arm | clean mean | noised mean | ratio | separation (min clean / max noised) |",
              "|---|---|---|---|---|---|"]
    for s in config.sigmas:
        for kind in ("sgd", "frozen", "infinite"):
            recs = select(records, kind=kind, sigma=s)
            if not recs:
                continue
            c, n, sp = (_final(records, kind, s, k) for k in ("clean_mean", "noised_mean", "separation"))
            cell = lambda v: f"{v.mean():.4g} [{v.min():.4g}, {v.max():.4g}]"  # noqa: E731
            lines.append(f"| {s:g} | {kind} | {cell(c)} | {cell(n)} | {cell(c / n)} | {cell(sp)} |")
        inf = select(records, kind="infinite", sigma=s)
        if inf:
            st = np.asarray(inf[0]["stationary"])
            lines.append(f"| {s:g} | stationary (infinite negatives) | {st.max():.4g} | {st.min():.4g} | "
                         f"{st.max() / st.min():.4g} | — |")
    fr = select(records, kind="frozen")
    if fr:
        lines += ["", "Frozen-minibatch flow: solver steps " + ", ".join(str(r["solver_steps"]) for r in fr)
                  + f"; seconds {sum(r['seconds'] for r in fr):.1f} in total.", ""]
    lines += ["The embedding spectrum is that of WWᵀ (the population covariance of Wx over clean inputs x ~ N(0, I)); "
              "the paper estimates the same matrix from 1000 samples.", "",
              "Claim thresholds (separation 1, factor 1.25 for 'same level', 15%/30% for flow vs SGD, factor 1.5 for "
              "the split, 20% for the level) were fixed before the first run.", ""]
    return "\n".join(lines)


CELL_KINDS = {"sgd": run_sgd, "frozen": run_frozen, "infinite": run_infinite}

def validate_config(config: DimensionalCollapseConfig) -> None:
    """Ranges of the settings, checked before the first cell (the runner has already checked every
    setting's type and sign); raises ValueError naming the field."""

    need, c = ConfigCheck(config).need, config
    need("d", c.d >= 2, "an int >= 2 (clean and noised coordinates)")
    need("n_noised", 1 <= c.n_noised <= c.d - 1, f"an int in [1, d - 1 = {c.d - 1}]")
    need("n_pool", c.n_pool >= 2, "an int >= 2")
    need("batch_size", 2 <= c.batch_size <= c.n_pool, f"an int in [2, n_pool = {c.n_pool}]")
    need("n_saves", c.n_saves <= c.n_steps and c.n_steps % c.n_saves == 0,
         f"a divisor of n_steps = {c.n_steps}")
    need("sigmas", all(s >= 0 for s in c.sigmas), "non-negative augmentation strengths")
    need("sigmas", len({f"{s:g}" for s in c.sigmas}) == len(c.sigmas), "different values (one cell each)")
    need("strong_threshold", c.strong_threshold > 0, "positive")


EXPERIMENT = register(Experiment.from_namespace(
    globals(),
    name="dimensional-collapse",
    summary="Strong augmentation shrinks the augmented directions of a linear contrastive encoder: SGD vs the "
            "frozen-minibatch flow vs the infinite-negative prediction, and the paper's X-matrix mechanism.",
    paper="L. Jing, P. Vincent, Y. LeCun, Y. Tian. Understanding Dimensional Collapse in Contrastive Self-supervised "
          "Learning. ICLR 2022 (arXiv:2110.09348)",
    config_cls=DimensionalCollapseConfig,
))

r"""`ssldyn run wen-li-sparse`: contrastive feature learning on sparse-coding data (Wen & Li, ICML 2021).

Protocol (theory file `wen_li2021_feature_learning.md` §7; library defaults, not the paper's values):

- data `x = Mz + ξ` with d = 20 atoms in d₁ = 100 dimensions, p = 0.1, σ_ξ = 0.35 (σ_ξ²/p = 1.225);
- m = 50 bipolar-ReLU neurons, σ₀ = 0.02; InfoNCE with τ = 0.5, stop-gradient, in-batch negatives
  from B = 512 fresh samples per step, ω = 1e-3; SGD with η = 0.05 for 3000 steps (t = 150);
- bias schedule `b_i = β(t)·s_view σ_ξ ‖w_i‖`, β ramping linearly to β_max = 1.5 over the first half;
- conditions {complementary masking, no augmentation} × {bias schedule, b ≡ 0}, plus a Gaussian-noise
  augmentation control with the bias, over several seeds.

Cells (one function per kind in `cell_kinds`):
- `sgd:<condition>`: online SGD vmapped over seeds; weight metrics over time, the final alignment
  matrix, and a ridge probe recovering the sparse code from the final features (each record also
  carries the probe's raw-input baseline, which the probe claim quotes);
- `sgd-small-lr:<condition>`: the same at a smaller learning rate (η·`small_lr_factor`) and equal t;
- `ode:<condition>:N<n>`: the frozen-sample ("quenched") ODE of the full nonlinear loss on n frozen
  pairs, integrated with `ssldyn.solve` (diffrax), from seed 0's initial weights;
- `frozen-linear`: the growth rate of the dense block of the frozen-sample linearised flow vs n
  (why finite frozen samples depart from SGD);
- `rates:<augmentation>:sigma0=<σ₀>`: early growth rates of ‖MᵀW‖ and ‖P_{M⊥}W‖ under SGD with b ≡ 0,
  over a sweep of σ_ξ²/p, vs the linearised eigen-rates (theory §4), the exact linearised closed form
  and the instantaneous rate with the cubic correction (`cubic_correction`); at the protocol's σ₀
  and at a smaller σ₀ inside the small-weight regime.

Claims are the module-level `claim_*` functions of `(config, records)`; `report` draws the figures and
writes the Markdown body. Only the public API is used (`ssldyn`, `ssldyn.sparse`, `ssldyn.experiments`).

Runtime: `--quick` about 35 s of CPU (under a minute on 2 shared cores); the full protocol about
5.5 minutes of CPU (10 minutes wall on 2 heavily shared cores).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ssldyn
from ssldyn import sparse
from ssldyn.experiments import Claim, Experiment, full_run_only, register, save_figure, select, verdict
from ssldyn.experiments._kit import ConfigCheck

CONDITIONS = {
    "mask-bias": ("mask", True),
    "mask-nobias": ("mask", False),
    "none-bias": ("none", True),
    "none-nobias": ("none", False),
    "noise-bias": ("noise", True),
    "noise-nobias": ("noise", False),
}
LABELS = {
    "mask-bias": "masking + bias",
    "mask-nobias": "masking, b = 0",
    "none-bias": "no aug. + bias",
    "none-nobias": "no aug., b = 0",
    "noise-bias": "Gaussian noise + bias",
    "noise-nobias": "Gaussian noise, b = 0",
}
COLORS = {
    "mask-bias": "tab:blue",
    "mask-nobias": "tab:cyan",
    "none-bias": "tab:red",
    "none-nobias": "tab:orange",
    "noise-bias": "tab:green",
    "noise-nobias": "tab:olive",
}


@dataclasses.dataclass(frozen=True)
class WenLiSparseConfig:
    """Configuration of `wen-li-sparse`; the defaults are the full protocol (5–10 minutes on 2 cores).

    `dtype` defaults to float32 for the full protocol (online SGD with fresh samples is dominated by
    random-number generation and float64 costs 2.5x); `--quick` runs in float64.
    """

    d: int = 20
    d1: int = 100
    p: float = 0.1
    noise_std: float = 0.35
    m: int = 50
    sigma0: float = 0.02
    temperature: float = 0.5
    batch_size: int = 512
    weight_decay: float = 1e-3
    lr: float = 0.05
    n_steps: int = 3000
    n_saves: int = 30
    beta_max: float = 1.5
    ramp_fraction: float = 0.5
    aug_noise_std: float = 0.35
    conditions: tuple = ("mask-bias", "mask-nobias", "none-bias", "none-nobias", "noise-bias")
    n_seeds: int = 3
    threshold: float = 0.9
    small_lr_factor: float = 0.5
    small_lr_conditions: tuple = ("mask-bias",)
    ode_conditions: tuple = ("mask-bias", "none-bias")
    ode_n_samples: tuple = (1024, 4096)
    ode_rtol: float = 1e-3
    frozen_n_samples: tuple = (1024, 4096, 16384, 65536)
    rate_ratios: tuple = (0.25, 0.5, 1.0, 2.0, 4.0)
    rate_sigma0s: tuple = (0.02, 0.005)  # protocol scale, and a smaller one inside the small-weight regime
    rate_save_every: int = 2
    rate_fit_time: float = 2.0  # fit window: t ≤ min(rate_fit_time, 1/|fastest predicted rate|)
    probe_samples: int = 4000
    seed: int = 0
    dtype: str = "float32"


QUICK = dict(
    d=8, d1=32, m=16, batch_size=128, n_steps=600, n_seeds=2, ode_n_samples=(1024,),
    frozen_n_samples=(256, 1024, 4096), rate_ratios=(0.5, 2.0), rate_sigma0s=(0.02,), probe_samples=2000,
    conditions=("mask-bias", "mask-nobias", "none-bias", "none-nobias"), dtype="float64",
)




def prepare(config: WenLiSparseConfig) -> dict:
    for name in (*config.conditions, *config.ode_conditions, *config.small_lr_conditions):
        if name not in CONDITIONS:
            raise ValueError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
    if config.n_steps % config.n_saves:
        raise ValueError(f"`n_steps` ({config.n_steps}) must be a multiple of `n_saves` ({config.n_saves})")
    scaled = config.n_steps / config.small_lr_factor
    if abs(scaled - round(scaled)) > 1e-9 or round(scaled) % config.n_saves:
        raise ValueError("`n_steps / small_lr_factor` must be an integer multiple of `n_saves`")
    base = jax.random.PRNGKey(config.seed)
    k_dict, k_init, k_train, k_frozen, k_probe, k_rates = jax.random.split(base, 6)
    data = sparse.SparseCoding.random(k_dict, config.d1, config.d, p=config.p, noise_std=config.noise_std)
    W0 = jax.vmap(lambda k: sparse.init_neurons(k, config.d1, config.m, sigma0=config.sigma0))(
        jax.random.split(k_init, config.n_seeds))
    k1, k2 = jax.random.split(k_probe)
    Xtr, Ztr = data.sample(k1, config.probe_samples, return_code=True)
    Xte, Zte = data.sample(k2, config.probe_samples, return_code=True)
    baseline = float(sparse.code_probe(Xtr, Ztr, Xte, Zte))
    return dict(data=data, W0=W0, train_keys=jax.random.split(k_train, config.n_seeds), k_frozen=k_frozen,
                k_rates=k_rates, probe=(Xtr, Ztr, Xte, Zte), probe_baseline=baseline)


def cells(config: WenLiSparseConfig) -> list[dict]:
    out = [{"id": f"sgd:{c}", "kind": "sgd", "condition": c, "lr_factor": 1.0} for c in config.conditions]
    out += [{"id": f"sgd-small-lr:{c}", "kind": "sgd", "condition": c, "lr_factor": config.small_lr_factor}
            for c in config.small_lr_conditions]
    out += [{"id": f"ode:{c}:N{n}", "kind": "ode", "condition": c, "n_samples": int(n)}
            for c in config.ode_conditions for n in config.ode_n_samples]
    out += [{"id": "frozen-linear", "kind": "frozen-linear"}]
    out += [{"id": f"rates:{a}:sigma0={s:g}", "kind": "rates", "augmentation": a, "sigma0": float(s)}
            for s in config.rate_sigma0s for a in ("mask", "none")]
    return out


def _metrics(W, M, threshold) -> dict:
    met = sparse.sparse_metrics(W, M, threshold=threshold)
    return {k: np.asarray(v).tolist() for k, v in met.items()}


def _final_bias(config, data, augmentation, bias_on, W):
    if not bias_on:
        return jnp.zeros(W.shape[-1], W.dtype)
    scale = sparse.view_noise_scale(data, augmentation, aug_noise_std=config.aug_noise_std)
    return config.beta_max * scale * jnp.sqrt(jnp.sum(W**2, axis=0))


def run_sgd(config, context, cell) -> list[dict]:
    """Cell kind `sgd`: online SGD vmapped over seeds (`sparse.train_sgd`), metrics over time, probe."""
    aug, bias_on = CONDITIONS[cell["condition"]]
    data = context["data"]
    lr = config.lr * cell["lr_factor"]
    n_steps = int(round(config.n_steps / cell["lr_factor"]))
    res = sparse.train_sgd(context["train_keys"], data, context["W0"], augmentation=aug,
                           aug_noise_std=config.aug_noise_std, lr=lr, n_steps=n_steps, batch_size=config.batch_size,
                           temperature=config.temperature, weight_decay=config.weight_decay,
                           beta_max=config.beta_max if bias_on else 0.0, ramp_fraction=config.ramp_fraction,
                           save_every=n_steps // config.n_saves)
    Xtr, Ztr, Xte, Zte = context["probe"]
    records = []
    for s in range(config.n_seeds):
        W = res.final[s]
        b = _final_bias(config, data, aug, bias_on, W)
        r2 = float(sparse.code_probe(sparse.sparse_features(W, Xtr, b), Ztr, sparse.sparse_features(W, Xte, b), Zte))
        rec = {"kind": "sgd", "condition": cell["condition"], "lr": lr, "seed": s, "ts": np.asarray(res.ts).tolist(),
               "beta": np.asarray(res.saved.beta[s]).tolist(), "loss": np.asarray(res.saved.loss[s]).tolist(),
               "probe_r2": r2, "probe_baseline": context["probe_baseline"],
               **_metrics(res.saved.W[s], data.M, config.threshold)}
        if s == 0:
            rec["alignment_matrix"] = np.asarray(sparse.atom_alignment(W, data.M)).tolist()
        records.append(rec)
    return records


def run_ode(config, context, cell) -> list[dict]:
    """Cell kind `ode`: the frozen-sample ODE (`sparse.quenched_flow`) integrated by `ssldyn.solve`."""
    import time

    aug, bias_on = CONDITIONS[cell["condition"]]
    n = cell["n_samples"]
    horizon = config.lr * config.n_steps
    flow = sparse.quenched_flow(jax.random.fold_in(context["k_frozen"], n), context["data"], n_samples=n,
                         batch_size=config.batch_size, augmentation=aug, aug_noise_std=config.aug_noise_std,
                         temperature=config.temperature, weight_decay=config.weight_decay,
                         beta_max=config.beta_max if bias_on else 0.0, horizon=horizon,
                         ramp_fraction=config.ramp_fraction)
    W0 = context["W0"][0]
    ts = jnp.linspace(0.0, horizon, config.n_saves + 1).astype(W0.dtype)
    t0 = time.perf_counter()
    traj = ssldyn.solve(flow, W0, 0.0, horizon, ts=ts, rtol=config.ode_rtol, atol=config.ode_rtol * 1e-2,
                        max_steps=200_000, throw=False)
    seconds = time.perf_counter() - t0
    ys = jnp.nan_to_num(traj.ys)
    return [{"kind": "ode", "condition": cell["condition"], "n_samples": n, "ts": np.asarray(traj.ts).tolist(),
             "status": int(traj.status), "num_steps": int(traj.stats["num_steps"]), "solve_seconds": seconds,
             **_metrics(ys, context["data"].M, config.threshold)}]


def run_frozen_linear(config, context, cell) -> list[dict]:
    """Cell kind `frozen-linear`: the dense-block growth rate of the linearised frozen-sample flow vs N_f."""
    data = context["data"]
    M = np.asarray(data.M, dtype=np.float64)
    U, _, _ = np.linalg.svd(np.eye(config.d1) - M @ M.T)
    Uperp = U[:, : config.d1 - config.d]  # orthonormal basis of M⊥
    kappa = 1.0 - 1.0 / config.batch_size
    Cp = np.asarray(sparse.sparse_view_stats(data, "mask").Cp, dtype=np.float64)
    rates = sparse.linearised_rates(data, "mask", temperature=config.temperature, batch_size=config.batch_size,
                             weight_decay=config.weight_decay)
    Ex2 = config.noise_std**2 + config.p * config.d / config.d1
    # one frozen sample of the largest size; smaller frozen samples are its leading batches
    n_max = max(int(n) for n in config.frozen_n_samples)
    k1, k2 = jax.random.split(jax.random.fold_in(context["k_frozen"], 10_000))
    X1, X2 = (np.asarray(v, dtype=np.float64) for v in sparse.make_views(k2, data.sample(k1, n_max), "mask"))
    B = config.batch_size
    records = []
    for n in sorted(int(n) for n in config.frozen_n_samples):
        X1b, X2b = X1[:n].reshape(n // B, B, -1), X2[:n].reshape(n // B, B, -1)
        A = np.einsum("bid,bie->de", X1b, X2b - X2b.mean(1, keepdims=True)) / n  # QuenchedFlow.linear_matrix
        block = Uperp.T @ A @ Uperp / config.temperature - config.weight_decay * np.eye(config.d1 - config.d)
        E = A - kappa * Cp
        records.append({
            "kind": "frozen-linear", "n_samples": n,
            "dense_block_top_rate": float(np.max(np.linalg.eigvals(block).real)),
            "population_dense_rate": float(rates.dense),
            "population_atom_rate": float(rates.atoms),
            "fluctuation_norm": float(np.linalg.norm(0.5 * (E + E.T), 2)),
            "fluctuation_predicted": float(2.0 * math.sqrt(2.0 * config.d1 / n) * Ex2),
        })
    return records


def _slope(ts, y, t_max):
    ts, y = np.asarray(ts), np.log(np.asarray(y))
    keep = ts <= t_max + 1e-9
    return float(np.polyfit(ts[keep], y[keep], 1)[0])


def _inst_rate(P, W, v):
    """Instantaneous growth rate d/dt log‖PW‖ = ⟨PW, Pv⟩/‖PW‖² (P an orthogonal projector)."""
    PW = P @ W
    return float(np.sum(PW * (P @ v)) / np.sum(PW**2))


def run_rates(config, context, cell) -> list[dict]:
    """Cell kind `rates`: early SGD growth rates (b = 0) over σ²/p vs the linearised eigen-rates."""
    aug, sigma0 = cell["augmentation"], cell["sigma0"]
    base = context["data"]
    n_steps = config.n_saves * config.rate_save_every
    W0 = context["W0"] * (sigma0 / config.sigma0)  # the protocol's draws, rescaled
    kappa = 1.0 - 1.0 / config.batch_size
    records = []
    for i, ratio in enumerate(config.rate_ratios):
        data = sparse.SparseCoding(base.M, p=config.p, noise_std=math.sqrt(ratio * config.p))
        res = sparse.train_sgd(jax.random.split(jax.random.fold_in(context["k_rates"], i), config.n_seeds), data,
                               W0, augmentation=aug, lr=config.lr, n_steps=n_steps,
                               batch_size=config.batch_size, temperature=config.temperature,
                               weight_decay=config.weight_decay, beta_max=0.0, save_every=config.rate_save_every)
        table = sparse.linearised_rates(data, aug, temperature=config.temperature, batch_size=config.batch_size,
                                 weight_decay=config.weight_decay)
        stats = sparse.sparse_view_stats(data, aug)
        M = data.M
        Mn = np.asarray(M, dtype=np.float64)
        P_atoms = Mn @ Mn.T
        P_dense = np.eye(config.d1) - P_atoms
        # early = at most one e-fold of the fastest predicted growth (the linearisation needs |S| << 1)
        t_fit = min(config.rate_fit_time, 1.0 / max(abs(float(table.atoms)), abs(float(table.dense))))
        for s in range(config.n_seeds):
            met = _metrics(res.saved.W[s], M, config.threshold)
            sol = sparse.linearised_solution(stats.Cp, W0[s], temperature=config.temperature,
                                      batch_size=config.batch_size, weight_decay=config.weight_decay)
            W_lin = sol.trajectory(res.ts).ys
            lin = _metrics(W_lin, M, config.threshold)
            Wn = np.asarray(W0[s], dtype=np.float64)
            v_lin = (kappa / config.temperature) * np.asarray(stats.Cp, dtype=np.float64) @ Wn - config.weight_decay * Wn
            v_cub = v_lin + np.asarray(sparse.cubic_correction(stats.C0, W0[s], temperature=config.temperature,
                                                        batch_size=config.batch_size), dtype=np.float64)
            records.append({
                "kind": "rates", "augmentation": aug, "sigma0": sigma0, "ratio": float(ratio), "seed": s,
                "noise_std": math.sqrt(ratio * config.p), "fit_time": t_fit,
                "measured_atoms": _slope(res.ts, met["atom_norm"], t_fit),
                "measured_dense": _slope(res.ts, met["dense_norm"], t_fit),
                "linear_atoms": _slope(res.ts, lin["atom_norm"], t_fit),
                "linear_dense": _slope(res.ts, lin["dense_norm"], t_fit),
                "table_atoms": float(table.atoms), "table_dense": float(table.dense),
                "cubic_atoms_t0": _inst_rate(P_atoms, Wn, v_cub), "cubic_dense_t0": _inst_rate(P_dense, Wn, v_cub),
            })
    return records



# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------


def _sgd(records, condition, lr):
    return select(records, kind="sgd", condition=condition, lr=lambda v: abs(v - lr) < 1e-12)


def _stack(recs, key):
    return np.asarray([r[key] for r in recs], dtype=float)


def _fig_alignment(config, records):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    conds = [c for c in config.conditions if _sgd(records, c, config.lr)]
    ncol = min(3, len(conds))
    nrow = math.ceil(len(conds) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.6 * nrow), squeeze=False, layout="constrained")
    im = None
    for ax, c in zip(axes.flat, conds):
        rec = next(r for r in _sgd(records, c, config.lr) if r["seed"] == 0)
        A = np.asarray(rec["alignment_matrix"])
        best = A.argmax(1)
        order = np.lexsort((-A.max(1), best))
        im = ax.imshow(A[order], aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        share = float(np.mean(A.max(1) >= config.threshold))
        ax.set_title(f"{LABELS[c]}\nsingle-atom share {share:.2f}", fontsize=10)
        ax.set_xlabel("atom j")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("neuron i (sorted by best atom)" if ax in axes[:, 0] else "")
    for ax in list(axes.flat)[len(conds):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6, label=r"$|\cos(w_i, M_j)|$")
    fig.suptitle(f"Neuron-atom alignment after SGD (t = {config.lr * config.n_steps:g}, seed 0)", fontsize=11)
    return fig


def _fig_metrics(config, records):
    import matplotlib.pyplot as plt

    panels = [("energy", "energy in span(M)"), ("alignment", r"mean single-atom alignment $s_i$"),
              ("single_atom_share", rf"share of neurons with $s_i \geq {config.threshold:g}$"),
              ("atoms_covered", "atoms covered")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (key, title) in zip(axes.flat, panels):
        for c in config.conditions:
            recs = _sgd(records, c, config.lr)
            if not recs:
                continue
            ts, Y = np.asarray(recs[0]["ts"]), _stack(recs, key)
            ax.plot(ts, Y.mean(0), color=COLORS[c], lw=2, label=f"SGD {LABELS[c]}")
            ax.fill_between(ts, Y.min(0), Y.max(0), color=COLORS[c], alpha=0.2, lw=0)
        for c in config.small_lr_conditions:
            recs = _sgd(records, c, config.lr * config.small_lr_factor)
            if recs:
                ax.plot(recs[0]["ts"], _stack(recs, key).mean(0), color=COLORS[c], lw=1.2, ls=":",
                        label=f"SGD {LABELS[c]}, η×{config.small_lr_factor:g}")
        styles = ["--", "-."]
        for c in config.ode_conditions:
            for i, n in enumerate(config.ode_n_samples):
                rec = select(records, kind="ode", condition=c, n_samples=n)
                if rec:
                    ax.plot(rec[0]["ts"], rec[0][key], color=COLORS[c], lw=1.3, ls=styles[i % 2],
                            marker="o" if i else "x", ms=3, label=f"frozen-sample ODE {LABELS[c]}, N_f={n}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("t = η · steps")
        ax.grid(alpha=0.3)
    axes[1, 1].set_ylim(bottom=-0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Weight metrics over time: SGD (mean, band = seed range) and the frozen-sample ODE", fontsize=11)
    fig.tight_layout()
    return fig


def _fig_rates(config, records):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    sig = sorted({r["sigma0"] for r in records if r["kind"] == "rates"}, reverse=True)
    fig, axes = plt.subplots(len(sig), 2, figsize=(11, 3.9 * len(sig)), squeeze=False)
    for row, s0 in enumerate(sig):
        for col, aug in enumerate(("mask", "none")):
            ax = axes[row, col]
            recs = [r for r in records if r["kind"] == "rates" and r["augmentation"] == aug and r["sigma0"] == s0]
            if not recs:
                ax.axis("off")
                continue
            ratios = sorted({r["ratio"] for r in recs})
            for part, color, marker in (("atoms", "tab:blue", "o"), ("dense", "tab:red", "s")):
                get = lambda key: np.asarray([[r[key] for r in recs if r["ratio"] == q] for q in ratios])  # noqa: E731
                name = "span(M)" if part == "atoms" else "M⊥"
                ax.plot(ratios, get(f"table_{part}")[:, 0], color=color, lw=1.5, label=f"eigen-rate, {name} (theory §4)")
                ax.plot(ratios, get(f"linear_{part}").mean(1), color=color, lw=0, marker="x", ms=8,
                        label=f"exact linearised flow, {name}")
                ax.plot(ratios, get(f"cubic_{part}_t0").mean(1), color=color, lw=1, ls=":", marker="^", ms=5,
                        label=f"with cubic correction (t = 0), {name}")
                meas = get(f"measured_{part}")
                ax.errorbar(ratios, meas.mean(1), yerr=meas.std(1), color=color, lw=0, elinewidth=1, marker=marker,
                            mfc="none", ms=8, mew=1.5, label=f"SGD early growth, {name}")
            ax.axhline(0.0, color="k", lw=0.7)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(ratios))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{q:g}" for q in ratios])
            ax.set_xlabel(r"$\sigma_\xi^2 / p$")
            what = "complementary masking" if aug == "mask" else "no augmentation"
            ax.set_title(f"{what}, σ₀ = {s0:g}", fontsize=10)
            ax.set_ylabel(r"growth rate of $\|PW\|_F$ (per unit t)")
            ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=7, loc="upper left")
    fig.suptitle("Linearised eigen-rates vs measured early growth of SGD (b = 0; log-norm slope over "
                 f"t ≤ min({config.rate_fit_time:g}, 1/|fastest rate|))", fontsize=11)
    fig.tight_layout()
    return fig


def _fig_frozen(config, records):
    import matplotlib.pyplot as plt

    recs = sorted((r for r in records if r["kind"] == "frozen-linear"), key=lambda r: r["n_samples"])
    ns = np.asarray([r["n_samples"] for r in recs])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(ns, [r["dense_block_top_rate"] for r in recs], "o-", color="tab:red",
                 label="top rate of the dense block, frozen sample")
    axes[0].axhline(recs[0]["population_dense_rate"], color="tab:red", ls="--", label="population dense rate")
    axes[0].axhline(recs[0]["population_atom_rate"], color="tab:blue", ls="--", label="population atom rate")
    axes[0].axhline(0.0, color="k", lw=0.7)
    axes[0].set_ylabel("growth rate (per unit t)")
    axes[0].legend(fontsize=8)
    axes[1].loglog(ns, [r["fluctuation_norm"] for r in recs], "o", color="k", label=r"measured $\|sym(A-\kappa C_+)\|_2$")
    axes[1].loglog(ns, [r["fluctuation_predicted"] for r in recs], "-", color="gray",
                   label=r"$2\sqrt{2d_1/N_f}\,E[x_a^2]$")
    axes[1].set_ylabel("spectral norm")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("frozen pairs N_f")
        ax.grid(alpha=0.3)
    fig.suptitle("Linearised frozen-sample flow under masking: sample-specific dense growth vs N_f", fontsize=11)
    fig.tight_layout()
    return fig


def _when(t):
    return "never" if math.isinf(t) else f"{t:g}"


def _first_exceed(ts, diff, tol):
    idx = np.nonzero(np.abs(diff) > tol)[0]
    return float(ts[idx[0]]) if idx.size else math.inf


# ------------------------------------------------------------------------------------------------
# claims (each a function of the configuration and the records)
# ------------------------------------------------------------------------------------------------


def _fmt(v):
    return "[" + ", ".join(f"{x:.3g}" for x in np.atleast_1d(v)) + "]"


def _final(config, records, conditions) -> dict:
    """Final-time SGD metrics per seed (at the protocol's η) and the probe R², per condition."""
    out = {}
    for c in conditions:
        recs = _sgd(records, c, config.lr)
        out[c] = {k: _stack(recs, k)[:, -1] for k in ("energy", "alignment", "single_atom_share", "atoms_covered")}
        out[c]["probe_r2"] = _stack(recs, "probe_r2")
    return out


@full_run_only
def claim_mask_energy(config, records) -> Claim | None:
    mask_c = [c for c in config.conditions if c.startswith("mask")]
    if not mask_c:
        return None
    final = _final(config, records, mask_c)
    e = np.concatenate([final[c]["energy"] for c in mask_c])
    return Claim(
        claim="Masking moves the weights into span(M): energy ≥ 0.9 in every seed (theory: close to 1)",
        measured="; ".join(f"{LABELS[c]}: {_fmt(final[c]['energy'])}" for c in mask_c)
                 + f" at t = {config.lr * config.n_steps:g}",
        criterion="yes iff the final SGD energy in span(M) (mean over neurons of ‖Mᵀw_i‖²/‖w_i‖², t = η·n_steps) is "
                  "≥ 0.9 in every seed of every masking condition",
        paper="Abstract: with proper augmentations contrastive learning learns the sparse features, augmentations "
              "'reduce the correlations of dense features between positive samples while keeping the correlations "
              "of sparse features intact' (feature decoupling); theory file §4, §7: energy in span(M) close to 1",
        verdict=verdict(bool(np.all(e >= 0.9))),
    )


@full_run_only
def claim_no_augmentation_dense(config, records) -> Claim | None:
    none_c = [c for c in config.conditions if c.startswith("none")]
    if not none_c:
        return None
    final = _final(config, records, none_c)
    dense = np.concatenate([1 - final[c]["energy"] for c in none_c])
    return Claim(
        claim="Without augmentation a large share of the weight stays dense: 1 − energy ≥ 0.25 in every seed",
        measured="; ".join(f"{LABELS[c]}: {_fmt(1 - final[c]['energy'])}" for c in none_c),
        criterion="yes iff the final SGD dense share 1 − energy is ≥ 0.25 in every seed of every no-augmentation "
                  "condition",
        paper="Abstract (augmentations force the network to learn from the sparse features) and theory file §0, "
              "summarising the paper: 'without proper augmentation the network learns dense patterns'",
        verdict=verdict(bool(np.all(dense >= 0.25))),
    )


@full_run_only
def claim_single_atom(config, records) -> Claim | None:
    if "mask-bias" not in config.conditions:
        return None
    d = config.d
    f = _final(config, records, ["mask-bias"])["mask-bias"]
    sh, cov = f["single_atom_share"], f["atoms_covered"]
    good = sh.mean() >= 0.5 and cov.mean() >= d / 2
    some = sh.mean() > 0 and cov.mean() > 0
    return Claim(
        claim=f"Masking + bias schedule: a large share of neurons are single-atom (share ≥ 0.5 at s_i ≥ "
              f"{config.threshold:g}) and most atoms are covered (≥ {d / 2:g} of {d})",
        measured=f"share {_fmt(sh)}, atoms covered {_fmt(cov)} of {d}, mean alignment {_fmt(f['alignment'])}",
        criterion=f"masking + bias at the final time: yes iff the seed-mean share of neurons with s_i ≥ "
                  f"{config.threshold:g} is ≥ 0.5 and the seed-mean number of atoms covered is ≥ d/2 = {d / 2:g}; "
                  "partly iff not, but both seed means are > 0; no otherwise",
        paper="Abstract: ReLU networks trained contrastively 'provably learn the desired sparse features' under "
              "proper augmentations; theory file §4 (stage structure): neurons become single-atom once the "
              "threshold rises, and every atom ends up the main atom of some neurons",
        verdict=verdict(bool(good), partly=bool(some)),
    )


@full_run_only
def claim_no_single_atom_without_threshold(config, records) -> Claim | None:
    no_single = [c for c in config.conditions if c in ("mask-nobias", "none-bias", "none-nobias")]
    if not no_single:
        return None
    final = _final(config, records, no_single)
    vals = {c: (final[c]["single_atom_share"], final[c]["atoms_covered"]) for c in no_single}
    return Claim(
        claim="Without the threshold (masking, b = 0) or without augmentation, no neuron becomes single-atom and no "
              "atom is covered",
        measured="; ".join(f"{LABELS[c]}: share {_fmt(s)}, covered {_fmt(v)}" for c, (s, v) in vals.items()),
        criterion="yes iff, at the final time, every seed of masking b = 0, no augmentation + bias and no "
                  "augmentation b = 0 (those run) has single-atom share exactly 0 and 0 atoms covered",
        paper="Theory file §4 (derived from the paper's model): all atoms share one linear rate, so sparsification "
              "needs the threshold; §7 expected outcomes: none for masking with b ≡ 0 and for no augmentation",
        verdict=verdict(bool(all(np.all(s == 0) and np.all(v == 0) for s, v in vals.values()))),
    )


def claim_early_growth_signs(config, records) -> Claim | None:
    rates = select(records, kind="rates")
    if not rates:
        return None
    sign_ok = all((r["measured_atoms"] > 0 > r["measured_dense"]) if r["augmentation"] == "mask"
                  else (r["measured_atoms"] > 0 and r["measured_dense"] > 0) for r in rates)

    def values(aug, part):
        return _fmt(sorted({round(r[f"measured_{part}"], 3) for r in rates if r["augmentation"] == aug}))

    return Claim(
        claim="Early growth (b = 0): under masking atom directions grow and dense directions decay; without "
              "augmentation both grow (every σ²/p, every seed)",
        measured="mask: atoms " + values("mask", "atoms") + ", dense " + values("mask", "dense")
                 + "; none: dense " + values("none", "dense"),
        criterion="yes iff in every rates record (every σ₀, σ²/p and seed) the measured growth rate of ‖MᵀW‖ is > 0 "
                  "and that of ‖P_{M⊥}W‖ is < 0 under masking, and both are > 0 without augmentation",
        paper="Theory file §4 (derived from the paper's model): under masking the feature components grow and the "
              "dense components die (first stage); without augmentation the dense components grow too",
        verdict=verdict(bool(sign_ok)),
    )


def _rate_match(config, records, s0) -> Claim:
    gap = abs(config.p * (1 - 1 / config.batch_size) / config.temperature)
    rs = select(records, kind="rates", sigma0=s0)
    dev = {r["augmentation"] + f" σ²/p={r['ratio']:g}": max(abs(r["measured_atoms"] - r["table_atoms"]),
                                                            abs(r["measured_dense"] - r["table_dense"]))
           for r in rs}
    dev_table = max(dev.values())
    dev_lin = max(max(abs(r["measured_atoms"] - r["linear_atoms"]), abs(r["measured_dense"] - r["linear_dense"]))
                  for r in rs)
    worst = max(dev, key=dev.get)
    rel = max(max(abs(r["measured_atoms"] - r["table_atoms"]) / abs(r["table_atoms"]),
                  abs(r["measured_dense"] - r["table_dense"]) / abs(r["table_dense"])) for r in rs)
    ok = [k for k, v in dev.items() if v <= 0.15 * gap]
    regime = "protocol scale" if s0 == config.sigma0 else "small-weight regime"
    return Claim(
        claim=f"Linearised eigen-rates (theory §4) match the measured early SGD growth rates within 15% of the "
              f"atom-dense rate gap κp/τ, at every σ²/p (σ₀ = {s0:g}, {regime})",
        measured=f"max |measured − eigen-rate| = {dev_table:.4f} ({dev_table / gap:.0%} of the gap {gap:.3f}), worst "
                 f"at {worst}; within 15% at {len(ok)} of {len(dev)} (augmentation, σ²/p) points; max |measured − "
                 f"exact linearised flow| = {dev_lin:.4f}; largest deviation relative to the eigen-rate itself "
                 f"{rel:.0%}",
        criterion=f"yes iff at σ₀ = {s0:g} the largest |measured − eigen-rate| over augmentations, σ²/p, seeds and "
                  "both directions (atoms, dense) is ≤ 0.15 κp/τ (κ = 1 − 1/B); measured rates are least-squares "
                  "slopes of log‖PW‖ over t ≤ min(rate_fit_time, 1/|fastest eigen-rate|)",
        paper="Not a claim of the paper: theory file §4 and §8.3 (derived): log-norm growth rates of the projections "
              "onto span(M) and M⊥ match the eigen-rates of the linearised flow while |Sim| ≪ 1",
        verdict=verdict(bool(dev_table <= 0.15 * gap)),
    )


def claim_rates_match_protocol(config, records) -> Claim | None:
    """The eigen-rate claim at the protocol's initial scale σ₀ (`config.sigma0`)."""
    if not select(records, kind="rates", sigma0=config.sigma0):
        return None
    return _rate_match(config, records, config.sigma0)


def claim_rates_match_small_weight(config, records) -> Claim | None:
    """The eigen-rate claim at the smallest other σ₀ of the sweep (inside the small-weight regime)."""
    others = [s for s in {r["sigma0"] for r in select(records, kind="rates")} if s != config.sigma0]
    if not others:
        return None
    return _rate_match(config, records, min(others))


def _ode_rows(config, records) -> list[tuple]:
    """(condition, N_f, status, solver steps, seconds, max |ΔE|, first t with |ΔE| > 0.05, final E ODE, final E SGD)."""
    rows = []
    for c in config.ode_conditions:
        sgd = _sgd(records, c, config.lr)
        if not sgd:
            continue
        ts, E_sgd = np.asarray(sgd[0]["ts"]), _stack(sgd, "energy").mean(0)
        for n in config.ode_n_samples:
            rec = select(records, kind="ode", condition=c, n_samples=n)
            if not rec:
                continue
            E_ode = np.asarray(rec[0]["energy"])
            diff = E_ode - E_sgd
            rows.append((c, n, rec[0]["status"], rec[0]["num_steps"], rec[0]["solve_seconds"],
                         float(np.max(np.abs(diff))), _first_exceed(ts, diff, 0.05), float(E_ode[-1]),
                         float(E_sgd[-1])))
    return rows


@full_run_only
def claim_ode_tracks_sgd(config, records) -> Claim | None:
    rows = _ode_rows(config, records)
    if not rows:
        return None
    nmax = max(config.ode_n_samples)
    big = [row for row in rows if row[1] == nmax]
    return Claim(
        claim=f"The frozen-sample ODE (N_f = {nmax}) tracks SGD: |energy difference| ≤ 0.05 over the whole horizon",
        measured="; ".join(f"{LABELS[c]}: max |ΔE| = {m:.3f}, first > 0.05 at t = {_when(t)}"
                           for c, _, _, _, _, m, t, _, _ in big),
        criterion=f"yes iff for every ODE condition the frozen-sample ODE at N_f = {nmax} and the seed-mean SGD energy "
                  "in span(M) differ by at most 0.05 at every save time",
        paper="Not a claim of the paper: theory file §5 (a library construction): the frozen-sample flow tends to "
              "the expected-SGD flow as N_f → ∞ and is directly comparable with SGD at small η",
        verdict=verdict(bool(all(row[5] <= 0.05 for row in big))),
    )


def claim_ode_improves_with_samples(config, records) -> Claim | None:
    rows = _ode_rows(config, records)
    if not rows or len(config.ode_n_samples) < 2:
        return None
    improves = []
    for c in config.ode_conditions:
        rs = sorted((row for row in rows if row[0] == c), key=lambda row: row[1])
        if len(rs) > 1:
            improves.append(all(b[6] >= a[6] and b[5] <= a[5] + 1e-9 for a, b in zip(rs, rs[1:])))
    return Claim(
        claim="Agreement of the frozen-sample ODE with SGD improves as N_f grows (theory §5: converges as N_f → ∞)",
        measured="; ".join(f"{LABELS[c]} N_f={n}: max |ΔE| {m:.3f}, departs at t = {_when(t)}"
                           for c, n, _, _, _, m, t, _, _ in rows),
        criterion="yes iff some ODE condition has several N_f and, for every such condition, each larger N_f departs "
                  "(|ΔE| > 0.05) no earlier and has a max |ΔE| no larger (up to 1e-9) than the next smaller one",
        paper="Not a claim of the paper: theory file §5: as N_f → ∞ at fixed B the frozen-sample flow converges to "
              "the expected-SGD flow",
        verdict=verdict(bool(improves and all(improves))),
    )


def claim_lr_converged(config, records) -> Claim | None:
    small = []
    for c in config.small_lr_conditions:
        a, b = _sgd(records, c, config.lr), _sgd(records, c, config.lr * config.small_lr_factor)
        if a and b:
            dE = np.max(np.abs(_stack(a, "energy").mean(0) - _stack(b, "energy").mean(0)))
            dS = np.max(np.abs(_stack(a, "single_atom_share").mean(0) - _stack(b, "single_atom_share").mean(0)))
            small.append((c, dE, dS))
    if not small:
        return None
    return Claim(
        claim=f"SGD is converged in the learning rate: η and η×{config.small_lr_factor:g} agree at equal t "
              "(max seed-mean difference ≤ 0.05 in energy and ≤ 0.1 in single-atom share)",
        measured="; ".join(f"{LABELS[c]}: max ΔE {dE:.3f}, max Δshare {dS:.3f}" for c, dE, dS in small),
        criterion=f"yes iff for every condition run at both η and η×{config.small_lr_factor:g} the seed-mean energy "
                  "differs by ≤ 0.05 and the seed-mean single-atom share by ≤ 0.1 at every save time t = η·steps",
        paper="Not a claim of the paper: a check of the time axis t = η·steps (theory file §3, §8.8: SGD on fresh "
              "samples fluctuates around the flow at t = ηN)",
        verdict=verdict(bool(all(dE <= 0.05 and dS <= 0.1 for _, dE, dS in small))),
    )


@full_run_only
def claim_probe(config, records) -> Claim | None:
    if "mask-bias" not in config.conditions or "none-bias" not in config.conditions:
        return None
    final = _final(config, records, ["mask-bias", "none-bias"])
    a, b = final["mask-bias"]["probe_r2"], final["none-bias"]["probe_r2"]
    baseline = _sgd(records, "mask-bias", config.lr)[0]["probe_baseline"]
    return Claim(
        claim="A linear probe recovers the sparse code better from features learned with masking + bias than "
              "without augmentation (+ bias)",
        measured=f"R² masking + bias {_fmt(a)}, no aug. + bias {_fmt(b)}; best linear readout of x: "
                 f"{baseline:.3f} (population p/(p+σ²) = {config.p / (config.p + config.noise_std**2):.3f})",
        criterion="yes iff the seed-mean test R² of a ridge probe from the final features (clean inputs, final "
                  "thresholds) to the sparse code is larger with masking + bias than with no augmentation + bias",
        paper="Abstract: with proper augmentations the network learns 'the more semantically aligned sparse "
              "features', without them the dense ones",
        verdict=verdict(bool(a.mean() > b.mean())),
    )


CLAIMS = (claim_mask_energy, claim_no_augmentation_dense, claim_single_atom, claim_no_single_atom_without_threshold,
          claim_early_growth_signs, claim_rates_match_protocol, claim_rates_match_small_weight, claim_ode_tracks_sgd,
          claim_ode_improves_with_samples, claim_lr_converged, claim_probe)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


def report(config, context, records, out_dir: Path) -> str:
    """Draw the four figures into `out_dir` and return the Markdown body of `report.md`."""
    T = config.lr * config.n_steps
    d = config.d
    for name, maker in (("alignment_matrix", _fig_alignment), ("metrics_over_time", _fig_metrics),
                        ("growth_rates", _fig_rates), ("frozen_sample_memorisation", _fig_frozen)):
        save_figure(maker(config, records), out_dir, name)
    final = _final(config, records, config.conditions)
    ode_rows = _ode_rows(config, records)
    rates = select(records, kind="rates")
    lines = ["## Final metrics (SGD, t = %g; mean over %d seeds, [min, max])" % (T, config.n_seeds), "",
             "| condition | energy in span(M) | mean alignment s_i | single-atom share | atoms covered (of %d) | probe R² |" % d,
             "|---|---|---|---|---|---|"]
    for c in config.conditions:
        f = final[c]
        cell = lambda v: f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]"  # noqa: E731
        lines.append(f"| {LABELS[c]} | {cell(f['energy'])} | {cell(f['alignment'])} | {cell(f['single_atom_share'])} | "
                     f"{cell(f['atoms_covered'])} | {cell(f['probe_r2'])} |")
    lines += ["", f"Linear baseline for the probe (ridge from x to z): R² = {context['probe_baseline']:.3f}; "
                  f"population value p/(p+σ_ξ²) = {config.p / (config.p + config.noise_std**2):.3f}. Features are "
                  "computed on clean inputs with the final thresholds b_i = β_max s_view σ_ξ ‖w_i‖.", ""]
    if ode_rows:
        lines += ["## Frozen-sample ODE vs SGD (energy in span(M))", "",
                  "| condition | N_f | status | solver steps | seconds | max abs ΔE | first t with ΔE > 0.05 | final E ODE | final E SGD |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c, n, st, ns, sec, m, t, eo, es in ode_rows:
            lines.append(f"| {LABELS[c]} | {n} | {st} | {ns} | {sec:.1f} | {m:.3f} | {_when(t)} | {eo:.3f} | {es:.3f} |")
        lines.append("")
    fl = sorted(select(records, kind="frozen-linear"), key=lambda r: r["n_samples"])
    if fl:
        lines += ["## Why finite frozen samples drift: the linearised frozen-sample flow under masking", "",
                  "| N_f | top growth rate of the dense block | population dense rate | ‖sym(A − κC+)‖₂ | predicted 2√(2d₁/N_f)E[x_a²] |",
                  "|---|---|---|---|---|"]
        for r in fl:
            lines.append(f"| {r['n_samples']} | {r['dense_block_top_rate']:.4f} | {r['population_dense_rate']:.4f} | "
                         f"{r['fluctuation_norm']:.4f} | {r['fluctuation_predicted']:.4f} |")
        lines += ["", "With few frozen pairs the sample-specific part of the linear matrix makes dense directions grow "
                      "(memorisation of the frozen noise), which fresh-sample SGD never sees; the ODE therefore departs "
                      "from SGD once these directions have had time to grow.", ""]
    if rates:
        lines += ["## Early growth rates (b = 0)", "",
                  "Columns: eigen-rate of theory §4 / slope of the exact linearised flow / instantaneous rate at t = 0 "
                  "with the cubic correction −(κ/τ²)C0 W(WᵀC0W) / measured SGD slope (mean over seeds).", "",
                  "| σ₀ | augmentation | σ²/p | atoms | dense |", "|---|---|---|---|---|"]
        for s0 in sorted({r["sigma0"] for r in rates}, reverse=True):
            for aug in ("mask", "none"):
                for q in sorted({r["ratio"] for r in rates if r["augmentation"] == aug}):
                    rs = [r for r in rates if r["augmentation"] == aug and r["ratio"] == q and r["sigma0"] == s0]
                    mean = lambda k: np.mean([r[k] for r in rs])  # noqa: E731
                    cols = [" / ".join(f"{mean(k):.4f}" for k in (f"table_{part}", f"linear_{part}", f"cubic_{part}_t0",
                                                                   f"measured_{part}")) for part in ("atoms", "dense")]
                    lines.append(f"| {s0:g} | {aug} | {q:g} | {cols[0]} | {cols[1]} |")
        lines += ["", "The sweep at the smaller σ₀ was added after the protocol-scale sweep missed the eigen-rates at "
                      "large σ²/p, to test the explanation: the cubic term is a contraction of size ∝ σ₀² C0² that the "
                      "linearisation drops, and it grows with the noise level.", ""]
    lines += ["Thresholds of the claims (0.9 energy, 0.25 dense share, 0.5 single-atom share, half the atoms, 15% of the "
              "rate gap, 0.05 energy for ODE/SGD agreement) were fixed before running, from the wording of the theory's "
              "expected-outcome table; they were not adjusted to the results.", ""]
    return "\n".join(lines)


CELL_KINDS = {"sgd": run_sgd, "ode": run_ode, "frozen-linear": run_frozen_linear, "rates": run_rates}

def validate_config(config: WenLiSparseConfig) -> None:
    """Ranges of the settings, checked before the first cell (the runner has already checked every
    setting's type and sign); raises ValueError naming the field."""

    need, c = ConfigCheck(config).need, config
    need("d", c.d >= 1, "an int >= 1")
    need("d1", c.d1 >= c.d, f"an int >= d = {c.d} (the dictionary has d atoms in d1 dimensions)")
    need("m", c.m >= 1, "an int >= 1")
    need("p", 0 < c.p <= 1, "a probability in (0, 1]")
    need("ramp_fraction", 0 <= c.ramp_fraction <= 1, "in [0, 1]")
    need("threshold", 0 < c.threshold < 1, "in (0, 1)")
    for name in ("noise_std", "weight_decay", "beta_max", "aug_noise_std"):
        need(name, getattr(c, name) >= 0, "non-negative")
    for name in ("sigma0", "small_lr_factor", "rate_fit_time"):
        need(name, getattr(c, name) > 0, "positive")
    need("batch_size", c.batch_size >= 2, "an int >= 2 (in-batch negatives)")
    need("probe_samples", c.probe_samples >= 2, "an int >= 2")
    need("n_saves", c.n_saves <= c.n_steps and c.n_steps % c.n_saves == 0, f"a divisor of n_steps = {c.n_steps}")
    scaled = c.n_steps / c.small_lr_factor
    need("small_lr_factor", abs(scaled - round(scaled)) <= 1e-9 and round(scaled) % c.n_saves == 0,
         f"such that n_steps / small_lr_factor is a multiple of n_saves = {c.n_saves}")
    for name in ("conditions", "ode_conditions", "small_lr_conditions"):
        values = getattr(c, name)
        need(name, set(values) <= set(CONDITIONS) and len(set(values)) == len(values),
             f"different names among {tuple(CONDITIONS)}")
    for name in ("ode_n_samples", "frozen_n_samples"):
        need(name, all(n >= 2 for n in getattr(c, name)) and len(set(getattr(c, name))) == len(getattr(c, name)),
             "different ints >= 2")
    need("rate_ratios", all(r > 0 for r in c.rate_ratios), "positive values")
    need("rate_sigma0s", all(s > 0 for s in c.rate_sigma0s) and len({f"{s:g}" for s in c.rate_sigma0s})
         == len(c.rate_sigma0s), "different positive values (one cell each)")


EXPERIMENT = register(Experiment.from_namespace(
    globals(),
    name="wen-li-sparse",
    summary="Contrastive learning on sparse-coding data: masking decouples features from dense noise, a threshold "
            "makes neurons single-atom; linearised eigen-rates, frozen-sample ODE and SGD.",
    paper="Z. Wen, Y. Li. Toward Understanding the Feature Learning Process of Self-supervised Contrastive Learning. "
          "ICML 2021 (arXiv:2105.15134)",
    config_cls=WenLiSparseConfig,
))

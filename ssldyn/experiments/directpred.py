r"""`ssldyn run directpred`: linear BYOL/SimSiam with a predictor (Tian, Chen & Ganguli 2021), DirectPred,
and IsoLoss vs Euclidean BYOL (Halvagal, Laborieux & Zenke 2023).

Protocol (theory file `peers_eigenmode_dynamics.md` §1–§2; CPU-sized, library values):

1. **Phase portrait** of one mode (λ = 1, λ' = σ²): a grid of initial `(p, s)` integrated with the
   per-mode ODE (`TianModeFlow`, all points in one solve); collapse (`s → 0`) vs convergence to `p+`;
   the collapsed fraction of the grid as weight decay ω, augmentation σ², predictor rate α_p and EMA
   rate β vary; fixed points, saddle check and the invariant.
2. **Trained linear BYOL network** (optax SGD on fresh Gaussian views, EMA target, weight decay,
   trained predictor) against the full-matrix ODE (`LinearBYOLFlow`) from the same initialisation;
   eigenvalues of `W Wᵀ` and `W_p`, and the eigenspace alignment `‖[W_p, F]‖/(‖W_p‖‖F‖)`.
3. **DirectPred vs trained predictor** on anisotropic data (full-matrix ODE from random
   initialisations): trained predictor, DirectPred `p = √s + ε` (unnormalised, on the invariant
   parabola for α_p = 1) and the paper's normalised DirectPred `p = √(s/max s) + ε`.
4. **IsoLoss vs BYOL** with the closed-form predictor `g(s) = s^α`: closed forms, full-matrix flow and
   SGD-trained network (15 → 10, isotropic data), half-way times per mode.
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import ssldyn
from ssldyn import byol
from ssldyn.experiments import (Claim, Experiment, full_run_only, register, save_figure, select,
                                spectra_over_time, verdict)
from ssldyn.experiments._kit import ConfigCheck


@dataclasses.dataclass(frozen=True)
class Config:
    """Full protocol (defaults); `--quick` overrides in `QUICK`."""

    # 1. phase portrait (λ = 1)
    sigma2: float = 0.3
    alpha_p: float = 1.0
    weight_decay: float = 0.1
    p_min: float = -1.0
    p_max: float = 1.5
    s_max: float = 1.5
    n_grid: int = 41
    t_portrait: float = 200.0
    omegas: tuple = (0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24)
    sigma2s: tuple = (0.0, 0.15, 0.3, 0.6, 1.0)
    alpha_ps: tuple = (0.25, 0.5, 1.0, 2.0, 4.0)
    betas: tuple = (0.25, 1.0, 4.0)
    # 2./3. networks on anisotropic data
    net_lam: tuple = (1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1)
    net_aug: float = 0.3
    net_k: int = 4
    net_weight_decay: float = 0.02
    net_beta: float = 1.0
    net_alpha_p: float = 1.0
    net_init_scale: float = 0.5
    net_lr: float = 0.02
    net_batch: int = 256
    net_t: float = 40.0
    net_seeds: int = 4
    dp_t: float = 200.0
    dp_seeds: int = 8
    dp_eps_sqrt: float = 0.0
    dp_eps_norm: float = 0.01
    # 4. IsoLoss vs BYOL
    iso_sigma2: float = 0.01
    iso_alpha: float = 0.5
    iso_in: int = 15
    iso_out: int = 10
    iso_s_min: float = 1e-3
    iso_s_max: float = 1e-1
    iso_t: float = 60.0
    iso_lr: float = 0.02
    iso_batch: int = 512
    # which parts to run ("portrait" includes the sweeps); the notebook runs a subset
    parts: tuple = ("portrait", "network", "directpred", "isoloss")
    seed: int = 0
    dtype: str = "float64"


QUICK = dict(n_grid=15, t_portrait=150.0, omegas=(0.0, 0.1, 0.24), sigma2s=(0.0, 1.0), alpha_ps=(0.5, 2.0),
             betas=(1.0,), net_seeds=2, net_t=20.0, dp_seeds=2, dp_t=150.0, iso_t=40.0, iso_lr=0.04, iso_batch=256)

SAVE = 61  # save points of every ODE (shared compilations)
MAX_STEPS = 400_000


def prepare(config):
    p = np.linspace(config.p_min, config.p_max, config.n_grid)
    s = np.linspace(config.s_max / config.n_grid, config.s_max, config.n_grid)
    P, S = np.meshgrid(p, s, indexing="xy")
    return {"p0": jnp.asarray(P.ravel()), "s0": jnp.asarray(S.ravel()), "grid": (p.tolist(), s.tolist())}


def cells(config):
    unknown = set(config.parts) - {"portrait", "network", "directpred", "isoloss"}
    if unknown or "portrait" not in config.parts:
        raise ValueError(f"`parts` must include 'portrait' and only name portrait/network/directpred/isoloss, "
                         f"got {config.parts}")
    out = [{"id": "portrait", "kind": "portrait"}]
    for name, values in (("omega", config.omegas), ("sigma2", config.sigma2s), ("alpha_p", config.alpha_ps),
                         ("beta", config.betas)):
        for v in values:
            out.append({"id": f"sweep-{name}={v}", "kind": "sweep", "param": name, "value": v})
    for part in ("network", "directpred", "isoloss"):
        if part in config.parts:
            out.append({"id": part, "kind": part})
    if "isoloss" in config.parts:  # Halvagal et al.'s stop-gradient ablation, on the same 15 → 10 toy
        out.append({"id": "stopgrad", "kind": "stopgrad"})
    return out


def _mode_flow(config, **over):
    kw = dict(omega=config.weight_decay, sigma2=config.sigma2, alpha_p=config.alpha_p, beta=None)
    kw.update(over)
    return byol.TianModeFlow(1.0, kw["sigma2"], alpha_p=kw["alpha_p"], weight_decay=kw["omega"], beta=kw["beta"]), kw


def _portrait(config, context, flow, t1):
    return byol.tian_phase_portrait(flow, context["p0"], context["s0"], t1, ts=SAVE, rtol=1e-8, atol=1e-10)


def _run_portrait(config, context, cell):
    flow, kw = _mode_flow(config)
    pp = _portrait(config, context, flow, config.t_portrait)
    fp = byol.tian_fixed_points(lam_aug=config.sigma2, alpha_p=config.alpha_p, weight_decay=config.weight_decay)
    # invariant: (s − p²/α_p) − C0 e^{−2ωt} along every trajectory
    ts = np.asarray(pp.ts)
    C = np.asarray(pp.ys.s) - np.asarray(pp.ys.p) ** 2 / config.alpha_p
    dev = np.abs(C - C[0][None, :] * np.exp(-2 * config.weight_decay * ts)[:, None])
    inv = np.asarray(byol.tian_invariant(pp.ys.p, pp.ys.s, pp.ts[:, None], alpha_p=config.alpha_p,
                                         weight_decay=config.weight_decay))
    early = ts <= 10.0
    # Jacobians at p+ and p− (SimSiam: 2x2 block; EMA β = 1: 3x3)
    eigs = {}
    for name, beta in (("simsiam", None), ("ema", 1.0)):
        f, _ = _mode_flow(config, beta=beta)
        st = byol.ModeState.from_s_tau(jnp.array([fp.p_plus, fp.p_minus]), jnp.array([fp.s_plus, fp.s_minus]))
        J = np.asarray(byol.mode_jacobian(f, st))
        if beta is None:
            J = J[:, :2, :2]
        ev = [np.linalg.eigvals(J[i]) for i in range(2)]
        eigs[name] = {"p_plus": [complex(x).real for x in ev[0]], "p_minus": [complex(x).real for x in ev[1]]}
    coll = np.asarray(pp.collapsed)
    final_p, final_s = np.asarray(pp.ys.p[-1]), np.asarray(pp.ys.s[-1])
    conv = ~coll
    every = max(1, len(ts) // 60)
    pick = np.linspace(0, len(coll) - 1, min(len(coll), 60)).astype(int)
    return [{"kind": "portrait", "collapsed": coll.tolist(), "collapsed_fraction": float(coll.mean()),
             "p_final": final_p.tolist(), "s_final": final_s.tolist(),
             "max_dev_to_p_plus": float(np.max(np.abs(final_p[conv] - float(fp.p_plus)))) if conv.any() else None,
             "max_dev_to_s_plus": float(np.max(np.abs(final_s[conv] - float(fp.s_plus)))) if conv.any() else None,
             "invariant_max_abs_dev": float(dev.max()),
             "invariant_rel_drift_t10": float(np.max(np.abs(inv[early] - inv[0]) / np.maximum(np.abs(inv[0]), 1e-3))),
             "p_plus": float(fp.p_plus), "p_minus": float(fp.p_minus), "s_plus": float(fp.s_plus),
             "s_minus": float(fp.s_minus), "jacobian_eigs": eigs,
             "traj_index": pick.tolist(), "traj_t": ts[::every].tolist(),
             "traj_p": np.asarray(pp.ys.p)[::every][:, pick].tolist(),
             "traj_s": np.asarray(pp.ys.s)[::every][:, pick].tolist()}]


def _run_sweep(config, context, cell):
    over = {"omega": {"omega": cell["value"]}, "sigma2": {"sigma2": cell["value"]},
            "alpha_p": {"alpha_p": cell["value"]}, "beta": {"beta": cell["value"]}}[cell["param"]]
    flow, kw = _mode_flow(config, **over)
    pp = _portrait(config, context, flow, config.t_portrait)
    fp = byol.tian_fixed_points(lam_aug=kw["sigma2"], alpha_p=kw["alpha_p"], weight_decay=kw["omega"])
    coll = np.asarray(pp.collapsed)
    return [{"kind": "sweep", "param": cell["param"], "value": cell["value"], "collapsed": coll.tolist(),
             "collapsed_fraction": float(coll.mean()), "exists": bool(fp.exists),
             "p_plus": None if not bool(fp.exists) else float(fp.p_plus),
             "p_minus": None if not bool(fp.exists) else float(fp.p_minus),
             "boundary_omega": 1.0 / (4.0 * (1.0 + kw["sigma2"])), **{k: (v if v is not None else None)
                                                                       for k, v in kw.items() if k != "beta"},
             "beta": kw["beta"]}]


def _net_stats(config):
    lam = jnp.asarray(config.net_lam)
    return lam, byol.gaussian_view_stats(lam, config.net_aug)


def _init(config, key, k, d, scale):
    k1, k2 = jax.random.split(key)
    W = scale * jax.random.normal(k1, (k, d)) / np.sqrt(d)
    Wp = scale * jax.random.normal(k2, (k, k)) / np.sqrt(k)
    return byol.BYOLState(W, Wp, W)


def _spectra(state):
    W, Wp = np.asarray(state.W), np.asarray(state.Wp)
    F = W @ np.swapaxes(W, -1, -2)
    s = np.sort(np.linalg.eigvalsh(F), axis=-1)[..., ::-1]
    p = np.sort(np.real(np.linalg.eigvals(Wp)), axis=-1)[..., ::-1]
    comm = F @ Wp - Wp @ F
    align = np.linalg.norm(comm, axis=(-2, -1)) / np.maximum(
        np.linalg.norm(F, axis=(-2, -1)) * np.linalg.norm(Wp, axis=(-2, -1)), 1e-300)
    return s, p, align


def _s_spectrum(state):
    """Eigenvalues of `W Wᵀ`, descending (invariant of one state, for `compare_along`)."""
    return jnp.linalg.eigvalsh(state.W @ state.W.T)[::-1]


def _p_spectrum(state):
    """Real parts of the predictor's eigenvalues, descending."""
    return jnp.sort(jnp.real(jnp.linalg.eigvals(state.Wp)))[::-1]


def _run_network(config, context, cell):
    lam, stats = _net_stats(config)
    d, k = len(config.net_lam), config.net_k
    flow = byol.LinearBYOLFlow(stats.C0, stats.Cp, alpha_p=config.net_alpha_p,
                               weight_decay=config.net_weight_decay, beta=config.net_beta)
    n = int(round(config.net_t / config.net_lr))
    save_every = max(1, n // (SAVE - 1))
    n = save_every * (SAVE - 1)
    t_save = config.net_lr * save_every * np.arange(1, SAVE)
    ts = jnp.concatenate([jnp.zeros(1), jnp.asarray(t_save)])
    out = []
    keys = jax.random.split(jax.random.PRNGKey(config.seed + 101), config.net_seeds)
    for i, key in enumerate(keys):
        y0 = _init(config, key, k, d, config.net_init_scale)
        ode = ssldyn.solve(flow, y0, 0.0, float(ts[-1]), ts=ts, rtol=1e-8, atol=1e-10, max_steps=MAX_STEPS)
        net = byol.train_linear_byol(jax.random.fold_in(key, 1), y0, lam=lam, lam_aug=config.net_aug, lr=config.net_lr,
                                     n_steps=n, batch_size=config.net_batch, alpha_p=config.net_alpha_p,
                                     weight_decay=config.net_weight_decay, beta=config.net_beta, save_every=save_every)
        s_o, p_o, a_o = _spectra(ode.ys)
        s_n, p_n, a_n = _spectra(net.saved)
        # network against ODE at the network's save times (the ODE is saved at t = 0 too)
        s_gap, p_gap = (ssldyn.compare_along(net, ode, invariant=f, gap="max_abs").max_gap
                        for f in (_s_spectrum, _p_spectrum))
        out.append({"kind": "network", "seed": i, "t": t_save.tolist(), "s_ode": s_o[1:].tolist(),
                    "p_ode": p_o[1:].tolist(), "align_ode": a_o[1:].tolist(), "s_net": s_n.tolist(),
                    "p_net": p_n.tolist(), "align_net": a_n.tolist(), "align_0": float(a_o[0]),
                    "max_abs_s_gap": float(s_gap), "max_abs_p_gap": float(p_gap)})
    return out


def _run_directpred(config, context, cell):
    lam, stats = _net_stats(config)
    d, k = len(config.net_lam), config.net_k
    omega, beta = config.net_weight_decay, config.net_beta
    trained = byol.LinearBYOLFlow(stats.C0, stats.Cp, alpha_p=1.0, weight_decay=omega, beta=beta)
    dp = byol.ClosedFormPredictorFlow(stats.C0, stats.Cp, loss="byol", exponent=0.5, eps=config.dp_eps_sqrt,
                                      normalize=False, correlation="weights", weight_decay=omega, beta=beta)
    dp_norm = byol.ClosedFormPredictorFlow(stats.C0, stats.Cp, loss="byol", exponent=0.5, eps=config.dp_eps_norm,
                                           normalize=True, correlation="outputs", weight_decay=omega, beta=beta)
    ts = jnp.linspace(0.0, config.dp_t, SAVE)
    keys = jax.random.split(jax.random.PRNGKey(config.seed + 202), config.dp_seeds)
    fp = byol.tian_fixed_points(lam=lam, lam_aug=config.net_aug, alpha_p=1.0, weight_decay=omega)
    out = []
    for i, key in enumerate(keys):
        y0 = _init(config, key, k, d, config.net_init_scale)
        rec = {"kind": "directpred", "seed": i}
        tr = ssldyn.solve(trained, y0, 0.0, config.dp_t, ts=ts, rtol=1e-8, atol=1e-10, max_steps=MAX_STEPS)
        rec["trained_s"] = np.asarray(_spectra(tr.ys)[0]).tolist()
        for name, flow in (("dp_sqrt", dp), ("dp_norm", dp_norm)):
            traj = ssldyn.solve(flow, (y0.W, y0.Wa), 0.0, config.dp_t, ts=ts, rtol=1e-8, atol=1e-10,
                                max_steps=MAX_STEPS, throw=False)
            W = np.asarray(traj.ys[0])
            rec[f"{name}_s"] = np.sort(np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2)), axis=-1)[..., ::-1].tolist()
            rec[f"{name}_status"] = int(np.max(np.asarray(traj.status)))
        out.append(rec)
    # Predictions: surviving trained modes sit at s+ = p+² (α_p = 1); DirectPred p = √s + ε at (p+ − ε)².
    for r in out:
        r["pred_trained"] = [None if not np.isfinite(x) else float(x) for x in np.asarray(fp.s_plus)]
        r["pred_dp_sqrt"] = [None if not np.isfinite(x) else float(max(x - config.dp_eps_sqrt, 0.0) ** 2)
                             for x in np.asarray(fp.p_plus)]
        r["t"] = np.asarray(ts).tolist()
    return out


def _iso_toy(config):
    """Halvagal et al.'s toy: `iso_in → iso_out`, X = I, X' = σ² I; a random orientation with a prescribed
    log-spaced spectrum; the geometric save grid (dense early: the fastest IsoLoss mode is half-way at
    t < 1). Returns `(W0, s0, stats, ts, key)`."""
    d, k = config.iso_in, config.iso_out
    key = jax.random.PRNGKey(config.seed + 303)
    kU, kV, kn = jax.random.split(key, 3)
    U, _ = jnp.linalg.qr(jax.random.normal(kU, (k, k)))
    V, _ = jnp.linalg.qr(jax.random.normal(kV, (d, d)))
    s0 = jnp.geomspace(config.iso_s_max, config.iso_s_min, k)
    W0 = (U * jnp.sqrt(s0)) @ V[:, :k].T  # random orientation, prescribed spectrum
    stats = byol.gaussian_view_stats(jnp.ones(d), config.iso_sigma2)
    ts = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.02, config.iso_t, SAVE - 1)])
    return W0, s0, stats, ts, kn


def _run_stopgrad(config, context, cell):
    """Where the stop-gradient goes (Halvagal et al. 2023): the autodiff flow of
    `byol.predictor_population_loss` for each placement, from the IsoLoss toy's initial state."""
    W0, s0, stats, ts, _ = _iso_toy(config)
    c = 1.0 + config.iso_sigma2
    out = []
    for placement in byol.STOP_GRADIENTS:
        flow = ssldyn.GradientFlow(functools.partial(_placement_loss, stop_gradient=placement,
                                                     exponent=config.iso_alpha), args=(stats.C0, stats.Cp))
        traj = ssldyn.solve(flow, W0, 0.0, config.iso_t, ts=ts, rtol=1e-9, atol=1e-12, max_steps=MAX_STEPS,
                            throw=False)
        W = np.asarray(traj.ys)
        ok = np.all(np.isfinite(W), axis=(1, 2))
        spec = np.full((W.shape[0], W.shape[1]), np.nan)
        spec[ok] = np.sort(np.linalg.eigvalsh(W[ok] @ np.swapaxes(W[ok], 1, 2)), axis=1)[:, ::-1]
        out.append({"kind": "stopgrad", "stop_gradient": placement, "t": np.asarray(ts).tolist(),
                    "s": spec.tolist(), "s0": np.asarray(s0).tolist(), "status": int(traj.status),
                    "s_star": float((1.0 / c) ** (1.0 / config.iso_alpha))})
    return out


def _placement_loss(W, args, *, stop_gradient, exponent):
    return byol.predictor_population_loss(W, args[0], args[1], stop_gradient=stop_gradient, exponent=exponent)


def _run_isoloss(config, context, cell):
    d, k, alpha, sigma2 = config.iso_in, config.iso_out, config.iso_alpha, config.iso_sigma2
    W0, s0, stats, ts, kn = _iso_toy(config)
    lam = jnp.ones(d)
    flow = byol.ClosedFormPredictorFlow(stats.C0, stats.Cp, loss="byol", exponent=alpha)
    c = 1.0 + sigma2
    p0 = np.asarray(s0) ** alpha
    half = 0.5 / c  # half-way to p* = 1/c
    n = int(round(config.iso_t / config.iso_lr))
    t_net = config.iso_lr * np.arange(0, n + 1)  # every step (crossing times at step resolution)
    keep = np.unique(np.searchsorted(t_net, np.asarray(ts)).clip(0, n))  # stored subsample
    out = []
    for loss in ("byol", "isoloss"):
        f = eqx.tree_at(lambda f: f.byol, flow, jnp.asarray(1.0 if loss == "byol" else 0.0))
        traj = ssldyn.solve(f, W0, 0.0, config.iso_t, ts=ts, rtol=1e-9, atol=1e-12, max_steps=MAX_STEPS)
        s_ode = np.sort(np.linalg.eigvalsh(np.asarray(traj.ys @ jnp.swapaxes(traj.ys, 1, 2))), axis=1)[:, ::-1]
        y0 = byol.BYOLState(W0, jnp.zeros((k, k)), W0)
        net = byol.train_linear_byol(kn, y0, lam=lam, lam_aug=sigma2, lr=config.iso_lr, n_steps=n,
                                     batch_size=config.iso_batch, predictor="closed_form", loss=loss,
                                     exponent=alpha, eps=0.0, normalize=False, correlation="weights",
                                     save_every=1)
        Wn = np.concatenate([np.asarray(W0)[None], np.asarray(net.saved.W)])
        s_net = np.sort(np.linalg.eigvalsh(Wn @ np.swapaxes(Wn, 1, 2)), axis=1)[:, ::-1]
        tsn = np.asarray(ts)
        # closed forms p(t) of every mode (broadcast: times (T, 1) against modes (k,))
        if loss == "byol":
            solution = byol.BYOLModeSolution(jnp.asarray(p0), exponent=alpha, c=c)
            t_half = np.asarray(solution.time(half))
        else:
            solution = byol.IsoLossModeSolution(jnp.asarray(p0), exponent=alpha, c=c)
            t_half = np.log(1.0 / (c * p0) - 1.0) / (2 * alpha)
        p_cf = np.asarray(solution(ts[:, None]))

        def crossing(t, s):
            p = s**alpha
            res = []
            for j in range(k):
                idx = np.nonzero(p[:, j] >= half)[0]
                if idx.size == 0 or idx[0] == 0:
                    res.append(None)
                    continue
                i = idx[0]
                res.append(float(np.interp(half, p[i - 1:i + 1, j], t[i - 1:i + 1])))
            return res

        out.append({"kind": "isoloss", "loss": loss, "t": tsn.tolist(), "s0": np.asarray(s0).tolist(),
                    "s_ode": s_ode.tolist(), "p_closed_form": p_cf.tolist(), "t_net": t_net[keep].tolist(),
                    "s_net": s_net[keep].tolist(), "t_half_closed_form": np.asarray(t_half).tolist(),
                    "t_half_ode": crossing(tsn, s_ode), "t_half_net": crossing(t_net, s_net),
                    "max_abs_p_ode_vs_closed_form": float(np.max(np.abs(s_ode**alpha - p_cf)))})
    return out


CELL_KINDS = {"portrait": _run_portrait, "sweep": _run_sweep, "network": _run_network,
              "directpred": _run_directpred, "isoloss": _run_isoloss, "stopgrad": _run_stopgrad}


# ----------------------------------------------------------------------------------------------
# Claims: one function each, (config, records) -> Claim | None
# ----------------------------------------------------------------------------------------------

TIAN = "Tian, Chen & Ganguli, ICML 2021"
HALVAGAL = "Halvagal, Laborieux & Zenke, NeurIPS 2023"


def _ratio(ts):
    v = [x for x in ts if x is not None]
    return "n/a" if len(v) < len(ts) or min(v) <= 0 else f"{max(v) / min(v):.1f}"


def _count_modes(spec, frac=1e-3):
    spec = np.asarray(spec, dtype=float)
    return int(np.sum(spec > frac * max(spec.max(), 1e-300)))


def _portrait_record(records):
    found = select(records, kind="portrait")
    return found[0] if found else None


def _sorted_sweep(records, param):
    return sorted(select(records, kind="sweep", param=param), key=lambda r: r["value"])


def claim_invariant(config, records) -> Claim | None:
    portrait = _portrait_record(records)
    if portrait is None:
        return None
    return Claim(
        claim="Invariant: (s − p²/α_p) e^{2ωt} is conserved along each mode (exact for any τ)",
        measured=f"max |(s − p²/α_p) − C₀e^{{−2ωt}}| = {portrait['invariant_max_abs_dev']:.1e} over "
                 f"{len(portrait['collapsed'])} grid trajectories to t = {config.t_portrait:g} (rtol 1e-8); "
                 f"relative drift of the invariant for t ≤ 10: {portrait['invariant_rel_drift_t10']:.1e}",
        verdict=verdict(portrait["invariant_max_abs_dev"] < 1e-5),
        criterion="yes iff the largest |(s − p²/α_p) − C₀e^{−2ωt}| over all grid trajectories and save times of "
                  "the per-mode ODE (rtol 1e-8) is below 1e-5; no otherwise",
        paper=f"{TIAN}, decoupled per-mode dynamics (paraphrase): s_j − p_j²/α_p decays as e^{{−2ωt}}, so the "
              "trajectories stay on a family of parabolas, whatever the EMA ratio τ_j(t)",
    )


def claim_fixed_points(config, records) -> Claim | None:
    portrait = _portrait_record(records)
    if portrait is None:
        return None
    ev = portrait["jacobian_eigs"]
    saddle = all(sum(x > 0 for x in ev[k]["p_minus"]) == 1 for k in ev)
    stable = all(all(x < 0 for x in ev[k]["p_plus"]) for k in ev)
    return Claim(
        claim="Fixed points p± = [1 ± √(1 − 4ω(1+σ²))]/(2(1+σ²)) on s = p²/α_p: p+ attracts, p− is a saddle",
        measured=f"p+ = {portrait['p_plus']:.4f}, p− = {portrait['p_minus']:.4f}; Jacobian eigenvalues at p+ "
                 f"(SimSiam) {np.round(ev['simsiam']['p_plus'], 4).tolist()}, at p− "
                 f"{np.round(ev['simsiam']['p_minus'], 4).tolist()} (EMA β=1: p− "
                 f"{np.round(ev['ema']['p_minus'], 4).tolist()}); non-collapsed grid points end within "
                 f"{portrait['max_dev_to_p_plus']:.1e} of p+",
        verdict=verdict(saddle and stable and portrait["max_dev_to_p_plus"] is not None
                        and portrait["max_dev_to_p_plus"] < 1e-3),
        criterion="yes iff, for both the SimSiam (p, w) block and the EMA β = 1 Jacobian, every eigenvalue at p+ "
                  "has negative real part and exactly one at p− is positive, and every non-collapsed grid point "
                  "ends within 1e-3 of p+; no otherwise",
        paper=f"{TIAN}, decoupled dynamics with weight decay (paraphrase): besides the collapsed point, two "
              "fixed points p± exist on the parabola s = p²/α_p when ω < 1/(4(1+σ²)); p+ is stable and p− "
              "separates the trivial (collapsing) basin from the non-trivial one",
    )


def claim_collapse_boundary(config, records) -> Claim:
    om = _sorted_sweep(records, "omega")
    beyond = [r for r in om if not r["exists"]]
    inside = [r for r in om if r["exists"] and r["value"] > 0]
    return Claim(
        claim="Every start collapses when ω > 1/(4(1+σ²)); inside the existence region part of the plane "
              "converges to p+",
        measured="collapsed fraction vs ω: " + ", ".join(f"{r['value']:g}: {r['collapsed_fraction']:.2f}" for r in om)
                 + f" (boundary {1 / (4 * (1 + config.sigma2)):.3f})",
        verdict=verdict(bool(all(r["collapsed_fraction"] == 1.0 for r in beyond)
                             and all(r["collapsed_fraction"] < 1.0 for r in inside)) if len(beyond) >= 2 else None),
        criterion="not testable with fewer than two swept ω beyond the boundary (no fixed points p±); otherwise "
                  "yes iff every such ω collapses the whole grid (fraction 1) and every ω > 0 inside the existence "
                  "region leaves part of the grid uncollapsed (fraction < 1); no otherwise",
        paper=f"{TIAN}, effect of weight decay (paraphrase): when the weight decay is too strong, "
              "ω > 1/(4(1+σ²)), the non-trivial fixed points vanish and every initialisation collapses",
    )


def claim_sweep_regions(config, records) -> Claim:
    desc = []
    for name in ("omega", "sigma2", "alpha_p", "beta"):
        rs = _sorted_sweep(records, name)
        if rs:
            desc.append(f"{name}: " + ", ".join(f"{r['value']:g} → {r['collapsed_fraction']:.2f}" for r in rs))
    return Claim(
        claim="The collapse vs non-collapse regions of the (p, s) portrait change with weight decay, augmentation "
              "strength, predictor rate and EMA rate (descriptive: the theory file states no direction)",
        measured="collapsed fraction of the grid p₀ ∈ [%g, %g], s₀ ∈ (0, %g]: " % (config.p_min, config.p_max, config.s_max)
                 + "; ".join(desc) + f" (base: SimSiam, ω={config.weight_decay}, σ²={config.sigma2}, "
                                     f"α_p={config.alpha_p}). Weight decay shrinks the region at negative p₀ "
                                     "(−ωp pulls p up) and grows it at small positive p₀ (p < p−).",
        verdict=verdict(None),
        criterion="descriptive: the collapsed fractions are reported, no direction is tested",
        paper=f"{TIAN}, how multiple factors (weight decay, relative predictor learning rate α_p, EMA) affect the "
              "trivial and non-trivial basins of the decoupled dynamics (paraphrase)",
    )


def claim_network_follows_ode(config, records) -> Claim | None:
    nets = select(records, kind="network")
    if not nets:
        return None
    gap_s = max(r["max_abs_s_gap"] for r in nets)
    smax = max(np.max(r["s_ode"]) for r in nets)
    return Claim(
        claim="A trained linear BYOL network (SGD, EMA target, weight decay) follows the full-matrix ODE",
        measured=f"max |eig(WWᵀ)_SGD − eig_ODE| = {gap_s:.3f} (eigenvalues up to {smax:.2f}; η = "
                 f"{config.net_lr}, batch {config.net_batch}, {len(nets)} seeds, t ≤ {config.net_t:g})",
        verdict=verdict(gap_s < 0.05 * smax),
        criterion="yes iff the largest gap between the eigenvalues of W Wᵀ of the SGD network and of the ODE, over "
                  "seeds, modes and save times, is below 5% of the largest ODE eigenvalue; no otherwise",
        paper=f"{TIAN}, two-layer linear model (paraphrase): the gradient-flow equations of W, W_p and the EMA "
              "target describe the training of the linear network",
    )


def claim_eigenspace_alignment(config, records) -> Claim | None:
    nets = select(records, kind="network")
    if not nets:
        return None
    al0 = min(r["align_0"] for r in nets)
    al_end = max(r["align_ode"][-1] for r in nets)
    al_net = max(r["align_net"][-1] for r in nets)
    half = [np.asarray(r["align_ode"])[len(r["align_ode"]) // 2:] for r in nets]
    mono = all(np.all(np.diff(h) < 0) for h in half)
    return Claim(
        claim="The predictor's eigenvectors align with those of F = W Wᵀ during training (Tian et al.'s "
              "eigenspace alignment; criterion: the misalignment decreases monotonically over the second half "
              "of the run and ends below 20% of its initial value)",
        measured=f"‖[W_p, F]‖/(‖W_p‖‖F‖): initially ≥ {al0:.2f}, at t = {config.net_t:g} ≤ {al_end:.1e} (ODE), "
                 f"≤ {al_net:.1e} (SGD); monotone decrease in the second half: {mono}",
        verdict=verdict(mono and al_end < 0.2 * al0),
        criterion="yes iff, for every seed, the ODE misalignment ‖[W_p, F]‖/(‖W_p‖‖F‖) decreases strictly between "
                  "consecutive saves over the second half of the run, and its largest final value is below 20% "
                  "of the smallest initial value; no otherwise",
        paper=f"{TIAN}, eigenspace alignment (paraphrase): under the symmetric-predictor assumption the "
              "eigenspaces of W_p and F = W Wᵀ gradually align during training",
    )


@full_run_only
def claim_directpred_modes(config, records) -> Claim | None:
    dps = select(records, kind="directpred")
    if not dps:
        return None
    kt = [_count_modes(np.asarray(r["trained_s"])[-1]) for r in dps]
    kd = [_count_modes(np.asarray(r["dp_sqrt_s"])[-1]) for r in dps]
    errs = {"trained": [], "dp": []}
    slow = 0
    for r in dps:
        for key, pk, lab in (("trained_s", "pred_trained", "trained"), ("dp_sqrt_s", "pred_dp_sqrt", "dp")):
            traj = np.asarray(r[key])
            fin, prev = traj[-1], traj[int(0.9 * (len(traj) - 1))]
            pred = np.array([np.nan if v is None else v for v in r[pk]])
            for v, u in zip(fin, prev):
                if v <= 1e-3 * fin.max():
                    continue
                if abs(v - u) > 1e-3 * v:  # still moving over the last 10% of the horizon
                    slow += 1
                    continue
                errs[lab].append(float(np.nanmin(np.abs(pred - v) / pred)))
    worst = max(errs["trained"] + errs["dp"] + [0])
    # the normalised map shrinks the whole spectrum: count its modes against the trained run's scale
    kn = [int(np.sum(np.asarray(r["dp_norm_s"])[-1] > 1e-3 * np.max(np.asarray(r["trained_s"])[-1]))) for r in dps]
    sqrt_wins = all(b >= a for a, b in zip(kt, kd)) and sum(kd) > sum(kt) and worst < 1e-2
    return Claim(
        claim="DirectPred (predictor from the eigen-decomposition of F) avoids the dimensional collapse of a "
              "trained linear predictor (toy analogue of 'DirectPred ≥ trained linear predictor')",
        measured=f"non-collapsed modes out of {config.net_k} over {len(dps)} random inits: trained {kt}, "
                 f"DirectPred √s+{config.dp_eps_sqrt:g} (unnormalised, not the paper's map) {kd}, the paper's "
                 f"normalised √(s/max s)+{config.dp_eps_norm:g} {kn}; converged modes sit at the predicted fixed "
                 f"points (trained s+ = p+², DirectPred (p+ − ε)²) to {worst:.1e} (relative); {slow} surviving "
                 f"mode(s) still converging at t = {config.dp_t:g}",
        verdict=verdict(sqrt_wins and sum(kn) >= sum(kt), partly=sqrt_wins),
        criterion="counting modes with a final eigenvalue above 1e-3 of the largest: the unnormalised DirectPred "
                  "√s + ε keeps at least as many as the trained predictor from every initialisation and more in "
                  "total, and every converged surviving mode (moving by at most 1e-3 relative over the last 10% "
                  "of the horizon) lies within 1% (relative) of a predicted fixed point; yes iff in addition the "
                  "paper's normalised map keeps in total at least as many modes (above 1e-3 of the trained run's "
                  "largest eigenvalue) as the trained predictor; partly iff only the unnormalised map does; no otherwise",
        paper=f"{TIAN}, DirectPred (abstract, paraphrase): setting the linear predictor directly from the "
              "statistics of its inputs, without gradient training, performs comparably with a two-layer "
              "non-linear predictor with BatchNorm and outperforms a trained linear predictor on ImageNet",
    )


def claim_normalised_directpred(config, records) -> Claim | None:
    dps = select(records, kind="directpred")
    if not dps:
        return None
    norm_scale = max(float(np.asarray(r["dp_norm_s"])[-1].max()) for r in dps)
    return Claim(
        claim="Finding (not a paper claim): the paper's normalised DirectPred p = √(s/max s) + ε under the "
              "squared (unnormalised) loss of the linear analysis",
        measured=f"the representation shrinks to 0 (final top eigenvalue ≤ {norm_scale:.1e} in all runs): the "
                 "top mode has p = 1 + ε > λ/(λ+λ') and decays; the normalised predictor needs the normalised "
                 "(cosine) BYOL loss it is used with in the paper",
        verdict=verdict(None),
        criterion="descriptive: the largest final eigenvalue of W Wᵀ under normalised DirectPred is reported",
        paper=f"{TIAN}, DirectPred (paraphrase): p_j = √(s_j / max_i s_i) + ε with an EMA estimate of the "
              "correlation matrix, used with the normalised BYOL loss",
    )


def claim_isoloss_rates(config, records) -> Claim | None:
    isos = {r["loss"]: r for r in select(records, kind="isoloss")}
    if not isos:
        return None
    rb, ri = isos["byol"], isos["isoloss"]
    p0 = np.asarray(rb["s0"]) ** config.iso_alpha
    rel = []
    for r in (rb, ri):
        for src in ("t_half_ode", "t_half_net"):
            for got, want in zip(r[src], r["t_half_closed_form"]):
                rel.append(np.inf if got is None else abs(got - want) / want)
    err_cf = max(rb["max_abs_p_ode_vs_closed_form"], ri["max_abs_p_ode_vs_closed_form"])

    def loglog(ts):
        t = np.array([np.nan if x is None else x for x in ts])
        return float(np.polyfit(np.log(p0[-2:]), np.log(t[-2:]), 1)[0])

    sb, si = loglog(rb["t_half_net"]), loglog(ri["t_half_net"])
    return Claim(
        claim="IsoLoss equalises the per-mode rates (escape time ≈ ln(1/(c p₀))/(2α)); under Euclidean BYOL the "
              "eigenvalue is a learning-rate multiplier (escape time ≈ 1/(2α p₀))",
        measured=f"half-way times of the SGD network and the full-matrix flow match the closed forms to "
                 f"{max(rel):.1%} for all {len(p0)} modes (s₀ ∈ [{config.iso_s_min:g}, {config.iso_s_max:g}]); "
                 f"d ln t_half / d ln p₀ over the two smallest modes: BYOL {sb:.2f} (→ −1), IsoLoss {si:.2f}; "
                 f"slowest/fastest half-time: BYOL {_ratio(rb['t_half_net'])}, "
                 f"IsoLoss {_ratio(ri['t_half_net'])}; closed form vs flow "
                 f"max |Δp| = {err_cf:.1e}",
        verdict=verdict(max(rel) < 0.05 and err_cf < 1e-5 and sb < 2 * si),
        criterion="yes iff the half-way times (p = p*/2) of the SGD network and of the full-matrix flow match the "
                  "closed forms within 5% (relative) for every mode and both losses, the closed forms match the "
                  "flow's p(t) to 1e-5, and the log-log slope of the network's half-way time against p₀ over the "
                  "two smallest modes is, for BYOL, below twice the IsoLoss slope; no otherwise",
        paper=f"{HALVAGAL} (abstract): 'the eigenvalues act as effective learning rate multipliers' and the "
              "isotropic loss functions (IsoLoss) 'equalize convergence rates across eigenmodes'",
    )



_PLACEMENT_PAPER = ("M. S. Halvagal, A. Laborieux, F. Zenke, NeurIPS 2023, the linear toy's stop-gradient ablation "
                    "(theory file peers §2, from the paper's figure): omitting the stop-gradient leads to collapse; "
                    "putting it on the wrong branch leads to collapse, with possibly diverging modes; BYOL/SimSiam "
                    "reaches an isotropic representation")


def _placement(records, name):
    return next((r for r in select(records, kind="stopgrad", stop_gradient=name)), None)


def _final_vs_start(r):
    s = np.array([[np.nan if v is None else v for v in row] for row in r["s"]], dtype=float)
    last = s[np.all(np.isfinite(s), axis=1)][-1] if np.any(np.all(np.isfinite(s), axis=1)) else np.full(s.shape[1], np.nan)
    return last, np.asarray(r["s0"], dtype=float)


def claim_no_stop_gradient_collapses(config, records) -> Claim | None:
    r = _placement(records, "none")
    if r is None:
        return None
    last, s0 = _final_vs_start(r)
    ratio = float(np.nanmax(last / s0))
    return Claim(
        claim="Without a stop-gradient every mode collapses (Euclidean BYOL with a closed-form predictor)",
        paper=_PLACEMENT_PAPER,
        measured=f"largest final/initial eigenvalue of W Wᵀ over the {len(s0)} modes at t = {r['t'][-1]:g}: "
                 f"{ratio:.1e} (solver status {r['status']})",
        criterion="yes iff every mode's final eigenvalue is below 1e-3 of its initial value and the solve succeeded; "
                  "no otherwise",
        verdict=verdict(r["status"] == 0 and ratio < 1e-3),
    )


def claim_wrong_stop_gradient(config, records) -> Claim | None:
    r = _placement(records, "online")
    if r is None:
        return None
    last, s0 = _final_vs_start(r)
    diverged = r["status"] != 0 or np.any(~np.isfinite(last))
    collapsed = int(np.sum(last / s0 < 1e-3))
    grown = int(np.sum(last / s0 > 1e3))
    return Claim(
        claim="With the stop-gradient on the wrong (online) branch the representation collapses, possibly with "
              "diverging modes",
        paper=_PLACEMENT_PAPER,
        measured=f"{collapsed}/{len(s0)} modes below 1e-3 of their start, {grown} above 1e3×, solve "
                 f"{'stopped: non-finite' if diverged else 'finished'} (status {r['status']}); per mode "
                 f"μ = pλ − (λ+λ') < 0 for p = s^α < 1 + σ² at every start here",
        criterion="yes iff at least one mode collapses (below 1e-3 of its start) and every other mode either "
                  "collapses or diverges (above 1e3× its start, or a non-finite solve); no otherwise",
        verdict=verdict(collapsed >= 1 and (collapsed + grown == len(s0) or diverged)),
    )


def claim_stop_gradient_isotropic(config, records) -> Claim | None:
    r = _placement(records, "target")
    if r is None:
        return None
    last, _ = _final_vs_start(r)
    rel = np.abs(last / r["s_star"] - 1.0)
    return Claim(
        claim="With the stop-gradient on the target, BYOL/SimSiam reaches an isotropic representation: every "
              "mode at s* = (1/(1+σ²))^{1/α}",
        paper=_PLACEMENT_PAPER,
        measured=f"final eigenvalues within {float(np.max(rel)):.1%} of s* = {r['s_star']:.4f} (worst mode), "
                 f"{int(np.sum(rel <= 0.05))}/{len(rel)} within 5% at t = {r['t'][-1]:g}",
        criterion="yes iff every mode ends within 5% of s*; partly iff at least half do (BYOL recruits small "
                  "modes late, at t ≈ 1/(2α p₀)); no otherwise",
        verdict=verdict(bool(np.all(rel <= 0.05)), partly=bool(np.mean(rel <= 0.05) >= 0.5)),
    )

CLAIMS = (claim_invariant, claim_fixed_points, claim_collapse_boundary, claim_sweep_regions, claim_network_follows_ode,
          claim_eigenspace_alignment, claim_directpred_modes, claim_normalised_directpred, claim_isoloss_rates,
          claim_no_stop_gradient_collapses, claim_wrong_stop_gradient, claim_stop_gradient_isotropic)


# ----------------------------------------------------------------------------------------------
# Figures and the report body
# ----------------------------------------------------------------------------------------------


def report(config, context, records, out_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    portrait = _portrait_record(records)
    sweeps = select(records, kind="sweep")
    nets = select(records, kind="network")
    dps = select(records, kind="directpred")
    isos = {r["loss"]: r for r in select(records, kind="isoloss")}
    pg, sg = (np.asarray(x) for x in context["grid"])
    shape = (len(sg), len(pg))

    # --- figure 1: phase portrait + sweeps ---------------------------------------------------------
    fig, axs = plt.subplots(2, 3, figsize=(16, 9))
    ax = axs[0, 0]
    coll = np.asarray(portrait["collapsed"]).reshape(shape)
    cmap = ListedColormap(["#cde8cd", "#f4c7c3"])
    ax.pcolormesh(pg, sg, coll.astype(float), cmap=cmap, shading="nearest", vmin=0, vmax=1)
    tp, tsv = np.asarray(portrait["traj_p"]), np.asarray(portrait["traj_s"])
    cflags = np.asarray(portrait["collapsed"])[portrait["traj_index"]]
    for j in range(tp.shape[1]):
        ax.plot(tp[:, j], tsv[:, j], color="tab:red" if cflags[j] else "tab:green", lw=0.7, alpha=0.8)
    pp = np.linspace(config.p_min, config.p_max, 200)
    ax.plot(pp, pp**2 / config.alpha_p, "k--", lw=1, label="parabola s = p²/α_p")
    ax.plot([portrait["p_plus"]], [portrait["s_plus"]], "o", color="k", ms=7, label="p+ (attractor)")
    ax.plot([portrait["p_minus"]], [portrait["s_minus"]], "x", color="k", ms=8, mew=2, label="p− (saddle)")
    ax.plot([0], [0], "s", color="tab:red", ms=6, label="collapse (0, 0)")
    ax.set_xlim(config.p_min, config.p_max)
    ax.set_ylim(0, config.s_max)
    ax.set_xlabel("p₀ (predictor eigenvalue)")
    ax.set_ylabel("s₀ (eigenvalue of W Wᵀ)")
    ax.set_title(f"SimSiam mode: ω={config.weight_decay}, σ²={config.sigma2}, α_p={config.alpha_p}\n"
                 "red: collapses, green: converges to p+")
    ax.legend(fontsize=7, loc="upper left")

    def boundaries(ax, name, title):
        rs = sorted([r for r in sweeps if r["param"] == name], key=lambda r: r["value"])
        styles = ["-", "--", "-.", ":"]
        for idx, r in enumerate(rs):
            cl = np.asarray(r["collapsed"]).reshape(shape).astype(float)
            col, ls = f"C{idx % 10}", styles[idx % len(styles)]
            if 0.0 < cl.mean() < 1.0:
                ax.contour(pg, sg, cl, levels=[0.5], colors=[col], linestyles=[ls], linewidths=1.6)
            ax.plot([], [], color=col, ls=ls, label=f"{name}={r['value']:g}: {r['collapsed_fraction']:.0%} collapse")
        ax.set_xlim(config.p_min, config.p_max)
        ax.set_ylim(0, config.s_max)
        ax.set_xlabel("p₀")
        ax.set_ylabel("s₀")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper right")

    boundaries(axs[0, 1], "omega", "collapse boundary vs weight decay ω")
    boundaries(axs[0, 2], "sigma2", "collapse boundary vs augmentation σ²")
    boundaries(axs[1, 0], "alpha_p", "collapse boundary vs predictor rate α_p")
    boundaries(axs[1, 1], "beta", "collapse boundary vs EMA rate β (τ₀ = 1)")
    ax = axs[1, 2]
    names = [n for n in ("omega", "sigma2", "alpha_p", "beta") if any(r["param"] == n for r in sweeps)]
    pos = 0
    ticks, labels = [], []
    for gi, name in enumerate(names):
        rs = sorted([r for r in sweeps if r["param"] == name], key=lambda r: r["value"])
        for r in rs:
            ax.bar(pos, r["collapsed_fraction"], color=f"C{gi}")
            ticks.append(pos)
            labels.append(f"{name}={r['value']:g}")
            pos += 1
        pos += 1
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7, rotation=90)
    ax.set_ylabel("collapsed fraction of the (p₀, s₀) grid")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"base: ω={config.weight_decay}, σ²={config.sigma2}, α_p={config.alpha_p}, SimSiam")
    fig.tight_layout()
    save_figure(fig, out_dir, "phase_portrait")

    # --- figure 2: network vs ODE, DirectPred, IsoLoss ---------------------------------------------
    if nets or dps or isos:
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
        ax = axes[0]
        if nets:
            r0 = nets[0]
            t = np.asarray(r0["t"])
            so, sn = np.asarray(r0["s_ode"]), np.asarray(r0["s_net"])
            po = np.asarray(r0["p_ode"])
            for j in range(so.shape[1]):
                ax.plot(t, so[:, j], color=f"C{j}", lw=2, label="eig W Wᵀ (ODE)" if j == 0 else None)
                ax.plot(t, sn[:, j], color=f"C{j}", ls="--", lw=1, label="network (SGD)" if j == 0 else None)
                ax.plot(t, po[:, j], color=f"C{j}", lw=1, alpha=0.6, ls="-.", label="eig W_p (ODE)" if j == 0 else None)
            ax2 = ax.twinx()
            ax2.semilogy(t, r0["align_ode"], color="k", lw=1, label="‖[W_p, F]‖/(‖W_p‖‖F‖)")
            ax2.set_ylabel("eigenspace misalignment")
            ax2.legend(fontsize=7, loc="center right")
            ax.set_xlabel("t = η·steps")
            ax.set_ylabel("eigenvalues")
            ax.legend(fontsize=7, loc="upper left")
            ax.set_title(f"linear BYOL (EMA β={config.net_beta}, ω={config.net_weight_decay}): ODE vs SGD")
        ax = axes[1]
        if dps:
            arms = (("trained_s", "trained predictor"), ("dp_sqrt_s", f"DirectPred √s+{config.dp_eps_sqrt:g}"),
                    ("dp_norm_s", f"DirectPred normalised +{config.dp_eps_norm:g}"))
            width = 0.27
            x = np.arange(config.net_k)
            for a, (key, lab) in enumerate(arms):
                fin = np.array([np.asarray(r[key])[-1] for r in dps])
                ax.bar(x + (a - 1) * width, fin.mean(0), width, yerr=[fin.mean(0) - fin.min(0), fin.max(0) - fin.mean(0)],
                       label=lab, color=f"C{a}", capsize=2)
            pt = [v for v in dps[0]["pred_trained"][: config.net_k]]
            ax.plot(x - width, [np.nan if v is None else v for v in pt], "k_", ms=14, mew=2, label="s+ = p+² (trained)")
            pd = [v for v in dps[0]["pred_dp_sqrt"][: config.net_k]]
            ax.plot(x, [np.nan if v is None else v for v in pd], "_", color="tab:brown", ms=14, mew=2,
                    label="(p+ − ε)² (DirectPred)")
            ax.set_xticks(x)
            ax.set_xticklabels([f"mode {j + 1}\nλ={config.net_lam[j]:g}" for j in range(config.net_k)], fontsize=8)
            ax.set_ylabel(f"final eigenvalue of W Wᵀ (t = {config.dp_t:g})")
            ax.set_title(f"DirectPred vs trained predictor ({len(dps)} random inits, ODE)")
            ax.legend(fontsize=7)
        ax = axes[2]
        for loss, ls in (("byol", "-"), ("isoloss", "--")):
            r = isos.get(loss)
            if r is None:
                continue
            t = np.asarray(r["t"])
            so = np.asarray(r["s_ode"])
            for j in range(0, so.shape[1], 3):
                ax.plot(t, so[:, j] ** config.iso_alpha, ls, color=f"C{j // 3}", lw=1.5,
                        label=f"{loss}, s₀={r['s0'][j]:.0e}")
            sn = np.asarray(r["s_net"])
            for j in range(0, sn.shape[1], 3):
                ax.plot(r["t_net"], sn[:, j] ** config.iso_alpha, ":", color=f"C{j // 3}", lw=1)
        ax.axhline(1 / (1 + config.iso_sigma2), color="gray", lw=0.8)
        ax.set_xlabel("t")
        ax.set_ylabel("p = s^α (per mode)")
        ax.set_title("IsoLoss (dashed) equalises mode rates; BYOL (solid) does not\n(dotted: SGD network)")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        save_figure(fig, out_dir, "networks_directpred_isoloss")

    placements = select(records, kind="stopgrad")
    if placements:
        titles = {"target": "SG on the target (BYOL/SimSiam)", "none": "no stop-gradient",
                  "online": "SG on the online branch (wrong)"}
        fig, axes = plt.subplots(1, len(placements), figsize=(4.2 * len(placements), 3.4), sharey=True)
        for ax, r in zip(np.atleast_1d(axes), placements):
            spec = np.array([[np.nan if v is None else v for v in row] for row in r["s"]], dtype=float)
            spectra_over_time(ax, r["t"], np.clip(spec, 1e-30, None), label="mode", log=True)
            ax.axhline(r["s_star"], color="0.5", linestyle=":", linewidth=1.0, label="s* (isotropic)")
            ax.set_title(titles.get(r["stop_gradient"], r["stop_gradient"]), fontsize=10)
            ax.set_ylabel("eigenvalue of W Wᵀ")
        np.atleast_1d(axes)[0].legend(fontsize=6, ncol=2)
        fig.suptitle(f"Where the stop-gradient goes ({config.iso_in} → {config.iso_out}, σ² = {config.iso_sigma2}, "
                     f"g(s) = s^{config.iso_alpha:g}, ODE of the autodiff flow)", fontsize=10)
        fig.tight_layout()
        save_figure(fig, out_dir, "stop_gradient_placement")

    body = ["## Setting", "",
            f"Phase portrait of one mode with λ = 1, λ' = σ² = {config.sigma2}, α_p = {config.alpha_p}, ω = "
            f"{config.weight_decay}, SimSiam target (τ ≡ 1) unless β is swept (then τ₀ = 1); {config.n_grid}² "
            f"initial points, p₀ ∈ [{config.p_min}, {config.p_max}], s₀ ∈ (0, {config.s_max}], t = {config.t_portrait:g}; "
            f"'collapsed' means s(t) < 1e-3·s+.",
            f"Networks: data variances λ = {list(config.net_lam)}, augmentation λ' = {config.net_aug}, k = "
            f"{config.net_k} outputs, ω = {config.net_weight_decay}, β = {config.net_beta}, α_p = {config.net_alpha_p}.",
            f"IsoLoss/BYOL: {config.iso_in} → {config.iso_out}, σ² = {config.iso_sigma2}, g(s) = s^{config.iso_alpha}, "
            f"initial spectrum log-spaced in [{config.iso_s_min:g}, {config.iso_s_max:g}], random orientation.",
            "Stop-gradient placement (same toy, α = %g): the autodiff flow of `byol.predictor_population_loss` with "
            "the stop-gradient on the target, nowhere, or on the online branch (`ssldyn.GradientFlow`; the target "
            "variant equals `ClosedFormPredictorFlow`, checked in the tests)." % config.iso_alpha, "",
            "## Notes", "",
            "- All formulas are reconstructions (theory file §1–§2); the per-mode system is re-derived in "
            "`ssldyn.byol` for general data/augmentation eigenvalues (λ, λ').",
            "- Weight decay on W_p acts at the base rate (−ωW_p, not −α_pωW_p); this is what makes the invariant "
            "exact, and the trainer implements it the same way.",
            "- p− is a saddle in the full (p, s) plane and the separatrix through it bounds the collapse region; "
            "on the parabola s = p²/α_p it reduces to the 1-D flow ṗ = −p(cp² − p + ω).",
            "- DirectPred in the ODE uses the instantaneous correlation (the limit of a fast F̂ average). The "
            "unnormalised √s map with α_p = 1 lies exactly on the invariant parabola of the trained predictor, "
            "so both share fixed points; the difference is which modes reach them.",
            "",
            "## Phase-portrait sweeps", "", "| parameter | value | collapsed fraction | p+ | p− |", "|---|---|---|---|---|"]
    f3 = lambda x: "–" if x is None else f"{x:.3f}"
    for r in sorted(sweeps, key=lambda r: (r["param"], r["value"])):
        body.append(f"| {r['param']} | {r['value']:g} | {r['collapsed_fraction']:.3f} | {f3(r['p_plus'])} | "
                    f"{f3(r['p_minus'])} |")
    if isos:
        body += ["", "## Half-way times (p = p*/2) per initial eigenvalue", "",
                 "| s₀ | BYOL closed form | BYOL flow | BYOL net | IsoLoss closed form | IsoLoss flow | IsoLoss net |",
                 "|---|---|---|---|---|---|---|"]
        rb, ri = isos["byol"], isos["isoloss"]
        f = lambda x: "–" if x is None else f"{x:.2f}"
        for j, s0 in enumerate(rb["s0"]):
            body.append(f"| {s0:.1e} | {f(rb['t_half_closed_form'][j])} | {f(rb['t_half_ode'][j])} | "
                        f"{f(rb['t_half_net'][j])} | {f(ri['t_half_closed_form'][j])} | {f(ri['t_half_ode'][j])} | "
                        f"{f(ri['t_half_net'][j])} |")
    return "\n".join(body)


def validate_config(config: Config) -> None:
    """Ranges of the settings, checked before the first cell (the runner has already checked every
    setting's type and sign); raises ValueError naming the field."""

    need, c = ConfigCheck(config).need, config
    known = ("portrait", "network", "directpred", "isoloss")
    need("parts", "portrait" in c.parts and set(c.parts) <= set(known) and len(set(c.parts)) == len(c.parts),
         f"different names among {known}, including 'portrait'")
    need("n_grid", c.n_grid >= 2, "an int >= 2")
    need("p_max", c.p_max > c.p_min, f"larger than p_min = {c.p_min}")
    need("s_max", c.s_max > 0, "positive")
    for name in ("t_portrait", "alpha_p", "net_t", "net_alpha_p", "net_init_scale", "net_beta", "dp_t",
                 "iso_alpha", "iso_s_min"):
        need(name, getattr(c, name) > 0, "positive")
    for name in ("sigma2", "weight_decay", "net_aug", "net_weight_decay", "dp_eps_sqrt", "dp_eps_norm", "iso_sigma2"):
        need(name, getattr(c, name) >= 0, "non-negative")
    for name in ("omegas", "sigma2s"):
        need(name, all(v >= 0 for v in getattr(c, name)), "non-negative values")
    for name in ("alpha_ps", "betas", "net_lam"):
        need(name, all(v > 0 for v in getattr(c, name)), "positive values")
    for name in ("omegas", "sigma2s", "alpha_ps", "betas"):
        need(name, len(set(getattr(c, name))) == len(getattr(c, name)), "different values (one cell each)")
    need("net_k", 1 <= c.net_k <= len(c.net_lam), f"an int in [1, len(net_lam) = {len(c.net_lam)}]")
    need("net_beta", c.net_beta * c.net_lr <= 1, f"at most 1 / net_lr = {1 / c.net_lr:g} (EMA momentum >= 0)")
    need("iso_out", 1 <= c.iso_out <= c.iso_in, f"an int in [1, iso_in = {c.iso_in}]")
    need("iso_s_max", c.iso_s_max >= c.iso_s_min, f"at least iso_s_min = {c.iso_s_min}")
    need("iso_t", c.iso_t > 0.02, "larger than 0.02 (the first save time)")
    need("iso_lr", c.iso_lr <= c.iso_t, f"at most iso_t = {c.iso_t} (at least one step)")
    need("net_lr", c.net_lr <= c.net_t, f"at most net_t = {c.net_t} (at least one step)")


EXPERIMENT = register(Experiment.from_namespace(
    globals(),
    name="directpred",
    summary="Linear BYOL/SimSiam with a predictor: per-mode phase portrait (collapse vs p+), trained network vs "
            "ODE, DirectPred vs trained predictor, and IsoLoss vs BYOL per-mode rates.",
    paper="Y. Tian, X. Chen, S. Ganguli. Understanding Self-Supervised Learning Dynamics without Contrastive Pairs. "
          "ICML 2021. arXiv:2102.06810; M. S. Halvagal, A. Laborieux, F. Zenke. Implicit variance regularization "
          "in non-contrastive SSL. NeurIPS 2023. arXiv:2212.04858",
))

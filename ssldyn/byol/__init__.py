r"""Non-contrastive learning with a linear predictor: BYOL/SimSiam, DirectPred and IsoLoss.

**Layout.** Row layout throughout (theory file `peers_eigenmode_dynamics.md`): the online encoder is
`f(x) = W x` with `W ∈ R^{k×d}`, the predictor `W_p ∈ R^{k×k}`, the target `W_a ∈ R^{k×d}`. Data
arrays hold one sample per row, `X ∈ R^{n×d}`, so a batch of representations is `X Wᵀ ∈ R^{n×k}`.
Moments are those of `ViewStats`: `C0` (same view) and `C+` (cross view); Tian et al.'s data and
augmentation covariances are `X = C+` and `X' = C0 − C+`.

**1. Linear BYOL with a trained predictor** (Tian, Chen & Ganguli, ICML 2021). Loss, symmetrised over
the two views (a mean over samples, with the explicit ½ of the paper):

    L = ½ E ‖W_p W x₁ − SG(W_a x₂)‖²
      = ½ tr(W_p W C0 Wᵀ W_pᵀ) − tr(W_p W C+ W_aᵀ) + ½ tr(W_a C0 W_aᵀ).

With time `t = η·steps`, predictor rate `α_p η`, weight decay ω on `W` and `W_p` (acting at the base
rate, Tian's convention, which is what makes the invariant below exact) and an EMA target
(`dW_a/dt = β(W − W_a)`, README §5):

    dW_p/dt = −α_p (W_p W C0 − W_a C+) Wᵀ − ω W_p
    dW/dt   = −W_pᵀ (W_p W C0 − W_a C+)   − ω W
    dW_a/dt = β (W − W_a)                     (β = None: SimSiam, W_a ≡ W)

**Per-mode reduction** (derived). Let `C+ = V diag(λ) Vᵀ`, `C0 − C+ = V diag(λ') Vᵀ` share
eigenvectors V and start aligned: `W = U diag(√s) V_kᵀ`, `W_p = U diag(p) Uᵀ`,
`W_a = U diag(τ√s) V_kᵀ` with U orthogonal. The form is preserved and, per mode j,

    g_j  = τ_j λ_j − p_j (λ_j + λ'_j)
    ṗ_j  = α_p s_j g_j − ω p_j
    ṡ_j  = 2 p_j s_j g_j − 2 ω s_j
    τ̇_j  = β (1 − τ_j) − τ_j (p_j g_j − ω)            (= β(1 − τ) − τ ṡ/(2s))

For `λ = 1`, `λ' = σ²` this is the theory file's system. `TianModeFlow` integrates it in the smooth
amplitudes `w = ±√s`, `w_a = τ w` (`ṗ = α_p w h − ωp`, `ẇ = p h − ωw`, `ẇ_a = β(w − w_a)` with
`h = λ w_a − (λ+λ') p w`): under an EMA target a collapsing mode can drive w through 0 while w_a ≠ 0,
where τ = w_a/w blows up in finite time, so the (p, s, τ) form is singular there (a correction to the
theory file, which states the (p, s, τ) system without this caveat). **Invariant** (exact for any τ(t)):
`ṡ − 2pṗ/α_p = −2ω (s − p²/α_p)`, so `(s − p²/α_p) e^{2ωt}` is conserved.
**Fixed points** with τ = 1 (any λ): the collapsed point (0, 0) and, on the parabola `s = p²/α_p`,

    p± = [ λ ± sqrt(λ² − 4ω(λ + λ')) ] / ( 2(λ + λ') ),   existing iff ω ≤ λ²/(4(λ + λ')).

On the parabola the flow reduces to `ṗ = −p((λ+λ')p² − λp + ω)`, so p+ attracts and p− separates
collapse from non-collapse; `mode_jacobian` shows that p− is a saddle.

**2. Closed-form predictors: DirectPred and Halvagal et al.** The predictor is a function of a
correlation matrix `F` (`F = W Wᵀ` "weights", or the online output correlation `F = W C0 Wᵀ`
"outputs"): `W_p = U diag(g(μ)) Uᵀ` for `F = U diag(μ) Uᵀ`, with

    g(μ) = (μ / max μ)^{exponent} + ε      (DirectPred, `normalize=True`, exponent ½, ε = 0.01)
    g(μ) = μ^{exponent} + ε                (Halvagal et al.'s `s^α`, `normalize=False`)

No gradient flows through the predictor. Euclidean BYOL/SimSiam and **IsoLoss** then give

    BYOL:    dW/dt = −W_pᵀ (W_p W C0 − W_a C+) − ω W,   per mode  ṡ = 2 s p (λ − p(λ+λ')) − 2ωs
    IsoLoss: dW/dt = −     (W_p W C0 − W_a C+) − ω W,   per mode  ṡ = 2 s   (λ − p(λ+λ')) − 2ωs

IsoLoss is `½ E‖W x₁ − SG(W_a x₂ + W x₁ − W_p W x₁)‖²`: its value equals the BYOL loss, its gradient
with respect to the online output is the BYOL residual without the `W_pᵀ` factor. For `g(s) = s^α`
(`λ = 1`, `c = 1 + σ²`, `p* = 1/c`) the per-mode predictor eigenvalue obeys

    IsoLoss: ṗ = 2α p (1 − cp),    p(t) = p* / (1 + (p*/p₀ − 1) e^{−2αt})           (logistic)
    BYOL:    ṗ = 2α p² (1 − cp),   2αt = c ln[ p(1 − cp₀) / (p₀(1 − cp)) ] + 1/p₀ − 1/p

(for general λ replace t by λt and c by (λ+λ')/λ). IsoLoss escapes from small `p₀` in a time
`≈ ln(1/(c p₀))/(2α)`, equal for all modes; BYOL needs `≈ 1/(2α p₀)`: the eigenvalue acts as a
learning-rate multiplier. `IsoLossModeSolution(p0, exponent=α, c=c, lam=λ)` and `BYOLModeSolution(...)`
are these closed forms (`AbstractSolution`s: `solution(t)` at any t, `solution.trajectory(ts)`);
`isoloss_mode_solution(t, p0, ...)` and `byol_mode_solution(t, p0, ...)` evaluate them in one call.

**3. Networks.** `euclidean_byol_loss` and `isoloss` are the batch losses on representations;
`linear_byol_loss` is the linear model's batch loss; `train_linear_byol` trains the linear network
with optax SGD on fresh Gaussian views (`gaussian_views`), per-step EMA `W_a ← m W_a + (1−m) W` with
`m = 1 − βη`, and either a trained predictor or a closed-form one computed from an EMA estimate `F̂`;
it returns a `TrainResult` (final `BYOLState`, saved states, save times `t = lr × steps`).

References:
- Y. Tian, X. Chen, S. Ganguli. *Understanding Self-Supervised Learning Dynamics without Contrastive
  Pairs.* ICML 2021. arXiv:2102.06810.
- M. S. Halvagal, A. Laborieux, F. Zenke. *Implicit variance regularization in non-contrastive SSL.*
  NeurIPS 2023. arXiv:2212.04858.

**Files** (stage order; each imports only earlier ones and the core `ssldyn._*` modules):
`_model.py` (states, aligned states, the predictor map g, Gaussian views) → `_loss.py` (batch
objectives) → `_flows.py` (vector fields; `IsoLossModeSolution`, `BYOLModeSolution`) → `_train.py`
(`train_linear_byol`, through `ssldyn._training.run_steps`, returning a `TrainResult`) →
`_analysis.py` (`tian_phase_portrait`, which integrates the per-mode flow).
"""

from ._model import BYOLState as BYOLState
from ._model import ModeState as ModeState
from ._model import aligned_byol_state as aligned_byol_state
from ._model import byol_mode_coordinates as byol_mode_coordinates
from ._model import closed_form_predictor as closed_form_predictor
from ._model import gaussian_view_stats as gaussian_view_stats
from ._model import gaussian_views as gaussian_views
from ._loss import euclidean_byol_loss as euclidean_byol_loss
from ._loss import isoloss as isoloss
from ._loss import linear_byol_loss as linear_byol_loss
from ._loss import STOP_GRADIENTS as STOP_GRADIENTS
from ._loss import predictor_population_loss as predictor_population_loss
from ._flows import BYOLModeSolution as BYOLModeSolution
from ._flows import ClosedFormPredictorFlow as ClosedFormPredictorFlow
from ._flows import IsoLossModeSolution as IsoLossModeSolution
from ._flows import LinearBYOLFlow as LinearBYOLFlow
from ._flows import PredictorModeFlow as PredictorModeFlow
from ._flows import TianFixedPoints as TianFixedPoints
from ._flows import TianModeFlow as TianModeFlow
from ._flows import byol_mode_solution as byol_mode_solution
from ._flows import byol_mode_time as byol_mode_time
from ._flows import isoloss_mode_solution as isoloss_mode_solution
from ._flows import linear_byol_flow as linear_byol_flow
from ._flows import mode_jacobian as mode_jacobian
from ._flows import tian_fixed_points as tian_fixed_points
from ._flows import tian_invariant as tian_invariant
from ._train import train_linear_byol as train_linear_byol
from ._analysis import PhasePortrait as PhasePortrait
from ._analysis import tian_phase_portrait as tian_phase_portrait

__all__ = [
    "BYOLModeSolution",
    "BYOLState",
    "ClosedFormPredictorFlow",
    "IsoLossModeSolution",
    "LinearBYOLFlow",
    "ModeState",
    "PhasePortrait",
    "PredictorModeFlow",
    "TianFixedPoints",
    "TianModeFlow",
    "aligned_byol_state",
    "byol_mode_coordinates",
    "byol_mode_solution",
    "byol_mode_time",
    "closed_form_predictor",
    "euclidean_byol_loss",
    "gaussian_view_stats",
    "gaussian_views",
    "isoloss",
    "isoloss_mode_solution",
    "linear_byol_flow",
    "linear_byol_loss",
    "mode_jacobian",
    "tian_fixed_points",
    "tian_invariant",
    "tian_phase_portrait",
    "train_linear_byol",
]

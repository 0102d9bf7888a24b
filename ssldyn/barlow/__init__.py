r"""Simon et al. (ICML 2023): the stepwise nature of (linear) Barlow Twins, and its kernel version.

**Model.** `f(x) = W x`, `W ∈ R^{k×d}`; `Γ = (X1ᵀX2 + X2ᵀX1)/(2n)` over n positive pairs
(`pair_correlation`); loss `L = Σ_a (C_aa − 1)² + λ_off Σ_{a≠b} C_ab²`, `C = WΓWᵀ` (`barlow_loss`,
`barlow_pair_loss`; sum, no ½, no batch normalisation or centring).

**Flow** (`BarlowFlow`, t = η·steps): `dW/dt = −4 (M ⊙ (WΓWᵀ − I)) W Γ`.

**Aligned solution** (`StepwiseSolution`): from `W(0) = Q diag(s_0) V_kᵀ` the embedding eigenvalues are
logistic, `λ_j(t) = 1/(1 + (1/λ_j(0) − 1)e^{−8γ_j t})`, with step times `t_j = ln(1/λ_j(0) − 1)/(8γ_j)`
(`step_times`) and the loss staircase `L(t) = Σ_j (1 − λ_j(t))²`. Small random starts: the same with
`λ_j(0) = γ_j‖W(0)v_j‖²` (`small_init_step_times(method="norm")`, the note's heuristic), refined by
the QR factor of `W(0)V_k` (`method="qr"`) and by competition with modes beyond k
(`competing_step_times`).

**Kernel version** (`BarlowKernelFlow`, `KernelStepwiseSolution`): a one-hidden-layer network with the
hidden layer frozen, in output space `R = ΦW` of the stacked views: `dR/dt = −4 K B R (M ⊙ (RᵀBR − I))`,
`B = pair_operator(n)`; the modes are the eigenpairs of `K^{1/2} B K^{1/2}` (`kernel_eigenmodes`),
at any width (empirical K) or infinite width (`ssldyn.infinite_width_kernel`).

Stages: `_model` (Γ, B, modes, starts) → `_loss` → `_flows` (flows, closed forms, step times) →
`_train` (`train_barlow_gd`, autodiff GD on the views) → `_metrics` (`embedding_eigenvalues`,
`crossing_times`).

References:
- J. B. Simon, M. Knutins, L. Ziyin, D. Geisz, A. J. Fetterman, J. Albrecht. *On the Stepwise Nature of
  Self-Supervised Learning.* ICML 2023. arXiv:2303.15438.
"""

from ._flows import BarlowFlow as BarlowFlow
from ._flows import BarlowKernelFlow as BarlowKernelFlow
from ._flows import KernelStepwiseSolution as KernelStepwiseSolution
from ._flows import competing_step_times as competing_step_times
from ._flows import kernel_competing_step_times as kernel_competing_step_times
from ._flows import StepwiseSolution as StepwiseSolution
from ._flows import kernel_small_init_lambda0 as kernel_small_init_lambda0
from ._flows import logistic as logistic
from ._flows import small_init_lambda0 as small_init_lambda0
from ._flows import small_init_step_times as small_init_step_times
from ._flows import step_times as step_times
from ._loss import barlow_loss as barlow_loss
from ._loss import barlow_output_loss as barlow_output_loss
from ._loss import barlow_pair_loss as barlow_pair_loss
from ._loss import correlation_loss as correlation_loss
from ._metrics import crossing_times as crossing_times
from ._metrics import embedding_eigenvalues as embedding_eigenvalues
from ._metrics import output_eigenvalues as output_eigenvalues
from ._model import aligned_outputs as aligned_outputs
from ._model import aligned_weights as aligned_weights
from ._model import eigenmodes as eigenmodes
from ._model import kernel_eigenmodes as kernel_eigenmodes
from ._model import pair_correlation as pair_correlation
from ._model import pair_operator as pair_operator
from ._model import small_random_init as small_random_init
from ._train import train_barlow_gd as train_barlow_gd

r"""Wen & Li (NeurIPS 2022): the mechanism of the prediction head in non-contrastive SSL.

**Data.** Neurons are columns, `W = [w_1, w_2] ∈ R^{d×2}`, in a basis whose first two coordinates are
the features `v_1 = e_1` (strong) and `v_2 = e_2` (weak). Each sample carries one feature `v_l`,
`l ~ π`, on `s` of its P patches with strength `±α_l`; the other patches are noise orthogonal to the
features, `ξ_p ~ N(0, σ_ξ² P_{𝒱⊥})`. Each patch goes to one of two views (Bernoulli(½) masks).
(`HeadData`, `sample_head_views`; the data model is reconstructed in the theory file §1.)

**Network.** `f_j(X) = Σ_p ⟨w_j, X_p⟩³`; online output `F = E f(X⁽¹⁾)` with head
`E = [[1, E_12], [E_21, 1]]` (off-diagonals `e` trained at rate ρη, `E(0) = I`); target
`G = SG(f(X⁽²⁾))`; BatchNorm without affine part; loss `L = −Σ_j corr_batch(F_j, G_j)`
(`head_network_loss`), trained by SGD on fresh batches (`train_head_sgd`, a `TrainResult` on
`t = η·steps`).

**Population flow** (theory §3). With `a_{lj} = ⟨w_j, v_l⟩`, `q = Gram of the 𝒱⊥ parts` and the
moments `C, D, U` of the encoder outputs (`head_moments`),

    J(a, q, E) = Σ_j (Σ_r E_jr C_rj) / sqrt( (E D Eᵀ)_jj U_j ),
    da/dt = ∂J/∂a,   dq/dt = q(Γ + Γᵀ) + (Γ + Γᵀ)q  (Γ = ∂J/∂q),   de/dt = ρ ∂J/∂e,

with the stop-gradient copy `(ā, q̄)` held fixed (`head_objective`, `HeadFlow` on `HeadState(a, q, e)`;
`HeadWeightFlow` is the same flow in weight space, `dW/dt = ∇_W J`).

**Phases.** (1) neuron 1 learns v₁; (2) substitution: E₂₁ rises; (3) acceleration: neuron 2 learns v₂;
(4) the head returns to I. Without the head both neurons align with v₁ (`head_alignment`,
`head_phase_metrics`).

Stages: `_model` (data, views, population moments, states, initialisations) → `_loss` (J and the
batch loss) → `_flows` (`HeadFlow`, `HeadWeightFlow`) → `_train` (`train_head_sgd`) → `_metrics`.

References:
- Z. Wen, Y. Li. *The Mechanism of Prediction Head in Non-contrastive Self-supervised Learning.*
  NeurIPS 2022. arXiv:2205.06226.
"""

from ._flows import HeadFlow as HeadFlow
from ._flows import HeadWeightFlow as HeadWeightFlow
from ._loss import head_encoder as head_encoder
from ._loss import head_network_loss as head_network_loss
from ._loss import head_objective as head_objective
from ._metrics import HeadPhases as HeadPhases
from ._metrics import head_alignment as head_alignment
from ._metrics import head_phase_metrics as head_phase_metrics
from ._model import HeadData as HeadData
from ._model import HeadState as HeadState
from ._model import controlled_head_init as controlled_head_init
from ._model import head_moments as head_moments
from ._model import head_state_from_weights as head_state_from_weights
from ._model import random_head_init as random_head_init
from ._model import sample_head_views as sample_head_views
from ._train import train_head_sgd as train_head_sgd

__all__ = [
    "HeadData",
    "HeadState",
    "sample_head_views",
    "head_moments",
    "head_state_from_weights",
    "controlled_head_init",
    "random_head_init",
    "head_objective",
    "head_encoder",
    "head_network_loss",
    "HeadFlow",
    "HeadWeightFlow",
    "train_head_sgd",
    "head_alignment",
    "HeadPhases",
    "head_phase_metrics",
]

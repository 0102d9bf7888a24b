r"""Saxe, McClelland & Ganguli (ICLR 2014): exact sigmoidal dynamics of two-layer linear networks.

**Model.** `ŷ = W2 W1 x`, whitened input `E[xxᵀ] = I`, `Σ_yx = E[y xᵀ] = U S Vᵀ` (`io_correlation`,
`io_modes`); loss `½E‖y − W2W1x‖² = ½‖Σ_yx − W2W1‖² + const` (`deep_linear_loss`, mean, factor ½).

**Flow** (`DeepLinearFlow`, t = η·steps): `dW1/dt = W2ᵀ(Σ_yx − W2W1)`, `dW2/dt = (Σ_yx − W2W1)W1ᵀ`;
`W1W1ᵀ − W2ᵀW2` is conserved (`conserved_quantity`).

**Modes** (aligned start `aligned_init`): the mode strength `a = a1a2` obeys `ȧ = √(c² + 4a²)(s − a)`,
`c = a1² − a2²`; exact time map `mode_time`, inverted by `mode_strength`; balanced (c = 0): the logistic
`a(t) = s/(1 + (s/a0 − 1)e^{−2st})` (`balanced_mode_strength`) with learning time
`ln(af(s − a0)/(a0(s − af)))/(2s)` (`learning_time`). `DeepLinearModeSolution` is the closed form of
the whole network. With `λ = a/s`: `λ̇ = 2sλ(1 − λ)`, the logistic of the Barlow Twins modes.

Stages: `_model` → `_loss` → `_flows`.

References:
- A. M. Saxe, J. L. McClelland, S. Ganguli. *Exact solutions to the nonlinear dynamics of learning in
  deep linear neural networks.* ICLR 2014. arXiv:1312.6120.
"""

from ._flows import DeepLinearFlow as DeepLinearFlow
from ._flows import DeepLinearModeSolution as DeepLinearModeSolution
from ._flows import balanced_mode_strength as balanced_mode_strength
from ._flows import conserved_quantity as conserved_quantity
from ._flows import learning_time as learning_time
from ._flows import mode_strength as mode_strength
from ._flows import mode_time as mode_time
from ._loss import deep_linear_loss as deep_linear_loss
from ._loss import deep_linear_sample_loss as deep_linear_sample_loss
from ._model import aligned_init as aligned_init
from ._model import io_correlation as io_correlation
from ._model import io_modes as io_modes

r"""Jing, Vincent, LeCun & Tian (ICLR 2022): dimensional collapse in contrastive learning under strong augmentation.

**Toy** (case 1, `_model`): `x ~ N(0, I_16)` (a pool of 10,000), views `x + σ_aug[0_8; ε]` (noise on the
last 8 coordinates, `augment`), encoder `z = Wx + b` (`fanin_uniform_init`), InfoNCE with dot-product
logits `z⁽¹⁾z⁽²⁾ᵀ/τ`, τ = 0.1 (`dot_info_nce`), SGD (optax) with η = 1e-3 for 10,000 steps
(`train_collapse_sgd`). σ_aug = 1.5 is strong, 0.01 weak. Diagnostic: the spectrum of the embedding
covariance (`embedding_spectrum`) and the split of the clean/noised blocks (`block_spectra`, `separation`).

**Flows** (`_flows`): the frozen-minibatch flow (`frozen_minibatch_flow`, autodiff, the deterministic
counterpart of SGD); the infinite-negative Gaussian flow `dW/dt = (2/τ)WC+ − (2/τ²)(WC0Wᵀ)WC0`
(`GaussianInfoNCEFlow`) with stationary spectrum τ (clean) and τ/(1 + σ_aug²)² (noised)
(`stationary_spectrum`); the paper's mechanism, `dW/dt = WX/(Nτ)` with the softmax weights frozen
(`mechanism_matrix`, `FrozenXFlow`, `FrozenXSolution`).

Stages: `_model` → `_loss` → `_flows` → `_train` → `_metrics`.

References:
- L. Jing, P. Vincent, Y. LeCun, Y. Tian. *Understanding Dimensional Collapse in Contrastive
  Self-supervised Learning.* ICLR 2022. arXiv:2110.09348.
"""

from ._flows import FrozenXFlow as FrozenXFlow
from ._flows import FrozenXSolution as FrozenXSolution
from ._flows import GaussianInfoNCEFlow as GaussianInfoNCEFlow
from ._flows import frozen_minibatch_flow as frozen_minibatch_flow
from ._flows import mechanism_matrix as mechanism_matrix
from ._flows import stationary_gram as stationary_gram
from ._flows import stationary_spectrum as stationary_spectrum
from ._loss import distance_info_nce as distance_info_nce
from ._loss import dot_info_nce as dot_info_nce
from ._loss import gaussian_info_nce as gaussian_info_nce
from ._metrics import block_spectra as block_spectra
from ._metrics import embedding_spectrum as embedding_spectrum
from ._metrics import separation as separation
from ._model import augment as augment
from ._model import fanin_uniform_init as fanin_uniform_init
from ._model import noised_mask as noised_mask
from ._model import sample_inputs as sample_inputs
from ._model import toy_moments as toy_moments
from ._train import epoch_batches as epoch_batches
from ._train import sample_frozen_batches as sample_frozen_batches
from ._train import train_collapse_sgd as train_collapse_sgd

r"""Keller, Suau & Zappella (TMLR 2023): Homomorphic Self-Supervised Learning (H-SSL).

**Idea.** For an augmentation-homomorphic (equivariant) feature extractor, `f(T_g x) = Γ_g f(x)`,
reading the identity fiber of an augmented input equals reading the fiber at `g^{-1}` of the
un-augmented input; positive pairs can therefore come from two fibers of one forward pass.

**Model** (`_model`): cyclic 1-D signals; the circular CNN (exactly equivariant to cyclic shifts,
fibers = positions, receptive field `1 + (K−1)Σd` set by dilations) and the locally connected
control (untied weights, identical receptive fields and shapes): `backbone_spec`, `init_backbone`,
`apply_backbone`, `encode_batch`, `pooled_features`, `tie_to_lc`; the group: `group_element`,
`act_signal`, `act_field`, `fiber`, `equivariance_error`.

**2-D variants** (`_model`): the circular 2-D translation CNN and its untied control
(`init_translation_cnn`, `apply_translation_cnn`, `translate2d`) and p4 lifting + group convolution
with its untied-per-orientation control (`init_p4`, `apply_p4`, `rotate_p4`, `act_p4_field`,
`p4_fibers`, `rotation_element`); as fiber maps with int-coded group elements for training
(`backbone2d_spec`, `init_backbone2d`, `fibers2d`, `action_table`, `act_image`, `element_compose`,
`element_inverse`, `fiber_equivariance_error`); images: `load_digits_padded` (scikit-learn's 8×8
digits padded), `pad_images`, `downsample_images`; training `train_ssl_2d` (modes `MODES_2D`),
`fiber_pairs_2d`; probe `pooled_features_2d`, `probe_pooled_2d`.

**Linear reduction** (`_data`, `_loss`, `_flows`; theory note §3): fibers `Wᵀ P_g x` are crop-and-
transform views. `fiber_view_stats` (closed form from the circular autocorrelation, Toeplitz
`R_Δ`), `sampled_fiber_view_stats` with the `hssl_pairs` / `assl_pairs` samplers, `offset_probs`,
`fiber_cross_moments`, `joint_offsets`; objectives `linear_loss` (spectral contrastive, InfoNCE
small-feature limit), `untied_loss`; flows `tied_flow`, `untied_flow` (core `GradientFlow`) with the
hand-written `tied_field`, `untied_field`; the commuting closed form `CommutingSolution`,
`commuting_minimiser`.

**Networks** (`_train`): SimCLR-style NT-Xent training with an MLP head and optax Adam in the modes
`assl`, `assl_fiber`, `hssl`, `assl_fiber_aug`, `hssl_aug` (and `random`), vmapped over seeds.

**Diagnostics** (`_metrics`): `network_pooling_degeneracy`, `group_only_pooled_stats`, `tiedness`,
`pooled_invariance_gap`, `pooled_linear_features`.

Stages: `_model`, `_data` → `_loss` → `_flows` → `_train` → `_metrics`.

References:
- T. A. Keller, X. Suau, L. Zappella. *Homomorphic Self-Supervised Learning.* TMLR 2023. arXiv:2211.08282.
"""

from ._data import assl_pairs as assl_pairs
from ._data import fiber_cross_moments as fiber_cross_moments
from ._data import fiber_view_stats as fiber_view_stats
from ._data import hssl_pairs as hssl_pairs
from ._data import joint_offsets as joint_offsets
from ._data import offset_probs as offset_probs
from ._data import position_autocorrelation as position_autocorrelation
from ._data import sampled_fiber_view_stats as sampled_fiber_view_stats
from ._data import signal_fibers as signal_fibers
from ._data import symmetrised as symmetrised
from ._data import toeplitz_moment as toeplitz_moment
from ._flows import CommutingSolution as CommutingSolution
from ._flows import commuting_minimiser as commuting_minimiser
from ._flows import shared_eigenbasis as shared_eigenbasis
from ._flows import tied_field as tied_field
from ._flows import tied_flow as tied_flow
from ._flows import untied_field as untied_field
from ._flows import untied_flow as untied_flow
from ._loss import OBJECTIVES as OBJECTIVES
from ._loss import linear_loss as linear_loss
from ._loss import objective_coefficients as objective_coefficients
from ._loss import untied_loss as untied_loss
from ._metrics import group_only_pooled_stats as group_only_pooled_stats
from ._metrics import network_pooling_degeneracy as network_pooling_degeneracy
from ._metrics import pooled_invariance_gap as pooled_invariance_gap
from ._metrics import pooled_linear_features as pooled_linear_features
from ._metrics import tiedness as tiedness
from ._model import ARCHS as ARCHS
from ._model import BackboneSpec as BackboneSpec
from ._model import act_field as act_field
from ._model import act_signal as act_signal
from ._model import apply_backbone as apply_backbone
from ._model import backbone_spec as backbone_spec
from ._model import encode_batch as encode_batch
from ._model import equivariance_error as equivariance_error
from ._model import fiber as fiber
from ._model import gather_taps as gather_taps
from ._model import group_element as group_element
from ._model import init_backbone as init_backbone
from ._model import pooled_features as pooled_features
from ._model import receptive_field as receptive_field
from ._model import tie_to_lc as tie_to_lc
from ._metrics import probe_pooled as probe_pooled
from ._train import MODES as MODES
from ._train import SSLConfig as SSLConfig
from ._train import nongroup_augment as nongroup_augment
from ._train import pair_embeddings as pair_embeddings
from ._train import ssl_config as ssl_config
from ._train import ssl_loss as ssl_loss
from ._train import train_ssl as train_ssl
from ._model import act_p4_field as act_p4_field
from ._model import apply_p4 as apply_p4
from ._model import apply_translation_cnn as apply_translation_cnn
from ._model import init_p4 as init_p4
from ._model import init_translation_cnn as init_translation_cnn
from ._model import p4_fibers as p4_fibers
from ._model import rotate_p4 as rotate_p4
from ._model import rotation_element as rotation_element
from ._model import translate2d as translate2d
from ._data import downsample_images as downsample_images
from ._data import load_digits_padded as load_digits_padded
from ._data import pad_images as pad_images
from ._metrics import pooled_features_2d as pooled_features_2d
from ._metrics import probe_pooled_2d as probe_pooled_2d
from ._model import GROUPS_2D as GROUPS_2D
from ._model import Backbone2D as Backbone2D
from ._model import act_image as act_image
from ._model import action_table as action_table
from ._model import backbone2d_spec as backbone2d_spec
from ._model import element_compose as element_compose
from ._model import element_inverse as element_inverse
from ._model import fiber_equivariance_error as fiber_equivariance_error
from ._model import fibers2d as fibers2d
from ._model import init_backbone2d as init_backbone2d
from ._train import MODES_2D as MODES_2D
from ._train import fiber_pairs_2d as fiber_pairs_2d
from ._train import train_ssl_2d as train_ssl_2d

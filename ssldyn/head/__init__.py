"""Transitional: re-exports of ssldyn._head (being split into stage-ordered modules)."""

from .._head import HeadData as HeadData
from .._head import HeadState as HeadState
from .._head import sample_head_views as sample_head_views
from .._head import head_moments as head_moments
from .._head import head_objective as head_objective
from .._head import HeadFlow as HeadFlow
from .._head import HeadWeightFlow as HeadWeightFlow
from .._head import head_state_from_weights as head_state_from_weights
from .._head import controlled_head_init as controlled_head_init
from .._head import random_head_init as random_head_init
from .._head import head_encoder as head_encoder
from .._head import head_network_loss as head_network_loss
from .._head import train_head_sgd as train_head_sgd
from .._head import head_alignment as head_alignment
from .._head import HeadPhases as HeadPhases
from .._head import head_phase_metrics as head_phase_metrics

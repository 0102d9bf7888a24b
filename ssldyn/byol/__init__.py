"""Transitional: re-exports of ssldyn._predictor (being split into stage-ordered modules)."""

from .._predictor import BYOLState as BYOLState
from .._predictor import ModeState as ModeState
from .._predictor import LinearBYOLFlow as LinearBYOLFlow
from .._predictor import linear_byol_flow as linear_byol_flow
from .._predictor import linear_byol_loss as linear_byol_loss
from .._predictor import TianModeFlow as TianModeFlow
from .._predictor import tian_invariant as tian_invariant
from .._predictor import TianFixedPoints as TianFixedPoints
from .._predictor import tian_fixed_points as tian_fixed_points
from .._predictor import mode_jacobian as mode_jacobian
from .._predictor import aligned_byol_state as aligned_byol_state
from .._predictor import byol_mode_coordinates as byol_mode_coordinates
from .._predictor import PhasePortrait as PhasePortrait
from .._predictor import tian_phase_portrait as tian_phase_portrait
from .._predictor import closed_form_predictor as closed_form_predictor
from .._predictor import ClosedFormPredictorFlow as ClosedFormPredictorFlow
from .._predictor import PredictorModeFlow as PredictorModeFlow
from .._predictor import isoloss_mode_solution as isoloss_mode_solution
from .._predictor import byol_mode_time as byol_mode_time
from .._predictor import byol_mode_solution as byol_mode_solution
from .._predictor import euclidean_byol_loss as euclidean_byol_loss
from .._predictor import isoloss as isoloss
from .._predictor import gaussian_views as gaussian_views
from .._predictor import gaussian_view_stats as gaussian_view_stats
from .._predictor import train_linear_byol as train_linear_byol

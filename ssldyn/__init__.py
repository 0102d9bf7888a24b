"""ssldyn: analytic learning dynamics of self-supervised learning, in JAX.

Data flows one way: views → statistics → flow → solve → compare → experiments → CLI.
Public names are re-exported here explicitly; modules with a leading underscore are private.
"""

from ._closed_form import (
    GrassmannSolution as GrassmannSolution,
    OutputSolution as OutputSolution,
    NaiveSolution as NaiveSolution,
    PowerFlowSolution as PowerFlowSolution,
)
from ._compare import (
    Comparison as Comparison,
    agreement as agreement,
    compare_along as compare_along,
    lr_order as lr_order,
    empirical_setup as empirical_setup,
    gram_gap as gram_gap,
    infinite_width_setup as infinite_width_setup,
    predict_outputs as predict_outputs,
)
from ._flows import (
    AbstractFlow as AbstractFlow,
    GradientFlow as GradientFlow,
    OutputFlow as OutputFlow,
    QuadraticFlow as QuadraticFlow,
    grassmann_flow as grassmann_flow,
    naive_flow as naive_flow,
    ntk_flow as ntk_flow,
    output_flow as output_flow,
    sample_initial_outputs as sample_initial_outputs,
    sphere_flow as sphere_flow,
)
from ._kernels import (
    conjugate_kernel as conjugate_kernel,
    empirical_ntk as empirical_ntk,
    erf_kernel as erf_kernel,
    get_activation as get_activation,
    hermite_series_kernel as hermite_series_kernel,
    hidden_features as hidden_features,
    infinite_width_kernel as infinite_width_kernel,
    infinite_width_ntk as infinite_width_ntk,
    quadrature_kernel as quadrature_kernel,
    random_features as random_features,
    relu_kernel as relu_kernel,
)
from ._losses import (
    barlow_twins_loss as barlow_twins_loss,
    contrastive_loss as contrastive_loss,
    info_nce_loss as info_nce_loss,
    noncontrastive_loss as noncontrastive_loss,
    output_loss as output_loss,
    quadratic_loss as quadratic_loss,
    spectral_contrastive_loss as spectral_contrastive_loss,
    squared_contrastive_loss as squared_contrastive_loss,
    squared_noncontrastive_loss as squared_noncontrastive_loss,
)
from ._manifolds import (
    AbstractManifold as AbstractManifold,
    Euclidean as Euclidean,
    Grassmann as Grassmann,
    Sphere as Sphere,
    Stiefel as Stiefel,
    polar as polar,
    qf as qf,
    stiefel_init as stiefel_init,
)
from ._metrics import (
    ProbeResult as ProbeResult,
    effective_rank as effective_rank,
    linear_cka as linear_cka,
    logistic_probe as logistic_probe,
    loss_along as loss_along,
    orthogonality_error as orthogonality_error,
    principal_angles as principal_angles,
    probe_accuracy as probe_accuracy,
    projector as projector,
    rankme as rankme,
    ridge_probe as ridge_probe,
    stable_rank as stable_rank,
    subspace_distance as subspace_distance,
    top_eigenspace as top_eigenspace,
)
from ._networks import (
    NetworkSpec as NetworkSpec,
    init_network as init_network,
    network_apply as network_apply,
    network_features as network_features,
    train_network as train_network,
)
from ._solve import (
    simulate_gd as simulate_gd,
    solve as solve,
)
from ._solution import (
    AbstractSolution as AbstractSolution,
    SolveError as SolveError,
    Status as Status,
    Trajectory as Trajectory,
)
from ._linalg import (
    kernel_root as kernel_root,
    sym as sym,
)
from ._stats import (
    ViewStats as ViewStats,
    hidden_gram as hidden_gram,
    pair_factor as pair_factor,
    pair_matrix as pair_matrix,
    population_view_stats as population_view_stats,
    stack_views as stack_views,
    view_stats as view_stats,
)
from ._training import (
    TrainResult as TrainResult,
    fast_key as fast_key,
    run_steps as run_steps,
)
from .scaling import (
    FactoredOutputFlow as FactoredOutputFlow,
    LowRankOutputFlow as LowRankOutputFlow,
    eigen_factor as eigen_factor,
    ensemble_mesh as ensemble_mesh,
    factored_output_flow as factored_output_flow,
    gather_to_host as gather_to_host,
    initialize_distributed as initialize_distributed,
    lowrank_output_flow as lowrank_output_flow,
    lowrank_predict as lowrank_predict,
    nystrom_factor as nystrom_factor,
    pad_ensemble as pad_ensemble,
    pair_apply as pair_apply,
    pair_gram as pair_gram,
    replicate as replicate,
    residual_diagonal as residual_diagonal,
    shard_ensemble as shard_ensemble,
    shard_output_flow as shard_output_flow,
    shard_rows as shard_rows,
    solve_ensemble as solve_ensemble,
    unpad_ensemble as unpad_ensemble,
)

from . import barlow as barlow
from . import byol as byol
from . import collapse as collapse
from . import data as data
from . import deeplinear as deeplinear
from . import head as head
from . import hssl as hssl
from . import scaling as scaling
from . import simvae as simvae
from . import sparse as sparse

__version__ = "0.1.0"

# Paper families live in sub-packages (`ssldyn.sparse`, `ssldyn.byol`, `ssldyn.head`, `ssldyn.barlow`,
# `ssldyn.deeplinear`, `ssldyn.collapse`, `ssldyn.simvae`, `ssldyn.hssl`). The first three's names
# were once re-exported here, some with a prefix; they still resolve, with a DeprecationWarning.
_MOVED = {
    **{name: ("head", name) for name in (
        "HeadData", "HeadFlow", "HeadPhases", "HeadState", "HeadWeightFlow", "controlled_head_init",
        "head_alignment", "head_encoder", "head_moments", "head_network_loss", "head_objective",
        "head_phase_metrics", "head_state_from_weights", "random_head_init", "sample_head_views",
        "train_head_sgd")},
    **{name: ("byol", name) for name in (
        "BYOLState", "ClosedFormPredictorFlow", "LinearBYOLFlow", "ModeState", "PhasePortrait",
        "PredictorModeFlow", "TianFixedPoints", "TianModeFlow", "aligned_byol_state", "byol_mode_coordinates",
        "byol_mode_solution", "byol_mode_time", "closed_form_predictor", "euclidean_byol_loss",
        "gaussian_view_stats", "gaussian_views", "isoloss", "isoloss_mode_solution", "linear_byol_flow",
        "linear_byol_loss", "mode_jacobian", "tian_fixed_points", "tian_invariant", "tian_phase_portrait",
        "train_linear_byol")},
    **{name: ("sparse", name) for name in (
        "LinearRates", "QuenchedFlow", "SparseCoding", "atom_alignment", "atoms_covered", "bias_schedule",
        "brelu", "code_probe", "cubic_correction", "feature_decoupling", "info_nce_vector_field",
        "linearised_flow", "linearised_rates", "linearised_solution", "neuron_bias", "quenched_flow",
        "single_atom_alignment", "span_energy", "sparse_features", "sparse_metrics", "sparse_view_stats",
        "view_noise_scale", "wen_li_info_nce")},
    "SPARSE_AUGMENTATIONS": ("sparse", "AUGMENTATIONS"),
    "SparseSGDResult": ("sparse", "SGDResult"),
    "sparse_init_neurons": ("sparse", "init_neurons"),
    "sparse_make_views": ("sparse", "make_views"),
    "sparse_train_sgd": ("sparse", "train_sgd"),
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        import warnings

        package, new = _MOVED[name]
        warnings.warn(f"`ssldyn.{name}` moved to `ssldyn.{package}.{new}`; the old name will be removed.",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"ssldyn.{package}"), new)
    raise AttributeError(f"module 'ssldyn' has no attribute {name!r}")

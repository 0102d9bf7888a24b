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
    agreement as agreement,
    empirical_setup as empirical_setup,
    gram_gap as gram_gap,
    infinite_width_setup as infinite_width_setup,
    predict_outputs as predict_outputs,
)
from ._ensemble import (
    solve_ensemble as solve_ensemble,
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
    kernel_root as kernel_root,
    sample_initial_outputs as sample_initial_outputs,
    sphere_flow as sphere_flow,
)
from ._head import (
    HeadData as HeadData,
    HeadFlow as HeadFlow,
    HeadPhases as HeadPhases,
    HeadState as HeadState,
    HeadWeightFlow as HeadWeightFlow,
    controlled_head_init as controlled_head_init,
    head_alignment as head_alignment,
    head_encoder as head_encoder,
    head_moments as head_moments,
    head_network_loss as head_network_loss,
    head_objective as head_objective,
    head_phase_metrics as head_phase_metrics,
    head_state_from_weights as head_state_from_weights,
    random_head_init as random_head_init,
    sample_head_views as sample_head_views,
    train_head_sgd as train_head_sgd,
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
from ._lowrank import (
    FactoredOutputFlow as FactoredOutputFlow,
    LowRankOutputFlow as LowRankOutputFlow,
    eigen_factor as eigen_factor,
    factored_output_flow as factored_output_flow,
    lowrank_output_flow as lowrank_output_flow,
    lowrank_predict as lowrank_predict,
    nystrom_factor as nystrom_factor,
    pair_apply as pair_apply,
    pair_gram as pair_gram,
    residual_diagonal as residual_diagonal,
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
    TrainResult as TrainResult,
    init_network as init_network,
    network_apply as network_apply,
    network_features as network_features,
    train_network as train_network,
)
from ._predictor import (
    BYOLState as BYOLState,
    ClosedFormPredictorFlow as ClosedFormPredictorFlow,
    LinearBYOLFlow as LinearBYOLFlow,
    ModeState as ModeState,
    PhasePortrait as PhasePortrait,
    PredictorModeFlow as PredictorModeFlow,
    TianFixedPoints as TianFixedPoints,
    TianModeFlow as TianModeFlow,
    aligned_byol_state as aligned_byol_state,
    byol_mode_coordinates as byol_mode_coordinates,
    byol_mode_solution as byol_mode_solution,
    byol_mode_time as byol_mode_time,
    closed_form_predictor as closed_form_predictor,
    euclidean_byol_loss as euclidean_byol_loss,
    gaussian_view_stats as gaussian_view_stats,
    gaussian_views as gaussian_views,
    isoloss as isoloss,
    isoloss_mode_solution as isoloss_mode_solution,
    linear_byol_flow as linear_byol_flow,
    linear_byol_loss as linear_byol_loss,
    mode_jacobian as mode_jacobian,
    tian_fixed_points as tian_fixed_points,
    tian_invariant as tian_invariant,
    tian_phase_portrait as tian_phase_portrait,
    train_linear_byol as train_linear_byol,
)
from ._sharding import (
    ensemble_mesh as ensemble_mesh,
    gather_to_host as gather_to_host,
    initialize_distributed as initialize_distributed,
    pad_ensemble as pad_ensemble,
    replicate as replicate,
    shard_ensemble as shard_ensemble,
    shard_output_flow as shard_output_flow,
    shard_rows as shard_rows,
    unpad_ensemble as unpad_ensemble,
)
from ._solve import (
    SolveError as SolveError,
    Trajectory as Trajectory,
    simulate_gd as simulate_gd,
    solve as solve,
)
from ._sparse import (
    AUGMENTATIONS as SPARSE_AUGMENTATIONS,
    LinearRates as LinearRates,
    QuenchedFlow as QuenchedFlow,
    SGDResult as SparseSGDResult,
    SparseCoding as SparseCoding,
    atom_alignment as atom_alignment,
    atoms_covered as atoms_covered,
    bias_schedule as bias_schedule,
    brelu as brelu,
    code_probe as code_probe,
    cubic_correction as cubic_correction,
    feature_decoupling as feature_decoupling,
    info_nce_vector_field as info_nce_vector_field,
    init_neurons as sparse_init_neurons,
    linearised_flow as linearised_flow,
    linearised_rates as linearised_rates,
    linearised_solution as linearised_solution,
    make_views as sparse_make_views,
    neuron_bias as neuron_bias,
    quenched_flow as quenched_flow,
    simulate_quenched_gd as simulate_quenched_gd,
    single_atom_alignment as single_atom_alignment,
    span_energy as span_energy,
    sparse_features as sparse_features,
    sparse_metrics as sparse_metrics,
    sparse_view_stats as sparse_view_stats,
    train_sgd as sparse_train_sgd,
    view_noise_scale as view_noise_scale,
    wen_li_info_nce as wen_li_info_nce,
)
from ._stats import (
    ViewStats as ViewStats,
    hidden_gram as hidden_gram,
    pair_matrix as pair_matrix,
    population_view_stats as population_view_stats,
    stack_views as stack_views,
    sym as sym,
    view_stats as view_stats,
)

from . import data as data

__version__ = "0.1.0"

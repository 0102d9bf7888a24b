r"""Contrastive feature learning on sparse-coding data (Wen & Li, ICML 2021): `ssldyn.sparse`.

Wen & Li show that contrastive learning with a ReLU network learns the sparse features of
sparse-coding data and discards the dense ones when the augmentation "decouples" them (random
masking), while without such an augmentation the network learns dense patterns. This package holds
what is needed to reproduce the mechanism, in stage-ordered modules: the data model, augmentations
and population moments (`_model`); the bipolar-ReLU network with its bias schedule and the
stop-gradient InfoNCE (`_loss`); the frozen-sample ("quenched") flow of the full nonlinear loss and
the linearised small-weight flow with its closed form and eigen-rates (`_flows`); online SGD vmapped
over seeds (`_train`); and the feature-learning metrics (`_metrics`).

**Layout.** Data arrays hold one sample per **row**, `X ∈ R^{n×d₁}`; weights hold one neuron per
**column**, `W = [w_1 … w_m] ∈ R^{d₁×m}` (as in the theory file); the representation of a batch is
`F = BReLU_b(X W) ∈ R^{n×m}`. The dictionary `M ∈ R^{d₁×d}` has orthonormal columns (atoms).

**Data** (theory §1). `x = M z + ξ` with `z_j ∈ {−1, 0, +1}` independent, `Pr(z_j ≠ 0) = p`, symmetric
signs, and `ξ ~ N(0, σ_ξ² I)`; `E[xxᵀ] = p MMᵀ + σ_ξ² I`.

**Augmentations** (theory §2). Complementary masking `x⁽¹⁾ = 2Dx`, `x⁽²⁾ = 2(I − D)x`, `D_aa ~ Bern(½)`
i.i.d.; controls: no augmentation (`x⁽¹⁾ = x⁽²⁾ = x`), Gaussian noise (`x⁽ᵛ⁾ = x + ε_v`,
`ε_v ~ N(0, s² I)` independent) and two independent masks without the factor 2. The
**feature-decoupling identity** (exact, conditional on x):

    E[x⁽¹⁾x⁽²⁾ᵀ | x] = xxᵀ − Diag(xxᵀ),     E[x⁽¹⁾x⁽¹⁾ᵀ | x] = xxᵀ + Diag(xxᵀ),

so under masking `C+ = p(MMᵀ − Diag(MMᵀ))`: the dense noise cancels exactly from the cross-view moment.

**Network and loss** (theory §3). `h_i(x) = ReLU(⟨w_i,x⟩ − b_i) − ReLU(−⟨w_i,x⟩ − b_i)`, with the bias
`b_i(t) = β(t) s_view σ_ξ ‖w_i‖` (stop-gradient; `β` rises linearly from 0 to `β_max` over the first
`ramp_fraction` of the horizon; `s_view σ_ξ` is the std of the noise part of `⟨w, x⁽ᵛ⁾⟩` per unit
`‖w‖`). With in-batch negatives (batches of B anchors, `|𝒩| = B − 1`) and `S_ij = ⟨f(x⁽¹⁾_i), SG f(x⁽²⁾_j)⟩/τ`,

    L(W) = mean_i [ logsumexp_j S_ij − S_ii ] + (ω/2)‖W‖_F²,

and the flow is `dW/dt = −∇_W L`, `t = η·steps`. `train_sgd` runs it as online SGD on fresh samples
and returns a `TrainResult` (`final` W, `saved` an `SGDSaves` of W, loss and β, `ts = η × steps`).

**Linearised flow** (theory §4, derived). At `b = 0` and small weights the softmax is uniform and

    dW/dt = (κ/τ) C+ W − ω W,     κ = |𝒩|/(|𝒩| + 1) = 1 − 1/B,
    W(t) = exp(t(κ C+/τ − ω I)) W(0),

which is the core's naive flow `dW/dt = 2SW − ωW` with `S = κ C+/(2τ)` (`linearised_flow`, and
`linearised_solution`, a `NaiveSolution`: an `AbstractSolution`). Without the stop-gradient `C+` is
replaced by `2C+`. Eigen-rates (`linearised_rates`, with `Diag(MMᵀ) ≈ (d/d₁)I`): masking — atoms
`κp(1 − d/d₁)/τ − ω`, dense
`−κpd/(d₁τ) − ω`; no augmentation — atoms `κ(p + σ_ξ²)/τ − ω`, dense `κσ_ξ²/τ − ω`.

**Next order** (derived here, `cubic_correction`): expanding the softmax to first order in the logits,

    dW/dt = (κ/τ) C+ W − ωW − (κ/τ²) C0 W (Wᵀ C0 W) + O(‖W‖⁵) + O(‖W‖³/B),

with `C0` the same-view moment. "Small weights" therefore means that this contraction is small against
the rate gap κp/τ — not merely `|Sim| ≪ 1`: under masking `C0 ⊇ 2σ_ξ² I` while `C+` is only of order p,
so at σ₀ = 0.02 (theory §7) the cubic term is already about a quarter of the linear field at
σ_ξ²/p = 1.225 and larger than it at σ_ξ²/p = 4.

**Frozen-sample flow** (theory §5). `QuenchedFlow` integrates `dW/dt = −∇_W L̂(W; b(t, W))` for a fixed
set of view pairs partitioned into fixed batches; it is an `AbstractFlow` (non-autonomous through
`β(t)`), so `ssldyn.solve` integrates it with diffrax and `ssldyn.simulate_gd` runs full-batch GD on
it (step k sees `t = kη`). Two caveats (see `QuenchedFlow`): with b > 0 the field is discontinuous
(loose solver tolerances), and a finite frozen sample memorises dense, sample-specific directions
unless N_f is very large (≈ 4·10⁴ pairs at the §7 configuration).

**Metrics** (theory §7). Energy in span(M) `‖Mᵀw_i‖²/‖w_i‖²`, single-atom alignment
`s_i = max_j |⟨w_i, M_j⟩|/‖w_i‖`, atoms covered, and a ridge probe recovering the sparse code.

References:
- Z. Wen, Y. Li. *Toward Understanding the Feature Learning Process of Self-supervised Contrastive
  Learning.* ICML 2021 (PMLR 139). arXiv:2105.15134.
- `shared/theory/wen_li2021_feature_learning.md` (the exact definitions implemented here; the bias
  schedule, masking and loss details are reconstructions).
"""

from ._model import AUGMENTATIONS as AUGMENTATIONS
from ._model import SparseCoding as SparseCoding
from ._model import feature_decoupling as feature_decoupling
from ._model import make_views as make_views
from ._model import sparse_view_stats as sparse_view_stats
from ._model import view_noise_scale as view_noise_scale
from ._loss import bias_schedule as bias_schedule
from ._loss import brelu as brelu
from ._loss import init_neurons as init_neurons
from ._loss import neuron_bias as neuron_bias
from ._loss import sparse_features as sparse_features
from ._loss import wen_li_info_nce as wen_li_info_nce
from ._flows import LinearRates as LinearRates
from ._flows import QuenchedFlow as QuenchedFlow
from ._flows import cubic_correction as cubic_correction
from ._flows import info_nce_vector_field as info_nce_vector_field
from ._flows import linearised_flow as linearised_flow
from ._flows import linearised_rates as linearised_rates
from ._flows import linearised_solution as linearised_solution
from ._flows import quenched_flow as quenched_flow
from ._train import SGDResult as SGDResult
from ._train import SGDSaves as SGDSaves
from ._train import train_sgd as train_sgd
from ._metrics import atom_alignment as atom_alignment
from ._metrics import atoms_covered as atoms_covered
from ._metrics import code_probe as code_probe
from ._metrics import single_atom_alignment as single_atom_alignment
from ._metrics import span_energy as span_energy
from ._metrics import sparse_metrics as sparse_metrics

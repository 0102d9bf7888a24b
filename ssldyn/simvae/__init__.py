r"""Bizeul, Schölkopf & Allen (TMLR 2024): a probabilistic model behind SSL, and SimVAE.

**Model.** `p(x_{1:J}, z_{1:J}, y) = p(y) Π_j N(z_j; y, σ²I) N(x_j; g(z_j), σ_x²I)`; posterior
`q(z_j|x_j) = N(μ(x_j), diag s²(x_j))`; representations are the posterior means of un-augmented inputs.

**Objective** (Algorithm 1 with two knobs; `SimVAEKnobs(J, sigma_x2, sigma2, kappa, e)`, `simvae_loss`):

    ℓ = Σ_j ‖x_j − x̂_j‖²/(2σ_x²) − (e/2) Σ_j log det Σ_j + (1/(2σ²)) Σ_j ‖z_j − z̄‖² + (κ/2)‖z̄‖²,

κ = 0 / e = 1: Algorithm 1 as printed (`SimVAEKnobs.algorithm1`); κ = 1 / e = 2π / J = 2 / σ_x² =
e^{−4.6}: the released implementation (`SimVAEKnobs.released`). Mean over groups by default.

**Linear-Gaussian theory** (§4; `LinearGaussianData(Σ_c, Σ_a)`): the exact expected loss
`linear_loss(W, V, Λ)`, its gradient flows (`LinearFlow`, full Λ or diagonal log-variance;
`AdiabaticFlow` with `Λ*(V) = optimal_variance(V)`; per-mode `ModeFlow`), the survival condition
`λ_i² β/σ_x² > e γ_i` (`survives`, `survival_margin`, `growth_rate`; `survival_matrix`,
`n_surviving` for non-commuting covariances), integration with explicit or implicit (stiff)
solvers (`integrate_modes`, `integrate_linear`), and full-batch GD (`train_linear_gd`).

**Networks** (§5): `NetSpec`, `init_params`, `encode`, `decode`, `represent`, `train_networks`
(SimVAE and the VAE, β-VAE, CR-VAE, SimCLR, VICReg baselines, optax Adam, vmapped seeds); data:
`style_images` (known shift/rotation/thickness per image), `downsample`, `image_views`, `signal_views`;
probes: `mlp_probe`, `mlp_probes` (one-hidden-layer MLP, Adam, vmapped over seeds × labels).

Stages: `_model`, `_data` → `_loss` → `_flows` → `_train` → `_metrics`, `_analysis`.

References:
- A. Bizeul, B. Schölkopf, C. Allen. *A Probabilistic Model behind Self-Supervised Learning.* TMLR 2024.
  arXiv:2402.01399.
"""

from ._analysis import SimVAESolveError as SimVAESolveError
from ._analysis import integrate_linear as integrate_linear
from ._analysis import integrate_modes as integrate_modes
from ._analysis import make_solver as make_solver
from ._analysis import stiffness as stiffness
from ._data import downsample as downsample
from ._data import image_views as image_views
from ._data import signal_views as signal_views
from ._data import style_images as style_images
from ._data import thicken as thicken
from ._flows import AdiabaticFlow as AdiabaticFlow
from ._flows import LinearFlow as LinearFlow
from ._flows import ModeFlow as ModeFlow
from ._flows import growth_rate as growth_rate
from ._flows import n_surviving as n_surviving
from ._flows import optimal_variance as optimal_variance
from ._flows import origin_jacobian as origin_jacobian
from ._flows import origin_variance as origin_variance
from ._flows import survival_margin as survival_margin
from ._flows import survival_matrix as survival_matrix
from ._flows import survives as survives
from ._loss import cr_vae_loss as cr_vae_loss
from ._loss import gaussian_kl as gaussian_kl
from ._loss import linear_loss as linear_loss
from ._loss import simvae_loss as simvae_loss
from ._loss import vae_loss as vae_loss
from ._loss import vicreg_loss as vicreg_loss
from ._metrics import MLPProbeResult as MLPProbeResult
from ._metrics import mlp_probe as mlp_probe
from ._metrics import mlp_probes as mlp_probes
from ._model import LinearGaussianData as LinearGaussianData
from ._model import LinearState as LinearState
from ._model import ModeState as ModeState
from ._model import SimVAEKnobs as SimVAEKnobs
from ._model import covariance as covariance
from ._model import mode_parameters as mode_parameters
from ._model import sample_linear_views as sample_linear_views
from ._train import METHODS as METHODS
from ._train import NetSpec as NetSpec
from ._train import decode as decode
from ._train import encode as encode
from ._train import init_params as init_params
from ._train import represent as represent
from ._train import train_linear_gd as train_linear_gd
from ._train import train_networks as train_networks

__all__ = [
    "SimVAEKnobs", "LinearGaussianData", "LinearState", "ModeState", "covariance", "mode_parameters",
    "sample_linear_views", "style_images", "thicken", "downsample", "image_views", "signal_views",
    "simvae_loss", "linear_loss", "gaussian_kl", "vae_loss", "cr_vae_loss", "vicreg_loss",
    "LinearFlow", "AdiabaticFlow", "ModeFlow", "optimal_variance", "origin_variance", "survival_margin",
    "survives", "growth_rate", "survival_matrix", "n_surviving", "origin_jacobian",
    "METHODS", "NetSpec", "init_params", "encode", "decode", "represent", "train_networks", "train_linear_gd",
    "SimVAESolveError", "make_solver", "stiffness", "integrate_modes", "integrate_linear",
    "MLPProbeResult", "mlp_probe", "mlp_probes",
]

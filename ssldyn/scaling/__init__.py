"""Scaling the core to many solves and large problems: ensembles, devices, low rank.

- `solve_ensemble`: E independent initial-value problems (seeds × hyperparameters) in one
  compiled, vmapped and optionally sharded program;
- sharding helpers (`ensemble_mesh`, `shard_ensemble`, `shard_rows`, `shard_output_flow`, ...);
- low-rank output flows for large m (`lowrank_output_flow`, `factored_output_flow`, Nyström and
  eigen factors, the matrix-free pair operator `pair_apply`) and `lowrank_predict` over `solve`.

Every name is also available from the top-level `ssldyn` namespace.
"""

from ._ensemble import lowrank_predict as lowrank_predict
from ._ensemble import solve_ensemble as solve_ensemble
from ._lowrank import FactoredOutputFlow as FactoredOutputFlow
from ._lowrank import LowRankOutputFlow as LowRankOutputFlow
from ._lowrank import eigen_factor as eigen_factor
from ._lowrank import factored_output_flow as factored_output_flow
from ._lowrank import lowrank_output_flow as lowrank_output_flow
from ._lowrank import nystrom_factor as nystrom_factor
from ._lowrank import pair_apply as pair_apply
from ._lowrank import pair_gram as pair_gram
from ._lowrank import residual_diagonal as residual_diagonal
from ._sharding import ensemble_mesh as ensemble_mesh
from ._sharding import gather_to_host as gather_to_host
from ._sharding import initialize_distributed as initialize_distributed
from ._sharding import pad_ensemble as pad_ensemble
from ._sharding import replicate as replicate
from ._sharding import shard_ensemble as shard_ensemble
from ._sharding import shard_output_flow as shard_output_flow
from ._sharding import shard_rows as shard_rows
from ._sharding import unpad_ensemble as unpad_ensemble

r"""Device sharding with JAX's own machinery: ensembles over devices, kernel rows over devices, hosts.

Three independent pieces, all built on `jax.sharding` (`Mesh`, `NamedSharding`, `PartitionSpec`) and
`jax.shard_map`, so the same code runs on one CPU, several GPUs/TPU cores of one host, and several
hosts:

- **Ensembles** (`ensemble_mesh`, `pad_ensemble`, `shard_ensemble`, `unpad_ensemble`): the members
  of an ensemble are independent ODEs, so its leading axis is split over a one-dimensional device
  mesh and every device integrates its own block with its own adaptive step sizes (no
  communication while solving). `solve_ensemble(..., sharded=True)` does this end to end; the
  ensemble is padded to a multiple of the device count with copies of its last member and the
  padding is stripped again.
- **Kernel rows** (`shard_rows`, `shard_output_flow`): for one large output ODE, the rows of `K`
  (and of `B`) are split over devices. Inside `solve` the product `K @ (B R)` then runs as an SPMD
  program: each device multiplies its row block by the (small, m × k, all-gathered) `B R`.
- **Hosts** (`initialize_distributed`, `gather_to_host`): a thin wrapper around
  `jax.distributed.initialize`; after it `jax.devices()` lists the devices of every host and the
  meshes above span them all.

References: JAX documentation, "Distributed arrays and automatic parallelization", "Manual
parallelism with shard_map" and "Multi-host and multi-process environments".
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._validation import check_int

__all__ = [
    "ensemble_mesh",
    "pad_ensemble",
    "unpad_ensemble",
    "shard_ensemble",
    "replicate",
    "shard_rows",
    "shard_output_flow",
    "initialize_distributed",
    "gather_to_host",
]

ENSEMBLE_AXIS = "ensemble"


def _device_list(devices, name: str = "devices") -> list:
    if devices is None:
        return list(jax.devices())
    if isinstance(devices, Mesh):
        return list(devices.devices.flat)
    try:
        devs = list(devices)
    except TypeError as err:
        raise TypeError(f"`{name}` must be a sequence of jax devices or None, got {type(devices).__name__}.") from err
    if not devs:
        raise ValueError(f"`{name}` must contain at least one device.")
    if not all(isinstance(d, jax.Device) for d in devs):
        raise TypeError(f"`{name}` must contain jax devices (e.g. `jax.devices()`), got {devs!r}.")
    return devs


def ensemble_mesh(devices: Sequence | None = None, *, axis_name: str = ENSEMBLE_AXIS) -> Mesh:
    """A one-dimensional device mesh for splitting an ensemble's leading axis.

    **Arguments:**
    - `devices`: the devices to use; default `jax.devices()` (all devices: the local ones in a
      single process, every host's after `initialize_distributed`). A `Mesh` is passed through.
    - `axis_name`: the mesh axis name (default `"ensemble"`).

    **Returns:** a `jax.sharding.Mesh` of shape `(len(devices),)`.
    """
    if isinstance(devices, Mesh):
        if len(devices.axis_names) != 1:
            raise ValueError(f"`devices` as a Mesh must be one-dimensional, got axes {devices.axis_names}.")
        return devices
    if not isinstance(axis_name, str) or not axis_name:
        raise TypeError(f"`axis_name` must be a non-empty string, got {axis_name!r}.")
    return Mesh(np.asarray(_device_list(devices), dtype=object), (axis_name,))


def _leading_size(tree, name: str) -> int:
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` must contain at least one array.")
    sizes = set()
    for leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) == 0:
            raise ValueError(f"Every array in `{name}` needs a leading ensemble axis, got a scalar (a Python list is "
                             "a pytree of its items: pass `np.asarray(...)` for one stacked array).")
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ValueError(f"All arrays in `{name}` must have the same leading (ensemble) size, got {sorted(sizes)}.")
    size = sizes.pop()
    if size < 1:
        raise ValueError(f"`{name}` must hold at least one ensemble member, got leading size 0.")
    return size


def pad_ensemble(tree, multiple: int):
    """Pad every leaf's leading axis to a multiple of `multiple` with copies of the last member.

    Copies (rather than zeros) keep the padding valid problems: a padded member solves the same ODE
    as the last real one, so it can neither fail nor slow the solve down more than that member.

    **Arguments:** `tree`: a pytree of arrays sharing a leading size E; `multiple`: positive int.

    **Returns:** `(padded_tree, E)`.
    """
    multiple = check_int(multiple, "multiple", minimum=1)
    size = _leading_size(tree, "tree")
    pad = (-size) % int(multiple)
    if pad == 0:
        return tree, size

    def _pad(a):
        a = jnp.asarray(a)
        return jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)], axis=0)

    return jax.tree_util.tree_map(_pad, tree), size


def unpad_ensemble(tree, size: int):
    """Keep the first `size` members of every leaf (undoes `pad_ensemble`).

    **Arguments:** `tree`: pytree of arrays with a leading ensemble axis; `size`: members to keep.

    **Returns:** the pytree with leading size `size` (leaves already of that size are untouched).
    """
    return jax.tree_util.tree_map(lambda a: a if a.shape[0] == size else a[:size], tree)


def shard_ensemble(tree, mesh: Mesh | Sequence | None = None):
    """Place a batched pytree on devices, its leading (ensemble) axis split over a 1-D mesh.

    **Arguments:**
    - `tree`: pytree of arrays with a common leading size divisible by the number of devices
      (use `pad_ensemble` first otherwise).
    - `mesh`: a 1-D `Mesh` (`ensemble_mesh`), a sequence of devices, or None for all devices.

    **Returns:** the same pytree with every leaf a `jax.Array` sharded as
    `NamedSharding(mesh, PartitionSpec(axis))`.
    """
    mesh = ensemble_mesh(mesh)
    size = _leading_size(tree, "tree")
    n_dev = mesh.devices.size
    if size % n_dev:
        raise ValueError(
            f"The ensemble size {size} of `tree` is not a multiple of the {n_dev} devices: pad it with "
            f"`pad_ensemble(tree, {n_dev})` first."
        )
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    return jax.tree_util.tree_map(lambda a: _put(a, sharding), tree)


def replicate(tree, mesh: Mesh | Sequence | None = None):
    """Place a pytree of arrays fully replicated on every device of a mesh (`PartitionSpec()`).

    Used for the arguments every device needs whole (e.g. a shared kernel); with several processes
    every process must pass the same values.

    **Arguments:** `tree`: pytree of arrays; `mesh`: a 1-D `Mesh`, devices, or None for all devices.

    **Returns:** the pytree with every leaf replicated, `NamedSharding(mesh, PartitionSpec())`.
    """
    mesh = ensemble_mesh(mesh)
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda a: _put(a, sharding), tree)


def _put(a, sharding):
    """`device_put`, or, for a sharding spanning other processes' devices, the multi-process-safe
    `make_array_from_callback` (each process supplies its own devices' blocks of the same global value)."""
    if sharding.is_fully_addressable:
        return jax.device_put(a, sharding)
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _row_devices(m: int, devices) -> list:
    """The largest prefix of `devices` whose length divides m (an even row split needs it)."""
    devs = _device_list(devices)
    for count in range(len(devs), 0, -1):
        if m % count == 0:
            return devs[:count]
    return devs[:1]  # unreachable: 1 divides m


def shard_rows(x, devices: Sequence | None = None, *, axis_name: str = "rows") -> jax.Array:
    """Split the rows of a matrix (e.g. a large kernel `K`) evenly over devices.

    `NamedSharding(Mesh(devices, ("rows",)), PartitionSpec("rows", None))`: device i holds rows
    `[i·m/D, (i+1)·m/D)`. An even split needs D | m, so D is the largest number of the given
    devices that divides m (m = 3n stacked inputs splits over 1, 2, 3, 4, 6, ... devices when n
    is divisible accordingly). Jitted code with a row-sharded `K` computes `K @ Y` block-row by
    block-row on each device (XLA's SPMD partitioner inserts the all-gather of the small `Y`).

    **Arguments:** `x`: array of rank ≥ 1; `devices`: devices (default all); `axis_name`: mesh axis.

    **Returns:** `x` as a `jax.Array` sharded over its first axis.
    """
    from .._validation import as_array

    x = as_array(x, "x")
    if x.ndim < 1:
        raise ValueError(f"`x` must have at least one dimension, got shape {tuple(x.shape)}.")
    devs = _row_devices(x.shape[0], devices)
    mesh = Mesh(np.asarray(devs, dtype=object), (axis_name,))
    spec = PartitionSpec(axis_name, *([None] * (x.ndim - 1)))
    return _put(x, NamedSharding(mesh, spec))


def shard_output_flow(flow, devices: Sequence | None = None):
    r"""An `OutputFlow` whose `K`, `B` (and `K_test`) are row-sharded over devices (`shard_rows`).

    The vector field `dR/dt = 2(K − RRᵀ)BR` is then evaluated as an SPMD program: the O(m² k)
    products `B R` and `K (B R)` are split by rows, the rest (O(m k²)) is small. `solve(flow, R0)`
    returns the same trajectory as with the unsharded flow (up to the order of floating-point
    summation). Useful when one kernel is too large for one device's memory or too slow for one
    device; for many small problems shard the ensemble instead (`solve_ensemble(sharded=True)`).

    **Arguments:** `flow`: an `ssldyn.OutputFlow`; `devices`: devices (default all).

    **Returns:** a new `OutputFlow` with sharded matrices.
    """
    import equinox as eqx

    from .._flows import OutputFlow

    if not isinstance(flow, OutputFlow):
        raise TypeError(f"`flow` must be an ssldyn OutputFlow, got {type(flow).__name__}.")
    devs = _device_list(devices)
    K = shard_rows(flow.K, devs)
    B = shard_rows(flow.B, devs)
    new = eqx.tree_at(lambda f: (f.K, f.B), flow, (K, B))
    if flow.K_test is not None:
        new = eqx.tree_at(lambda f: f.K_test, new, shard_rows(flow.K_test, devs))
    return new


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None, local_device_ids: Sequence[int] | None = None,
                           **kwargs) -> dict:
    """Start JAX's multi-host runtime: a thin wrapper around `jax.distributed.initialize`.

    Call it once per process, **before any other JAX call** (creating arrays initialises the
    backend). On managed clusters (SLURM, Open MPI, Cloud TPU, Kubernetes with the JAX operator) all
    arguments are detected from the environment and may be omitted; otherwise give the same
    `coordinator_address` ("host:port" of process 0) and `num_processes` everywhere and a distinct
    `process_id` per process. Afterwards `jax.devices()` lists the devices of all hosts, so
    `solve_ensemble(..., sharded=True)` splits an ensemble over every device of the job; every
    process must call it with the same arguments (SPMD), and `gather_to_host` brings the results
    to every process.

    **Arguments:**
    - `coordinator_address`: "host:port" of the coordinator (process 0), or None to autodetect.
    - `num_processes`: total number of processes, or None.
    - `process_id`: this process's id in `[0, num_processes)`, or None.
    - `local_device_ids`: restrict this process to some local devices (e.g. one GPU per process).
    - `**kwargs`: passed on to `jax.distributed.initialize` (e.g. `initialization_timeout`).

    **Returns:** a dict with `process_index`, `process_count`, `local_device_count`, `device_count`.

    References: https://docs.jax.dev/en/latest/multi_process.html
    """
    if coordinator_address is not None and not isinstance(coordinator_address, str):
        raise TypeError("`coordinator_address` must be a 'host:port' string, got "
                        f"{type(coordinator_address).__name__}.")
    for name, value in (("num_processes", num_processes), ("process_id", process_id)):
        if value is not None:
            check_int(value, name, minimum=0)
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise ValueError(f"`process_id` must be < num_processes = {num_processes}, got {process_id}.")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids, **kwargs)
    return {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "local_device_count": jax.local_device_count(),
        "device_count": jax.device_count(),
    }


def gather_to_host(tree):
    """Every leaf as a host NumPy array with its full (global) value, on every process.

    In one process this is `np.asarray` per leaf. With several processes, arrays that span other
    hosts' devices are gathered with `jax.experimental.multihost_utils.process_allgather` (a
    collective: call it on every process).

    **Arguments:** `tree`: pytree of arrays (e.g. a `Trajectory`).

    **Returns:** the same pytree with NumPy leaves holding the global values.
    """
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, tree)
    from jax.experimental import multihost_utils

    def _gather(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(a, tiled=True))
        return np.asarray(a)

    return jax.tree_util.tree_map(_gather, tree)


def _shard_map(f, mesh, in_specs, out_specs):
    """`jax.shard_map` (JAX ≥ 0.6), falling back to `jax.experimental.shard_map` on older versions."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # pragma: no cover

    return shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)  # pragma: no cover

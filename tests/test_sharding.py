"""Sharding over devices: ensembles split with shard_map, kernel rows split with NamedSharding.

The multi-device checks run in a subprocess with `XLA_FLAGS=--xla_force_host_platform_device_count=4`
(the flag must be set before JAX initialises its CPU backend, which this process has already done).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssldyn
from ssldyn.scaling._sharding import (
    ensemble_mesh,
    gather_to_host,
    initialize_distributed,
    pad_ensemble,
    shard_ensemble,
    shard_rows,
    unpad_ensemble,
)

SCRIPT = textwrap.dedent(
    r"""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    import ssldyn
    from ssldyn.scaling._ensemble import solve_ensemble
    from ssldyn.scaling._sharding import shard_output_flow

    out = {"n_devices": jax.device_count()}
    n, h, k = 8, 20, 2
    rng = np.random.default_rng(0)  # NumPy set-up: no compilations besides the solves
    Phi = np.tanh(rng.normal(size=(3 * n, 6)) @ rng.normal(size=(6, h)) / np.sqrt(6.0)) / np.sqrt(h)
    W0s = np.linalg.qr(rng.normal(size=(8, h, k)))[0]  # 8 Stiefel frames
    B, K = ssldyn.pair_matrix(n), jnp.asarray(Phi @ Phi.T)
    R0s = jnp.asarray(np.einsum("mh,ehk->emk", Phi, W0s))
    scales = jnp.asarray(np.linspace(0.5, 2.0, 8))

    def make(p, sh):
        return ssldyn.OutputFlow(sh[0], p * sh[1])

    tol = dict(ts=3, shared=(B, K), rtol=1e-10, atol=1e-12)
    ref = solve_ensemble(make, scales[:6], R0s[:6], 0.0, 1.0, **tol)               # one device
    padded = solve_ensemble(make, scales[:6], R0s[:6], 0.0, 1.0, sharded=True, **tol)  # 6 -> 8 -> 6
    full = solve_ensemble(make, scales, R0s, 0.0, 1.0, sharded=True, **tol)        # 8 members, 2 per device
    out["padded_shape"] = list(padded.ys.shape)
    out["padded_err"] = float(jnp.max(jnp.abs(padded.ys - ref.ys)))
    out["full_err"] = float(jnp.max(jnp.abs(full.ys[:6] - ref.ys)))
    out["full_devices"] = sorted(d.id for d in full.ys.sharding.device_set)
    out["full_shards"] = sorted((s.device.id, list(s.data.shape)) for s in full.ys.addressable_shards)
    out["spec"] = str(full.ys.sharding.spec)
    steps, ref_steps = np.asarray(full.stats["num_steps"][:6]), np.asarray(ref.stats["num_steps"])
    out["steps_equal"] = bool(np.array_equal(steps, ref_steps))

    # Kernel rows over devices: K, B row-sharded; the vector field 2(K - RR^T)BR (an SPMD program with
    # the O(m^2 k) products split by rows) equals the unsharded one. (A whole `solve` with the sharded
    # flow works the same way; it is left out here to save a compilation.)
    flat = ssldyn.OutputFlow(B, K)
    flow = shard_output_flow(flat)
    out["K_devices"] = sorted(d.id for d in flow.K.sharding.device_set)
    out["K_shards"] = sorted(list(s.data.shape) for s in flow.K.addressable_shards)
    vf = jax.jit(lambda f, R: f.vector_field(0.0, R))
    sharded_rate = vf(flow, R0s[0])
    out["rows_err"] = float(jnp.max(jnp.abs(sharded_rate - vf(flat, R0s[0]))))
    out["rows_rate_devices"] = len(sharded_rate.sharding.device_set)
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def four_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600,
                          cwd=root)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_sharded_ensemble_equals_unsharded_and_is_distributed(four_devices):
    r = four_devices
    assert r["n_devices"] == 4
    # 6 members padded to 8 (two per device) and stripped again; identical to one device.
    assert r["padded_shape"] == [6, 3, 24, 2]
    assert r["padded_err"] <= 1e-13 and r["full_err"] <= 1e-13
    assert r["steps_equal"]  # each member keeps its own adaptive steps under shard_map
    # 8 members: the result stays distributed, two members on each of the 4 devices.
    assert r["full_devices"] == [0, 1, 2, 3]
    assert r["full_shards"] == [[i, [2, 3, 24, 2]] for i in range(4)]
    assert "ensemble" in r["spec"]


def test_row_sharded_kernel_vector_field_equals_unsharded(four_devices):
    r = four_devices
    assert r["K_devices"] == [0, 1, 2, 3]
    assert r["K_shards"] == [[6, 24]] * 4  # m = 24 rows, 6 per device
    assert r["rows_err"] <= 1e-13 and r["rows_rate_devices"] == 4


def test_padding_round_trip_and_errors():
    tree = {"a": jnp.arange(5.0), "b": jnp.ones((5, 2, 3))}
    padded, size = pad_ensemble(tree, 4)
    assert size == 5 and padded["a"].shape == (8,) and padded["b"].shape == (8, 2, 3)
    np.testing.assert_array_equal(padded["a"], [0, 1, 2, 3, 4, 4, 4, 4])  # copies of the last member
    back = unpad_ensemble(padded, size)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert pad_ensemble(tree, 5)[0] is tree
    with pytest.raises(ValueError, match="multiple"):
        pad_ensemble(tree, 0)
    with pytest.raises(ValueError, match="leading"):
        pad_ensemble({"a": jnp.ones(3), "b": jnp.ones(4)}, 2)
    mesh = ensemble_mesh()
    assert mesh.axis_names == ("ensemble",) and mesh.devices.size == jax.device_count()
    placed = shard_ensemble(padded, mesh) if 8 % jax.device_count() == 0 else padded
    np.testing.assert_array_equal(gather_to_host(placed)["a"], padded["a"])
    with pytest.raises(TypeError, match="devices"):
        ensemble_mesh(["cpu"])


def test_shard_rows_and_distributed_argument_checks():
    K = jnp.arange(12.0).reshape(6, 2)
    Ks = shard_rows(K)
    np.testing.assert_array_equal(np.asarray(Ks), np.asarray(K))
    assert 6 % len(Ks.sharding.device_set) == 0
    with pytest.raises(TypeError, match="flow"):
        ssldyn.scaling._sharding.shard_output_flow(K)
    # Validation happens before jax.distributed is touched (never initialised in tests).
    with pytest.raises(ValueError, match="process_id"):
        initialize_distributed("localhost:1234", num_processes=2, process_id=2)
    with pytest.raises(TypeError, match="coordinator_address"):
        initialize_distributed(1234)

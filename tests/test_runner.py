"""Experiment runner: atomic results, resume without recomputation, configuration checks, CLI."""

import dataclasses
import json

import pytest

from ssldyn.experiments import Claim, Experiment, parse_overrides, run_experiment, select, verdict


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    n: int = 4
    scale: float = 2.0
    names: tuple = ("a", "b")
    seed: int = 0


CALLS = []


def toy_experiment():
    def run_cell(config, ctx, cell):
        CALLS.append(cell["id"])
        return [{"i": cell["i"], "value": cell["i"] * config.scale * ctx["offset"]}]

    def claim_sum(config, records):
        total = sum(r["value"] for r in select(records, kind="toy"))
        expected = config.scale * sum(range(config.n))
        return Claim("sum", f"{total}", verdict(total == expected), criterion="total = scale · Σ i")

    return Experiment(
        name="toy", summary="a toy", paper="nobody", config_cls=ToyConfig, quick={"n": 2},
        prepare=lambda config: {"offset": 1.0},
        cells=lambda config: [{"id": f"c{i}", "i": i, "kind": "toy"} for i in range(config.n)],
        cell_kinds={"toy": lambda config, ctx, cell: [dict(run_cell(config, ctx, cell)[0], kind="toy")]},
        claims=(claim_sum,), report=lambda config, ctx, records, out: "body",
    )


def test_interrupted_run_resumes_without_redoing_finished_cells(tmp_path):
    exp, cfg = toy_experiment(), ToyConfig()
    CALLS.clear()
    partial = run_experiment(exp, cfg, tmp_path, progress=False, max_cells=2)
    assert partial["status"] == "running" and CALLS == ["c0", "c1"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["cells"]) == {"c0", "c1"}
    assert not (tmp_path / "report.md").exists()
    CALLS.clear()
    done = run_experiment(exp, cfg, tmp_path, progress=False)
    assert CALLS == ["c2", "c3"]  # only the missing cells ran
    assert done["status"] == "complete" and done["claims"][0]["reproduced"] is True
    report = (tmp_path / "report.md").read_text()
    assert "| sum | 12.0 | total = scale · Σ i | yes |" in report
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_resume_refuses_a_different_configuration(tmp_path):
    exp = toy_experiment()
    run_experiment(exp, ToyConfig(), tmp_path, progress=False, max_cells=1)
    with pytest.raises(ValueError, match="different configuration.*scale"):
        run_experiment(exp, ToyConfig(scale=3.0), tmp_path, progress=False)
    CALLS.clear()
    run_experiment(exp, ToyConfig(scale=3.0), tmp_path, progress=False, fresh=True)
    assert len(CALLS) == 4


def test_parse_overrides_types_and_errors():
    out = parse_overrides(ToyConfig, ["n=7", "scale=0.5", "names=x,y,z"])
    assert out == {"n": 7, "scale": 0.5, "names": ("x", "y", "z")}
    with pytest.raises(ValueError, match="unknown configuration field 'nope'"):
        parse_overrides(ToyConfig, ["nope=1"])
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(ToyConfig, ["n"])
    with pytest.raises(ValueError, match="bad value for 'n'"):
        parse_overrides(ToyConfig, ["n=three"])


def test_cli_lists_experiments_and_rejects_unknown(capsys):
    from ssldyn.cli import main

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "esser-mnist" in listed and "Esser" in listed
    assert main(["run", "no-such-experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_compile_counter_sees_each_new_program_and_the_runner_records_it(tmp_path):
    """The counter listens to JAX's own compilation events: a fresh jitted function compiles once per
    new shape and not again for a shape it has seen; the runner stores each cell's count."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ssldyn.experiments._profiling import COMPILES

    f = jax.jit(lambda x: jnp.sin(x) * 3.0 + 1.0)  # numpy inputs: no eager JAX op besides f
    before = COMPILES.snapshot()
    f(np.ones(3)).block_until_ready()
    assert COMPILES.since(before)[0] == 1
    mid = COMPILES.snapshot()
    f(np.zeros(3)).block_until_ready()  # same shape: cached
    assert COMPILES.since(mid)[0] == 0
    f(np.ones(5)).block_until_ready()  # new shape
    n, seconds = COMPILES.since(mid)
    assert n == 1 and seconds > 0

    exp = dataclasses.replace(toy_experiment(), cell_kinds={"toy": lambda config, ctx, cell: [
        {"kind": "toy", "i": cell["i"],
         "value": float(np.asarray(jax.jit(lambda x: x * config.scale)(np.ones(cell["i"] + 7)))[0]) * cell["i"]}]})
    res = run_experiment(exp, ToyConfig(), tmp_path, progress=False)
    assert [c["compiles"] for c in res["cells"].values()] == [1, 1, 1, 1]  # a new shape in every cell
    assert "XLA compilations:" in (tmp_path / "report.md").read_text()


CACHE_SNIPPET = """
import sys
import numpy as np
import ssldyn  # the whole library imported first, as the CLI does: importing must not compile anything
from ssldyn.experiments._profiling import COMPILES, configure_compile_cache
import jax
import jax.numpy as jnp
configure_compile_cache(sys.argv[1])
before = COMPILES.snapshot()
y = jax.jit(lambda x: jnp.sin(x) * 3.0 + jnp.cos(x) ** 2)(np.arange(7.0))
print(COMPILES.since(before)[0], COMPILES.cache_hits_since(before), repr(float(np.asarray(y).sum())))
"""


def test_persistent_compile_cache_serves_a_second_process(tmp_path):
    """Two fresh processes with the same cache directory: the first compiles and stores the program, the
    second loads it (one cache hit, counted by the runner's counter) and computes the same value."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "xla"
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}  # a user's cache would win
    runs = [subprocess.run([sys.executable, "-c", CACHE_SNIPPET, str(cache)], capture_output=True, text=True,
                           timeout=300, check=True, env=env).stdout.split() for _ in range(2)]
    (n1, hits1, y1), (n2, hits2, y2) = runs
    assert (n1, hits1) == ("1", "0") and (n2, hits2) == ("1", "1")
    assert y1 == y2 and any(cache.iterdir())


def test_default_compile_cache_follows_the_environment(monkeypatch, tmp_path):
    from ssldyn.experiments._profiling import configure_compile_cache, default_compile_cache

    monkeypatch.setenv("SSLDYN_COMPILE_CACHE", "off")
    assert default_compile_cache() == "off" and configure_compile_cache("off") is None
    monkeypatch.delenv("SSLDYN_COMPILE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_compile_cache() == str(tmp_path / "ssldyn" / "xla")

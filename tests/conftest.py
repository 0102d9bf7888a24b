"""Test configuration: float64 everywhere (tolerances below 1e-6 are checked); the CLI's persistent
compilation cache off (tests that exercise it pass their own directory)."""

import os

import jax

os.environ.setdefault("SSLDYN_COMPILE_CACHE", "off")
jax.config.update("jax_enable_x64", True)

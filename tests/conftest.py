"""Test configuration: float64 everywhere (tolerances below 1e-6 are checked)."""

import jax

jax.config.update("jax_enable_x64", True)

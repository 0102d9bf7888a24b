r"""Stage 5 of `ssldyn.sparse`: metrics of trained or solved weights (theory §7).

Energy in span(M) `‖Mᵀw_i‖²/‖w_i‖²`, the neuron–atom alignment `|cos(w_i, M_j)|`, single-atom
alignment `s_i = max_j |⟨w_i, M_j⟩|/‖w_i‖`, atoms covered, all of them at once (`sparse_metrics`,
with any leading batch axes of seeds and times), and a ridge probe recovering the sparse code.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validation import as_array, check_positive, check_probability


def _check_WM(W, M):
    W = as_array(W, "W")
    if W.ndim < 2:
        raise ValueError(f"`W` must be (..., d1, m) with neurons as columns, got shape {tuple(W.shape)}.")
    M = as_array(M, "M", ndim=2)
    if W.shape[-2] != M.shape[0]:
        raise ValueError(f"`W` must have {M.shape[0]} rows to match `M` (d1, d), got shape {tuple(W.shape)}.")
    return W, M


def _norms(W):
    return jnp.sqrt(jnp.sum(W**2, axis=-2))


def span_energy(W: Float[Array, "*batch d1 m"], M: Float[Array, "d1 d"]) -> Float[Array, "*batch m"]:
    r"""Per-neuron energy in span(M): `‖Mᵀw_i‖² / ‖w_i‖²` (M with orthonormal columns).

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m), in [0, 1]; about `d/d₁` for random weights.
    """
    W, M = _check_WM(W, M)
    return _span_energy(W, M)


@jax.jit
def _span_energy(W, M):
    return jnp.sum((M.T @ W) ** 2, axis=-2) / jnp.sum(W**2, axis=-2)


def atom_alignment(W: Float[Array, "*batch d1 m"], M: Float[Array, "d1 d"]) -> Float[Array, "*batch m d"]:
    r"""The neuron–atom alignment matrix `|cos(w_i, M_j)| = |⟨w_i, M_j⟩| / ‖w_i‖` (atoms have unit norm).

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m, d).
    """
    W, M = _check_WM(W, M)
    return _atom_alignment(W, M)


@jax.jit
def _atom_alignment(W, M):
    return jnp.abs(jnp.swapaxes(W, -1, -2) @ M) / _norms(W)[..., None]


def single_atom_alignment(W: Float[Array, "*batch d1 m"], M: Float[Array, "d1 d"]) -> Float[Array, "*batch m"]:
    r"""Single-atom alignment `s_i = max_j |⟨w_i, M_j⟩| / ‖w_i‖` per neuron.

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d).

    **Returns:** (..., m), in [0, 1].

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    return jnp.max(atom_alignment(W, M), axis=-1)


def atoms_covered(W: Float[Array, "*batch d1 m"], M: Float[Array, "d1 d"], *, threshold=0.9) -> Array:
    r"""Number of atoms j for which some neuron has `|cos(w_i, M_j)| ≥ threshold`.

    **Arguments:** `W` (..., d₁, m); `M` (d₁, d); `threshold` in [0, 1] (the "close to 1" cut-off).

    **Returns:** an int array (...).

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    check_probability(threshold, "threshold")
    return jnp.sum(jnp.max(atom_alignment(W, M), axis=-2) >= threshold, axis=-1)


def sparse_metrics(W: Float[Array, "*batch d1 m"], M: Float[Array, "d1 d"], *, threshold=0.9) -> dict[str, Array]:
    r"""All weight metrics at once (theory §7), each with the batch shape of `W` (..., d₁, m):

    - `energy`: mean over neurons of `span_energy`;
    - `alignment`: mean single-atom alignment `s_i`;
    - `single_atom_share`: share of neurons with `s_i ≥ threshold`;
    - `atoms_covered`: `atoms_covered(W, M, threshold)`;
    - `dense_norm`: `‖P_{M⊥} W‖_F`; `atom_norm`: `‖MᵀW‖_F` (for growth rates).

    **Arguments:** `W`; `M`; `threshold` in [0, 1] (the "close to 1" cut-off).

    **Returns:** a dict of arrays.

    References: Wen & Li, ICML 2021 (arXiv:2105.15134); theory file `wen_li2021_feature_learning.md` §7.
    """
    W, M = _check_WM(W, M)
    check_probability(threshold, "threshold", scalar=True)
    return _sparse_metrics(W, M, jnp.asarray(threshold, W.dtype))


@jax.jit
def _sparse_metrics(W, M, threshold):
    A = _atom_alignment(W, M)
    s = jnp.max(A, axis=-1)
    proj = M.T @ W
    total = jnp.sum(W**2, axis=(-2, -1))
    atom2 = jnp.sum(proj**2, axis=(-2, -1))
    return {
        "energy": jnp.mean(_span_energy(W, M), axis=-1),
        "alignment": jnp.mean(s, axis=-1),
        "single_atom_share": jnp.mean((s >= threshold).astype(W.dtype), axis=-1),
        "atoms_covered": jnp.sum(jnp.max(A, axis=-2) >= threshold, axis=-1),
        "atom_norm": jnp.sqrt(atom2),
        "dense_norm": jnp.sqrt(jnp.clip(total - atom2, 0.0)),
    }


def code_probe(F_train: Float[Array, "n m"], Z_train: Float[Array, "n d"], F_test: Float[Array, "n2 m"],
               Z_test: Float[Array, "n2 d"], *, reg=1e-3) -> Float[Array, ""]:
    r"""Linear (ridge) probe recovering the sparse code from representations; returns the test R².

    Features are standardised with the training statistics; the probe solves
    `min_{V,c} (1/n)‖F̃V + 1cᵀ − Z‖² + λ‖V‖²` and reports
    `R² = 1 − Σ‖Ẑ − Z‖² / Σ‖Z − Z̄_train‖²` on the test set (1 is perfect; 0 is predicting the mean).

    **Arguments:** `F_train` (n, m); `Z_train` (n, d); `F_test` (n', m); `Z_test` (n', d); `reg` λ > 0.

    **Returns:** a scalar R². For the raw input `F = X` its population value is `p/(p + σ_ξ²)` (the
    best linear predictor of z is `(p/(p + σ_ξ²)) Mᵀx`).
    """
    Ftr = as_array(F_train, "F_train", ndim=2)
    Ztr = as_array(Z_train, "Z_train", ndim=2)
    Fte = as_array(F_test, "F_test", ndim=2)
    Zte = as_array(Z_test, "Z_test", ndim=2)
    if Ftr.shape[0] != Ztr.shape[0] or Fte.shape[0] != Zte.shape[0]:
        raise ValueError("`F_train`/`Z_train` and `F_test`/`Z_test` must have matching numbers of rows.")
    if Ftr.shape[1] != Fte.shape[1] or Ztr.shape[1] != Zte.shape[1]:
        raise ValueError("train and test arrays must have matching numbers of columns.")
    check_positive(reg, "reg")
    return _code_probe(Ftr, Ztr, Fte, Zte, reg)


@jax.jit
def _code_probe(Ftr, Ztr, Fte, Zte, reg):
    mean, std = jnp.mean(Ftr, axis=0), jnp.std(Ftr, axis=0)
    scale = jnp.where(std > 0, std, 1.0)
    x, xt = (Ftr - mean) / scale, (Fte - mean) / scale
    zm = jnp.mean(Ztr, axis=0)
    n, k = x.shape
    V = jnp.linalg.solve(x.T @ x / n + reg * jnp.eye(k, dtype=x.dtype), x.T @ (Ztr - zm) / n)
    pred = xt @ V + zm
    return 1.0 - jnp.sum((pred - Zte) ** 2) / jnp.sum((Zte - zm) ** 2)

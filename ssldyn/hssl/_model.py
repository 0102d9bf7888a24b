r"""Homomorphic feature extractors on cyclic 1-D signals: the circular CNN and its locally connected control.

**Group and action.** The cyclic group `C_L` acts on signals `x ∈ R^{L×c}` (position axis first) by
`[T_g x]_j = x_{(j − g) mod L}` (`np.roll(x, g, axis=0)`) and on feature fields `F ∈ R^{L×C}` by the
regular representation `[Γ_g F](h) = F(g^{-1} h) = F_{(h − g) mod L}` — the same roll. The **fiber**
at `g` is the C-vector `F(g) = F[g mod L]` (`fiber`).

**Circular CNN.** Layer `ℓ` with kernel `K` (odd) and dilation `d`:

    h'_{g,c} = b_c + Σ_{k=0}^{K-1} Σ_{c'} w_{k,c',c} h_{(g + d(k − (K−1)/2)) mod L, c'},

ReLU between layers, none after the last (the fibers are the last layer's output). Circular
padding, no stride, no pooling: `f(T_g x) = Γ_g f(x)` exactly. The receptive field of a fiber is
`1 + (K − 1) Σ_ℓ d_ℓ` positions.

**Locally connected control** (`arch="lc"`): the same gather, but separate weights and biases per
output position (`w_{g,k,c',c}`, `b_{g,c}`): identical receptive fields and tensor shapes, no weight
sharing, hence no equivariance.

`BackboneSpec(arch, length, channels, kernel, dilations, n_layers)`: `len(dilations)` dilated
layers with kernel `K`, followed by pointwise layers up to `n_layers`. A pointwise layer is stored
as dilation 0 (all K taps read the same position: the effective 1×1 weight is the sum over taps,
whose He-normal law equals that of a 1×1 layer), so every layer has the same tensor shapes and the
dilations can be passed as a traced array (`apply_backbone(..., dilations=...)`): one compilation
serves a whole receptive-field sweep.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_array, check_choice, check_int

ARCHS = ("cnn", "lc")


class BackboneSpec(NamedTuple):
    """Static description of a backbone (hashable: use it as a static argument)."""

    arch: str = "cnn"
    length: int = 40
    channels: int = 32
    kernel: int = 5
    dilations: tuple = (1, 2, 4)
    n_layers: int = 4
    in_channels: int = 1

    @property
    def dilation_vector(self) -> tuple[int, ...]:
        """Dilation of each of the `n_layers` layers; 0 marks a pointwise layer (all K taps on one position)."""
        return tuple(int(d) for d in self.dilations) + (0,) * (self.n_layers - len(self.dilations))

    @property
    def layers(self) -> tuple[tuple[int, int], ...]:
        """(kernel, dilation) of each layer."""
        return tuple((self.kernel, d) for d in self.dilation_vector)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.kernel, self.dilations)


def receptive_field(kernel: int, dilations) -> int:
    """Receptive field `1 + (K − 1) Σ d` (positions) of a stack of dilated convolutions."""
    return 1 + (int(kernel) - 1) * int(sum(int(d) for d in dilations))


def backbone_spec(arch: str = "cnn", *, length: int = 40, channels: int = 32, kernel: int = 5,
                  dilations=(1, 2, 4), n_layers: int | None = None, in_channels: int = 1) -> BackboneSpec:
    """Validated `BackboneSpec`. Raises when the receptive field exceeds the signal (`dilations`)."""
    check_choice(arch, "arch", ARCHS)
    length = check_int(length, "length", minimum=2)
    channels = check_int(channels, "channels", minimum=1)
    kernel = check_int(kernel, "kernel", minimum=1)
    if kernel % 2 == 0:
        raise ValueError(f"`kernel` must be odd (a centred window), got {kernel}.")
    try:
        dilations = tuple(check_int(d, "dilations", minimum=1) for d in dilations)
    except TypeError as err:
        raise TypeError(f"`dilations` must be a sequence of positive ints, got {dilations!r}.") from err
    if len(dilations) == 0:
        raise ValueError("`dilations` must contain at least one layer.")
    n_layers = len(dilations) if n_layers is None else check_int(n_layers, "n_layers", minimum=len(dilations))
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    rf = receptive_field(kernel, dilations)
    if rf > length:
        raise ValueError(f"`dilations` {dilations} with kernel {kernel} give a receptive field of {rf} positions, "
                         f"larger than the signal (`length` = {length}); taps would wrap onto themselves.")
    return BackboneSpec(arch, length, channels, kernel, dilations, n_layers, in_channels)


def init_backbone(key, spec: BackboneSpec, dtype=None) -> list[dict]:
    """He-normal weights, zero biases. CNN layer: `w (K, c_in, c_out)`, `b (c_out,)`; LC layer:
    `w (L, K, c_in, c_out)`, `b (L, c_out)` (each position drawn independently)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    params = []
    c_in = spec.in_channels
    for key_l, (K, _) in zip(jax.random.split(key, spec.n_layers), spec.layers):
        # a pointwise layer (dilation 0) sums its K taps: fan-in K * c_in keeps its effective 1x1 weight He-normal
        std = float(np.sqrt(2.0 / (K * c_in)))  # a Python float keeps `dtype` (a NumPy float64 would promote under x64)
        lead = (spec.length,) if spec.arch == "lc" else ()
        w = std * jax.random.normal(key_l, lead + (K, c_in, spec.channels), dtype)
        b = jnp.zeros(lead + (spec.channels,), dtype)
        params.append({"w": w, "b": b})
        c_in = spec.channels
    return params


def tie_to_lc(params_cnn: list[dict], length: int) -> list[dict]:
    """Locally connected parameters equal at every position to the CNN's (an untied net started tied)."""
    return [{"w": jnp.broadcast_to(p["w"], (length,) + p["w"].shape),
             "b": jnp.broadcast_to(p["b"], (length,) + p["b"].shape)} for p in params_cnn]


def gather_taps(h: jax.Array, kernel: int, dilation) -> jax.Array:
    """`(L, c) -> (L, K, c)`: entry `[g, k]` is `h[(g + d(k − (K−1)/2)) mod L]` (`dilation` may be traced)."""
    L = h.shape[0]
    offs = dilation * (jnp.arange(kernel) - (kernel - 1) // 2)
    idx = (jnp.arange(L)[:, None] + offs[None, :]) % L
    return h[idx]


def _as_field(x, spec: BackboneSpec) -> jax.Array:
    if x.ndim == 1:
        x = x[:, None]
    return x


def apply_backbone(params: list[dict], x, spec: BackboneSpec, dilations=None) -> jax.Array:
    """Feature field `f(x)`, shape `(L, C)`, of one signal `x` `(L,)` or `(L, c_in)`. vmap for batches.

    `dilations`: optional per-layer dilations (length `n_layers`, 0 = pointwise; may be traced)
    overriding `spec.dilation_vector`."""
    h = _as_field(x, spec)
    n = len(params)
    dils = spec.dilation_vector if dilations is None else [dilations[i] for i in range(spec.n_layers)]
    for i, (p, d) in enumerate(zip(params, dils)):
        K = spec.kernel
        taps = gather_taps(h, K, d)                                   # (L, K, c_in)
        if spec.arch == "cnn":
            h = jnp.einsum("gkc,kcd->gd", taps, p["w"]) + p["b"]
        else:
            h = jnp.einsum("gkc,gkcd->gd", taps, p["w"]) + p["b"]
        if i < n - 1:
            h = jax.nn.relu(h)
    return h


def encode_batch(params, X, spec: BackboneSpec, dilations=None) -> jax.Array:
    """Feature fields `(n, L, C)` of a batch `(n, L)` or `(n, L, c_in)`."""
    return jax.vmap(lambda x: apply_backbone(params, x, spec, dilations))(X)


def pooled_features(params, X, spec: BackboneSpec) -> jax.Array:
    """Globally (mean-)pooled backbone features `(n, C)`: exactly invariant for the CNN."""
    return jnp.mean(encode_batch(params, X, spec), axis=1)


# --------------------------------------------------------------------------------------------------
# Group elements, action and fibers
# --------------------------------------------------------------------------------------------------

def group_element(g, length: int, name: str = "g"):
    """Validate a cyclic-group element: an int (taken mod `length`), an integer array, or an `(L, L)`
    cyclic-shift matrix (converted to its int). Anything else — a float, a permutation that is not a
    cyclic shift, a non-permutation matrix — raises, naming `name`."""
    if isinstance(g, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an element of C_{length} (an int shift), got {g!r}.")
    if isinstance(g, (int, np.integer)):
        return int(g) % length
    if isinstance(g, jax.core.Tracer):
        if not jnp.issubdtype(g.dtype, jnp.integer):
            raise TypeError(f"`{name}` must be an integer shift (element of C_{length}), got dtype {g.dtype}.")
        return g % length
    arr = np.asarray(g)
    if arr.ndim == 2:
        if arr.shape != (length, length):
            raise ValueError(f"`{name}` as a matrix must be ({length}, {length}), got {arr.shape}.")
        for s in range(length):
            if np.array_equal(arr, np.roll(np.eye(length), s, axis=0)):
                return s
        raise ValueError(f"`{name}` is not a group element: the matrix is not a cyclic shift of {length} positions "
                         "(the group acting here is C_L; general permutations, flips or blurs are not in it).")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"`{name}` must be an integer shift (element of C_{length}), got {g!r}; fractional "
                            "shifts are not group elements.")
    return jnp.asarray(arr % length)


def act_signal(x, g, *, batched: bool = False) -> jax.Array:
    """`T_g x`: cyclic shift by g of one signal `(L,)`/`(L, c)`, or of every row of a batch
    `(n, L)`/`(n, L, c)` with `batched=True` (one g for all rows)."""
    x = as_array(x, "x", ndim=(1, 2, 3))
    ax = 1 if batched else 0
    g = group_element(g, x.shape[ax])
    return jnp.roll(x, g, axis=ax)


def act_field(F, g) -> jax.Array:
    """`Γ_g F`: the regular representation moving fibers along the group axis, `F (L, C) -> F[(h−g) mod L]`."""
    F = as_array(F, "F", ndim=2)
    g = group_element(g, F.shape[0])
    return jnp.roll(F, g, axis=0)


def fiber(F, g) -> jax.Array:
    """Fiber selection `f(x)[g] = F[g mod L]`, `F (L, C)` (or a batch `(n, L, C)` with per-sample `g (n,)`)."""
    F = as_array(F, "F", ndim=(2, 3))
    if F.ndim == 2:
        return F[group_element(g, F.shape[0])]
    g = group_element(g, F.shape[1])
    g = jnp.broadcast_to(jnp.asarray(g), (F.shape[0],))
    return F[jnp.arange(F.shape[0]), g]


def equivariance_error(params, X, g, spec: BackboneSpec) -> jax.Array:
    """`max_x ‖f(T_g x) − Γ_g f(x)‖_F / ‖f(x)‖_F` over the rows of a batch `X (n, L)`."""
    X = as_array(X, "X", ndim=2)
    g = group_element(g, X.shape[1])
    F = encode_batch(params, X, spec)
    F_shift = encode_batch(params, jnp.roll(X, g, axis=1), spec)
    diff = F_shift - jnp.roll(F, g, axis=1)
    return jnp.max(jnp.linalg.norm(diff.reshape(len(X), -1), axis=1) / jnp.linalg.norm(F.reshape(len(X), -1), axis=1))


def check_fields(F1, F2, names=("F1", "F2")) -> None:
    """Raise unless two feature fields (or batches of them) have the same shape."""
    if tuple(F1.shape) != tuple(F2.shape):
        raise ValueError(f"Mismatched fiber shapes: `{names[0]}` has shape {tuple(F1.shape)}, "
                         f"`{names[1]}` has {tuple(F2.shape)}.")



# --------------------------------------------------------------------------------------------------
# 2-D variants: cyclic translations on the torus, and the p4 rotation group
# --------------------------------------------------------------------------------------------------
#
# Images are `(S, S)` or `(S, S, c)` with circular boundary conditions. `T_{(a,b)} x = roll(x, (a, b))`.
# The 2-D CNN (centred odd kernels, circular padding, no stride) is exactly equivariant to these
# translations; its fibers are the S² positions. `arch="lc"` unties the weights per position.
#
# p4 acts by `R x = rot90(x)` (about the grid centre; a permutation of the S×S torus). The lifting
# layer gives `F[r] = x ⋆ rot90(ψ, r)` (r = 0..3) and a group convolution
# `F'[r] = Σ_s F[s] ⋆ rot90(ψ_{(s − r) mod 4}, r)`; then `F(Rx)[r] = rot90(F(x)[r − 1])`: rotate each
# map and shift the orientation axis. The fibers are the 4 orientations after spatial mean pooling, on
# which R acts by a cyclic shift. The control (`arch="lc"`) draws independent filters per orientation.

ARCHS_2D = ("cnn", "lc")


def _patches(x, kernel: int):
    """`(S, S, c) -> (S, S, K, K, c)`: entry `[p, q, i, j]` is `x[(p + i − c0) mod S, (q + j − c0) mod S]`,
    `c0 = (K − 1)/2` (static rolls: slices whose gradients are slices, no scatter)."""
    c0 = (kernel - 1) // 2
    return jnp.stack([jnp.stack([jnp.roll(x, (c0 - i, c0 - j), axis=(0, 1)) for j in range(kernel)], axis=2)
                      for i in range(kernel)], axis=2)


def _conv2d_circ(x, w):
    """Circular cross-correlation of `x (S, S, c_in)` with a centred kernel `w (K, K, c_in, c_out)`.

    Written as patches × matrix (no `lax.conv`): vmapped over seeds (batched weights), a convolution
    becomes a grouped convolution, which XLA's CPU backend runs an order of magnitude slower."""
    return jnp.einsum("pqijc,ijcd->pqd", _patches(x, w.shape[0]), w)


def _conv2d_untied(x, w):
    """Locally connected version: `w (S, S, K, K, c_in, c_out)`, one kernel per output position."""
    return jnp.einsum("pqijc,pqijcd->pqd", _patches(x, w.shape[2]), w)


def init_translation_cnn(key, side: int, channels: int = 8, kernel: int = 3, n_layers: int = 2, arch: str = "cnn",
                         in_channels: int = 1, dtype=None) -> list[dict]:
    """Weights of the circular 2-D CNN (`arch="cnn"`) or its untied control (`"lc"`)."""
    check_choice(arch, "arch", ARCHS_2D)
    side, kernel = check_int(side, "side", minimum=2), check_int(kernel, "kernel", minimum=1)
    if kernel % 2 == 0:
        raise ValueError(f"`kernel` must be odd, got {kernel}.")
    if 1 + (kernel - 1) * check_int(n_layers, "n_layers", minimum=1) > side:
        raise ValueError(f"`n_layers` x (`kernel` - 1) + 1 exceeds the image side {side}: the receptive field would wrap.")
    dtype = jnp.result_type(float) if dtype is None else dtype
    params, c_in = [], in_channels
    for k in jax.random.split(key, n_layers):
        lead = (side, side) if arch == "lc" else ()
        w = float(np.sqrt(2.0 / (kernel * kernel * c_in))) * jax.random.normal(k, lead + (kernel, kernel, c_in, channels), dtype)
        params.append({"w": w, "b": jnp.zeros((channels,), dtype)})
        c_in = channels
    return params


def apply_translation_cnn(params, x) -> jax.Array:
    """Feature field `(S, S, C)` of one image `(S, S)` or `(S, S, c)`; the arch is read off the weights."""
    h = x[..., None] if x.ndim == 2 else x
    for i, p in enumerate(params):
        h = (_conv2d_untied(h, p["w"]) if p["w"].ndim == 6 else _conv2d_circ(h, p["w"])) + p["b"]
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h


def translate2d(x, g) -> jax.Array:
    """`T_g x` for `g = (a, b)` integer translations on the torus (rows, columns)."""
    try:
        a, b = g
    except (TypeError, ValueError) as err:
        raise TypeError(f"`g` must be a pair (a, b) of integer shifts (an element of Z_S x Z_S), got {g!r}.") from err
    S = x.shape[0]
    return jnp.roll(x, (group_element(a, S, "g"), group_element(b, S, "g")), axis=(0, 1))


def rotation_element(g) -> int:
    """Validate an element of p4's rotation part C_4: an int (quarter turns, mod 4) or a 2x2 rotation
    matrix by a multiple of 90°. Anything else (e.g. 45°, a reflection) raises naming `g`."""
    if isinstance(g, (int, np.integer)) and not isinstance(g, (bool, np.bool_)):
        return int(g) % 4
    arr = np.asarray(g, dtype=float) if not isinstance(g, (str, bytes)) else None
    if arr is not None and arr.shape == (2, 2):
        for r in range(4):
            c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][r]
            if np.allclose(arr, [[c, -s], [s, c]], atol=1e-12):
                return r
        raise ValueError("`g` is not a group element of p4: the matrix is not a rotation by a multiple of 90°.")
    raise TypeError(f"`g` must be an int number of quarter turns or a 2x2 rotation matrix, got {g!r}.")


def rotate_p4(x, g) -> jax.Array:
    """`R^g x`: rotate an image `(S, S[, c])` by g quarter turns (counter-clockwise)."""
    return jnp.rot90(x, rotation_element(g), axes=(0, 1))


def init_p4(key, channels: int = 8, kernel: int = 3, arch: str = "cnn", dtype=None) -> dict:
    """Lifting + one group convolution. `"cnn"`: one filter rotated per orientation (p4-equivariant);
    `"lc"`: independent filters per orientation (the untied control, same shapes)."""
    check_choice(arch, "arch", ARCHS_2D)
    dtype = jnp.result_type(float) if dtype is None else dtype
    k1, k2 = jax.random.split(key)
    lead = (4,) if arch == "lc" else ()
    lift = float(np.sqrt(2.0 / kernel ** 2)) * jax.random.normal(k1, lead + (kernel, kernel, 1, channels), dtype)
    group = float(np.sqrt(2.0 / (4 * kernel ** 2 * channels))) * jax.random.normal(k2, lead + (4, kernel, kernel, channels, channels), dtype)
    return {"lift": lift, "group": group}


def apply_p4(params, x) -> jax.Array:
    """p4 feature field `(4, S, S, C)` of one image `(S, S)` (lifting, ReLU, group convolution).

    Lifting `F[r] = x ⋆ ψ_r` and group convolution `F'[r] = Σ_s F[s] ⋆ k_{r,s}` with
    `ψ_r = rot90(ψ, r)`, `k_{r,s} = rot90(ψ'_{(s−r) mod 4}, r)` (tied) or independent filters (untied);
    each is one patches × matrix product over all orientations."""
    h = x[..., None] if x.ndim == 2 else x
    untied = params["lift"].ndim == 5
    lift = params["lift"]
    K = lift.shape[-3]
    w_lift = lift if untied else jnp.stack([jnp.rot90(lift, r, axes=(0, 1)) for r in range(4)])   # (4, K, K, 1, C)
    F = jax.nn.relu(jnp.einsum("pqijc,rijcd->rpqd", _patches(h, K), w_lift))                        # (4, S, S, C)
    psi = params["group"]
    # k[r, s] = the filter taking orientation s to output orientation r
    k = jnp.stack([jnp.stack([psi[r, (s - r) % 4] if untied else jnp.rot90(psi[(s - r) % 4], r, axes=(0, 1))
                              for s in range(4)]) for r in range(4)])                                # (4, 4, K, K, C, C)
    P = jax.vmap(lambda f: _patches(f, K))(F)                                                        # (4, S, S, K, K, C)
    return jnp.einsum("spqijc,rsijcd->rpqd", P, k)


def act_p4_field(F, g) -> jax.Array:
    """Regular representation on a p4 field `(4, S, S, C)`: rotate each map, shift the orientation axis."""
    r = rotation_element(g)
    return jnp.roll(jnp.rot90(F, r, axes=(1, 2)), r, axis=0)


def p4_fibers(F) -> jax.Array:
    """The 4 orientation fibers `(4, C)` after spatial mean pooling."""
    return jnp.mean(F, axis=(1, 2))


# --------------------------------------------------------------------------------------------------
# 2-D backbones as fiber maps (used by the 2-D training cells)
# --------------------------------------------------------------------------------------------------
#
# A group element is an int `g ∈ [0, G)`, read as a pair `(a, b) = divmod(g, M_b)` with moduli
# `(M_a, M_b)`: `(S, S)` for translations of the S×S torus (`a` rows, `b` columns), `(4, 1)` for the
# quarter turns of p4 (`a` = number of turns). Composition and inverse are component-wise mod the
# moduli; `g = 0` is the identity. The fibers of one image are a `(G, C)` array in the same order:
# the S² positions of the translation CNN's field, or the 4 spatially pooled orientations of the p4
# field. For the equivariant backbones `fibers(T_g x)[h] = fibers(x)[g⁻¹ h]` exactly.

GROUPS_2D = ("translation", "p4")


class Backbone2D(NamedTuple):
    """Static description of a 2-D backbone (hashable)."""

    group: str = "translation"
    arch: str = "cnn"
    side: int = 14
    channels: int = 8
    kernel: int = 3
    n_layers: int = 2

    @property
    def moduli(self) -> tuple[int, int]:
        return (self.side, self.side) if self.group == "translation" else (4, 1)

    @property
    def n_elements(self) -> int:
        a, b = self.moduli
        return a * b


def backbone2d_spec(group: str = "translation", arch: str = "cnn", *, side: int = 14, channels: int = 8,
                    kernel: int = 3, n_layers: int = 2) -> Backbone2D:
    """Validated `Backbone2D`: `group` "translation" (circular 2-D CNN, `n_layers` layers) or "p4"
    (lifting + one group convolution, `n_layers` must be 2); `arch` "cnn" (tied) or "lc" (untied control)."""
    check_choice(group, "group", GROUPS_2D)
    check_choice(arch, "arch", ARCHS_2D)
    side = check_int(side, "side", minimum=3)
    channels = check_int(channels, "channels", minimum=1)
    kernel = check_int(kernel, "kernel", minimum=1)
    n_layers = check_int(n_layers, "n_layers", minimum=1)
    if kernel % 2 == 0:
        raise ValueError(f"`kernel` must be odd, got {kernel}.")
    if group == "p4" and n_layers != 2:
        raise ValueError(f"`n_layers` must be 2 for the p4 backbone (lifting + one group convolution), got {n_layers}.")
    if 1 + (kernel - 1) * n_layers > side:
        raise ValueError(f"`n_layers` x (`kernel` - 1) + 1 exceeds the image `side` {side}: the receptive field would wrap.")
    return Backbone2D(group, arch, side, channels, kernel, n_layers)


def init_backbone2d(key, spec: Backbone2D, dtype=None):
    """Weights of the backbone described by `spec` (`init_translation_cnn` or `init_p4`)."""
    if spec.group == "translation":
        return init_translation_cnn(key, spec.side, spec.channels, spec.kernel, spec.n_layers, spec.arch, dtype=dtype)
    return init_p4(key, spec.channels, spec.kernel, spec.arch, dtype=dtype)


def fibers2d(params, x, spec: Backbone2D) -> jax.Array:
    """The `(G, C)` fibers of one image `x (S, S)`: field positions (translation) or pooled orientations (p4)."""
    if spec.group == "translation":
        F = apply_translation_cnn(params, x)
        return F.reshape(-1, F.shape[-1])
    return p4_fibers(apply_p4(params, x))


def action_table(spec: Backbone2D) -> np.ndarray:
    """`(G, S²)` int table `P` with `(T_g x).ravel() = x.ravel()[P[g]]` (a roll or a quarter turn)."""
    base = np.arange(spec.side * spec.side).reshape(spec.side, spec.side)
    if spec.group == "translation":
        rows = [np.roll(base, (a, b), axis=(0, 1)).ravel() for a in range(spec.side) for b in range(spec.side)]
    else:
        rows = [np.rot90(base, r).ravel() for r in range(4)]
    return np.stack(rows).astype(np.int32)


def element_inverse(g, spec: Backbone2D):
    """`g⁻¹` of int-coded elements (works on traced arrays)."""
    ma, mb = spec.moduli
    return ((-(g // mb)) % ma) * mb + (-(g % mb)) % mb


def element_compose(g, h, spec: Backbone2D):
    """`g h` of int-coded elements (the groups are abelian: component-wise addition)."""
    ma, mb = spec.moduli
    return ((g // mb + h // mb) % ma) * mb + (g % mb + h % mb) % mb


def _check_image(x, spec: Backbone2D, name: str = "x"):
    x = as_array(x, name, ndim=2)
    if x.shape != (spec.side, spec.side):
        raise ValueError(f"`{name}` must be one ({spec.side}, {spec.side}) image for this backbone, got {tuple(x.shape)}.")
    return x


def _check_element(g, spec: Backbone2D) -> int:
    if isinstance(g, (bool, np.bool_)) or not isinstance(g, (int, np.integer)):
        raise TypeError(f"`g` must be an int group element in [0, {spec.n_elements}), got {g!r}.")
    if not 0 <= int(g) < spec.n_elements:
        raise ValueError(f"`g` must lie in [0, {spec.n_elements}) for the {spec.group} group, got {g}.")
    return int(g)


def act_image(x, g, spec: Backbone2D) -> jax.Array:
    """`T_g x` of one image for an int-coded element `g` (validated)."""
    x = _check_image(x, spec)
    g = _check_element(g, spec)
    return x.reshape(-1)[action_table(spec)[g]].reshape(x.shape)


def fiber_equivariance_error(params, X, g, spec: Backbone2D) -> jax.Array:
    """`max_x ‖fib(T_g x)[h] − fib(x)[g⁻¹h]‖ / ‖fib(x)‖` over the images of `X (n, S, S)`."""
    X = as_array(X, "X", ndim=3)
    if X.shape[1:] != (spec.side, spec.side):
        raise ValueError(f"`X` must hold ({spec.side}, {spec.side}) images, got {tuple(X.shape[1:])}.")
    g = _check_element(g, spec)
    P = jnp.asarray(action_table(spec))
    fib = jax.vmap(lambda x: fibers2d(params, x, spec))
    F = fib(X)
    Fg = fib(X.reshape(len(X), -1)[:, P[g]].reshape(X.shape))
    idx = element_compose(element_inverse(g, spec), jnp.arange(spec.n_elements), spec)
    diff = Fg - F[:, idx]
    return jnp.max(jnp.linalg.norm(diff.reshape(len(X), -1), axis=1) / jnp.linalg.norm(F.reshape(len(X), -1), axis=1))

"""Tests for the MNIST-1D-style generator `ssldyn.data.make_mnist1d`.

Independent checks: np.roll for the cyclic group, knot values of the templates read off directly,
noise variances and autocorrelations against explicitly summed kernels, and class counts.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ssldyn import data as D


def test_shapes_dtypes_and_determinism():
    X, y, nu = D.make_mnist1d(3, 50)
    assert X.shape == (50, 40) and X.dtype == np.float64
    assert y.shape == (50,) and y.dtype == np.int64
    assert set(nu) == set(D.NUISANCE_NAMES)
    assert all(v.shape == (50,) for v in nu.values()) and nu["shift"].dtype == np.int64
    X2, y2, nu2 = D.make_mnist1d(3, 50)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _, _ = D.make_mnist1d(4, 50)
    assert not np.allclose(X, X3)
    # typed and raw jax keys carry the same key data, hence the same signals
    Xa, _, _ = D.make_mnist1d(jax.random.key(7), 20, length=24)
    Xb, _, _ = D.make_mnist1d(jax.random.PRNGKey(7), 20, length=24)
    np.testing.assert_array_equal(Xa, Xb)
    assert Xa.shape == (20, 24)
    Xc, _, _ = D.make_mnist1d(jax.random.key(8), 20, length=24)
    assert not np.allclose(Xa, Xc)


def test_nuisance_ranges_and_balance():
    _, y, nu = D.make_mnist1d(0, 200, scale_range=(0.5, 0.6), shear_range=(-0.1, 0.2), max_shift=5,
                              corr_noise_range=(0.1, 0.3), white_noise_range=(0.0, 0.05))
    assert np.all(np.bincount(y, minlength=10) == 20)
    assert nu["shift"].min() >= 0 and nu["shift"].max() <= 5 and len(np.unique(nu["shift"])) == 6
    assert np.all((nu["scale"] >= 0.5) & (nu["scale"] <= 0.6))
    assert np.all((nu["shear"] >= -0.1) & (nu["shear"] <= 0.2))
    assert np.all((nu["corr_noise"] >= 0.1) & (nu["corr_noise"] <= 0.3))
    _, _, nu0 = D.make_mnist1d(0, 30, max_shift=0)
    assert np.all(nu0["shift"] == 0)


def test_template_knots_read_off_exactly():
    # 11 positions per pattern (width * stretch * length = 11) put the 12 knots on positions 0..11.
    L = 40
    y = np.arange(10)
    nu = {"shift": np.zeros(10, np.int64), "scale": np.ones(10), "stretch": np.ones(10), "shear": np.zeros(10)}
    clean = D.render_mnist1d(y, nu, length=L, width=11 / L)
    np.testing.assert_allclose(clean[:, :12], D.MNIST1D_TEMPLATES, atol=1e-12)
    np.testing.assert_array_equal(clean[:, 12:], 0.0)
    # scale multiplies; the shear adds b * (v - 1/2) on the pattern only
    nu2 = dict(nu, scale=np.full(10, 2.0), shear=np.full(10, 0.5))
    clean2 = D.render_mnist1d(y, nu2, length=L, width=11 / L)
    v = np.arange(12) / 11
    np.testing.assert_allclose(clean2[:, :12], 2.0 * (D.MNIST1D_TEMPLATES + 0.5 * (v - 0.5)), atol=1e-12)


def test_cyclic_shift_acts_exactly():
    _, y, nu = D.make_mnist1d(1, 30)
    base = dict(nu, shift=np.zeros_like(nu["shift"]))
    c0 = D.render_mnist1d(y, base)
    c = D.render_mnist1d(y, nu)
    rolled = np.stack([np.roll(c0[i], nu["shift"][i]) for i in range(30)])
    np.testing.assert_array_equal(c, rolled)


def test_noise_levels_match_recorded_nuisances():
    n = 4000
    X, y, nu = D.make_mnist1d(2, n, corr_noise_range=(0.0, 0.5), white_noise_range=(0.0, 0.5))
    resid = X - D.render_mnist1d(y, nu)
    # E[resid^2] = c^2 + w^2 per position (correlated noise has unit variance per position)
    ratio = np.mean(resid ** 2) / np.mean(nu["corr_noise"] ** 2 + nu["white_noise"] ** 2)
    # n*L = 160k squared Gaussians, but only ~n independent levels: relative SE ~ a few 1e-3
    assert abs(ratio - 1.0) < 0.03


def test_correlated_noise_autocorrelation():
    n, L, ell = 3000, 40, 2.0
    X, y, nu = D.make_mnist1d(5, n, corr_noise_range=(1.0, 1.0), white_noise_range=(0.0, 0.0), corr_length=ell)
    r = X - D.render_mnist1d(y, nu)
    # independent: kernel k(d) on the circle, autocorrelation rho(l) = sum_d k(d) k(d+l) / sum_d k(d)^2
    d = np.array([min(i, L - i) for i in range(L)], float)
    k = np.exp(-0.5 * (d / ell) ** 2)
    rho = [sum(k[i] * k[(i + lag) % L] for i in range(L)) / np.sum(k ** 2) for lag in range(4)]
    emp = [np.mean(r * np.roll(r, -lag, axis=1)) for lag in range(4)]
    # n*L/(correlation length ~ 5) ~ 2e4 effective samples: SE ~ 0.01; 0.04 is 4 SE
    np.testing.assert_allclose(emp, rho, atol=0.04)


def test_shift_makes_raw_signals_hard_for_linear_models():
    # Sanity of the task: class means of unshifted signals differ strongly; shifting all 40 positions
    # makes the class-mean profiles (nearly) flat, i.e. the nuisance group is really in the data.
    X0, y0, _ = D.make_mnist1d(0, 2000, max_shift=0)
    X1, y1, _ = D.make_mnist1d(0, 2000)
    spread0 = np.mean([X0[y0 == c].mean(0).std() for c in range(10)])
    spread1 = np.mean([X1[y1 == c].mean(0).std() for c in range(10)])
    assert spread1 < 0.35 * spread0


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(key=-1), "key"),
    (dict(key="a"), "key"),
    (dict(key=jax.random.split(jax.random.key(0), 2)), "key"),
    (dict(n=0), "n"),
    (dict(max_shift=40), "max_shift"),
    (dict(scale_range=(1.0, 0.5)), "scale_range"),
    (dict(stretch_range=(0.5, 2.0)), "width"),
    (dict(white_noise_range=(-0.1, 0.1)), "white_noise_range"),
    (dict(length=1), "length"),
])
def test_bad_input(kwargs, match):
    args = dict(key=0, n=10)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        D.make_mnist1d(args.pop("key"), args.pop("n"), **args)

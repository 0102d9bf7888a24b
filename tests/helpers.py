"""Small shared fixtures for tests (random problems with known structure)."""

import jax
import jax.numpy as jnp


def random_symmetric(key, d, *, spectrum=None):
    """A random symmetric matrix, optionally with a prescribed spectrum (descending)."""
    A = jax.random.normal(key, (d, d))
    if spectrum is None:
        return (A + A.T) / 2
    Q, _ = jnp.linalg.qr(A)
    return (Q * jnp.asarray(spectrum)[None, :]) @ Q.T


def random_views(key, n, d, *, noise=0.3):
    """Anchors, positives (anchor + noise) and negatives (a shuffled anchor + noise)."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    scales = jnp.linspace(2.0, 0.3, d)
    X = jax.random.normal(k1, (n, d)) * scales
    Xp = X + noise * jax.random.normal(k2, (n, d))
    perm = jax.random.permutation(k3, n)
    Xn = X[perm] + noise * jax.random.normal(k4, (n, d))
    return X, Xp, Xn


def proj(W):
    Q, _ = jnp.linalg.qr(W)
    return Q @ Q.T

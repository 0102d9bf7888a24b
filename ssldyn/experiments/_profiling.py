"""Counting XLA compilations: how many programs a run compiled and how long compiling took.

On an accelerator the number of compiled programs, not the arithmetic, often decides the wall time
of a sweep of small problems; on a CPU compilation is still a large part of what a user waits for.
`COMPILES` listens to JAX's own compilation events (`jax.monitoring`), process-wide, so it sees every
compilation (explicit `jit(...).lower().compile()`, implicit jit dispatch, eager op-by-op
execution, the library's internals), not only the ones a caller times itself.

    before = COMPILES.snapshot()
    ...                                    # anything
    n, seconds = COMPILES.since(before)    # backend compilations and their total duration
    hits = COMPILES.cache_hits_since(before)  # of them, loaded from JAX's persistent compilation cache

With a persistent compilation cache (`ssldyn run --compile-cache`), JAX still reports each program as a
backend compilation, its duration being the time to load it; `cache_hits_since` counts those loads.

JAX offers no way to unregister a listener, so there is one listener for the whole process.
"""

from __future__ import annotations

import threading

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
TRACE = "/jax/core/compile/jaxpr_trace_duration"
CACHE_HIT = "/jax/compilation_cache/cache_hits"


class CompileCounter:
    """Process-wide count of XLA backend compilations, their total duration and jaxpr traces."""

    def __init__(self):
        self.compiles = 0
        self.compile_seconds = 0.0
        self.traces = 0
        self.cache_hits = 0
        self._lock = threading.Lock()
        self._registered = False

    def _ensure(self) -> None:
        if not self._registered:
            jax.monitoring.register_event_duration_secs_listener(self._listen)
            jax.monitoring.register_event_listener(self._event)
            self._registered = True

    def _listen(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            with self._lock:
                self.compiles += 1
                self.compile_seconds += float(duration)
        elif event == TRACE:
            with self._lock:
                self.traces += 1

    def _event(self, event, **kwargs):
        if event == CACHE_HIT:
            with self._lock:
                self.cache_hits += 1

    def snapshot(self) -> tuple[int, float, int, int]:
        """`(compilations, compile seconds, traces, cache hits)` so far (starts listening on first use)."""
        self._ensure()
        with self._lock:
            return self.compiles, self.compile_seconds, self.traces, self.cache_hits

    def cache_hits_since(self, snapshot: tuple[int, float, int, int]) -> int:
        """Programs loaded from the persistent compilation cache since `snapshot`."""
        return self.snapshot()[3] - snapshot[3]

    def since(self, snapshot: tuple[int, float, int, int]) -> tuple[int, float]:
        """Backend compilations and their total seconds since `snapshot`."""
        n, s = self.snapshot()[:2]
        return n - snapshot[0], s - snapshot[1]


COMPILES = CompileCounter()


def configure_compile_cache(path) -> str | None:
    """Turn on JAX's persistent compilation cache in `path` (every program, however quick to compile), so
    that a rerun or a resumed run loads its programs instead of compiling them again. `None`, `""` or
    `"off"` leave JAX's setting as it is (off unless the user set `JAX_COMPILATION_CACHE_DIR`); a cache the
    user configured already is kept. Returns the cache directory in use, or None."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return str(current)
    if path is None or str(path) in ("", "off"):
        return None
    from pathlib import Path

    path = Path(path).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


def default_compile_cache() -> str:
    """`$SSLDYN_COMPILE_CACHE` if set (`off` disables), else `$XDG_CACHE_HOME/ssldyn/xla` (`~/.cache/ssldyn/xla`)."""
    import os

    env = os.environ.get("SSLDYN_COMPILE_CACHE")
    if env is not None:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ssldyn", "xla")

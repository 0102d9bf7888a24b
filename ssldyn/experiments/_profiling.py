"""Counting XLA compilations: how many programs a run compiled and how long compiling took.

On an accelerator the number of compiled programs, not the arithmetic, often decides the wall time
of a sweep of small problems; on a CPU compilation is still a large part of what a user waits for.
`COMPILES` listens to JAX's own compilation events (`jax.monitoring`), process-wide, so it sees every
compilation (explicit `jit(...).lower().compile()`, implicit jit dispatch, eager op-by-op
execution, the library's internals), not only the ones a caller times itself.

    before = COMPILES.snapshot()
    ...                                    # anything
    n, seconds = COMPILES.since(before)    # backend compilations and their total duration

JAX offers no way to unregister a listener, so there is one listener for the whole process.
"""

from __future__ import annotations

import threading

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
TRACE = "/jax/core/compile/jaxpr_trace_duration"


class CompileCounter:
    """Process-wide count of XLA backend compilations, their total duration and jaxpr traces."""

    def __init__(self):
        self.compiles = 0
        self.compile_seconds = 0.0
        self.traces = 0
        self._lock = threading.Lock()
        self._registered = False

    def _ensure(self) -> None:
        if not self._registered:
            jax.monitoring.register_event_duration_secs_listener(self._listen)
            self._registered = True

    def _listen(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            with self._lock:
                self.compiles += 1
                self.compile_seconds += float(duration)
        elif event == TRACE:
            with self._lock:
                self.traces += 1

    def snapshot(self) -> tuple[int, float, int]:
        """`(compilations, compile seconds, traces)` so far (starts listening on first use)."""
        self._ensure()
        with self._lock:
            return self.compiles, self.compile_seconds, self.traces

    def since(self, snapshot: tuple[int, float, int]) -> tuple[int, float]:
        """Backend compilations and their total seconds since `snapshot`."""
        n, s, _ = self.snapshot()
        return n - snapshot[0], s - snapshot[1]


COMPILES = CompileCounter()

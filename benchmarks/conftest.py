"""Shared helpers for the benchmarks: every speed target is a ratio against a baseline measured
in the same run, on the same machine, never a wall-clock number."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch

from cae_fast import ops


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Fastest of ``repeat`` timed calls (seconds): the least noisy estimate on a shared machine."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved_best(fns: dict[str, Callable[[], object]], rounds: int = 10) -> dict[str, float]:
    """Fastest time of each function, calling them in turns so that background load on a shared
    machine hits every contender alike (a ratio of two separate runs would measure the load)."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def fused_seconds(benchmark) -> float:
    """Best time pytest-benchmark measured for the fused op in this test."""
    return benchmark.stats.stats.min


def time_against(
    benchmark, work: Callable[[], object], baseline: Callable[[], float], baseline_name: str, rounds: int = 2
) -> tuple[float, float, object]:
    """Times ``work`` (the compiled side: the row's figure) with pytest-benchmark, and before each of
    its rounds runs ``baseline``, which returns its own duration in seconds, so that the two take
    turns under the same load. Records ``baseline`` (its name), ``baseline_s`` and ``ratio`` (baseline
    seconds / work seconds) in the row's extra_info. Returns (work s, baseline s, work's result),
    each time the best of its rounds."""
    base: list[float] = []
    result = benchmark.pedantic(work, setup=lambda: base.append(baseline()), rounds=rounds, iterations=1)
    t_work, t_base = benchmark.stats.stats.min, min(base)
    benchmark.extra_info.update(baseline=baseline_name, baseline_s=t_base, ratio=t_base / t_work)
    return t_work, t_base, result


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    """``fn`` as a baseline for ``time_against``: calls it and returns its duration in seconds."""

    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run


@pytest.fixture(autouse=True)
def _compiled_only():
    if ops.backend() == "reference":
        pytest.skip(f"benchmarks compare compiled ops with the reference; not built: {ops.load_error()}")
    torch.manual_seed(0)

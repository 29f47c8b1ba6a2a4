"""Wall-clock timing shared by the benches (imported as a sibling module: benches run as `python bench/x.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, repeats: int, warmup: bool = False) -> float:
    """Best wall time of `repeats` calls (after one untimed call when `warmup`)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)

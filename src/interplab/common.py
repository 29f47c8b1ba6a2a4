"""Device, dtype, seeding and logging: decided in one place, with the reason for each default."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from rich.logging import RichHandler


def get_device(requested: str | torch.device | None = None) -> torch.device:
    """The device to run on: the one asked for, else CUDA when present, else CPU.

    MPS is not picked automatically: several ops we rely on (topk backward, index_add in bf16)
    are missing or slow there, so a Mac user opts in with `--device mps`.
    """
    if requested is not None and str(requested) != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# The one table of dtype names (with or without a "torch." prefix) for models, stores and SAEs.
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
}


def get_dtype(name: str | torch.dtype | None, device: torch.device | None = None) -> torch.dtype:
    """Parse a dtype name. Default: float32 on CPU (bf16 matmuls are slow on most CPUs and
    lose the precision the tests compare at); bfloat16 on CUDA (same range as fp32, halves memory)."""
    if isinstance(name, torch.dtype):
        return name
    if name is None or name == "auto":
        dev = device or get_device()
        return torch.bfloat16 if dev.type == "cuda" else torch.float32
    try:
        return _DTYPES[str(name).removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(set(_DTYPES))}") from None


def dtype_name(dtype: torch.dtype) -> str:
    """'torch.float32' -> 'float32' (what we write in JSON files)."""
    return str(dtype).removeprefix("torch.")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU generator for code that wants its own stream."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


_CONFIGURED = False


def get_logger(name: str) -> logging.Logger:
    """A logger under 'interplab'. The library never prints; the CLI configures rich output once."""
    return logging.getLogger(name if name.startswith("interplab") else f"interplab.{name}")


def configure_logging(level: str | int | None = None) -> None:
    """Route interplab logs through rich (called by the CLI, not on import)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    level = level or os.environ.get("INTERPLAB_LOG", "INFO")
    root = logging.getLogger("interplab")
    root.setLevel(level)
    root.addHandler(RichHandler(show_path=False, rich_tracebacks=False))
    root.propagate = False
    _CONFIGURED = True


class InterplabError(Exception):
    """An error a user can fix (bad input, missing file, wrong shape).

    The message is one line that names the fix; the CLI prints it without a traceback.
    """


def free_cpu_threads(requested: int | None = None) -> int:
    """Threads for CPU work: `requested`, else OMP_NUM_THREADS when set, else the cores not already busy
    (cores minus the 1-minute load average, at least 1).

    Why not torch's default of one thread per core: OpenMP threads spin while they wait for each other,
    so on a machine whose cores are busy with other work they mostly wait. Measured on the shared
    2-core CI machine under load (bench/README.md, "Threads"): TopK training 4-15x slower with 2
    threads than with 1, at every size tried. On an idle machine this still picks every core.
    """
    if requested is not None:
        if requested < 1:
            raise InterplabError(f"threads must be at least 1, got {requested}")
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


@contextmanager
def cpu_threads(device: str | torch.device | None, threads: int | None = None) -> Iterator[None]:
    """On the CPU, use `free_cpu_threads(threads)` threads within the block (torch's count restored after)."""
    before = torch.get_num_threads()
    if get_device(device).type == "cpu":
        torch.set_num_threads(free_cpu_threads(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)

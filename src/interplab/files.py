"""Small file helpers shared by every stage that writes a run folder.

Atomic writes: a temp file next to the target, then `os.replace`, so a killed run leaves either the old
file or the new one, never a torn one (readers take a file that exists as finished). JSON-safe values:
JSON has no NaN/inf, so they become null (the web UI shows null as "n/a") and tensors become lists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as None, tensors as lists and mapping keys as strings (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Tensor):
        return json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_bytes_atomic(path: Path, data: bytes, fsync: bool = False) -> None:
    """Replace `path` with `data` in one step; `fsync` also survives a power cut, not just a kill."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with UTF-8 `text` in one step."""
    write_bytes_atomic(path, text.encode("utf-8"))

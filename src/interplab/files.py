"""Small file helpers shared by every stage that writes a run folder.

Atomic writes: a temp file next to the target, then `os.replace`, so a killed run leaves either the old
file or the new one, never a torn one (readers take a file that exists as finished). JSON-safe values:
JSON has no NaN/inf, so they become null (the web UI shows null as "n/a") and tensors become lists.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from interplab.common import InterplabError


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


def write_json_atomic(path: Path, value: Any, indent: int | None = 2) -> None:
    """Replace `path` with `value` as JSON (non-finite floats as null, so the file stays valid JSON)."""
    write_text_atomic(path, json.dumps(json_safe(value), indent=indent, allow_nan=False))


def read_json_object(path: Path, what: str = "JSON file") -> dict[str, Any]:
    """The JSON object in `path`, or one InterplabError naming the file and the fix (missing, not UTF-8,
    invalid JSON, or not an object)."""
    path = Path(path)
    if not path.is_file():
        raise InterplabError(f"no {path.name} in {path.parent} ({what})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InterplabError(f"{path} is not UTF-8 text ({what}); restore or delete it") from None
    except json.JSONDecodeError as e:
        raise InterplabError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); restore or delete it") from None
    if not isinstance(data, dict):
        raise InterplabError(f"{path} must hold a JSON object, not {type(data).__name__} ({what})")
    return data


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()

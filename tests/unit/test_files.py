"""Shared file helpers: JSON-safe values and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from interplab.files import json_safe, write_bytes_atomic, write_text_atomic


def test_non_finite_floats_become_null_and_tensors_lists() -> None:
    value = {"a": float("nan"), 1: [float("inf"), 2.0, (torch.tensor([1.5, float("-inf")]),)]}
    assert json.dumps(json_safe(value)) == '{"a": null, "1": [null, 2.0, [[1.5, null]]]}'


def test_atomic_writes_replace_the_file_and_leave_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_text_atomic(path, "old")
    write_bytes_atomic(path, b"new", fsync=True)
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["x.json"]

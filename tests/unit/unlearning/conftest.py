"""A tiny knowledge organism built once per session, and single-threaded torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)
from unlearning_data import build_tiny_organism


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_dir) -> Path:
    return tiny_model_dir("llama", d_model=64)


@pytest.fixture(scope="session")
def tiny_organism(tmp_path_factory, tiny_llama) -> Path:
    return build_tiny_organism(tmp_path_factory.mktemp("unlearning") / "organism", tiny_llama)

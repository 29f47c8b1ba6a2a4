"""Tiny models in float64 for graph tests."""

from __future__ import annotations

import pytest

from interplab.models import load_model


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def tiny64(request, tiny_model_dir):
    lm = load_model(tiny_model_dir(request.param, n_layers=3), device="cpu")
    lm.model.double()
    return lm

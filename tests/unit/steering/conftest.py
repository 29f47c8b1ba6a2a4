import pytest

from interplab.models import load_model


@pytest.fixture(scope="package")
def gpt2(tiny_model_dir):
    """A tiny random GPT-2 (2 blocks, d=64), loaded once for the steering tests."""
    return load_model(tiny_model_dir("gpt2"))

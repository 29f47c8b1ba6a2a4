"""Fixtures for the activation-store tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run torch single-threaded: tiny models spend most of their time in thread hand-offs on a loaded
    2-core CI box (50x slower than one thread); restored afterwards so other tests are unaffected."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

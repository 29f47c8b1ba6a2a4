"""One torch thread for these tests: the CI machine is shared, and small ops slow down many-fold
when several processes each spread over every core. Restored afterwards for other test folders."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

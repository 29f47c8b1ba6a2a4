"""One torch thread for the test folders whose conftest imports this fixture.

The CI machine has 2 shared cores: tiny tensor ops slow down many-fold when several processes each
spread over every core, and thread hand-offs cost more than they save on small tensors. The previous
thread count is restored afterwards for other test folders.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

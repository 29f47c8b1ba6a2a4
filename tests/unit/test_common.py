"""common.py: the thread count CPU work runs with."""

from __future__ import annotations

import pytest
import torch

from interplab.common import InterplabError, cpu_threads, free_cpu_threads


def test_cpu_threads_sets_the_count_on_the_cpu_and_restores_it_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"), cpu_threads("cpu", threads=1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_free_cpu_threads_takes_omp_num_threads_and_refuses_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert free_cpu_threads() == 3
    assert free_cpu_threads(2) == 2
    with pytest.raises(InterplabError, match="at least 1"):
        free_cpu_threads(0)

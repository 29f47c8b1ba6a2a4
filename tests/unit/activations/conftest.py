"""Fixtures for the activation-store tests."""

from __future__ import annotations

import logging

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


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def records():
    """Log records of the 'interplab' logger (pytest's caplog misses them once the CLI configured logging,
    which stops propagation)."""
    logger, handler = logging.getLogger("interplab"), _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(level)

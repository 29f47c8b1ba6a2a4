"""LR and sparsity schedules, checked against the closed-form values."""

from __future__ import annotations

import math

import pytest

from interplab.common import InterplabError
from interplab.training import lr_at, sparsity_scale_at


def test_warmup_rises_linearly_to_the_peak():
    lrs = [lr_at(s, 100, 1.0, warmup_steps=4, decay="none") for s in range(6)]
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_linear_decay_over_last_fraction_reaches_zero_after_the_last_step():
    total, frac = 100, 0.2
    assert lr_at(79, total, 2.0, decay="linear", decay_fraction=frac) == 2.0
    assert lr_at(80, total, 2.0, decay="linear", decay_fraction=frac) == pytest.approx(2.0 * (1 - 1 / 20))
    assert lr_at(99, total, 2.0, decay="linear", decay_fraction=frac) == pytest.approx(0.0)
    # monotone non-increasing over the window
    window = [lr_at(s, total, 2.0, decay="linear", decay_fraction=frac) for s in range(80, 100)]
    assert all(a >= b for a, b in zip(window, window[1:], strict=False))


def test_cosine_decay_follows_the_half_cosine():
    total = 50
    for s in range(40, 50):
        progress = (s - 40 + 1) / 10
        assert lr_at(s, total, 1.0, decay="cosine", decay_fraction=0.2) == pytest.approx(
            0.5 * (1 + math.cos(math.pi * progress)))


def test_sparsity_warmup_goes_from_small_to_one():
    assert [sparsity_scale_at(s, 4) for s in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1])
    assert sparsity_scale_at(0, 0) == 1.0


def test_unknown_decay_is_a_clear_error():
    with pytest.raises(InterplabError, match="cosine"):
        lr_at(0, 10, 1.0, decay="exp")

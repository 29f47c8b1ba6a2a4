"""L0, firing frequencies, dead / dense fractions, checked against plain numpy counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interplab.common import InterplabError
from interplab.evals import log_frequency_histogram, sparsity_stats


def test_streamed_stats_equal_counting_over_all_tokens_at_once():
    gen = torch.Generator().manual_seed(0)
    z_NF = torch.relu(torch.randn(300, 12, generator=gen) - 1.0)
    z_NF[:, 3] = 0  # dead latent
    z_NF[:, 5] = 1.0  # dense latent, fires everywhere
    stats = sparsity_stats(z_NF.split(64))
    fired = z_NF.numpy() != 0
    assert stats.n_tokens == 300
    assert stats.l0 == pytest.approx(fired.sum(1).mean())
    np.testing.assert_allclose(stats.freq_F.numpy(), fired.mean(0), rtol=1e-6)
    assert stats.dead_fraction == pytest.approx((fired.sum(0) == 0).mean())
    assert stats.dense_fraction == pytest.approx((fired.mean(0) > 0.1).mean())
    assert stats.dead_fraction >= 1 / 12 and stats.dense_fraction >= 1 / 12


def test_leading_dims_are_flattened_into_tokens():
    z_BSF = torch.zeros(2, 5, 4)
    z_BSF[..., 0] = 2.0
    stats = sparsity_stats([z_BSF])
    assert stats.n_tokens == 10 and stats.l0 == 1.0 and stats.dead_fraction == 0.75


def test_histogram_counts_every_latent_and_puts_dead_ones_in_the_lowest_bin():
    freq_F = torch.tensor([0.0, 0.0, 1e-3, 0.5, 1.0])
    counts, edges = log_frequency_histogram(freq_F, bins=7, floor=1e-7)
    assert int(counts.sum()) == 5 and int(counts[0]) == 2
    assert edges[0] == pytest.approx(-7.0) and edges[-1] == pytest.approx(0.0)


def test_empty_stream_is_a_clear_error():
    with pytest.raises(InterplabError, match="at least one batch"):
        sparsity_stats([])

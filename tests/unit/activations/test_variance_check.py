"""The cache-time check: a warning with numbers when a few tokens carry the variance."""

from __future__ import annotations

import logging

import torch

from interplab.activations.exclusion import ExclusionRule
from interplab.activations.variance import VarianceCheck, log_report

N, T, D = 40, 32, 16


def sink_acts(seed: int = 0) -> torch.Tensor:
    """Gaussian activations of norm ~4 with a sink of norm ~400 at position 0 of every row."""
    acts = torch.randn(N, T, D, generator=torch.Generator().manual_seed(seed))
    acts[:, 0] *= 100.0
    return acts


def checked(acts: torch.Tensor, rule: ExclusionRule):
    real = torch.ones(N, T, dtype=torch.bool)
    check = VarianceCheck()
    for part in acts.split(16):  # streamed in several shards
        check.add(part, real[: len(part)], rule.keep_mask(torch.zeros(len(part), T, dtype=torch.long),
                                                          real[: len(part)], part))
    return check.report()


def test_kept_sinks_dominate_and_the_warning_gives_the_numbers(records):
    report = checked(sink_acts(), ExclusionRule())
    assert report.dominated and report.n_excluded == 0
    assert report.few_positions == {0: 1.0}  # the tokens carrying half the variance all sit at position 0
    assert report.few_fraction < 1 / T and report.top_share > 0.99
    assert report.median_norm_few > 50 * report.median_norm_kept
    log_report(report, ExclusionRule(), "blocks.3.resid_post")
    (record,) = records
    assert record.levelno == logging.WARNING
    assert "blocks.3.resid_post" in record.getMessage() and "position 0: 100%" in record.getMessage()
    assert "--exclude-sinks" in record.getMessage()


def test_excluded_sinks_leave_ordinary_tokens_and_the_log_says_what_they_carried(records):
    rule = ExclusionRule(first_positions=1)
    report = checked(sink_acts(), rule)
    assert not report.dominated and report.n_excluded == N
    assert report.excluded_share > 0.99 and report.few_fraction > 0.2
    log_report(report, rule, "blocks.3.resid_post")
    (record,) = records
    assert record.levelno == logging.INFO
    assert f"excluded {N} of {N * T} tokens (the first position of each sequence)" in record.getMessage()


def test_the_check_stops_collecting_at_its_sample_size():
    check = VarianceCheck(sample_tokens=100)
    real = torch.ones(N, T, dtype=torch.bool)
    for part in sink_acts().split(4):
        check.add(part, real[: len(part)], real[: len(part)])
    assert check.report().n_tokens == 4 * T  # the first shard passed the limit; later ones are skipped

"""Generalization matrices reflect shared vs unrelated directions; layer sweeps give one row per pair."""

from __future__ import annotations

import pytest
import torch

from interplab.common import InterplabError
from interplab.probes.generalization import (
    SplitData,
    contrast_fit,
    generalization_matrix,
    layer_sweep,
    matrix_rows,
    residual_fit,
    series_by,
)
from interplab.probes.linear import LinearProbeConfig, evaluate, stratified_split, train_linear_probe


def dataset(direction_D: torch.Tensor, n=300, seed=0, shift=3.0) -> SplitData:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    X = (
        torch.randn(n, direction_D.numel(), generator=gen, dtype=torch.float64)
        + shift * (2 * y[:, None] - 1) * direction_D
    )
    train, test = stratified_split(y, 0.3, seed=seed)
    return SplitData(X, y, train, test)


def three_datasets():
    e = torch.eye(12, dtype=torch.float64)
    return {"a": dataset(e[0], seed=1), "a_like": dataset(e[0], seed=2), "other": dataset(e[5], seed=3)}


def test_matrix_diagonal_is_in_domain_and_transfer_follows_shared_directions():
    data = three_datasets()
    cfg = LinearProbeConfig(C=1.0, device="cpu")
    result = generalization_matrix(data, residual_fit(cfg))
    probe = train_linear_probe(*data["a"].train, cfg)
    assert result.accuracy[0, 0].item() == pytest.approx(evaluate(probe, *data["a"].test).accuracy)
    assert result.accuracy[0, 1] > 0.9 and result.auroc[1, 0] > 0.95  # same direction transfers
    # unrelated direction: far worse than the shared one (not exactly chance: the probe's small weight
    # on dimension 5 still reads the other set's strongly separated classes)
    assert result.accuracy[0, 2] < 0.7 and result.auroc[0, 2] < 0.7
    contrast = generalization_matrix(data, contrast_fit(n_pairs=5))
    assert contrast.auroc[0, 1] > 0.9 and contrast.auroc[2, 0] < 0.7 and contrast.auroc[2, 2] > 0.95
    rows = matrix_rows(result, "residual")
    assert len(rows) == 9 and rows[1]["train"] == "a" and rows[1]["test"] == "a_like"


def test_mismatched_widths_are_rejected():
    data = {
        "a": dataset(torch.eye(4, dtype=torch.float64)[0]),
        "b": dataset(torch.eye(6, dtype=torch.float64)[0]),
    }
    with pytest.raises(InterplabError, match="widths"):
        generalization_matrix(data, residual_fit())


def test_layer_sweep_rows_and_series():
    data = three_datasets()
    rows = layer_sweep(
        {"blocks.0.resid_post": data, "blocks.1.resid_post": data}, LinearProbeConfig(device="cpu")
    )
    assert len(rows) == 6 and {r["dataset"] for r in rows} == set(data)
    xs, series = series_by(rows, "dataset", "hook", "accuracy")
    assert xs == ["blocks.0.resid_post", "blocks.1.resid_post"] and len(series["a"]) == 2

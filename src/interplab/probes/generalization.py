"""Train on dataset A, test on dataset B, for every pair: the generalization matrix.

Each dataset brings features X [n, d], labels y [n] and a train/test split. A `fit` function turns
training rows into a scorer (rows -> scores, > 0 predicts class 1); the cell (A, B) holds the scorer
trained on A's training rows, evaluated on B's test rows. The diagonal is in-domain test performance.
The same code serves residual-stream probes, SAE-feature probes and contrast directions: only `fit`
changes (see the three factories below).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from interplab.common import InterplabError
from interplab.probes.contrast import fit_contrast
from interplab.probes.linear import LinearProbeConfig, ProbeMetrics, auroc, train_linear_probe
from interplab.probes.sae_probes import train_sparse_probe

Scorer = Callable[[Tensor], Tensor]
FitFn = Callable[[Tensor, Tensor], Scorer]


@dataclass
class SplitData:
    """One dataset's probe inputs at one hook."""

    X_ND: Tensor
    """Features [n, d] (pooled activations, or SAE latents)."""
    y_N: Tensor
    """0/1 labels [n]."""
    train_idx: Tensor
    """Row indices used for fitting."""
    test_idx: Tensor
    """Held-out row indices used for scoring."""

    @property
    def train(self) -> tuple[Tensor, Tensor]:
        return self.X_ND[self.train_idx], self.y_N[self.train_idx]

    @property
    def test(self) -> tuple[Tensor, Tensor]:
        return self.X_ND[self.test_idx], self.y_N[self.test_idx]


class GeneralizationResult(NamedTuple):
    """Metrics of every (train dataset, test dataset) pair."""

    names: list[str]
    """Dataset names; rows = trained on, columns = tested on."""
    accuracy: Tensor
    """[n_datasets, n_datasets] test accuracy."""
    auroc: Tensor
    """[n_datasets, n_datasets] test AUROC."""


def score_metrics(scores_N: Tensor, y_N: Tensor) -> ProbeMetrics:
    """Accuracy (scores > 0 predicts 1) and AUROC of scores against 0/1 labels."""
    scores_N, y_N = scores_N.detach().cpu(), y_N.cpu().long()
    accuracy = ((scores_N > 0).long() == y_N).double().mean().item()
    return ProbeMetrics(accuracy=accuracy, auroc=auroc(scores_N, y_N), n=int(y_N.numel()))


def generalization_matrix(data: Mapping[str, SplitData], fit: FitFn) -> GeneralizationResult:
    """Fit on each dataset's training rows, evaluate on every dataset's test rows."""
    names = list(data)
    if not names:
        raise InterplabError("no datasets for the generalization matrix")
    dims = {d.X_ND.shape[1] for d in data.values()}
    if len(dims) != 1:
        raise InterplabError(f"datasets have different feature widths {sorted(dims)}; use one hook for all")
    acc = torch.full((len(names), len(names)), float("nan"), dtype=torch.float64)
    roc = acc.clone()
    for i, a in enumerate(names):
        scorer = fit(*data[a].train)
        for j, b in enumerate(names):
            X_test, y_test = data[b].test
            metrics = score_metrics(scorer(X_test), y_test)
            acc[i, j], roc[i, j] = metrics.accuracy, metrics.auroc
    return GeneralizationResult(names, acc, roc)


def residual_fit(cfg: LinearProbeConfig | None = None) -> FitFn:
    """Fit = an L2 logistic probe on all features."""

    def fit(X_ND: Tensor, y_N: Tensor) -> Scorer:
        return train_linear_probe(X_ND, y_N, cfg).logits

    return fit


def sparse_fit(k: int, selection: str = "mean_diff", cfg: LinearProbeConfig | None = None) -> FitFn:
    """Fit = select k latents on the training rows, then an L2 logistic probe on them (X = SAE latents)."""

    def fit(Z_NF: Tensor, y_N: Tensor) -> Scorer:
        return train_sparse_probe(Z_NF, y_N, k, selection, cfg).logits

    return fit


def contrast_fit(n_pairs: int | None = None, seed: int = 0) -> FitFn:
    """Fit = difference of class means from at most `n_pairs` examples per class (all when None)."""

    def fit(X_ND: Tensor, y_N: Tensor) -> Scorer:
        gen = torch.Generator().manual_seed(seed)
        pos, neg = X_ND[y_N == 1], X_ND[y_N == 0]
        if n_pairs is not None:
            pos = pos[torch.randperm(len(pos), generator=gen)[:n_pairs]]
            neg = neg[torch.randperm(len(neg), generator=gen)[:n_pairs]]
        probe = fit_contrast(pos, neg)
        return lambda X: probe.scores(X) - probe.threshold

    return fit


def matrix_rows(result: GeneralizationResult, probe_kind: str) -> list[dict]:
    """Long-format rows (probe, train, test, accuracy, auroc) for the CSV."""
    return [
        {
            "probe": probe_kind,
            "train": a,
            "test": b,
            "accuracy": float(result.accuracy[i, j]),
            "auroc": float(result.auroc[i, j]),
        }
        for i, a in enumerate(result.names)
        for j, b in enumerate(result.names)
    ]


def layer_sweep(
    data_by_hook: Mapping[str, Mapping[str, SplitData]], cfg: LinearProbeConfig | None = None
) -> list[dict]:
    """In-domain test metrics of a residual probe for every (hook, dataset): rows for the sweep table."""
    rows = []
    for hook, data in data_by_hook.items():
        for name, split in data.items():
            probe_scores = train_linear_probe(*split.train, cfg).logits
            metrics = score_metrics(probe_scores(split.test[0]), split.test[1])
            rows.append(
                {
                    "hook": hook,
                    "dataset": name,
                    "accuracy": metrics.accuracy,
                    "auroc": metrics.auroc,
                    "n_test": metrics.n,
                }
            )
    return rows


def series_by(rows: Sequence[dict], key: str, x_key: str, y_key: str) -> tuple[list, dict[str, list[float]]]:
    """Group sweep rows into plot series: x values in order of appearance, one y list per `key` value."""
    xs = list(dict.fromkeys(r[x_key] for r in rows))
    series: dict[str, list[float]] = {}
    for r in rows:
        series.setdefault(r[key], [float("nan")] * len(xs))[xs.index(r[x_key])] = r[y_key]
    return xs, series

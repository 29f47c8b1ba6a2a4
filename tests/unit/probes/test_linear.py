"""Logistic-regression probes agree with scikit-learn; our AUROC agrees with sklearn's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from interplab.common import InterplabError
from interplab.probes.linear import (
    LinearProbeConfig,
    auroc,
    evaluate,
    stratified_folds,
    stratified_split,
    train_linear_probe,
)


def planted(n: int = 600, d: int = 20, seed: int = 0, noise: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    X_ND = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(
        0.5, 3.0, d, dtype=torch.float64
    )
    X_ND += 2.0  # non-zero mean so the intercept matters
    w_D = torch.randn(d, generator=gen, dtype=torch.float64)
    logits = (X_ND - 2.0) @ w_D / w_D.norm() + noise * torch.randn(n, generator=gen, dtype=torch.float64)
    return X_ND, (logits > 0.3).long()


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
def test_weights_match_sklearn_on_raw_features(C):
    X, y = planted()
    probe = train_linear_probe(X, y, LinearProbeConfig(C=C, standardize=False, tol=1e-9, device="cpu"))
    ref = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X.numpy(), y.numpy())
    np.testing.assert_allclose(probe.weight_D.numpy(), ref.coef_[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probe.bias, ref.intercept_[0], rtol=1e-4, atol=1e-5)


def test_standardized_probe_matches_scaler_plus_sklearn_and_accuracy_within_half_percent():
    X, y = planted(n=1000, d=50, seed=1, noise=2.0)
    train, test = stratified_split(y, 0.3, seed=0)
    probe = train_linear_probe(X[train], y[train], LinearProbeConfig(C=0.5, tol=1e-9, device="cpu"))
    scaler = StandardScaler().fit(X[train].numpy())
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(
        scaler.transform(X[train].numpy()), y[train]
    )
    np.testing.assert_allclose(probe.weight_D.numpy(), ref.coef_[0], rtol=1e-4, atol=1e-5)
    ours = evaluate(probe, X[test], y[test])
    ref_acc = ref.score(scaler.transform(X[test].numpy()), y[test].numpy())
    assert abs(ours.accuracy - ref_acc) <= 0.005
    default = evaluate(train_linear_probe(X[train], y[train], LinearProbeConfig(C=0.5)), X[test], y[test])
    assert abs(default.accuracy - ref_acc) <= 0.005  # the default (looser) tolerance agrees too
    ref_auc = roc_auc_score(y[test].numpy(), ref.decision_function(scaler.transform(X[test].numpy())))
    assert ours.auroc == pytest.approx(ref_auc, abs=1e-3)
    assert ours.n == len(test)


def test_direction_is_the_gradient_of_the_logit_in_activation_space():
    X, y = planted(d=8)
    probe = train_linear_probe(X, y, LinearProbeConfig(device="cpu"))
    x = X[:1].clone().requires_grad_(True)
    probe.logits(x).sum().backward()
    grad = x.grad[0] / x.grad[0].norm()
    torch.testing.assert_close(probe.direction, grad)
    np.testing.assert_allclose(probe.predict_proba(X).numpy(), 1 / (1 + np.exp(-probe.logits(X).numpy())))


def test_auroc_matches_sklearn_with_ties():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 5, (300,), generator=gen).float()  # heavy ties
    labels = torch.randint(0, 2, (300,), generator=gen)
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-12)
    cont = torch.randn(300, generator=gen)
    assert auroc(cont, labels) == pytest.approx(roc_auc_score(labels.numpy(), cont.numpy()), abs=1e-12)
    assert math.isnan(auroc(torch.tensor([1.0, 2.0]), torch.tensor([0, 0])))
    assert auroc(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == 1.0


def test_bad_inputs_raise_one_line_errors():
    X, y = planted(n=20, d=3)
    with pytest.raises(InterplabError, match="single class"):
        train_linear_probe(X, torch.zeros(20, dtype=torch.long))
    with pytest.raises(InterplabError, match="entries"):
        train_linear_probe(X, y[:10])
    with pytest.raises(InterplabError, match="0/1"):
        train_linear_probe(X, y + 1)
    with pytest.raises(InterplabError, match="C must be"):
        train_linear_probe(X, y, LinearProbeConfig(C=0))


def test_splits_and_folds_are_stratified_disjoint_and_cover_everything():
    y = torch.tensor([0] * 70 + [1] * 30)
    train, test = stratified_split(y, 0.3, seed=5)
    assert set(train.tolist()).isdisjoint(test.tolist()) and len(train) + len(test) == 100
    assert y[test].sum().item() == 9 and len(test) == 30
    folds = stratified_folds(y, 5, seed=0)
    assert sorted(torch.cat(folds).tolist()) == list(range(100))
    assert all(y[f].sum().item() == 6 for f in folds)

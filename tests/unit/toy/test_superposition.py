"""The batched-instance toy model, its data and its training loop."""

import pytest
import torch

from interplab.common import InterplabError
from interplab.toy.superposition import ToyConfig, ToyModel, fit, generate_batch, weighted_mse


def test_generated_features_are_present_with_probability_p_and_uniform_when_present():
    p_IN = torch.tensor([[1.0, 0.5], [0.1, 0.02]])
    x_IBN = generate_batch(100_000, p_IN, torch.Generator().manual_seed(0))
    assert x_IBN.shape == (2, 100_000, 2)
    present_IN = (x_IBN > 0).float().mean(1)
    assert torch.allclose(present_IN, p_IN, rtol=0.06)
    values = x_IBN[0, :, 1][x_IBN[0, :, 1] > 0]
    assert values.max() < 1.0
    assert values.mean().item() == pytest.approx(0.5, abs=0.01)
    assert values.var().item() == pytest.approx(1 / 12, abs=0.003)


def test_instances_are_independent_models():
    model = ToyModel(3, 4, 2, "relu", generator=torch.Generator().manual_seed(0))
    x_IBN = torch.rand(3, 8, 4)
    out = model(x_IBN)
    assert out.out_IBN.shape == (3, 8, 4) and out.hidden_IBM.shape == (3, 8, 2)
    expected = torch.relu(x_IBN[1] @ model.W_IMN[1].T @ model.W_IMN[1] + model.b_IN[1])
    assert torch.allclose(out.out_IBN[1], expected, atol=1e-6)
    # Changing instance 0's weights leaves instance 1's output untouched.
    with torch.no_grad():
        model.W_IMN[0] += 1.0
    assert torch.allclose(model(x_IBN).out_IBN[1], expected, atol=1e-6)


def test_linear_model_has_no_relu():
    model = ToyModel(1, 3, 2, "linear", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.b_IN.fill_(-5.0)
    assert (model(torch.rand(1, 4, 3)).out_IBN < 0).any()


def test_weighted_mse_weights_each_feature_by_its_importance():
    out_IBN, x_IBN = torch.zeros(1, 2, 2), torch.ones(1, 2, 2)
    assert weighted_mse(out_IBN, x_IBN, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    assert weighted_mse(out_IBN, x_IBN, torch.tensor([[1.0, 1.0]])).item() == pytest.approx(1.0)


def test_fit_is_reproducible_and_reduces_the_loss():
    cfg = ToyConfig(
        n_features=3, n_hidden=2, steps=200, batch_size=256, lr=1e-2, restarts=2, eval_samples=4096, seed=3
    )
    a = fit(cfg, [1.0, 0.1], [1.0, 0.8, 0.6])
    b = fit(cfg, [1.0, 0.1], [1.0, 0.8, 0.6])
    assert a.W_IMN.shape == (2, 2, 3) and a.b_IN.shape == (2, 3) and a.loss_I.shape == (2,)
    assert torch.equal(a.W_IMN, b.W_IMN)
    assert (a.curve_TI[-1] < a.curve_TI[0]).all()


@pytest.mark.parametrize(
    ("kwargs", "prob", "message"),
    [
        ({}, [0.0], "feature probability"),
        ({}, [1.5], "feature probability"),
        ({"steps": 0}, [1.0], "at least 1"),
        ({"activation": "tanh"}, [1.0], "activation"),
        ({"schedule": "warm"}, [1.0], "schedule"),
    ],
)
def test_bad_settings_raise_a_one_line_error(kwargs, prob, message):
    cfg = ToyConfig(**{"n_features": 3, "n_hidden": 2, "steps": 2, "eval_samples": 16, **kwargs})
    with pytest.raises(InterplabError, match=message):
        fit(cfg, prob)


def test_importance_of_the_wrong_length_is_rejected():
    with pytest.raises(InterplabError, match="importance"):
        fit(ToyConfig(n_features=3, n_hidden=2, steps=2, eval_samples=16), [1.0], [1.0, 0.5])


def test_fit_restores_the_torch_thread_count_and_reports_progress():
    before = torch.get_num_threads()
    calls = []
    cfg = ToyConfig(n_features=3, n_hidden=2, steps=5, eval_samples=64, cpu_threads=1)
    fit(cfg, [1.0], progress=lambda step, total: calls.append((step, total)))
    assert torch.get_num_threads() == before
    assert calls == [(s, 5) for s in range(1, 6)]

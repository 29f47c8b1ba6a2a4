"""ReLU, JumpReLU, BatchTopK losses against hand-computed formulas; the frequency-weighted penalty;
geometric-median init; every architecture learns on synthetic sparse data."""

from __future__ import annotations

import pytest
import torch

from interplab.saes import SAE_CLASSES, JumpReLUConfig, ReLUConfig, TrainState, make_sae, sae_config
from interplab.saes.init import geometric_median, init_b_dec_geometric_median_
from interplab.saes.jumprelu import JumpReLUFn, StepFn
from interplab.saes.penalties import frequency_weighted_costs
from sae_configs import config_for


def test_relu_loss_is_mse_plus_decoder_norm_weighted_l1():
    sae = make_sae(ReLUConfig(d_in=6, d_sae=20, l1_coeff=0.3, dtype="float64"))
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(20, 1, dtype=torch.float64) * 3)
    x = torch.randn(11, 6, dtype=torch.float64)
    out = sae.training_forward(x, TrainState(sparsity_scale=0.5))
    z = torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    x_hat = z @ sae.W_dec + sae.b_dec
    mse = ((x - x_hat) ** 2).sum(-1).mean()
    l1 = (z * sae.W_dec.norm(dim=-1)).sum(-1).mean()
    torch.testing.assert_close(out.mse_loss, mse)
    torch.testing.assert_close(out.sparsity_loss, 0.3 * 0.5 * l1)
    torch.testing.assert_close(out.loss, mse + 0.15 * l1)
    assert not sae.normalize_decoder


def test_jumprelu_functions_follow_the_papers_pseudo_derivatives():
    torch.manual_seed(0)
    eps = 0.3
    pre = torch.randn(50, 7, dtype=torch.float64, requires_grad=True)
    theta = (torch.rand(7, dtype=torch.float64) * 0.5 + 0.1).requires_grad_()
    w, u = torch.randn(50, 7, dtype=torch.float64), torch.randn(50, 7, dtype=torch.float64)
    loss = (w * JumpReLUFn.apply(pre, theta, eps)).sum() + (u * StepFn.apply(pre, theta, eps)).sum()
    loss.backward()
    p, t = pre.detach(), theta.detach()
    kernel = ((p - t).abs() / eps < 0.5).double()
    assert kernel.sum() > 5  # the window actually catches points
    expected_theta = (w * -(t / eps) * kernel + u * -(1 / eps) * kernel).sum(0)
    torch.testing.assert_close(theta.grad, expected_theta)
    torch.testing.assert_close(pre.grad, w * (p > t).double())
    torch.testing.assert_close(JumpReLUFn.apply(p, t, eps), p * (p > t))


def test_jumprelu_sae_threshold_gradient_goes_through_log_parameter():
    torch.manual_seed(0)
    cfg = JumpReLUConfig(d_in=6, d_sae=16, dtype="float64", bandwidth=0.5,
                    init_threshold=0.2, l0_coeff=0.7)
    sae = make_sae(cfg)
    x = torch.randn(40, 6, dtype=torch.float64)
    out = sae.training_forward(x)
    out.loss.backward()
    with torch.no_grad():
        pre = sae.pre_acts(x)
    theta = sae.threshold.detach()
    z = (pre * (pre > theta)).requires_grad_()
    mse = ((z @ sae.W_dec + sae.b_dec - x) ** 2).sum(-1).mean()
    (g_z,) = torch.autograd.grad(mse, z)
    kernel = ((pre - theta).abs() / 0.5 < 0.5).double()
    d_theta = (g_z * -(theta / 0.5) * kernel).sum(0) + 0.7 / 40 * (-(1 / 0.5) * kernel).sum(0)
    torch.testing.assert_close(sae.log_threshold.grad, d_theta * theta)
    torch.testing.assert_close(out.sparsity_loss, 0.7 * (pre > theta).double().sum(-1).mean())


def test_batchtopk_keeps_k_per_token_on_average_and_learns_a_threshold():
    torch.manual_seed(0)
    sae = make_sae(sae_config("batchtopk", d_in=8, d_sae=64, k=4))
    x = torch.randn(32, 8)
    out = sae.training_forward(x)
    assert (out.latents_BF > 0).sum().item() == 4 * 32
    counts = (out.latents_BF > 0).sum(-1)
    assert counts.min() < counts.max()  # variable per token
    kept_min = out.latents_BF[out.latents_BF > 0].min()
    torch.testing.assert_close(sae.threshold, kept_min)  # first batch sets it directly
    sae.training_forward(torch.randn(32, 8) * 2)
    assert sae.threshold > kept_min  # EMA moved towards the bigger batch's minimum
    sae.eval()
    z = sae.encode(x)
    torch.testing.assert_close(sae.encode(x[:3]), z[:3])  # per token at inference
    pre = sae.pre_acts(x)
    torch.testing.assert_close(z, pre.relu() * (pre > sae.threshold))


def test_frequency_weighted_costs_fall_as_frequency_rises():
    freq = torch.tensor([0.0, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5])
    costs = frequency_weighted_costs(freq, beta=0.5, eps=1e-4, cost_min=0.0, cost_max=1e9)
    assert torch.all(costs[1:] < costs[:-1])
    torch.testing.assert_close((freq * costs).sum() / freq.sum(), torch.tensor(1.0))
    clipped = frequency_weighted_costs(freq, beta=0.5, eps=1e-4, cost_min=0.5, cost_max=2.0)
    assert clipped.max() == 2.0 and clipped.min() >= 0.5
    assert torch.all(clipped[1:] <= clipped[:-1])
    torch.testing.assert_close(frequency_weighted_costs(freq, 0.0, 1e-4, 0.1, 10.0), torch.ones(7))


@pytest.mark.parametrize("arch", ["relu", "jumprelu"])
def test_frequency_weighting_changes_the_penalty_per_latent(arch):
    torch.manual_seed(0)
    base = dict(d_in=6, d_sae=12, dtype="float64", init_threshold=0.01)
    plain = make_sae(config_for(arch, **base))
    weighted = make_sae(config_for(arch, **base, freq_weighted_sparsity=True, freq_cost_min=0.0, freq_cost_max=1e6))
    weighted.load_state_dict(plain.state_dict())
    x = torch.randn(30, 6, dtype=torch.float64)
    freq = torch.linspace(0.001, 0.5, 12, dtype=torch.float64)
    costs = frequency_weighted_costs(freq, 0.5, 1e-4, 0.0, 1e6).double()
    out = weighted.training_forward(x, TrainState(freq_F=freq))
    z = plain.encode(x)
    if arch == "relu":
        per_latent = z * plain.decoder_norms() * plain.cfg.l1_coeff
    else:
        per_latent = (z != 0).double() * plain.cfg.l0_coeff
    torch.testing.assert_close(out.sparsity_loss, (per_latent * costs).sum(-1).mean())
    torch.testing.assert_close(plain.training_forward(x, TrainState(freq_F=freq)).sparsity_loss,
                               per_latent.sum(-1).mean())


def test_geometric_median_minimises_summed_distance():
    from scipy.optimize import minimize

    torch.manual_seed(0)
    pts = torch.randn(200, 5, dtype=torch.float64)
    pts[:10] += 50  # outliers drag the mean, not the median
    med = geometric_median(pts)
    obj = lambda m: float((pts - torch.from_numpy(m)).norm(dim=-1).sum())  # noqa: E731
    ref = minimize(obj, pts.median(0).values.numpy(), method="Nelder-Mead",
                   options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000})
    assert obj(med.numpy()) <= ref.fun + 1e-6
    assert (med - pts.mean(0)).norm() > 1.0
    sae = make_sae(sae_config("topk", d_in=5, d_sae=10, k=2, dtype="float64"))
    init_b_dec_geometric_median_(sae, pts)
    torch.testing.assert_close(sae.b_dec.detach(), med)


@pytest.mark.parametrize("arch", sorted(SAE_CLASSES))
def test_every_architecture_learns_synthetic_sparse_data(arch):
    torch.manual_seed(0)
    d_in, n_true = 16, 32
    dirs = torch.nn.functional.normalize(torch.randn(n_true, d_in), dim=-1)
    cfg = config_for(arch, d_in=d_in, d_sae=64, k=4, l1_coeff=0.05, l0_coeff=0.01,
                    bandwidth=0.05, init_threshold=0.05)
    sae = make_sae(cfg)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)

    def batch():
        coef = torch.rand(128, n_true) * (torch.rand(128, n_true) < 0.08)
        return coef @ dirs

    first = sae.training_forward(batch()).fvu.item()
    for _ in range(80):
        out = sae.training_forward(batch())
        opt.zero_grad()
        out.loss.backward()
        if sae.normalize_decoder:
            sae.remove_gradient_parallel_to_decoder_()
        opt.step()
        if sae.normalize_decoder:
            sae.set_decoder_norm_to_unit_()
    assert out.fvu.item() < 0.5 * first, (first, out.fvu.item())


@pytest.mark.parametrize("arch", sorted(SAE_CLASSES))
def test_training_forward_runs_under_bf16_autocast_with_fp32_grads(arch):
    # The trainer wraps training_forward in bf16 autocast; master weights and grads stay fp32.
    sae = make_sae(config_for(arch, d_in=16, d_sae=64, k=4))
    state = TrainState(dead_mask_F=torch.rand(64) < 0.3, freq_F=torch.rand(64) * 0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sae.training_forward(torch.randn(32, 16), state)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in sae.parameters())

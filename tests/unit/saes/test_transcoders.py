"""Transcoders: the sparse TopK kernel, skip vs plain, pairs through `fit`, SAELens and sparsify files."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from interplab.common import InterplabError
from interplab.saes import SAEGroup, load_sae, make_sae, sae_config, save_sae, save_sparsify_transcoder
from interplab.saes.base import TrainState
from interplab.training import TrainConfig, fit


def _pairs(n: int, d: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x, and y = a dense linear map of x plus a sparse nonlinear part (what skip paths are for)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen)
    lin = torch.randn(d, d, generator=torch.Generator().manual_seed(99)) / d**0.5
    feats = torch.randn(64, d, generator=torch.Generator().manual_seed(98))
    dirs = torch.randn(64, d, generator=torch.Generator().manual_seed(97))
    code = torch.relu(x @ feats.T - 2.0)
    return x, x @ lin.T + code @ dirs / 4


def test_sparse_topk_kernel_matches_the_dense_reference():
    torch.manual_seed(0)
    x, y = _pairs(64)
    state = TrainState(dead_mask_F=torch.rand(96) < 0.3)
    outs, grads = [], []
    for sparse in (True, False):
        tc = make_sae(sae_config("topk_skip_transcoder", d_in=16, d_sae=96, k=5, sparse_kernel=sparse))
        with torch.no_grad():  # the same perturbation for both
            tc.W_skip.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
            tc.b_dec.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        out = tc.training_forward(x, state, y)
        out.loss.backward()
        outs.append(out)
        grads.append({n: p.grad.clone() for n, p in tc.named_parameters()})
    torch.testing.assert_close(outs[0].loss, outs[1].loss)
    torch.testing.assert_close(outs[0].aux_loss, outs[1].aux_loss)
    assert float(outs[0].aux_loss.detach()) > 0
    for name in grads[1]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def _train(arch: str, k: int, steps: int = 300) -> float:
    x, y = _pairs(512 * steps)
    batches = ((x[i: i + 512], y[i: i + 512]) for i in range(0, len(x), 512))
    tc = make_sae(sae_config(arch, d_in=16, d_sae=128, k=k))
    fit(tc, batches, TrainConfig(total_steps=steps, lr=3e-3, log_every=steps, threads=1))
    xt, yt = _pairs(4096, seed=1)
    with torch.no_grad():
        pred = tc(xt).x_hat
    return float((yt - pred).pow(2).sum() / (yt - yt.mean(0)).pow(2).sum())


def test_skip_transcoder_reaches_lower_fvu_than_transcoder_at_equal_k():
    plain, skip = _train("topk_transcoder", k=4), _train("topk_skip_transcoder", k=4)
    assert skip < 0.9 * plain, (skip, plain)


def test_fit_refuses_pairs_for_an_autoencoder():
    sae = make_sae(sae_config("topk", d_in=16, d_sae=32, k=4))
    x, y = _pairs(64)
    with pytest.raises(InterplabError, match="reconstructs its input"):
        fit(sae, iter([(x, y)] * 2), TrainConfig(total_steps=1, b_dec_init="none", threads=1))


def test_group_resumes_exactly_from_a_checkpoint(tmp_path):
    x, y = _pairs(8 * 128)
    data = [(torch.stack([x[i:i + 128], x[i:i + 128] * 2], 1), torch.stack([y[i:i + 128], y[i:i + 128]], 1))
            for i in range(0, len(x), 128)]
    cfgs = [sae_config("topk_skip_transcoder", d_in=16, d_sae=32, k=4, seed=s) for s in (0, 1)]
    tc = TrainConfig(total_steps=8, lr=1e-2, checkpoint_every=3, checkpoint_dir=str(tmp_path / "ck"), threads=1)
    whole = SAEGroup.of(["a", "b"], cfgs)
    fit(whole, iter(data), tc.replace(checkpoint_dir=str(tmp_path / "ck0")))

    def stop(step, _m):
        if step == 5:
            raise KeyboardInterrupt

    first = SAEGroup.of(["a", "b"], cfgs)
    with pytest.raises(KeyboardInterrupt):
        fit(first, iter(data), tc, on_step=stop)
    resumed = SAEGroup.of(["a", "b"], cfgs)
    fit(resumed, iter(data), tc.replace(resume=True))
    for (n, p), q in zip(whole.named_parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=n)


def test_jumprelu_skip_transcoder_writes_a_saelens_folder(tmp_path):
    tc = make_sae(sae_config("jumprelu_skip_transcoder", d_in=12, d_sae=40, d_out=10))
    with torch.no_grad():
        for p in tc.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_sae(tc, tmp_path / "t", metadata={"hook_name": "blocks.1.mlp_in"})
    cfg = json.loads((tmp_path / "t" / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu_skip_transcoder" and cfg["d_out"] == 10
    assert cfg["apply_b_dec_to_input"] is False
    w = load_file(tmp_path / "t" / "sae_weights.safetensors")
    assert w["W_skip"].shape == (10, 12) and w["W_dec"].shape == (40, 10) and w["threshold"].shape == (40,)
    del cfg["interplab"]  # as SAELens writes it
    (tmp_path / "t" / "cfg.json").write_text(json.dumps(cfg))
    back = load_sae(tmp_path / "t")
    x = torch.randn(7, 12)
    torch.testing.assert_close(back(x).x_hat, tc(x).x_hat)


def test_topk_skip_transcoder_round_trips_through_sparsify_layout(tmp_path):
    tc = make_sae(sae_config("topk_skip_transcoder", d_in=12, d_sae=48, k=5))
    with torch.no_grad():
        for p in tc.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_sparsify_transcoder(tc, tmp_path / "layers.3.mlp")
    cfg = json.loads((tmp_path / "layers.3.mlp" / "cfg.json").read_text())
    assert cfg["transcode"] is True and cfg["skip_connection"] is True and cfg["d_in"] == 12
    w = load_file(tmp_path / "layers.3.mlp" / "sae.safetensors")
    assert w["encoder.weight"].shape == (48, 12) and w["W_skip"].shape == (12, 12)
    x = torch.randn(9, 12)
    # sparsify's forward: top-k of relu(encoder(x)) (no b_dec subtraction), decode, + x @ W_skip.T
    pre = x @ w["encoder.weight"].T + w["encoder.bias"]
    v, i = pre.topk(5)
    ref = torch.zeros(9, 48).scatter(1, i, v.relu()) @ w["W_dec"] + w["b_dec"] + x @ w["W_skip"].T
    back = load_sae(tmp_path / "layers.3.mlp")
    torch.testing.assert_close(back(x).x_hat, ref)
    torch.testing.assert_close(back(x).x_hat, tc(x).x_hat)


def test_sparsify_refuses_jumprelu_transcoders(tmp_path):
    tc = make_sae(sae_config("jumprelu_transcoder", d_in=8, d_sae=16))
    with pytest.raises(InterplabError, match="TopK transcoders only"):
        save_sparsify_transcoder(tc, tmp_path / "x")


def test_sparsify_skip_autoencoder_without_transcode_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    save_file({"encoder.weight": torch.zeros(8, 4), "encoder.bias": torch.zeros(8), "W_dec": torch.zeros(8, 4),
               "b_dec": torch.zeros(4), "W_skip": torch.zeros(4, 4)}, tmp_path / "s" / "sae.safetensors")
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({"k": 2, "skip_connection": True, "d_in": 4}))
    with pytest.raises(InterplabError, match="skip-connection autoencoder"):
        load_sae(tmp_path / "s")

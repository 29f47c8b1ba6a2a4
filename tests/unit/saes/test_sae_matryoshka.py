"""Matryoshka BatchTopK SAE: nested prefix losses, the trainer, SAELens layout and SAELens itself."""

from __future__ import annotations

import json

import pytest
import torch

from interplab.common import InterplabError
from interplab.data.synthetic import ToyFeatureConfig, ToyFeatureSource
from interplab.saes import MatryoshkaConfig, MatryoshkaSAE, load_sae, make_sae, sae_config, save_sae
from interplab.training import TrainConfig, fit


def _trained(steps: int = 150, arch: str = "matryoshka", **fields) -> tuple[torch.nn.Module, ToyFeatureSource]:
    source = ToyFeatureSource(ToyFeatureConfig(n_features=48, d=24, mean_active=3, batch_size=256, seed=1))
    sae = make_sae(sae_config(arch, d_in=24, d_sae=64, k=3, seed=1, **fields))
    fit(sae, iter(source), TrainConfig(total_steps=steps, lr=3e-3, log_every=50, b_dec_init="mean", threads=1))
    return sae, source


def test_default_prefixes_halve_down_from_d_sae():
    assert MatryoshkaConfig(d_in=4, d_sae=64).widths == (8, 16, 32, 64)
    assert MatryoshkaConfig(d_in=4, d_sae=3).widths == (1, 3)
    assert MatryoshkaConfig(d_in=4, d_sae=64, k=2, prefixes=(4, 64)).widths == (4, 64)


@pytest.mark.parametrize("prefixes", [(16, 8, 64), (8, 32), (0, 64), (8, 8, 64)])
def test_bad_prefixes_are_refused(prefixes):
    with pytest.raises(InterplabError, match="prefixes"):
        make_sae(MatryoshkaConfig(d_in=4, d_sae=64, k=2, prefixes=prefixes))


def test_prefix_reconstructions_decode_only_their_latents():
    torch.manual_seed(0)
    sae = make_sae(MatryoshkaConfig(d_in=6, d_sae=20, k=3, prefixes=(5, 12, 20)))
    z_BF = torch.rand(7, 20)
    recon = sae.prefix_reconstructions(z_BF)
    assert len(recon) == 3
    for width, x_hat_BD in zip((5, 12, 20), recon, strict=True):
        torch.testing.assert_close(x_hat_BD, z_BF[:, :width] @ sae.W_dec[:width] + sae.b_dec)
    torch.testing.assert_close(recon[-1], sae.decode(z_BF))


def test_loss_is_the_sum_of_every_prefix_error_plus_auxk():
    torch.manual_seed(0)
    sae = make_sae(MatryoshkaConfig(d_in=6, d_sae=20, k=3, prefixes=(5, 12, 20)))
    x_BD = torch.randn(16, 6)
    out = sae.training_forward(x_BD)
    z_BF = out.latents_BF
    expected = sum((x_i - x_BD).pow(2).sum(-1).mean() for x_i in sae.prefix_reconstructions(z_BF))
    torch.testing.assert_close(out.loss, expected + out.aux_loss)
    torch.testing.assert_close(out.mse_loss, (sae.decode(z_BF) - x_BD).pow(2).sum(-1).mean())
    assert out.l0.item() == pytest.approx(3.0)  # BatchTopK: k per row on average


def test_first_prefix_reconstructs_alone_better_than_the_same_batchtopk_prefix():
    mat, source = _trained(prefixes=(8, 64))
    btk, _ = _trained(arch="batchtopk")
    x_BD = source.batch(10_000)

    @torch.no_grad()
    def prefix_fvu(sae) -> float:
        z_BF = sae.encode(x_BD)
        x8_BD = z_BF[:, :8] @ sae.W_dec[:8] + sae.b_dec
        return float((x8_BD - x_BD).pow(2).sum() / (x_BD - x_BD.mean(0)).pow(2).sum())

    assert prefix_fvu(mat) < 0.8 * prefix_fvu(btk)


def test_saved_in_saelens_jumprelu_layout_and_reloaded_identically(tmp_path):
    sae, source = _trained(steps=40)
    save_sae(sae, tmp_path / "m", metadata={"hook_name": "blocks.0.resid_post"})
    cfg = json.loads((tmp_path / "m" / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and cfg["interplab"]["architecture"] == "matryoshka"
    back = load_sae(tmp_path / "m")
    assert isinstance(back, MatryoshkaSAE) and back.cfg.widths == sae.cfg.widths
    x_BD = source.batch(5)
    torch.testing.assert_close(back(x_BD).x_hat, sae(x_BD).x_hat)


def _saelens_jumprelu_rule(folder, x_BD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SAELens JumpReLUSAE.encode/decode as documented (v6): pre = (x - b_dec·apply) @ W_enc + b_enc;
    z = ReLU(pre) · 1[pre > threshold]; x̂ = z @ W_dec + b_dec. Read from the raw files only."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "cfg.json").read_text())
    w = load_file(folder / "sae_weights.safetensors")
    pre = (x_BD - w["b_dec"] * cfg["apply_b_dec_to_input"]) @ w["W_enc"] + w["b_enc"]
    z = pre.relu() * (pre > w["threshold"])
    return z, z @ w["W_dec"] + w["b_dec"]


def test_a_reader_of_the_saelens_jumprelu_rule_gets_identical_outputs(tmp_path):
    sae, source = _trained(steps=40)
    save_sae(sae, tmp_path / "m")
    x_BD = source.batch(7)
    z, x_hat = _saelens_jumprelu_rule(tmp_path / "m", x_BD)
    assert (z > 0).any()
    torch.testing.assert_close(z, sae.encode(x_BD), rtol=0, atol=0)
    torch.testing.assert_close(x_hat, sae(x_BD).x_hat, rtol=0, atol=0)


def test_saelens_itself_loads_it_with_identical_outputs(tmp_path):
    # Runs where SAELens is importable (see bench/README.md "Installing the peers"); skipped otherwise.
    sae_lens = pytest.importorskip("sae_lens")
    sae, source = _trained(steps=40)
    save_sae(sae, tmp_path / "m", metadata={"hook_name": "blocks.0.resid_post", "model_name": "toy"})
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path / "m"), device="cpu")
    assert type(theirs).__name__ == "JumpReLUSAE"
    assert theirs.cfg.metadata.hook_name == "blocks.0.resid_post"
    x_BD = source.batch(9)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x_BD), sae.encode(x_BD), rtol=0, atol=0)
        torch.testing.assert_close(theirs.decode(theirs.encode(x_BD)), sae(x_BD).x_hat, rtol=0, atol=0)

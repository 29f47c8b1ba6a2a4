"""SAE files: round trips, SAELens-compatible cfg.json, peers' layouts, refusal of pickles."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from interplab.common import InterplabError
from interplab.saes import SAE_CLASSES, SAEConfig, make_sae
from interplab.saes.io import load_dictionary_learning, load_sae, load_sparsify, save_sae


def _trained_like(arch: str, tied: bool = False, **kw) -> torch.nn.Module:
    sae = make_sae(SAEConfig(d_in=12, d_sae=40, k=5, architecture=arch, tied=tied, **kw))
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return sae


@pytest.mark.parametrize("arch", sorted(SAE_CLASSES))
@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_gives_identical_outputs(tmp_path, arch, tied):
    torch.manual_seed(0)
    sae = _trained_like(arch, tied=tied)
    x = torch.randn(20, 12)
    if hasattr(sae, "update_threshold_"):  # BatchTopK: estimate its inference threshold first
        sae.training_forward(x)
    save_sae(sae, tmp_path / "s", metadata={"model_name": "m", "hook_name": "blocks.1.resid_post"})
    back = load_sae(tmp_path / "s")
    assert type(back) is type(sae) and back.cfg.tied == tied
    assert back.cfg.metadata["hook_name"] == "blocks.1.resid_post"
    torch.testing.assert_close(back.encode(x), sae.encode(x))
    torch.testing.assert_close(back(x).x_hat, sae(x).x_hat)


def test_cfg_json_uses_saelens_v6_keys(tmp_path):
    save_sae(_trained_like("topk"), tmp_path / "s", metadata={"model_name": "gpt2"})
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 5
    assert {"d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations"} <= cfg.keys()
    assert cfg["metadata"]["model_name"] == "gpt2"
    from safetensors.torch import load_file

    w = load_file(tmp_path / "s" / "sae_weights.safetensors")
    assert w["W_enc"].shape == (12, 40) and w["W_dec"].shape == (40, 12)


def test_plain_saelens_folder_without_our_keys_loads(tmp_path):
    sae = _trained_like("topk")
    save_sae(sae, tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    del cfg["interplab"]
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(cfg))
    x = torch.randn(6, 12)
    torch.testing.assert_close(load_sae(tmp_path / "s").encode(x), sae.encode(x))


def test_refuses_to_overwrite_a_different_sae(tmp_path):
    save_sae(_trained_like("topk"), tmp_path / "s")
    before = (tmp_path / "s" / "sae_weights.safetensors").read_bytes()
    other = _trained_like("topk")
    with pytest.raises(InterplabError, match="overwrite=True"):
        save_sae(other, tmp_path / "s")
    assert (tmp_path / "s" / "sae_weights.safetensors").read_bytes() == before
    save_sae(other, tmp_path / "s", overwrite=True)
    torch.testing.assert_close(load_sae(tmp_path / "s").W_dec, other.W_dec)


@pytest.mark.parametrize("name", ["ae.pt", "sae.pth", "model.bin", "x.ckpt"])
def test_pickle_files_are_refused(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"not even read")
    with pytest.raises(InterplabError, match="pickle"):
        load_sae(p)
    with pytest.raises(InterplabError, match="pickle"):
        load_dictionary_learning(p)


def test_folder_with_only_ae_pt_is_refused(tmp_path):
    (tmp_path / "ae.pt").write_bytes(b"x")
    with pytest.raises(InterplabError, match="pickle"):
        load_sae(tmp_path)


def test_wrong_shapes_name_the_tensor(tmp_path):
    save_sae(_trained_like("topk"), tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    cfg["interplab"]["d_sae"] = 41
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(InterplabError, match="'W_enc' has shape"):
        load_sae(tmp_path / "s")


# ---- peers' layouts, built by hand from their code -------------------------------------------


def _topk_forward(x, w_enc_DF, b_enc, w_dec_FD, b_dec, k, subtract=True):
    pre = (x - b_dec if subtract else x) @ w_enc_DF + b_enc
    v, i = pre.relu().topk(k, dim=-1)
    z = torch.zeros_like(pre).scatter(-1, i, v)
    return z, z @ w_dec_FD + b_dec


def test_sparsify_folder_loads_and_matches_hand_forward(tmp_path):
    torch.manual_seed(0)
    d, f, k = 10, 30, 4
    enc_w, enc_b = torch.randn(f, d), torch.randn(f) * 0.1
    w_dec, b_dec = torch.randn(f, d), torch.randn(d) * 0.1
    folder = tmp_path / "layers.3"
    folder.mkdir()
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec},
              folder / "sae.safetensors")
    cfg = {"expansion_factor": 3, "normalize_decoder": True, "num_latents": f, "k": k, "multi_topk": False,
           "skip_connection": False, "d_in": d}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    x = torch.randn(9, d)
    z_ref, x_hat_ref = _topk_forward(x, enc_w.T, enc_b, w_dec, b_dec, k)
    for sae in (load_sparsify(folder), load_sae(folder)):
        torch.testing.assert_close(sae.encode(x), z_ref)
        torch.testing.assert_close(sae(x).x_hat, x_hat_ref)
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec[:, :-1].contiguous(), "b_dec": b_dec},
              folder / "sae.safetensors")
    with pytest.raises(InterplabError, match=r"'W_dec' has shape \(30, 9\), expected \(30, 10\)"):
        load_sparsify(folder)


def test_dictionary_learning_topk_safetensors_loads(tmp_path):
    torch.manual_seed(0)
    d, f, k = 10, 30, 4
    enc_w, enc_b, dec_w, b_dec = torch.randn(f, d), torch.randn(f) * 0.1, torch.randn(d, f), torch.randn(d)
    p = tmp_path / "ae.safetensors"
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": b_dec,
               "k": torch.tensor(k, dtype=torch.int32), "threshold": torch.tensor(-1.0)}, p)
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "topk" and sae.cfg.k == k
    x = torch.randn(9, d)
    z_ref, x_hat_ref = _topk_forward(x, enc_w.T, enc_b, dec_w.T, b_dec, k)
    torch.testing.assert_close(sae.encode(x), z_ref)
    torch.testing.assert_close(load_sae(tmp_path)(x).x_hat, x_hat_ref)


def test_dictionary_learning_file_without_k_asks_for_it(tmp_path):
    d, f = 4, 8
    p = tmp_path / "ae.safetensors"
    save_file({"encoder.weight": torch.randn(f, d), "encoder.bias": torch.randn(f),
               "decoder.weight": torch.randn(d, f), "b_dec": torch.randn(d)}, p)
    with pytest.raises(InterplabError, match="pass k="):
        load_dictionary_learning(p)
    assert load_dictionary_learning(p, k=2).cfg.k == 2


def test_dictionary_learning_standard_autoencoder_loads(tmp_path):
    torch.manual_seed(0)
    d, f = 10, 30
    enc_w, enc_b, dec_w, bias = torch.randn(f, d), torch.randn(f) * 0.1, torch.randn(d, f), torch.randn(d)
    p = tmp_path / "ae.safetensors"
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "bias": bias}, p)
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "relu"
    x = torch.randn(9, d)
    z_ref = torch.relu((x - bias) @ enc_w.T + enc_b)  # their AutoEncoder.encode
    torch.testing.assert_close(sae.encode(x), z_ref)
    torch.testing.assert_close(sae(x).x_hat, z_ref @ dec_w.T + bias)


def test_dictionary_learning_jumprelu_loads_without_b_dec_subtraction(tmp_path):
    torch.manual_seed(0)
    d, f = 10, 30
    w_enc, b_enc, w_dec, b_dec = torch.randn(d, f), torch.randn(f) * 0.1, torch.randn(f, d), torch.randn(d)
    threshold = torch.rand(f) * 0.5 + 0.01
    p = tmp_path / "ae.safetensors"
    save_file({"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec, "threshold": threshold}, p)
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "jumprelu" and not sae.cfg.apply_b_dec_to_input
    x = torch.randn(9, d)
    pre = x @ w_enc + b_enc
    z_ref = torch.relu(pre * (pre > threshold))
    torch.testing.assert_close(sae.encode(x), z_ref)
    torch.testing.assert_close(sae(x).x_hat, z_ref @ w_dec + b_dec)
    save_file({"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec, "threshold": threshold[:-1]}, p)
    with pytest.raises(InterplabError, match="'threshold' has shape"):
        load_dictionary_learning(p)


def test_dictionary_learning_batchtopk_uses_its_global_threshold(tmp_path):
    torch.manual_seed(0)
    d, f, k = 10, 30, 4
    enc_w, enc_b, dec_w, b_dec = torch.randn(f, d), torch.randn(f) * 0.1, torch.randn(d, f), torch.randn(d)
    p = tmp_path / "ae.safetensors"
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": b_dec,
               "k": torch.tensor(k), "threshold": torch.tensor(0.7)}, p)
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "batchtopk"
    x = torch.randn(9, d)
    pre = (x - b_dec) @ enc_w.T + enc_b
    z_ref = pre.relu() * (pre > 0.7)
    torch.testing.assert_close(sae.encode(x), z_ref)
    save_sae(sae, tmp_path / "ours")
    torch.testing.assert_close(load_sae(tmp_path / "ours").encode(x), z_ref)


def test_non_sae_safetensors_is_rejected_with_its_keys(tmp_path):
    p = tmp_path / "weird.safetensors"
    save_file({"foo": torch.zeros(2)}, p)
    with pytest.raises(InterplabError, match="foo"):
        load_sae(p)

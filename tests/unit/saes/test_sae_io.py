"""SAE files: round trips, SAELens-compatible cfg.json, peers' layouts, refusal of pickles."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from interplab.common import InterplabError
from interplab.saes import SAE_CLASSES, make_sae
from interplab.saes.io import load_dictionary_learning, load_sae, load_sparsify, save_sae
from sae_configs import config_for


def _trained_like(arch: str, tied: bool = False, **kw) -> torch.nn.Module:
    sae = make_sae(config_for(arch, d_in=12, d_sae=40, k=5, tied=tied, **kw))
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
    (tmp_path / "config.json").write_text(json.dumps({"trainer": {"dict_class": "BatchTopKSAE", "k": k}}))
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "batchtopk"
    x = torch.randn(9, d)
    pre = (x - b_dec) @ enc_w.T + enc_b
    z_ref = pre.relu() * (pre > 0.7)
    torch.testing.assert_close(sae.encode(x), z_ref)
    save_sae(sae, tmp_path / "ours")
    torch.testing.assert_close(load_sae(tmp_path / "ours").encode(x), z_ref)


def test_dictionary_learning_topk_with_a_trained_threshold_stays_per_token_topk(tmp_path):
    """AutoEncoderTopK keeps a `threshold` buffer too, but encodes with per-token top-k: its config.json's
    dict_class decides (the file was loaded as BatchTopK before, giving L0 far above k)."""
    torch.manual_seed(0)
    d, f, k = 10, 30, 4
    enc_w, enc_b, dec_w, b_dec = torch.randn(f, d), torch.randn(f) * 0.1, torch.randn(d, f), torch.randn(d)
    p = tmp_path / "ae.safetensors"
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "decoder.weight": dec_w, "b_dec": b_dec,
               "k": torch.tensor(k), "threshold": torch.tensor(0.01)}, p)
    (tmp_path / "config.json").write_text(json.dumps({"trainer": {"dict_class": "AutoEncoderTopK", "k": k}}))
    sae = load_dictionary_learning(p)
    assert sae.cfg.architecture == "topk" and sae.cfg.k == k
    x = torch.randn(64, d)
    z_ref, _ = _topk_forward(x, enc_w.T, enc_b, dec_w.T, b_dec, k)
    torch.testing.assert_close(sae.encode(x), z_ref)
    assert (sae.encode(x) > 0).sum(-1).float().mean() <= k
    (tmp_path / "config.json").write_text(json.dumps({"trainer": {"dict_class": "GatedAutoEncoder"}}))
    with pytest.raises(InterplabError, match="dict_class 'GatedAutoEncoder'"):
        load_dictionary_learning(p)


def test_refused_pickle_message_gives_a_conversion_that_handles_non_contiguous_tensors(tmp_path):
    """The one-liner printed for an ae.pt must work on real dictionary_learning state dicts, whose
    encoder.weight is a transposed (non-contiguous) view of the decoder at init."""
    dec = torch.randn(6, 12)
    state = {"encoder.weight": dec.T, "decoder.weight": dec, "b_dec": torch.zeros(6), "encoder.bias": torch.zeros(12),
             "k": torch.tensor(2), "threshold": torch.tensor(-1.0)}
    assert not state["encoder.weight"].is_contiguous()
    torch.save(state, tmp_path / "ae.pt")
    with pytest.raises(InterplabError) as err:
        load_sae(tmp_path / "ae.pt")
    command = str(err.value).split('python -c "', 1)[1].rsplit('"', 1)[0]
    subprocess.run([sys.executable, "-c", command], cwd=tmp_path, check=True)
    assert load_sae(tmp_path / "ae.safetensors").cfg.architecture == "topk"


def test_saved_cfg_marks_the_saelens_v6_layout_so_saelens_keeps_hook_and_model(tmp_path):
    sae = make_sae(config_for("topk", d_in=12, d_sae=40, k=5))
    save_sae(sae, tmp_path / "s", metadata={"hook_name": "blocks.3.resid_post", "model_name": "m"})
    meta = json.loads((tmp_path / "s" / "cfg.json").read_text())["metadata"]
    # SAELens' handle_config_defaulting treats a missing or < 6.0 version as a pre-6.0 file
    assert meta["sae_lens_version"] >= "6" and meta["hook_name"] == "blocks.3.resid_post"


def test_flipped_weight_bytes_are_refused_not_used(tmp_path):
    folder = save_sae(make_sae(config_for("topk", d_in=12, d_sae=40, k=5)), tmp_path / "s")
    weights = folder / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # a byte inside the last tensor's data: safetensors itself still reads the file
    weights.write_bytes(bytes(data))
    with pytest.raises(InterplabError, match="does not match the sha256"):
        load_sae(folder)


def test_cfg_json_with_fields_of_the_wrong_type_gives_one_line_error(tmp_path):
    folder = save_sae(make_sae(config_for("topk", d_in=12, d_sae=40, k=5)), tmp_path / "s")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["interplab"]["d_sae"] = "40"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(InterplabError, match="'d_sae' is '40'"):
        load_sae(folder)
    cfg["interplab"]["d_sae"], cfg["interplab"]["k"] = 40, "5"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(InterplabError, match="'k' is '5'"):
        load_sae(folder)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(InterplabError, match="not valid JSON"):
        load_sae(folder)


def test_non_sae_safetensors_is_rejected_with_its_keys(tmp_path):
    p = tmp_path / "weird.safetensors"
    save_file({"foo": torch.zeros(2)}, p)
    with pytest.raises(InterplabError, match="foo"):
        load_sae(p)

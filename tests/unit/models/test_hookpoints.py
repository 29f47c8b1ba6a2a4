import pytest
import torch

from interplab.common import InterplabError
from interplab.models import capture, hook_names, load_model, resolve_hook

FAMILIES = ["gpt2", "gpt_neox", "llama", "gemma3", "bert"]
PRE_LN = {"gpt2", "gpt_neox", "llama", "gemma3"}  # their last hidden_states entry is after the final norm


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param, n_layers=3))


def _batch(lm):
    return lm.tokenize(["The cat sat on the mat.", "Numbers: 1, 2, 3"])


def test_resid_post_equals_hf_hidden_states(loaded):
    batch = _batch(loaded)
    names = [f"blocks.{layer}.resid_post" for layer in range(loaded.n_layers)]
    with capture(loaded.model, names + ["embed", "blocks.0.resid_pre"]) as acts:
        out = loaded.model(**batch, output_hidden_states=True)
    hidden = out.hidden_states
    assert len(hidden) == loaded.n_layers + 1
    last = loaded.n_layers - 1 if loaded.family in PRE_LN else loaded.n_layers
    for layer in range(last):
        torch.testing.assert_close(acts[f"blocks.{layer}.resid_post"], hidden[layer + 1])
    torch.testing.assert_close(acts["embed"], hidden[0])
    torch.testing.assert_close(acts["blocks.0.resid_pre"], hidden[0])


def test_ln_final_is_last_hidden_state_for_pre_ln_families(loaded):
    if loaded.family not in PRE_LN:
        pytest.skip("post-LN encoder has no final norm")
    with capture(loaded.model, "ln_final") as acts:
        out = loaded.model(**_batch(loaded), output_hidden_states=True)
    torch.testing.assert_close(acts["ln_final"], out.hidden_states[-1])


def test_resid_pre_of_next_block_is_resid_post_of_previous(loaded):
    with capture(loaded.model, ["blocks.0.resid_post", "blocks.1.resid_pre"]) as acts:
        loaded.model(**_batch(loaded))
    torch.testing.assert_close(acts["blocks.1.resid_pre"], acts["blocks.0.resid_post"])


def test_attn_and_mlp_outputs_add_up_to_the_residual_update(loaded):
    if loaded.family == "bert":
        pytest.skip("post-LN: the sublayer outputs pass through LayerNorm before the residual")
    hooks = ["blocks.1.resid_pre", "blocks.1.attn_out", "blocks.1.mlp_out", "blocks.1.resid_post"]
    with capture(loaded.model, hooks) as acts:
        loaded.model(**_batch(loaded))
    update = acts["blocks.1.resid_post"] - acts["blocks.1.resid_pre"]
    torch.testing.assert_close(update, acts["blocks.1.attn_out"] + acts["blocks.1.mlp_out"], atol=1e-5, rtol=1e-4)


def test_every_listed_hook_name_resolves_and_captures_d_model(loaded):
    names = hook_names(loaded.model)
    assert names[0] == "embed" and f"blocks.{loaded.n_layers - 1}.resid_post" in names
    with capture(loaded.model, names) as acts:
        loaded.model(**_batch(loaded))
    for name in names:
        assert acts[name].shape[-1] == loaded.d_model, name


def test_unknown_hook_name_lists_valid_names(loaded):
    with pytest.raises(InterplabError, match=r"unknown hook 'blocks\.0\.resid_middle'.*blocks\.0\.resid_pre"):
        resolve_hook(loaded.model, "blocks.0.resid_middle")
    with pytest.raises(InterplabError, match="layer 99 out of range"):
        resolve_hook(loaded.model, "blocks.99.resid_post")


def test_module_path_is_accepted_as_generic_hook(loaded):
    path = next(n for n, m in loaded.model.named_modules() if n.endswith("mlp") or n.endswith("output.dense"))
    with capture(loaded.model, path) as acts:
        loaded.model(**_batch(loaded))
    assert acts[path].shape[:2] == _batch(loaded)["input_ids"].shape


def test_gemma2_uses_the_gemma3_table_and_its_sublayer_outputs_add_up():
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    cfg = Gemma2Config(
        vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        head_dim=8, intermediate_size=64, query_pre_attn_scalar=8, sliding_window=4,
    )
    model = Gemma2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(0.0, 0.5)  # zeros by default: (1 + w) would hide a hook placed before a norm
    hooks = ["blocks.1.resid_pre", "blocks.1.attn_out", "blocks.1.mlp_out", "blocks.1.resid_post"]
    with capture(model, hooks) as acts, torch.no_grad():
        model(input_ids=torch.randint(0, 64, (2, 7)))
    update = acts["blocks.1.resid_post"] - acts["blocks.1.resid_pre"]
    torch.testing.assert_close(update, acts["blocks.1.attn_out"] + acts["blocks.1.mlp_out"], atol=1e-5, rtol=1e-4)


def _mlp_of(lm, layer: int):
    """The function from mlp_in to mlp_out, written per family from HF's own modules."""
    block = lm.model.base_model.get_submodule(
        {"gpt2": "h", "bert": "encoder.layer"}.get(lm.family, "layers"))[layer]
    if lm.family == "bert":
        return lambda x: block.output.dense(block.intermediate(x))
    if lm.family == "gemma3":
        return lambda x: block.post_feedforward_layernorm(block.mlp(x))
    return block.mlp


def test_mlp_in_is_what_the_mlp_reads_and_maps_to_mlp_out(loaded):
    hooks = ["blocks.1.mlp_in", "blocks.1.mlp_out", "blocks.1.resid_pre", "blocks.1.attn_out"]
    with capture(loaded.model, hooks) as acts, torch.no_grad():
        loaded.model(**_batch(loaded))
        mlp_out = _mlp_of(loaded, 1)(acts["blocks.1.mlp_in"])
    torch.testing.assert_close(mlp_out, acts["blocks.1.mlp_out"])
    assert "blocks.1.mlp_in" in hook_names(loaded.model)
    if loaded.family in ("llama", "gemma3"):  # sequential pre-norm: the MLP reads norm(resid_pre + attn_out)
        block = loaded.model.base_model.layers[1]
        norm = block.pre_feedforward_layernorm if loaded.family == "gemma3" else block.post_attention_layernorm
        with torch.no_grad():
            expected = norm(acts["blocks.1.resid_pre"] + acts["blocks.1.attn_out"])
        torch.testing.assert_close(acts["blocks.1.mlp_in"], expected)


def test_attn_z_holds_the_heads_values_entering_the_output_projection(loaded):
    point = resolve_hook(loaded.model, "blocks.0.attn_z")
    with capture(loaded.model, ["blocks.0.attn_z"]) as acts, torch.no_grad():
        loaded.model(**_batch(loaded))
        projected = point.module(acts["blocks.0.attn_z"])
    assert point.site == "input" and acts["blocks.0.attn_z"].shape[-1] == loaded.d_model  # 4 heads x 16 here
    assert "blocks.0.attn_z" not in hook_names(loaded.model)
    if loaded.family != "bert":
        with capture(loaded.model, ["blocks.0.attn_out"]) as out, torch.no_grad():
            loaded.model(**_batch(loaded))
        if loaded.family == "gemma3":
            projected = loaded.model.base_model.layers[0].post_attention_layernorm(projected)
        torch.testing.assert_close(projected, out["blocks.0.attn_out"])

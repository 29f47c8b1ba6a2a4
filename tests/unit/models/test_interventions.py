import pytest
import torch

from interplab.common import InterplabError
from interplab.models import (
    ablate,
    add_vector,
    capture,
    load_model,
    replace_activation,
    run_to_capture,
    splice_sae,
)


@pytest.fixture(scope="module", params=["gpt2", "llama", "bert"])
def loaded(request, tiny_model_dir):
    return load_model(tiny_model_dir(request.param, n_layers=3))


def _logits(lm, batch):
    with torch.no_grad():
        return lm.model(**batch).logits


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_replacing_activation_with_itself_leaves_logits_unchanged(loaded):
    batch = loaded.tokenize(["The cat sat on the mat.", "Paris is in France"])
    clean = _logits(loaded, batch)
    for hook in ["blocks.1.resid_post", "blocks.1.resid_pre", "blocks.0.mlp_out", "embed"]:
        with replace_activation(loaded.model, hook, lambda x: x.clone()):
            torch.testing.assert_close(_logits(loaded, batch), clean)
    assert _hook_count(loaded.model) == 0


def test_hooks_are_removed_even_when_the_forward_pass_raises(loaded):
    def boom(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with replace_activation(loaded.model, "blocks.0.resid_post", boom):
            loaded.model(**loaded.tokenize("hi"))
    assert _hook_count(loaded.model) == 0


def test_add_vector_shifts_the_hooked_activation_by_coeff_times_vector(loaded):
    batch = loaded.tokenize(["one two three four"])
    vector = torch.randn(loaded.d_model)
    with capture(loaded.model, "blocks.0.resid_post") as clean:
        loaded.model(**batch)
    # capture registered after add_vector sees the edited activation
    with add_vector(loaded.model, "blocks.0.resid_post", vector, coeff=3.0, positions=[0, -1]):
        with capture(loaded.model, "blocks.0.resid_post") as steered:
            loaded.model(**batch)
    diff = steered["blocks.0.resid_post"] - clean["blocks.0.resid_post"]
    torch.testing.assert_close(diff[0, 0], 3.0 * vector)
    torch.testing.assert_close(diff[0, -1], 3.0 * vector)
    assert diff[0, 1:-1].abs().max() == 0


def test_zero_and_mean_ablation_replace_every_position(loaded):
    batch = loaded.tokenize(["hello there, general"])
    clean = _logits(loaded, batch)
    mean_D = torch.randn(loaded.d_model)
    with ablate(loaded.model, "blocks.1.resid_post", mode="zero"):
        with capture(loaded.model, "blocks.1.resid_post") as zeroed:
            ablated = _logits(loaded, batch)
    assert zeroed["blocks.1.resid_post"].abs().max() == 0
    assert not torch.allclose(ablated, clean)
    with ablate(loaded.model, "blocks.1.resid_post", mode="mean", mean_D=mean_D):
        with capture(loaded.model, "blocks.1.resid_post") as meaned:
            loaded.model(**batch)
    acts = meaned["blocks.1.resid_post"]
    torch.testing.assert_close(acts, mean_D.expand_as(acts))
    with pytest.raises(InterplabError, match="mean_D"):
        with ablate(loaded.model, "blocks.1.resid_post", mode="mean"):
            pass


class _IdentitySAE:
    def encode(self, x):
        return torch.relu(torch.cat([x, -x], dim=-1))

    def decode(self, z):
        d = z.shape[-1] // 2
        return z[..., :d] - z[..., d:]


def test_splice_of_a_lossless_autoencoder_leaves_logits_unchanged(loaded):
    batch = loaded.tokenize(["a lossless dictionary"])
    clean = _logits(loaded, batch)
    with splice_sae(loaded.model, "blocks.1.resid_post", _IdentitySAE()):
        torch.testing.assert_close(_logits(loaded, batch), clean)


def test_run_to_capture_matches_full_forward_capture(loaded):
    batch = loaded.tokenize(["The quick brown fox", "jumps"])
    with capture(loaded.model, ["blocks.0.resid_post", "blocks.1.mlp_out"]) as full:
        loaded.model(**batch)
    early = run_to_capture(loaded.model, batch, ["blocks.0.resid_post", "blocks.1.mlp_out"])
    for name, value in full.items():
        torch.testing.assert_close(early[name], value)
    assert _hook_count(loaded.model) == 0
    assert not early["blocks.0.resid_post"].is_inference()

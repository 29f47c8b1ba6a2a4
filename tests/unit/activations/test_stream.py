"""ForwardStream: attention sinks left out like the store does, per-hook scaling, exact resume."""

from __future__ import annotations

import pytest
import torch

from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.common import InterplabError
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.models.interventions import run_to_capture
from interplab.saes import fold_transcoder_scales_, make_sae, sae_config

HOOKS = ["blocks.0.mlp_in", "blocks.1.mlp_in"]
TARGETS = ["blocks.0.mlp_out", "blocks.1.mlp_out"]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(tiny_model_dir("llama", n_layers=2), device="cpu")


def _cfg(**kw) -> StreamConfig:
    return StreamConfig(**{"batch_size": 32, "context_size": 16, "window_seqs": 4, "forward_batch": 2, "epochs": 1,
                           **kw})


def test_stream_leaves_out_the_first_position_and_special_tokens(lm):
    texts = load_texts(None)[:12]
    stream = ForwardStream(lm, texts, HOOKS[:1], cfg=_cfg(normalize=False, max_norm_ratio=None))
    x, _ = stream._raw_rows(0, 0)
    seqs = stream._window_seqs(0, 0)
    ids, mask = stream.packed.input_ids[seqs], stream.packed.attention_mask[seqs]
    acts = run_to_capture(lm.model, {"input_ids": ids, "attention_mask": mask.long()}, HOOKS[:1])[HOOKS[0]]
    special = torch.isin(ids, torch.tensor(lm.tokenizer.all_special_ids))
    keep = mask.clone()
    keep[:, 0] = False
    keep &= ~special
    assert 0 < int(keep.sum()) < int(mask.sum())
    torch.testing.assert_close(x[:, 0], acts[keep].float())
    kept_all = ForwardStream(lm, texts, HOOKS[:1], cfg=_cfg(normalize=False, exclude_sinks=False))
    assert len(kept_all._raw_rows(0, 0)[0]) == int(mask.sum())


def test_norm_rule_drops_a_token_at_every_layer_when_one_hook_has_a_massive_activation(lm):
    texts = load_texts(None)[:12]
    stream = ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg(normalize=False))
    n_before = len(stream._raw_rows(0, 0)[0])
    block = lm.model.model.layers[1].mlp

    def massive(module, args, out):
        out = out.clone()
        out[:, 5] *= 1000.0  # position 5 of every row
        return out

    handle = block.register_forward_hook(massive)
    try:
        stream._cached = None
        x, y = stream._raw_rows(0, 0)
    finally:
        handle.remove()
    assert len(x) == len(y) == n_before - 4  # one token per sequence of the window, at both layers
    assert float(y[:, 1].norm(dim=-1).max()) < 100.0


def test_normalized_rows_have_mean_norm_sqrt_d_and_folding_restores_raw_predictions(lm):
    texts = load_texts(None)[:24]
    stream = ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg())
    x, y = next(iter(stream))
    d = lm.d_model
    first_x, first_y = stream._window_rows(0, 0)
    assert float(first_x.norm(dim=-1).mean()) == pytest.approx(d ** 0.5, rel=1e-4)
    assert float(first_y.norm(dim=-1).mean()) == pytest.approx(d ** 0.5, rel=1e-4)
    assert set(stream.scales) == set(HOOKS + TARGETS) and len(set(stream.scales.values())) == 4
    for arch in ("topk_skip_transcoder", "jumprelu_skip_transcoder"):
        tc = make_sae(sae_config(arch, d_in=d, d_sae=48, **({"k": 4} if arch.startswith("topk") else {})))
        with torch.no_grad():
            tc.W_skip.normal_()
        s_in, s_out = stream.scales[HOOKS[0]], stream.scales[TARGETS[0]]
        raw_x = x[:, 0] / s_in
        want = tc(raw_x * s_in).x_hat / s_out
        fold_transcoder_scales_(tc, s_in, s_out)
        torch.testing.assert_close(tc(raw_x).x_hat, want, rtol=1e-4, atol=1e-5)


def test_resumed_stream_yields_the_same_batches(lm):
    texts = load_texts(None)[:40]
    full = list(ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg()))
    assert len(full) >= 4
    first = ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg())
    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    resumed = ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg())
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(full) - 3
    for (xa, ya), (xb, yb) in zip(full[3:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other = ForwardStream(lm, texts, HOOKS, TARGETS, cfg=_cfg(max_norm_ratio=5.0))
    with pytest.raises(InterplabError, match="exclusion"):
        other.load_state_dict(state)

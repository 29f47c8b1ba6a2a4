"""Several transcoder architectures trained side by side from one stream of forward passes."""

from __future__ import annotations

import json

import torch

from interplab.activations.stream import StreamConfig
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.pipelines.transcoders import load_layer_transcoders, train_transcoders_run
from interplab.saes import sae_config
from interplab.training import TrainConfig


def test_side_by_side_sets_see_the_same_batches_as_separate_runs(tmp_path, tiny_model_dir):
    lm = load_model(tiny_model_dir("llama", n_layers=2), device="cpu")
    texts = load_texts(None)
    skip, plain = (sae_config(a, d_in=64, d_sae=96, k=6) for a in ("topk_skip_transcoder", "topk_transcoder"))
    train = TrainConfig(total_steps=8, lr=2e-3, log_every=4, threads=1, b_dec_init="mean")
    stream = StreamConfig(batch_size=96, context_size=24, window_seqs=8)
    both = train_transcoders_run(tmp_path / "both", lm, texts[:60], texts[-3:], skip, train, stream,
                                 show_progress=False, side_by_side=[plain])
    alone = train_transcoders_run(tmp_path / "plain", lm, texts[:60], texts[-3:], plain, train, stream,
                                  show_progress=False)
    other = load_layer_transcoders(tmp_path / "both" / "side_by_side" / "topk_transcoder" / "transcoders")
    for L in (0, 1):  # the same init (seed + layer), batches and updates: the same weights
        torch.testing.assert_close(other[L].W_dec, alone.transcoders[L].W_dec)
        assert hasattr(both.transcoders[L], "W_skip") and not hasattr(other[L], "W_skip")
    ev = json.loads((tmp_path / "both" / "eval.json").read_text())
    assert ev["side_by_side"]["topk_transcoder"]["layers"] == json.loads(
        (tmp_path / "plain" / "eval.json").read_text())["layers"]

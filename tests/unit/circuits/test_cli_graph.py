"""Train per-layer transcoders from streamed forward passes, then `interplab graph` on them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from interplab.activations.stream import StreamConfig
from interplab.cli import app
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.pipelines.transcoders import train_transcoders_run
from interplab.saes import sae_config
from interplab.training import TrainConfig


def test_transcoders_train_in_one_pass_and_the_graph_command_writes_a_report(tmp_path, tiny_model_dir):
    model_dir = tiny_model_dir("llama", n_layers=3)
    lm = load_model(model_dir, device="cpu")
    texts = load_texts(None)
    run = train_transcoders_run(tmp_path / "tc", lm, texts[:60], texts[-4:], sae_config("topk_skip_transcoder",
                                d_in=64, d_sae=128, k=8), TrainConfig(total_steps=6, lr=1e-3, log_every=3, threads=1),
                                StreamConfig(batch_size=128, context_size=32, window_seqs=8), show_progress=False)
    assert sorted(run.transcoders) == [0, 1, 2] and set(run.evaluation["layers"]) == {0, 1, 2}
    assert run.evaluation["n_tokens"] > 0 and "ce_recovered" in run.evaluation
    lines = (tmp_path / "tc" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["tokens"] == 6 * 128
    res = CliRunner().invoke(app, ["graph", "--model", str(model_dir), "--transcoders", str(tmp_path / "tc" /
                                   "transcoders"), "--prompt", "The cat sat on the", "--out", str(tmp_path / "g"),
                                   "--max-feature-nodes", "32", "--check", "2"])
    assert res.exit_code == 0, res.output
    graph = json.loads((tmp_path / "g" / "graph.json").read_text())
    assert graph["metadata"]["completeness_logit_abs_error"] < 1e-3  # float32 model
    assert any(n["feature_type"] == "logit" for n in graph["nodes"])
    index = json.loads((tmp_path / "g" / "index.json").read_text())
    assert index["kind"] == "attribution-graph" and {t["name"] for t in index["tables"]} == {"nodes", "interventions"}

"""`interplab train-transcoders` through typer's CliRunner on a tiny Llama."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError
from interplab.models import load_model
from interplab.models.interventions import capture
from interplab.pipelines.transcoders import load_layer_transcoders

runner = CliRunner()
SMALL = ["--d-sae", "96", "--k", "6", "--steps", "6", "--log-every", "3", "--batch-size", "96", "--context-size",
         "24", "--window-seqs", "8", "--threads", "1", "--eval-texts", "3"]


def _run(model_dir, out, *extra: str):
    return runner.invoke(app, ["train-transcoders", "--model", str(model_dir), "--out", str(out), *SMALL, *extra])


def test_trains_the_chosen_layers_into_raw_activation_units(tmp_path, tiny_model_dir):
    model_dir = tiny_model_dir("llama", n_layers=3)
    res = _run(model_dir, tmp_path / "run", "--layers", "0,2", "--arch", "topk_transcoder")
    assert res.exit_code == 0, res.output
    assert "trained 2 topk_transcoders" in res.output and "left out as sinks" in res.output
    tcs = load_layer_transcoders(tmp_path / "run" / "transcoders")
    assert sorted(tcs) == [0, 2]
    meta = tcs[2].cfg.metadata
    assert meta["hook_name"] == "blocks.2.mlp_in" and meta["exclusion"]["first_positions"] == 1
    assert set(meta["folded_scales"]) == {"in", "out"}
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert set(ev["layers"]) == {"0", "2"} and ev["n_excluded"] > 0
    # folded: the saved transcoder reads the model's own MLP input and lands near its MLP output
    lm = load_model(model_dir, device="cpu")
    batch = lm.tokenize(["The cat sat on the mat and looked at the dog."], max_length=24)
    with torch.no_grad(), capture(lm.model, ["blocks.2.mlp_in", "blocks.2.mlp_out"]) as acts:
        lm.model(**batch)
    x, y = acts["blocks.2.mlp_in"][0, 1:], acts["blocks.2.mlp_out"][0, 1:]
    with torch.no_grad():
        y_hat = tcs[2](x).x_hat
    assert float((y - y_hat).pow(2).sum() / (y - y.mean(0)).pow(2).sum()) < 1.5
    again = _run(model_dir, tmp_path / "run", "--layers", "0,2", "--arch", "topk_transcoder")
    assert again.exit_code == 0 and "reused the finished run" in again.output


@pytest.mark.parametrize(("extra", "message"), [
    (["--arch", "topk"], "--arch topk is not a transcoder"),
    (["--layers", "0,7"], "the model has layers 0..2"),
    (["--layers", "two"], "--layers takes 'all'"),
    (["--l0-coeff", "0.1"], "--l0-coeff does not apply to --arch topk_skip_transcoder"),
])
def test_bad_options_are_one_line_errors(tmp_path, tiny_model_dir, extra, message):
    res = _run(tiny_model_dir("llama", n_layers=3), tmp_path / "bad", *extra)
    assert isinstance(res.exception, InterplabError), res.output
    assert message in str(res.exception) and "\n" not in str(res.exception)
    assert not (tmp_path / "bad").exists()


def test_help_lists_every_transcoder_field_and_the_stream_options():
    import dataclasses

    from interplab.commands.train_transcoders import transcoder_classes

    text = runner.invoke(app, ["train-transcoders", "--help"], env={"COLUMNS": "300"}).output
    for cls in transcoder_classes().values():
        for f in dataclasses.fields(cls):
            if f.name in ("d_in", "seed", "metadata", "apply_b_dec_to_input"):
                continue
            flag = "--sae-dtype" if f.name == "dtype" else "--" + f.name.replace("_", "-")
            assert flag in text, flag
    for flag in ("--window-seqs", "--max-norm-ratio", "--normalize", "--exclude-sinks", "--layers"):
        assert flag in text

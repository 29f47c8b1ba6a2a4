"""`interplab steer build|generate|sweep|compare` on a tiny random GPT-2."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError
from interplab.saes import make_sae, sae_config, save_sae
from interplab.steering.vectors import load_vector

HOOK = "blocks.1.resid_post"


def _pairs(tmp_path, lines):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    return path


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_build_from_pairs_then_sweep_and_generate(tiny_model_dir, tmp_path):
    model = tiny_model_dir("gpt2")
    pairs = _pairs(
        tmp_path,
        [{"positive": "I love it", "negative": "I hate it"}, {"positive": "joy", "negative": "grief"}],
    )
    built = _invoke(
        "steer",
        "build",
        "--model",
        model,
        "--pairs",
        pairs,
        "--hook",
        HOOK,
        "--out",
        tmp_path / "love",
        "--language",
        "en",
    )
    assert built.exit_code == 0, repr(built.exception)
    vec = load_vector(tmp_path / "love")
    assert vec.hook == HOOK and vec.metadata["language"] == "en" and vec.metadata["n_pairs"] == 2
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("I think that\nToday I went to the\n")
    swept = _invoke(
        "steer",
        "sweep",
        "--model",
        model,
        "--vector",
        tmp_path / "love.safetensors",
        "--coefs=-2,0,2",
        "--keywords",
        "love,the",
        "--max-new-tokens",
        "4",
        "--out",
        tmp_path / "run",
        "--prompts",
        prompts,
    )
    assert swept.exit_code == 0, repr(swept.exception)
    rows = json.loads((tmp_path / "run" / "tables" / "sweep.json").read_text())
    assert [r["coef"] for r in rows] == [-2.0, 0.0, 2.0] and rows[0]["target_name"] == "keyword_rate"
    probed = _invoke(
        "steer",
        "sweep",
        "--model",
        model,
        "--vector",
        tmp_path / "love",
        "--coefs=0,3",
        "--probe-pairs",
        pairs,
        "--max-new-tokens",
        "3",
        "--out",
        tmp_path / "probed",
        "--prompts",
        prompts,
    )
    assert probed.exit_code == 0, repr(probed.exception)
    assert (
        json.loads((tmp_path / "probed" / "tables" / "sweep.json").read_text())[0]["target_name"]
        == "probe_score"
    )
    again = _invoke(
        "steer",
        "sweep",
        "--model",
        model,
        "--vector",
        tmp_path / "love",
        "--keywords",
        "x",
        "--out",
        tmp_path / "run",
    )
    assert isinstance(again.exception, InterplabError) and "--overwrite" in str(again.exception)
    gen = _invoke(
        "steer",
        "generate",
        "--model",
        model,
        "--vector",
        tmp_path / "love",
        "--prompt",
        "Hello",
        "--max-new-tokens",
        "3",
    )
    assert gen.exit_code == 0 and "coef 0" in gen.output


def test_build_from_an_sae_latent_and_compare_vectors(tmp_path):
    torch.manual_seed(0)
    save_sae(
        make_sae(sae_config("relu", d_in=64, d_sae=8)),
        tmp_path / "sae",
        metadata={"hook_name": HOOK},
    )
    for latent in (1, 2):
        result = _invoke(
            "steer", "build", "--sae", tmp_path / "sae", "--latent", latent, "--out", tmp_path / f"l{latent}"
        )
        assert result.exit_code == 0, repr(result.exception)
    assert load_vector(tmp_path / "l1").hook == HOOK
    compared = _invoke("steer", "compare", tmp_path / "l1", tmp_path / "l2", "--out", tmp_path / "cmp")
    assert compared.exit_code == 0, repr(compared.exception)
    assert "+1.000" in compared.output
    assert (tmp_path / "cmp" / "figures" / "cosines.png").exists()


def test_bad_pairs_file_is_a_one_line_error_naming_the_line(tiny_model_dir, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"positive": "a", "negative": "b"}\n{"positive": "only"}\n')
    result = _invoke(
        "steer",
        "build",
        "--model",
        tiny_model_dir("gpt2"),
        "--pairs",
        path,
        "--hook",
        HOOK,
        "--out",
        tmp_path / "v",
    )
    assert isinstance(result.exception, InterplabError)
    assert "pairs.jsonl:2" in str(result.exception) and not (tmp_path / "v.safetensors").exists()

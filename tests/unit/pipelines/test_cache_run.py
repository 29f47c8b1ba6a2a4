"""`interplab cache` through the CLI: a mistyped hook leaves nothing that blocks the corrected rerun."""

from __future__ import annotations

from typer.testing import CliRunner

from interplab.activations import ActivationStore
from interplab.cli import app
from interplab.common import InterplabError

runner = CliRunner()


def test_mistyped_hook_fails_before_writing_and_the_corrected_rerun_succeeds(tmp_path, tiny_model_dir):
    model, out = str(tiny_model_dir("gpt2")), tmp_path / "store"
    args = ["cache", "--model", model, "--out", str(out), "--context-size", "16", "--max-tokens", "128"]
    bad = runner.invoke(app, [*args, "--hook", "blocks.0.resid_pots"])
    assert isinstance(bad.exception, InterplabError) and "blocks.0.resid_pots" in str(bad.exception)
    assert not out.exists()
    good = runner.invoke(app, [*args, "--hook", "blocks.0.resid_post"])
    assert good.exit_code == 0, good.output
    assert ActivationStore.open(out).manifest.header.hook == "blocks.0.resid_post"


def test_every_cache_config_field_is_an_option():
    import dataclasses

    from interplab.activations.cache import CacheConfig

    text = runner.invoke(app, ["cache", "--help"], env={"COLUMNS": "300"}).output
    for f in dataclasses.fields(CacheConfig):
        assert "--" + f.name.replace("_", "-") in text

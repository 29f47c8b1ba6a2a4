"""`interplab toy` writes a complete run folder: config, metrics, weights, PNG + offline HTML, index.json."""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from PIL import Image
from typer.testing import CliRunner

from interplab.cli import app
from interplab.common import InterplabError
from interplab.toy.runner import PRESETS


def _invoke(*args: str):
    # Typer collapses an app with a single command into that command, so name it only when others exist.
    prefix = ["toy"] if len(app.registered_commands) > 1 else []
    return CliRunner().invoke(app, [*prefix, *args])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    result = _invoke("--preset", "all", "--out", str(out), "--steps", "20", "--restarts", "1")
    assert result.exit_code == 0, result.output
    return out


def test_run_folder_has_config_metrics_and_index(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert set(config) == set(PRESETS)
    assert config["intro"]["train"]["steps"] == 20 and config["phase"]["train"]["restarts"] == 1
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    by_preset = {p: [r for r in rows if r["preset"] == p] for p in PRESETS}
    assert len(by_preset["intro"]) == 5 and len(by_preset["sweep"]) == 12
    assert len(by_preset["phase"]) == 49 and {r["phase"] for r in by_preset["phase"]} <= {
        "not learned",
        "dedicated",
        "superposition",
    }
    assert all(len(r["norms"]) == 200 for r in by_preset["dimensionality"])
    index = json.loads((run_dir / "index.json").read_text())
    assert index["kind"] == "toy" and {f["group"] for f in index["figures"]} == set(PRESETS)
    assert all(f["title"] for f in index["figures"])


def test_every_listed_figure_exists_and_pngs_are_valid_images(run_dir):
    index = json.loads((run_dir / "index.json").read_text())
    for fig in index["figures"]:
        with Image.open(run_dir / fig["png"]) as img:
            img.verify()
        with Image.open(run_dir / fig["png"]) as img:
            assert img.format == "PNG" and img.width > 200 and img.height > 150
        if fig["html"]:
            assert (run_dir / fig["html"]).stat().st_size > 1000


def test_html_figures_are_self_contained_with_hover_tooltips(run_dir):
    for name in ("intro", "sweep", "phase", "dimensionality"):
        text = (run_dir / f"{name}.html").read_text()
        assert "<svg" in text and "data-tip=" in text and "<script>" in text
        # Nothing is fetched: no external src/href, no stylesheet links, no CDN.
        assert not re.search(r"(src|href)\s*=", text)
        assert "<link" not in text and "cdn" not in text.lower()
        assert re.findall(r"https?://[^\s\"']+", text) == ["http://www.w3.org/2000/svg"] * text.count("<svg")
        for block in re.findall(r"<svg.*?</svg>", text, flags=re.S):
            ET.fromstring(block)  # every panel is well-formed SVG


def test_weights_are_saved_next_to_the_figures(run_dir):
    from safetensors.torch import load_file

    tensors = load_file(str(run_dir / "sweep.safetensors"))
    assert tensors["relu.W"].shape == (6, 5, 20) and tensors["linear.b"].shape == (6, 20)


def test_unknown_preset_is_a_one_line_error(tmp_path):
    result = _invoke("--preset", "nope", "--out", str(tmp_path / "x"))
    assert isinstance(result.exception, InterplabError)
    assert "intro, sweep, phase, dimensionality" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_a_second_run_into_a_finished_report_needs_overwrite(run_dir):
    again = _invoke("--preset", "intro", "--out", str(run_dir), "--steps", "5", "--restarts", "1")
    assert isinstance(again.exception, InterplabError) and "--overwrite" in str(again.exception)
    assert json.loads((run_dir / "index.json").read_text())["summary"]["presets"] != "intro"  # untouched


def test_help_shows_what_each_unset_default_means():
    text = CliRunner().invoke(app, ["toy", "--help"], env={"COLUMNS": "200"}).output
    assert "each preset's own" in text and "CUDA when present" in text

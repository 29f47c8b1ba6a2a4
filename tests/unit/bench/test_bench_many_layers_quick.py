"""Smoke test of bench/many_layers.py --quick (a tiny random Llama): it runs end to end and its derived
table follows from its measured rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "many_layers.py"


def test_quick_run_measures_every_stage_and_derives_the_break_even(tmp_path: Path) -> None:
    out = tmp_path / "layers.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = report["rows"]
    hooks = report["config"]["hooks"]
    names = [r["name"] for r in rows]
    assert names.count("cached: cache_activations") == len(hooks) == 4
    assert names.count("cached: train from the store") == len(hooks)
    streamed = {r["name"]: r for r in rows if r["hook"] == "all"}
    trained = streamed["streamed: forward + train all"]["tokens"]
    assert trained > 0 and trained % report["config"]["batch_size"] == 0
    assert trained <= streamed["streamed: forward passes only"]["tokens"]
    # table 2 is E · (stream) / M against (Σ cache + E · Σ train) / M, from the rows above
    per_1k = {(r["name"], r["hook"]): 1e6 * r["cpu_s"] / r["tokens"] for r in rows}
    cache = sum(v for (n, _), v in per_1k.items() if n == "cached: cache_activations")
    train = sum(v for (n, _), v in per_1k.items() if n == "cached: train from the store")
    for row in report["derived"]:
        e = row["epochs"]
        assert abs(row["streamed"] - e * per_1k[("streamed: forward + train all", "all")] / 4) < 1e-6 * row["streamed"] + 1e-9
        assert abs(row["cached"] - (cache + e * train) / 4) < 1e-6 * row["cached"] + 1e-9

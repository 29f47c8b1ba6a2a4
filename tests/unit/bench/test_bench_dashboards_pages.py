"""bench/dashboards_pages.py: the synthetic DB is built once and reused; percentiles are the usual ones."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from interplab.dashboards.db import DashboardDB

BENCH = Path(__file__).resolve().parents[3] / "bench" / "dashboards_pages.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_dashboards_pages", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_dashboards_pages"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_dashboards_pages", None)


def test_synthetic_db_is_built_in_batches_then_reused(bench, tmp_path: Path) -> None:
    shape = {"n_top": 2, "n_quantile": 2, "context": 4}
    assert bench.build_db(tmp_path / "d.db", 30, 7, shape) > 0
    assert bench.build_db(tmp_path / "d.db", 30, 7, shape) == 0.0  # same spec: reused
    db = DashboardDB(tmp_path / "d.db", create=False)
    assert db.n_features(1) == 30 and len(db.get_examples(1, 29, "quantile")) == 2
    db.close()


def test_percentiles(bench) -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0 and bench.percentile(values, 99) == 99.0
    assert bench.percentile([3.0], 99) == 3.0

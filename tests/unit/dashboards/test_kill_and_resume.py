"""A dashboards build SIGKILLed between batches and resumed writes the same rows as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _run_build import CFG, build  # noqa: E402  (the same code the subprocess runs)

from interplab.dashboards import build_dashboards  # noqa: E402

SCRIPT = Path(__file__).with_name("_run_build.py")


def _done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM build_state WHERE key = 'done'").fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    return int(row[0]) if row else 0


def _content(db: Path) -> dict[str, list[tuple]]:
    """Every row that describes latents (example ids and timestamps left out)."""
    queries = {
        "features": "SELECT * FROM features ORDER BY sae_id, idx",
        "examples": "SELECT sae_id, idx, kind, rank, bucket, max_act, tokens, acts, token_ids, position "
                    "FROM examples ORDER BY sae_id, idx, kind, rank",
        "tokens": "SELECT * FROM feature_tokens ORDER BY sae_id, idx, token",
        "state": "SELECT * FROM build_state ORDER BY sae_id, key",
        "saes": "SELECT name, path, model, hook, d_in, d_sae, arch, n_tokens, meta FROM saes",
    }
    with sqlite3.connect(db) as conn:
        return {k: conn.execute(q).fetchall() for k, q in queries.items()}


def _kill_after_first_batch(args: list[str], db: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, "--sleep", "0.5"],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while _done(db) == 0:
            if proc.poll() is not None:
                pytest.fail(f"build ended before writing a batch: {proc.stderr.read().decode()[-500:]}")
            if time.monotonic() > deadline:
                pytest.fail("build wrote no batch within 120 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()


def test_killed_build_resumes_to_the_same_database_content(gpt2_store, random_sae, tmp_path):
    model_dir, store = gpt2_store
    killed, clean = tmp_path / "killed.db", tmp_path / "clean.db"
    args = [str(random_sae), str(store), str(killed), str(model_dir)]
    _kill_after_first_batch(args, killed)
    done = _done(killed)
    assert 0 < done < 48, "the build was not cut off between batches"
    with sqlite3.connect(killed) as conn:
        assert conn.execute("SELECT COUNT(*) FROM features").fetchone()[0] == done  # whole batches only
    ckpt = tmp_path / "killed.db.scan-sae.safetensors"
    assert ckpt.exists()
    # a second copy without the scan checkpoint: its resume rescans the store
    rescan = tmp_path / "rescan.db"
    with sqlite3.connect(killed) as src, sqlite3.connect(rescan) as dst:
        src.backup(dst)

    stages: set[str] = set()
    build_dashboards(random_sae, store, killed, CFG, model=str(model_dir), resume=True, device="cpu",
                     progress=lambda stage, done, total: stages.add(stage))
    assert stages == {"write"}  # the scans came from the checkpoint
    build(str(random_sae), str(store), str(rescan), str(model_dir), resume=True)
    build(str(random_sae), str(store), str(clean), str(model_dir))
    assert not ckpt.exists() and not list(tmp_path.glob("*.safetensors"))  # finished builds remove it
    want = _content(clean)
    assert len(want["features"]) == 48 and len(want["examples"]) > 48
    for db in (killed, rescan):
        got = _content(db)
        for table in want:
            assert got[table] == want[table], (db.name, table)

"""A real dashboards database, SAE and reports folder for the web tests (unit and browser).

Rows are written with DashboardDB.write_latents like the builder does; the SAE is a random TopK SAE on a
tiny random GPT-2 (built offline by the `tiny_model_dir` fixture), saved with save_sae, so live inference
runs the real code path. Model text includes `<script>` payloads to check escaping.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fake_dashboard_rows import synthetic_batch
from interplab.dashboards.db import DashboardDB, ExampleRecord, FeatureRecord, SaeRecord
from interplab.saes import make_sae, sae_config
from interplab.saes.io import save_sae

XSS = "<script>alert(1)</script>"
LOCAL = "http://127.0.0.1:8000"  # the server answers only its loopback names (TestClient's default is "testserver")
HOOK = "blocks.0.resid_post"
D_SAE = 48


@dataclass
class WebData:
    db_path: Path
    sae_id: int
    sae_folder: Path
    model_dir: Path
    reports_dir: Path
    outside_file: Path


def _hand_latents() -> tuple[list[FeatureRecord], list[ExampleRecord]]:
    feat = FeatureRecord(idx=7, frequency=0.02, max_act=4.0, mean_act=1.5, hist_edges=[0.0, 1.0, 2.0, 3.0, 4.0],
                         hist_counts=[10, 5, 2, 1], logits_pos=[(" cat", 2.5), (XSS, 1.0)],
                         logits_neg=[(" dog", -1.2)], neighbours=[(8, 0.8), (3, 0.5)])
    exs = [
        ExampleRecord(idx=7, kind="top", rank=0, max_act=4.0, tokens=["The", " cat", " sat", XSS],
                      acts=[0.0, 4.0, 1.0, 2.0], token_ids=[1, 2, 3, 4], position=5),
        ExampleRecord(idx=7, kind="top", rank=1, max_act=3.0, tokens=["A", " cat", " ran"],
                      acts=[0.0, 3.0, 0.0], token_ids=[5, 2, 6], position=9),
        ExampleRecord(idx=7, kind="quantile", rank=0, max_act=1.0, tokens=["my", " cat"],
                      acts=[0.2, 1.0], token_ids=[7, 2], position=20, bucket="0.00-0.25"),
    ]
    return [feat], exs


def _write_reports(tmp: Path) -> tuple[Path, Path]:
    """reports/probe/ (a finished report with an XSS title), an unfinished one, a secret outside, a symlink."""
    reports = tmp / "reports"
    probe = reports / "probe"
    (probe / "figures").mkdir(parents=True)
    (probe / "tables").mkdir()
    (probe / "figures" / "acc.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    (probe / "figures" / "acc.html").write_text("<html><body><p>interactive</p></body></html>")
    (probe / "tables" / "acc.csv").write_text(f"layer,accuracy\n0,0.5\n1,{XSS}\n")
    index = {"title": f"Probe {XSS}", "summary": {"best": 0.9},
             "tables": [{"name": "acc", "title": "Accuracy", "csv": "tables/acc.csv", "json": "tables/acc.json"}],
             "figures": [{"name": "acc", "title": "Accuracy by layer", "png": "figures/acc.png",
                          "html": "figures/acc.html", "caption": "higher is better"}]}
    (probe / "index.json").write_text(json.dumps(index))
    (reports / "unfinished").mkdir()
    (reports / "unfinished" / "config.json").write_text("{}")
    outside = tmp / "secret.txt"
    outside.write_text("top secret")
    (reports / "leak.txt").symlink_to(outside)
    (reports / "leakdir").symlink_to(tmp / "elsewhere", target_is_directory=True)
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "index.json").write_text(json.dumps({"title": "outside report"}))
    return reports, outside


def local_client(app: FastAPI) -> TestClient:
    """A TestClient that reaches the app as a browser on this machine does (Host 127.0.0.1:8000)."""
    return TestClient(app, base_url=LOCAL)


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn in a thread on a free loopback port; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def build_web_data(tmp: Path, model_dir: Path) -> WebData:
    torch.manual_seed(0)
    sae = make_sae(sae_config("topk", d_in=64, d_sae=D_SAE, k=6))
    sae_folder = save_sae(sae, tmp / "sae", metadata={"hook_name": HOOK})
    db_path = tmp / "dash.db"
    db = DashboardDB(db_path)
    sae_id = db.upsert_sae(SaeRecord(name=f"tiny {XSS}", path=str(sae_folder), model=str(model_dir), hook=HOOK,
                                     d_in=64, d_sae=D_SAE, arch="topk", n_tokens=1000))
    feats, exs = synthetic_batch(0, 7, n_top=3, n_quantile=2, context=8)
    db.write_latents(sae_id, feats, exs)
    db.write_latents(sae_id, *_hand_latents())
    feats, exs = synthetic_batch(8, D_SAE - 8, n_top=3, n_quantile=2, context=8)
    db.write_latents(sae_id, feats, exs)
    db.write_explanation(sae_id, 7, f"cats {XSS} and kittens", "tiny-llm", detection=0.9, fuzzing=0.8)
    db.close()
    reports, outside = _write_reports(tmp)
    return WebData(db_path=db_path, sae_id=sae_id, sae_folder=sae_folder, model_dir=model_dir,
                   reports_dir=reports, outside_file=outside)


def write_tuned_lens_report(reports_dir: Path, model_dir: Path, name: str = "tuned-lens-tiny") -> Path:
    """A real tuned-lens report (3 training steps on the tiny model) inside `reports_dir`; returns its folder."""
    from interplab.lens import TunedLensConfig
    from interplab.pipelines.lens import LensRunConfig, run_tuned_lens

    texts = reports_dir.parent / f"{name}-texts.txt"
    texts.write_text("\n".join(f"The cat number {i} sat on the mat while the dog slept." for i in range(12)))
    run_tuned_lens(reports_dir / name, LensRunConfig(model=str(model_dir), data=str(texts), heldout_texts=2, device="cpu"),
                   TunedLensConfig(steps=3, batch_size=2, max_length=32, checkpoint_every=0, threads=1))
    return reports_dir / name

"""A dashboards build that pauses after each written batch, so a test can kill it mid-way.

    python _run_build.py SAE STORE DB MODEL [--sleep 0.3] [--resume]
"""

from __future__ import annotations

import argparse
import time

from interplab.dashboards import DashboardConfig, build_dashboards

CFG = DashboardConfig(top_k=4, window=3, batch_tokens=64, write_batch=8)


def build(sae: str, store: str, db: str, model: str, resume: bool = False, sleep: float = 0.0) -> None:
    def progress(stage: str, done: int, total: int) -> None:
        if stage == "write" and done < total:
            time.sleep(sleep)

    build_dashboards(sae, store, db, CFG, model=model, resume=resume, device="cpu", progress=progress)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    p = argparse.ArgumentParser()
    for name in ("sae", "store", "db", "model"):
        p.add_argument(name)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    a = p.parse_args()
    build(a.sae, a.store, a.db, a.model, a.resume, a.sleep)

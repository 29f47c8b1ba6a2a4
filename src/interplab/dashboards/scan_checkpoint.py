"""A checkpoint of the two scans, so a resumed build writes its remaining latents without re-reading the store.

1. After pass 2, the whole scan state (both trackers, the statistics, histogram counts and the token
   ids of the scanned rows) is written as one safetensors file, temp file + rename, with the hash
   of the build's settings in its metadata.
2. A resumed build loads it when the hash matches and skips both scans; a missing, foreign or
   unreadable file just means rescanning (the scans are deterministic, so the result is the same).
3. The finished build deletes it.
The file lives next to a SQLite database (`<db>.scan-<name>.safetensors`); with a server URL
(PostgreSQL) there is no such place and a resume rescans.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from interplab.common import get_logger
from interplab.dashboards.config import DashboardConfig
from interplab.dashboards.quantiles import Histogram, QuantileSampler
from interplab.dashboards.scan import TopScan
from interplab.dashboards.top_contexts import LatentStats, TopKTracker

log = get_logger(__name__)

_FIELDS = ("scores_GK", "values_GK", "rows_GK", "pos_GK", "start_GK", "ctx_GKL")


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def checkpoint_path(db_url: str, name: str) -> Path | None:
    """Where the scan checkpoint of build `name` goes: next to a SQLite file, else nowhere."""
    if not db_url.startswith("sqlite:///") or db_url == "sqlite:///:memory:":
        return None
    db_file = Path(db_url[len("sqlite:///"):])
    return db_file.with_name(f"{db_file.name}.scan-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.safetensors")


def save_scan(path: Path, key: str, top: TopScan, hist: Histogram, sampler: QuantileSampler) -> None:
    """Write the scan state (atomically); `key` is the settings hash a resume must match."""
    tensors: dict[str, Tensor] = {"count_F": top.stats.count_F, "sum_F": top.stats.sum_F, "max_F": top.stats.max_F,
                                  "hist_FB": hist.counts_FB, "tokens_NT": top.tokens_NT, "mask_NT": top.mask_NT}
    for prefix, tracker in (("top.", top.top), ("quantile.", sampler.tracker)):
        tensors.update({prefix + f: getattr(tracker, f) for f in _FIELDS})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"key": key, "n_tokens": str(top.stats.n_tokens)})
    os.replace(tmp, path)


def load_scan(path: Path, key: str, cfg: DashboardConfig,
              device: torch.device) -> tuple[TopScan, Histogram, QuantileSampler] | None:
    """The saved scan state, or None when the file is missing, unreadable or from other settings."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("key") != key:
            log.info("scan checkpoint %s is from other settings; rescanning", path)
            return None
        t = {k: v.to(device) for k, v in load_file(str(path)).items()}
    except (OSError, SafetensorError, ValueError) as exc:
        log.warning("scan checkpoint %s is unreadable (%s); rescanning", path, exc)
        return None
    stats = LatentStats(t["count_F"], t["sum_F"], t["max_F"], int(meta.get("n_tokens", 0)))
    n_latents, length = len(stats.max_F), t["top.ctx_GKL"].shape[2]
    top = TopKTracker(n_latents, cfg.top_k, torch.arange(n_latents), length, device)
    max_F = torch.where(torch.isfinite(stats.max_F), stats.max_F, torch.zeros_like(stats.max_F))
    hist = Histogram(max_F, cfg.n_bins)
    hist.counts_FB = t["hist_FB"]
    sampler = QuantileSampler(max_F, cfg.n_buckets, cfg.samples_per_bucket, length, cfg.seed)
    for prefix, tracker in (("top.", top), ("quantile.", sampler.tracker)):
        for name in _FIELDS:
            setattr(tracker, name, t[prefix + name])
    return TopScan(stats, top, t["tokens_NT"].cpu(), t["mask_NT"].cpu()), hist, sampler

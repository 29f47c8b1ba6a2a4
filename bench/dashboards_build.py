"""Bench: dashboard build throughput (tokens x latents per second), streaming vs everything in memory.

1. Store: `--store DIR`, else the demo corpus repeated `--repeat` times, cached once from MiniLM-L6
   blocks.3.resid_post with 64-token rows into runs/bench-dash/ (reused by later runs).
2. For each `--d-sae`: a random TopK SAE (k = 32, unit decoder rows), saved to a temporary folder.
3. Time, best of `--repeats` (CUDA synchronised), on the same store:
     naive top-k        all real-token latents [N, F] in memory, per-row max by index_reduce, then
                        torch.topk over all rows per latent, plus counts / sums / maxima (what
                        scans 1 + 2 give for those; top-k values and counts checked equal)
     scan 1             interplab's streaming top-k + maxima (dashboards.scan.scan_top)
     scan 2             firing counts, histograms, seeded quantile samples (dashboards.scan.scan_quantiles)
     full build         build_dashboards into a fresh SQLite file: both scans, logit effects,
                        neighbours, decoding, DB writes (the model is loaded once beforehand, so
                        library import time is not counted; loading its weights is)
4. Print one table: wall seconds and CPU seconds of this process (both best of the repeats),
   tokens x latents / s, and each row's speed relative to the naive top-k by wall and by CPU time
   (> 1: faster; on a shared machine the CPU ratio is the one neighbours' load disturbs least), plus
   the naive row's latents memory and, for the full build, where its wall time went (scan 1, scan 2,
   writing). The load average is printed before and after.

Run: `python bench/dashboards_build.py --device cpu --threads 1` (shared CPU boxes: 1 thread avoids
thread hand-off stalls), `--device cuda --repeat 40 --d-sae 16384,65536` on a GPU box.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from interplab.activations import ActivationStore, CacheConfig, cache_activations
from interplab.common import get_device
from interplab.dashboards import DashboardConfig, build_dashboards
from interplab.dashboards.build import load_dictionary
from interplab.dashboards.scan import scan_quantiles, scan_top
from interplab.data.corpus import load_demo_corpus
from interplab.models.loading import load_model
from interplab.saes import load_sae, make_sae, sae_config, save_sae
from timing import sync

MODEL, HOOK = "sentence-transformers/all-MiniLM-L6-v2", "blocks.3.resid_post"


@dataclass
class Row:
    d_sae: int
    method: str
    seconds: float
    tokens: int
    note: str = ""
    cpu_seconds: float = float("nan")

    @property
    def rate(self) -> float:
        """tokens x latents per second."""
        return self.tokens * self.d_sae / self.seconds


def bench_store(args: argparse.Namespace) -> ActivationStore:
    if args.store is not None:
        return ActivationStore.open(args.store)
    folder = Path("runs/bench-dash") / f"minilm-l3-ctx64-x{args.repeat}"
    if not (folder / "manifest.json").exists():
        lm = load_model(MODEL, device=args.device)
        cache_activations(lm, load_demo_corpus() * args.repeat, HOOK, folder,
                          CacheConfig(context_size=64, batch_size=32, shard_tokens=16384, overwrite=True))
    return ActivationStore.open(folder)


def naive_top_k(store: ActivationStore, sae, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-k row peaks [F, k], firing counts [F]) with every real-token latent in memory at once."""
    acts, masks = [], []
    for shard in store.iter_shards():
        acts.append(shard.acts[shard.mask])
        masks.append(shard.mask)
    mask_NT = torch.cat(masks)
    row_N = torch.arange(len(mask_NT))[:, None].expand_as(mask_NT)[mask_NT].to(device)
    acts_ND = torch.cat(acts).to(device)
    with torch.no_grad():
        latents_NF = torch.cat([sae.encode(chunk) for chunk in acts_ND.split(4096)])
    peaks_RF = latents_NF.new_zeros(len(mask_NT), latents_NF.shape[1])
    peaks_RF.index_reduce_(0, row_N, latents_NF, "amax", include_self=False)
    top = peaks_RF.T.topk(k, dim=1)
    count_F = (latents_NF > 0).sum(0)
    _ = (latents_NF.clamp_min(0).sum(0), latents_NF.max(0).values)  # sums and maxima, as scan 1
    return top.values, count_F


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over `repeats` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        sync(device)
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


class StageClock:
    """A build's progress callback: wall seconds from the start to the last report of each stage."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.last[stage] = time.perf_counter() - self.t0

    def note(self) -> str:
        ends = sorted(self.last.items(), key=lambda kv: kv[1])
        parts, prev = [], 0.0
        for stage, end in ends:
            parts.append(f"{stage} {end - prev:.1f}s")
            prev = end
        return "; ".join(parts)


def bench_one(store: ActivationStore, d_sae: int, args: argparse.Namespace, work: Path) -> list[Row]:
    device = get_device(args.device)
    sae_dir = save_sae(make_sae(sae_config("topk", d_in=store.d, d_sae=d_sae, k=32, seed=0)),
                       work / f"sae_{d_sae}")
    sae = load_sae(sae_dir, device=device)
    cfg = DashboardConfig(top_k=args.top_k, max_tokens=args.max_tokens)
    rows = []
    encode = load_dictionary(sae_dir, store, device).encode  # what the build scans with
    ours = scan_top(store, encode, d_sae, cfg, device)  # also the warm-up
    n_tokens = ours.stats.n_tokens
    t1 = timed(lambda: scan_top(store, encode, d_sae, cfg, device), device, args.repeats)
    t2 = timed(lambda: scan_quantiles(store, encode, ours.stats, cfg, device), device, args.repeats)
    if not args.no_naive and args.max_tokens is None:
        values, count = naive_top_k(store, sae, args.top_k, device)
        fired = values > 0
        same = torch.equal(count.cpu(), ours.stats.count_F.cpu()) and torch.allclose(
            values[fired], ours.top.values_GK[fired], rtol=1e-5, atol=1e-6)
        mib = n_tokens * d_sae * 4 / 2**20
        tn = timed(lambda: naive_top_k(store, sae, args.top_k, device), device, args.repeats)
        rows.append(Row(d_sae, "naive top-k", tn[0], n_tokens, f"latents {mib:,.0f} MiB; equal to scan 1: {same}",
                        tn[1]))
    rows += [Row(d_sae, "scan 1 (top-k)", t1[0], n_tokens, "", t1[1]),
             Row(d_sae, "scan 2 (quantiles, store re-read)", t2[0], n_tokens, "", t2[1])]
    stages: list[tuple[float, str]] = []

    def full() -> None:
        db = work / f"d_{d_sae}.db"
        db.unlink(missing_ok=True)
        clock = StageClock()
        build_dashboards(sae_dir, store.folder, db, cfg, device=device, progress=clock)
        stages.append((time.perf_counter() - clock.t0, clock.note()))

    tf = timed(full, device, args.repeats)
    rows.append(Row(d_sae, "full build", tf[0], n_tokens, f"{d_sae} latents; fastest run: {min(stages)[1]}", tf[1]))
    return rows


def print_table(rows: list[Row]) -> None:
    title = (f"| {'d_sae':>6} | {'method':<33} | {'wall s':>7} | {'CPU s':>7} | {'tok x lat / s':>13} | "
             f"{'vs naive':>8} | {'CPU vs naive':>12} | note")
    print(title)
    print("|" + "|".join("-" * (len(c) + 1) + (":" if i not in (1, 7) else "-") for i, c in
                         enumerate(title.strip("| ").split(" | "))) + "|")
    naive = {r.d_sae: r for r in rows if r.method == "naive top-k"}

    def ratio(base: float | None, value: float) -> str:
        return f"{base / value:.2f}x" if base is not None else "n/a"

    for r in rows:
        n = naive.get(r.d_sae)
        print(f"| {r.d_sae:>6} | {r.method:<33} | {r.seconds:>7.2f} | {r.cpu_seconds:>7.2f} | {r.rate:>13.3g} | "
              f"{ratio(n and n.seconds, r.seconds):>8} | {ratio(n and n.cpu_seconds, r.cpu_seconds):>12} | {r.note}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=None, help="activation store (default: cached MiniLM)")
    parser.add_argument("--repeat", type=int, default=4, help="demo-corpus copies in the default store")
    parser.add_argument("--d-sae", default="4096,16384", help="comma-separated SAE widths")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=None, help="scan only this many positions")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings per row")
    parser.add_argument("--no-naive", action="store_true", help="skip the in-memory baseline (large stores)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = bench_store(args)
    load_model(store.manifest.header.model, device=args.device)  # imports once, outside the timings
    print(f"device: {get_device(args.device)}, torch threads: {torch.get_num_threads()}, store: {store}, "
          f"top-k {args.top_k}, best of {args.repeats}; load average {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="interplab_bench_dash_"))
    rows: list[Row] = []
    try:
        for d_sae in (int(x) for x in args.d_sae.split(",")):
            rows += bench_one(store, d_sae, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()}")
    print_table(rows)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) | {"rate": r.rate} for r in rows], indent=2))


if __name__ == "__main__":
    main()

"""Bench: feature-page latency of the web app on a dashboards database of 100k latents.

1. Build (or reuse, with `--db PATH`) a SQLite database of `--latents` latents (default 100,000), written with
   `DashboardDB.write_latents` in batches of `--batch` latents, as `interplab dashboards` writes them.
   The rows are SYNTHETIC (`tests/fake_dashboard_rows.py`: random words and activations, `--top` top examples
   and `--quantile` quantile samples of `--context` tokens per latent, 30-bin histograms, 10 logits each
   way, 10 neighbours): computing real dashboards for 100k latents would take hours of model time, and
   page latency depends on the row sizes and the table size, not on what the numbers mean.
2. Start `interplab serve --db ...` in a subprocess (uvicorn, one worker) on a free loopback port.
3. With one keep-alive httpx client: `--warmup` untimed requests, then `--requests` (default 1,000) timed
   requests of random latents, for the HTML feature page (/sae/1/feature/{i}) and for its JSON
   (/api/saes/1/features/{i}), plus the page of the latent list (sorted by max activation) holding that
   latent, interleaved so all routes see the same machine load.
4. Print p50 / p99 / mean latency (ms) and requests/s per route; `--json out.json` also writes them.

Run: `python bench/dashboards_pages.py` (first run builds the DB: a few minutes on 2 cores, ~1 GB; pass
`--db runs/bench/dash100k.db` to keep it for the next run), `--quick` for a smoke run (2k latents, 100 requests).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from interplab.dashboards.db import DashboardDB, SaeRecord

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fake rows live with the tests
from fake_dashboard_rows import synthetic_batch  # noqa: E402


def build_db(path: Path, latents: int, batch: int, shape: dict[str, int]) -> float:
    """Fill the DB unless it already holds exactly this synthetic set; returns seconds spent building."""
    db = DashboardDB(path)
    try:
        spec = {"latents": latents, **shape}
        sae_id = db.upsert_sae(SaeRecord(name="bench-synthetic", path="/nonexistent", model="synthetic",
                                         hook="blocks.0.resid_post", d_in=512, d_sae=latents, arch="topk"))
        if db.get_state(sae_id, "bench_spec") == spec and db.n_features(sae_id) == latents:
            return 0.0
        start = time.perf_counter()
        for first in range(0, latents, batch):
            feats, exs = synthetic_batch(first, min(batch, latents - first), **shape)
            db.write_latents(sae_id, feats, exs)
            sys.stderr.write(f"\rbuilding: {first + len(feats):,}/{latents:,} latents")
        db.set_state(sae_id, "bench_spec", spec)
        sys.stderr.write("\n")
        return time.perf_counter() - start
    finally:
        db.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "interplab.cli", "serve", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/saes", timeout=1.0)
            return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not answer within 60 s")


def measure(base: str, latents: int, requests: int, warmup: int, seed: int) -> dict[str, list[float]]:
    """Per route, the latencies (ms) of `requests` GETs of random latents (routes interleaved)."""
    routes = {"html /sae/1/feature/{i}": ("/sae/1/feature/{}", 1),
              "json /api/saes/1/features/{i}": ("/api/saes/1/features/{}", 1),
              "html /sae/1?order=max_act&page=p": ("/sae/1?order=max_act&page={}", 100)}
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in routes}
    with httpx.Client(base_url=base, timeout=30.0) as client:
        for n in range(warmup + requests):
            idx = rng.randrange(latents)
            for name, (pattern, per_page) in routes.items():
                start = time.perf_counter()
                resp = client.get(pattern.format(idx // per_page + (per_page > 1)))
                elapsed = (time.perf_counter() - start) * 1000
                if resp.status_code != 200:
                    raise RuntimeError(f"{pattern.format(idx)} -> {resp.status_code}: {resp.text[:200]}")
                if n >= warmup:
                    times[name].append(elapsed)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summarise(times: dict[str, list[float]]) -> list[dict[str, float | str]]:
    return [{"route": name, "n": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99),
             "mean_ms": statistics.fmean(v), "req_per_s": 1000 / statistics.fmean(v)} for name, v in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=5, help="top examples per latent")
    parser.add_argument("--quantile", type=int, default=5, help="quantile samples per latent")
    parser.add_argument("--context", type=int, default=32, help="tokens per example")
    parser.add_argument("--batch", type=int, default=2000, help="latents per write_latents call")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", type=Path, default=None, help="database file to build or reuse (default: temporary)")
    parser.add_argument("--quick", action="store_true", help="2,000 latents, 100 requests")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.latents, args.requests, args.warmup = 2000, 100, 5
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "dash.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        shape = {"n_top": args.top, "n_quantile": args.quantile, "context": args.context}
        build_s = build_db(db, args.latents, args.batch, shape)
        port = _free_port()
        server = start_server(db, port)
        try:
            rows = summarise(measure(f"http://127.0.0.1:{port}", args.latents, args.requests, args.warmup, args.seed))
        finally:
            server.terminate()
            server.wait(timeout=30)
        size_mb = db.stat().st_size / 2**20
    print(f"\nDB: {args.latents:,} synthetic latents, {args.top}+{args.quantile} examples x {args.context} tokens, "
          f"{size_mb:,.0f} MiB (built in {build_s:.0f} s{'' if build_s else ', reused'}); {args.requests} requests/route")
    print(f"| {'route':<32} | {'p50 ms':>7} | {'p99 ms':>7} | {'mean ms':>7} | {'req/s':>6} |")
    print(f"| {'-' * 32} | {'-' * 6}: | {'-' * 6}: | {'-' * 6}: | {'-' * 5}: |")
    for r in rows:
        print(f"| {r['route']:<32} | {r['p50_ms']:7.2f} | {r['p99_ms']:7.2f} | {r['mean_ms']:7.2f} | {r['req_per_s']:6.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"config": vars(args) | {"db": str(db), "json": str(args.json)},
                                         "db_mib": size_mb, "build_s": build_s, "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()

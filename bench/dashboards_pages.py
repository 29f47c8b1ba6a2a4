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
5. Under load (`--clients N`, default 0: skipped): N concurrent keep-alive clients on loopback, each
   sending its next request as soon as its last answer is in (closed loop, the hardest case for the
   server), for `--rounds` rounds of `--load-requests` feature pages (HTML, random latents), then, with
   `--live-clients M`, M clients posting live-inference texts (`--live-requests` per round) to a random
   TopK SAE on `--live-model` at `--live-hook`, registered in the DB for it. Clients are raw asyncio
   sockets, so the load generator costs the server's cores little. Per server and round: p50 / p99 /
   max latency, requests/s, errors, the server process's CPU ms per request (all its threads; on a
   shared machine the number neighbours' load moves least) and its resident memory after the round.
   Servers compared in the same run, round-robin: this tree (live batching on), this tree with
   `--live-batch 1` (live requests one at a time), and with `--baseline-src DIR` the server of another
   source tree (e.g. the main checkout's src/, the code before a change).

Run: `python bench/dashboards_pages.py` (first run builds the DB: a few minutes on 2 cores, ~1 GB; pass
`--db runs/bench/dash100k.db` to keep it for the next run), `--quick` for a smoke run (2k latents, 100 requests);
under load: `python bench/dashboards_pages.py --latents 1536 --requests 0 --clients 50 --live-clients 16
--rounds 5 --baseline-src /work/main/src`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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


def start_server(db: Path, port: int, args: tuple[str, ...] = (), src: Path | None = None) -> subprocess.Popen:
    """`interplab serve` on `port` in a subprocess (the source tree `src` first on its path, when given)."""
    cmd = [sys.executable, "-m", "interplab.cli", "serve", "--db", str(db), "--port", str(port), *args]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    log = tempfile.TemporaryFile()  # not a pipe: a server that logs much would block on a full one
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}")
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


# ---- concurrent load ----------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    body: bytes = b""


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, req: Request) -> int:
    """One HTTP/1.1 request on a keep-alive connection; returns the status (the body is read and dropped)."""
    head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {host}\r\n"
    if req.body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n"
    writer.write(head.encode() + b"\r\n" + req.body)
    await writer.drain()
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next(int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def _client(port: int, reqs: list[Request], out: LoadResult) -> None:
    """Closed loop: each request is sent when the previous answer is in; a broken connection is reopened."""
    host = f"127.0.0.1:{port}"
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for req in reqs:
        start = time.perf_counter()
        try:
            conn = conn or await asyncio.open_connection("127.0.0.1", port)
            status = await _exchange(*conn, host, req)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, StopIteration, ValueError) as exc:
            out.errors.append(f"{req.path}: {type(exc).__name__}")
            conn = None
            continue
        out.latencies_ms.append((time.perf_counter() - start) * 1000)
        if status != 200:
            out.errors.append(f"{req.path}: HTTP {status}")
    if conn is not None:
        conn[1].close()


def run_load(port: int, per_client: list[list[Request]]) -> LoadResult:
    """All clients at once, each with its own list of requests."""
    out = LoadResult()

    async def everyone() -> None:
        await asyncio.gather(*(_client(port, reqs, out) for reqs in per_client))

    start = time.perf_counter()
    asyncio.run(everyone())
    out.wall_s = time.perf_counter() - start
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(ln for ln in f if ln.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def page_requests(rng: random.Random, latents: int, n: int, clients: int) -> list[list[Request]]:
    return [[Request("GET", f"/sae/1/feature/{rng.randrange(latents)}") for _ in range(n // clients)]
            for _ in range(clients)]


def live_requests(rng: random.Random, sae_id: int, texts: list[str], n: int, clients: int) -> list[list[Request]]:
    def one() -> Request:
        body = json.dumps({"sae_id": sae_id, "text": rng.choice(texts), "top_n": 5}).encode()
        return Request("POST", "/api/live", body)

    return [[one() for _ in range(n // clients)] for _ in range(clients)]


def register_live_sae(db_path: Path, folder: Path, model: str, hook: str, d_sae: int) -> int:
    """A random TopK SAE at `hook` of `model`, saved in `folder` and registered in the DB; returns its id."""
    from transformers import AutoConfig

    from interplab.models.loading import resolve_source
    from interplab.saes import make_sae, sae_config, save_sae

    d = int(AutoConfig.from_pretrained(resolve_source(model), local_files_only=True).hidden_size)
    save_sae(make_sae(sae_config("topk", d_in=d, d_sae=d_sae, k=32, seed=0, metadata={"hook_name": hook})), folder,
             overwrite=True)
    db = DashboardDB(db_path)
    try:
        return db.upsert_sae(SaeRecord(name="bench-live", path=str(folder), model=model, hook=hook, d_in=d,
                                       d_sae=d_sae, arch="topk"))
    finally:
        db.close()


def summarise_load(server: str, phase: str, rnd: int, res: LoadResult, cpu_s: float, rss: float) -> dict:
    lat = res.latencies_ms or [float("nan")]
    n = len(res.latencies_ms)
    return {"server": server, "phase": phase, "round": rnd, "n": n, "errors": len(res.errors),
            "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "max_ms": max(lat),
            "req_per_s": n / res.wall_s if res.wall_s else float("nan"),
            "server_cpu_ms_per_req": 1000 * cpu_s / max(n, 1), "rss_mib": rss, "first_errors": res.errors[:3]}


def load_test(db: Path, args: argparse.Namespace, tmp: Path) -> list[dict]:
    """Step 5 of the module docstring: every server, round-robin, pages then live inference."""
    texts: list[str] = []
    live_id = 0
    if args.live_clients:
        from interplab.data.corpus import load_demo_corpus

        texts = load_demo_corpus()
        live_id = register_live_sae(db, tmp / "live-sae", args.live_model, args.live_hook, args.live_d_sae)
    servers: dict[str, tuple[tuple[str, ...], Path | None]] = {"this tree": ((), None)}
    if args.live_clients:
        servers["this tree, --live-batch 1"] = (("--live-batch", "1"), None)
    if args.baseline_src:
        servers[f"baseline {args.baseline_src}"] = ((), args.baseline_src)
    procs = {name: (start_server(db, port := _free_port(), extra, src), port) for name, (extra, src) in servers.items()}
    rows: list[dict] = []
    try:
        for name, (proc, port) in procs.items():  # warm-up: imports, first queries, the live model loaded
            rng = random.Random(args.seed)
            run_load(port, page_requests(rng, args.latents, 4 * args.clients, args.clients))
            if args.live_clients:
                run_load(port, live_requests(rng, live_id, texts, args.live_clients, args.live_clients))
            rows.append(summarise_load(name, "after warm-up", 0, LoadResult(), 0.0, proc_rss_mib(proc.pid)))
        for rnd in range(1, args.rounds + 1):
            for name, (proc, port) in procs.items():
                rng = random.Random(args.seed + rnd)
                phases = [("feature pages", page_requests(rng, args.latents, args.load_requests, args.clients))]
                if args.live_clients:
                    phases.append(("live inference", live_requests(rng, live_id, texts, args.live_requests,
                                                                  args.live_clients)))
                for phase, reqs in phases:
                    cpu0 = proc_cpu_s(proc.pid)
                    res = run_load(port, reqs)
                    rows.append(summarise_load(name, phase, rnd, res, proc_cpu_s(proc.pid) - cpu0,
                                               proc_rss_mib(proc.pid)))
                    print_load_row(rows[-1])
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def print_load_row(r: dict) -> None:
    print(f"| {r['server']:<34} | {r['phase']:<14} | {r['round']} | {r['n']:>5} | {r['errors']:>3} | {r['p50_ms']:7.1f} | "
          f"{r['p99_ms']:7.1f} | {r['max_ms']:7.1f} | {r['req_per_s']:6.1f} | {r['server_cpu_ms_per_req']:7.2f} | "
          f"{r['rss_mib']:6.0f} |", flush=True)


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
    parser.add_argument("--clients", type=int, default=0, help="concurrent clients of the load test (0: none)")
    parser.add_argument("--load-requests", type=int, default=2000, help="feature pages per load round")
    parser.add_argument("--rounds", type=int, default=3, help="load rounds (memory is read after each)")
    parser.add_argument("--live-clients", type=int, default=0, help="concurrent live-inference clients (0: none)")
    parser.add_argument("--live-requests", type=int, default=96, help="live-inference requests per round")
    parser.add_argument("--live-model", default="smollm2-135m")
    parser.add_argument("--live-hook", default="blocks.3.resid_post")
    parser.add_argument("--live-d-sae", type=int, default=16384)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="also serve from this source tree (e.g. /work/main/src), side by side")
    args = parser.parse_args()
    if args.quick:
        args.latents, args.requests, args.warmup = 2000, 100, 5
        args.load_requests, args.live_requests = min(args.load_requests, 200), min(args.live_requests, 16)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "dash.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        shape = {"n_top": args.top, "n_quantile": args.quantile, "context": args.context}
        build_s = build_db(db, args.latents, args.batch, shape)
        rows: list[dict] = []
        if args.requests:
            port = _free_port()
            server = start_server(db, port)
            try:
                rows = summarise(measure(f"http://127.0.0.1:{port}", args.latents, args.requests, args.warmup,
                                         args.seed))
            finally:
                server.terminate()
                server.wait(timeout=30)
        load_rows: list[dict] = []
        if args.clients:
            load0 = os.getloadavg()
            print(f"\nUnder load: {args.clients} page clients, {args.live_clients} live clients, {args.rounds} rounds; "
                  f"load average {load0}")
            print(f"| {'server':<34} | {'phase':<14} | r | {'n':>5} | err | {'p50 ms':>7} | {'p99 ms':>7} | "
                  f"{'max ms':>7} | {'req/s':>6} | CPU ms/req | RSS MiB |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            load_rows = load_test(db, args, Path(tmp))
            for r in load_rows:
                if r["phase"] == "after warm-up":
                    print(f"{r['server']}: {r['rss_mib']:.0f} MiB after the warm-up")
            print(f"load average at the end {os.getloadavg()}")
        size_mb = db.stat().st_size / 2**20
    print(f"\nDB: {args.latents:,} synthetic latents, {args.top}+{args.quantile} examples x {args.context} tokens, "
          f"{size_mb:,.0f} MiB (built in {build_s:.0f} s{'' if build_s else ', reused'}); {args.requests} requests/route")
    if rows:
        print(f"| {'route':<32} | {'p50 ms':>7} | {'p99 ms':>7} | {'mean ms':>7} | {'req/s':>6} |")
        print(f"| {'-' * 32} | {'-' * 6}: | {'-' * 6}: | {'-' * 6}: | {'-' * 5}: |")
        for r in rows:
            print(f"| {r['route']:<32} | {r['p50_ms']:7.2f} | {r['p99_ms']:7.2f} | {r['mean_ms']:7.2f} | "
                  f"{r['req_per_s']:6.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"config": vars(args) | {"db": str(db), "json": str(args.json)},
                                         "db_mib": size_mb, "build_s": build_s, "rows": rows, "load": load_rows},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()

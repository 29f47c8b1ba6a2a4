"""Bench: the same TopK SAE trained side by side by interplab, SAELens, sparsify and dictionary_learning.

1. Build one activation set, once: by default a synthetic stream with known ground-truth feature
   directions (so MMCS means something); with `--store DIR` real cached activations instead.
   It is written to a temporary safetensors file that every trainer reads, so all see the same
   batches in the same order (a pool of `--pool-tokens` rows cycled batch by batch) and the same
   held-out evaluation rows.
2. Run each trainer in its own subprocess (clean peak-memory reading; a peer that crashes or is
   missing becomes a row saying so): `--warmup` steps untimed, then `--steps` timed steps
   (wall clock, CUDA synchronised), then FVU on the held-out rows and MMCS against the truth.
3. Print one table: tokens/s, peak memory, FVU, MMCS, and each row's speed as a ratio to the
   fastest peer. `--json` writes the same numbers.

Run: `python bench/sae.py --device cpu --steps 30` (see bench/README.md for installing the peers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from peers import OUR_NAMES, PEER_NAMES, make_adapter  # noqa: E402

DEFAULT_PEERS_VENV = Path("/work/peers-venv/bin/python")


@dataclass
class BenchConfig:
    """What every trainer in one bench run shares."""

    device: str = "cpu"
    """"cpu" or "cuda"."""
    steps: int = 30
    """Timed optimiser steps per trainer (after the warm-up)."""
    warmup: int = 3
    """Untimed steps first (first-step b_dec init, allocator and kernel warm-up)."""
    batch_size: int = 4096
    """Tokens per optimiser step."""
    d_in: int = 384
    """Activation width."""
    d_sae: int = 4096
    """Latents."""
    k: int = 32
    """Latents kept per token."""
    lr: float = 4e-4
    """Adam lr for all (--lr; default 2e-4 / sqrt(d_sae / 2**14), the Gao et al. rule sparsify and
    dictionary_learning use by default: 4e-4 at d_sae=4096, 2e-4 at 16,384, 1e-4 at 65,536)."""
    seed: int = 0
    """Seed of the data and of every SAE's initialisation."""
    pool_tokens: int = 1 << 18
    """Distinct training rows; batches cycle through them (memory stays bounded for long runs)."""
    eval_tokens: int = 16384
    """Held-out rows for FVU."""
    n_features: int = 2048
    """Synthetic data: ground-truth features (fewer than d_sae, so each can get its own latent)."""
    mean_active: float = 16.0
    """Synthetic data: expected active features per token (below k)."""
    store: str | None = None
    """Activation store folder to use instead of synthetic data (MMCS is then n/a)."""
    matmul_precision: str = "highest"
    """torch.set_float32_matmul_precision in every trainer: "highest" (PyTorch's default, true fp32)
    or "high" (TF32 tensor cores on NVIDIA GPUs)."""
    profile_steps: int = 0
    """After measuring, run this many more steps under torch.profiler and keep the top ops."""
    threads: int = 0
    """torch.set_num_threads in every trainer (0: torch's default, all cores). With 1 thread on a
    shared machine the CPU-time column is the least disturbed speed reading."""


# ---- data -----------------------------------------------------------------------------------


@torch.no_grad()
def synthetic_activations(cfg: BenchConfig) -> dict[str, Tensor]:
    """Ground-truth toy data from `interplab.data.synthetic.toy_features` (Sharkey et al. 2022):
    x = Σ_i m_i f_i over independently firing unit directions f_i (more of them than d_in: superposition),
    geometric firing probabilities averaging `mean_active` per token. Returns train/eval rows + directions."""
    from interplab.data.synthetic.toy_features import ToyFeatureConfig, ToyFeatureSource

    chunk = 8192
    source = ToyFeatureSource(
        ToyFeatureConfig(
            n_features=cfg.n_features,
            d=cfg.d_in,
            mean_active=cfg.mean_active,
            batch_size=chunk,
            seed=cfg.seed,
        )
    )
    n_total = cfg.pool_tokens + cfg.eval_tokens
    rows_ND = torch.cat([source.batch(i) for i in range(-(-n_total // chunk))])[:n_total]
    return {
        "train": rows_ND[: cfg.pool_tokens],
        "eval": rows_ND[cfg.pool_tokens :],
        "dirs": source.features_FD,
    }


@torch.no_grad()
def store_activations(cfg: BenchConfig) -> dict[str, Tensor]:
    """Rows from an activation store (the tokens its exclusion rule keeps: no padding, no attention sinks):
    the first pool_tokens, shuffled with the seed, for training; the next eval_tokens held out."""
    from interplab.activations import ActivationStore

    store = ActivationStore.open(cfg.store)
    need = cfg.pool_tokens + cfg.eval_tokens
    parts: list[Tensor] = []
    have = 0
    for shard in store.iter_shards():
        rows = shard.acts[shard.keep].float()  # [n, d]
        parts.append(rows[: need - have])
        have += parts[-1].shape[0]
        if have >= need:
            break
    if have < need:
        raise SystemExit(
            f"store {cfg.store} holds {have} tokens; the bench needs {need} (lower --pool-tokens)"
        )
    rows_ND = torch.cat(parts)
    order = torch.randperm(cfg.pool_tokens, generator=torch.Generator().manual_seed(cfg.seed))
    return {"train": rows_ND[: cfg.pool_tokens][order], "eval": rows_ND[cfg.pool_tokens :]}


# ---- metrics --------------------------------------------------------------------------------


@torch.no_grad()
def fvu(adapter, x_ND: Tensor, chunk: int = 4096) -> float:
    """Σ‖x - x̂‖² / Σ‖x - mean(x)‖² over the held-out rows."""
    err = 0.0
    for s in range(0, x_ND.shape[0], chunk):
        x = x_ND[s : s + chunk]
        err += (adapter.encode_decode(x).float() - x).pow(2).sum().item()
    total = (x_ND - x_ND.mean(0)).pow(2).sum().item()
    return err / total


@torch.no_grad()
def mmcs(decoder_FD: Tensor, true_GD: Tensor) -> float:
    """Mean over true features of the best cosine similarity with any decoder row."""
    dec = decoder_FD.float() / decoder_FD.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    true = true_GD.to(dec) / true_GD.to(dec).norm(dim=-1, keepdim=True)
    return (true @ dec.T).max(dim=1).values.mean().item()


# ---- one trainer (runs in a subprocess) -----------------------------------------------------


class RSSPeak:
    """Peak resident memory of this process while a block runs, above its level at the start.

    ru_maxrss cannot isolate training (loading the data already set a high-water mark), so a
    thread samples /proc/self/statm every millisecond; torch ops release the GIL, so it keeps up.
    """

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.start = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval_s)

    def __enter__(self) -> RSSPeak:
        self.peak = self.start = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def run_worker(name: str, cfg: BenchConfig, data_path: Path) -> dict:
    """Train one trainer on the shared data and measure it; returns one result row."""
    from safetensors.torch import load_file

    device = torch.device(cfg.device)
    torch.set_float32_matmul_precision(cfg.matmul_precision)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    data = {k: v.to(device) for k, v in load_file(str(data_path)).items()}
    cuda = device.type == "cuda"
    total = cfg.warmup + cfg.steps
    adapter = make_adapter(name, device, total)
    try:
        adapter.make(cfg.d_in, cfg.d_sae, cfg.k, cfg.lr, cfg.seed)
    except ImportError as e:
        return {"trainer": name, "status": f"not installed: {e}"}
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base_gpu = torch.cuda.memory_allocated() if cuda else 0
    train_ND = data["train"]
    n_batches = train_ND.shape[0] // cfg.batch_size

    def batch(i: int) -> Tensor:
        j = i % n_batches
        return train_ND[j * cfg.batch_size : (j + 1) * cfg.batch_size]

    clock = StepClock(cfg.warmup, total, cuda)
    # The memory reading covers the warm-up too: optimiser state is allocated on the first step.
    with RSSPeak() as rss:
        adapter.train((batch(i) for i in range(total)), total, clock.on_step)
    peak_mb = (torch.cuda.max_memory_allocated() - base_gpu) / 2**20 if cuda else rss.delta_mb
    row = {
        "trainer": name,
        "status": "ok",
        "steps": cfg.steps,
        "seconds": clock.seconds,
        "tokens_per_s": cfg.batch_size * cfg.steps / clock.seconds,
        "cpu_ms_per_step": 1000 * clock.cpu_seconds / cfg.steps,
        "peak_mem_mb": peak_mb,
        "fvu": fvu(adapter, data["eval"]),
        "mmcs": mmcs(adapter.decoder_directions(), data["dirs"]) if "dirs" in data else None,
    }
    # Profiled steps come after the quality metrics, so they do not change them.
    row["profile"] = profile_steps(adapter, [batch(total + i) for i in range(cfg.profile_steps)], cuda)
    return row


class StepClock:
    """`on_step(done)` callback timing the steps after the warm-up (CUDA synchronised at both ends):
    wall seconds, and CPU seconds of this process (all its threads), which a neighbour's load
    stretches far less than wall time."""

    def __init__(self, warmup: int, total: int, cuda: bool):
        self.warmup, self.total, self.cuda = warmup, total, cuda
        self.t0: float | None = None
        self.cpu0 = 0.0
        self.seconds = self.cpu_seconds = float("nan")

    def on_step(self, done: int) -> None:
        if done not in (self.warmup, self.total):
            return
        if self.cuda:
            torch.cuda.synchronize()
        if done == self.warmup:
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        if done == self.total and self.t0 is not None:
            self.seconds = time.perf_counter() - self.t0
            self.cpu_seconds = time.process_time() - self.cpu0


def profile_steps(adapter, batches: list[Tensor], cuda: bool, top: int = 15) -> str | None:
    """torch.profiler table (self time) of a few training steps: where the time goes."""
    if not batches:
        return None
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        adapter.train(iter(batches), len(batches), lambda done: None)
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top)


def spawn_worker(name: str, cfg: BenchConfig, data_path: Path, python: str, out_dir: Path) -> dict:
    """Run `run_worker` in a fresh interpreter; a crash becomes a row with the error's last line."""
    result = out_dir / f"{name}.json"
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--data",
        str(data_path),
        "--result",
        str(result),
        "--config-json",
        json.dumps(asdict(cfg)),
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not result.exists():
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or [f"exit {proc.returncode}"]
        return {"trainer": name, "status": f"failed: {lines[-1][:160]}"}
    return json.loads(result.read_text())


# ---- orchestration --------------------------------------------------------------------------


def best_run(runs: list[dict]) -> dict:
    """The fastest of a trainer's repeats (least disturbed by other load), with every speed listed;
    the CPU time per step is the least over the repeats."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return runs[-1]
    best = dict(max(ok, key=lambda r: r["tokens_per_s"]))
    best["tokens_per_s_all"] = [r["tokens_per_s"] for r in ok]
    best["cpu_ms_per_step_all"] = [r["cpu_ms_per_step"] for r in ok]
    best["cpu_ms_per_step"] = min(best["cpu_ms_per_step_all"])
    return best


def add_ratios(rows: list[dict]) -> str | None:
    """Set `vs_fastest_peer` = tokens/s ÷ the fastest peer's, and `cpu_vs_fastest_peer` = that peer's
    CPU time per step ÷ the row's (> 1: less CPU per step), on every ok row; returns that peer."""
    peers = [r for r in rows if r["trainer"] in PEER_NAMES and r["status"] == "ok"]
    best = max(peers, key=lambda r: r["tokens_per_s"], default=None)
    for r in rows:
        ok = r["status"] == "ok" and best is not None
        r["vs_fastest_peer"] = r["tokens_per_s"] / best["tokens_per_s"] if ok else None
        r["cpu_vs_fastest_peer"] = best["cpu_ms_per_step"] / r["cpu_ms_per_step"] if ok else None
    return best["trainer"] if best else None


def per_repeat_ratios(runs: dict[str, list[dict]], peer: str) -> str:
    """One line per our trainer: its tokens/s ÷ `peer`'s within each round-robin repeat (runs a few
    seconds apart, so a neighbour's burst moves both), and the median of those ratios."""
    lines = []
    for name in OUR_NAMES:
        pairs = zip(runs.get(name, []), runs[peer], strict=False)
        ratios = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in pairs if a["status"] == b["status"] == "ok"]
        if ratios:
            listed = ", ".join(f"{r:.2f}" for r in ratios)
            lines.append(f"{name} ÷ {peer} per repeat: {listed} (median {statistics.median(ratios):.2f})")
    return "\n".join(lines)


def print_table(rows: list[dict], cfg: BenchConfig, fastest: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    title = (
        f"TopK SAE training on {cfg.device}: d_in={cfg.d_in} d_sae={cfg.d_sae} k={cfg.k} "
        f"batch={cfg.batch_size}, {cfg.warmup}+{cfg.steps} steps, lr={cfg.lr:g}, "
        f"fp32 matmul={cfg.matmul_precision}, threads={cfg.threads or torch.get_num_threads()}, "
        f"data={'store' if cfg.store else 'synthetic'}"
    )
    table = Table(title=title)
    cols = ("trainer", "tokens/s", f"× {fastest or 'peer'}", "CPU ms/step", "CPU ×", "peak MiB", "FVU", "MMCS", "status")
    for col in cols:
        table.add_column(col, justify="left" if col in ("trainer", "status") else "right")

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    for r in rows:
        table.add_row(
            r["trainer"],
            num(r.get("tokens_per_s"), ",.0f"),
            num(r.get("vs_fastest_peer"), ".2f"),
            num(r.get("cpu_ms_per_step"), ",.0f"),
            num(r.get("cpu_vs_fastest_peer"), ".2f"),
            num(r.get("peak_mem_mb"), ",.0f"),
            num(r.get("fvu"), ".4f"),
            num(r.get("mmcs"), ".4f"),
            r["status"],
        )
    Console(width=max(100, Console().width)).print(table)


def peers_python(arg: str | None) -> str:
    """Interpreter for peer rows: --peers-python, $INTERPLAB_PEERS_PYTHON, the bench venv, or this one."""
    if arg:
        return arg
    if os.environ.get("INTERPLAB_PEERS_PYTHON"):
        return os.environ["INTERPLAB_PEERS_PYTHON"]
    return str(DEFAULT_PEERS_VENV) if DEFAULT_PEERS_VENV.exists() else sys.executable


def quick(cfg: BenchConfig) -> BenchConfig:
    """Tiny sizes for a smoke test that runs in seconds."""
    cfg.d_in, cfg.d_sae, cfg.k, cfg.batch_size = 32, 256, 8, 256
    cfg.steps, cfg.warmup, cfg.pool_tokens, cfg.eval_tokens = 10, 2, 4096, 1024
    cfg.n_features, cfg.mean_active = 128, 4.0
    return cfg


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    d = BenchConfig()
    p.add_argument("--device", choices=["cpu", "cuda"], default=d.device)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--warmup", type=int, default=d.warmup)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--d-in", type=int, default=d.d_in)
    p.add_argument("--d-sae", type=int, default=d.d_sae)
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--lr", type=float, default=None, help="default: 2e-4 / sqrt(d_sae / 2**14)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--repeats", type=int, default=1, help="runs per trainer (round-robin); the fastest is kept"
    )
    p.add_argument("--pool-tokens", type=int, default=d.pool_tokens)
    p.add_argument("--eval-tokens", type=int, default=d.eval_tokens)
    p.add_argument("--store", default=None, help="activation store folder (real activations; MMCS n/a)")
    p.add_argument("--peers", default=",".join(PEER_NAMES), help="comma list, or 'none' for our rows only")
    p.add_argument("--no-dense", action="store_true", help="skip the interplab-dense reference row")
    p.add_argument("--peers-python", default=None, help="interpreter with the peers installed")
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (smoke test)")
    p.add_argument(
        "--matmul-precision",
        choices=["highest", "high"],
        default=d.matmul_precision,
        help="fp32 matmul precision for every trainer ('high' = TF32 on NVIDIA GPUs)",
    )
    p.add_argument("--profile-steps", type=int, default=0, help="profile this many extra steps per trainer")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads per trainer (0: all cores)")
    p.add_argument("--json", default=None, help="write config + rows here")
    # internal: one trainer in a subprocess
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--config-json", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def config_from_args(a: argparse.Namespace) -> BenchConfig:
    cfg = BenchConfig(
        device=a.device,
        steps=a.steps,
        warmup=a.warmup,
        batch_size=a.batch_size,
        d_in=a.d_in,
        d_sae=a.d_sae,
        k=a.k,
        lr=a.lr if a.lr is not None else 2e-4 / (a.d_sae / 2**14) ** 0.5,
        seed=a.seed,
        pool_tokens=a.pool_tokens,
        eval_tokens=a.eval_tokens,
        store=a.store,
        profile_steps=a.profile_steps,
        matmul_precision=a.matmul_precision,
        threads=a.threads,
    )
    cfg = quick(cfg) if a.quick else cfg
    if cfg.warmup < 1 or cfg.steps < 1:
        raise SystemExit("--warmup and --steps must both be >= 1")
    if cfg.pool_tokens < cfg.batch_size:
        raise SystemExit(
            f"--pool-tokens ({cfg.pool_tokens}) must be at least --batch-size ({cfg.batch_size})"
        )
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device; use --device cpu")
    return cfg


def main(argv: list[str] | None = None) -> list[dict]:
    a = parse_args(argv)
    if a.worker:
        row = run_worker(a.worker, BenchConfig(**json.loads(a.config_json)), Path(a.data))
        Path(a.result).write_text(json.dumps(row))
        return [row]
    cfg = config_from_args(a)
    peers = [] if a.peers.strip() in ("", "none") else [p.strip() for p in a.peers.split(",")]
    unknown = sorted(set(peers) - set(PEER_NAMES))
    if unknown:
        raise SystemExit(f"unknown peers {unknown}; choose from {','.join(PEER_NAMES)} or 'none'")
    names = [n for n in OUR_NAMES if not (a.no_dense and n == "interplab-dense")] + peers
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_sae_") as tmp:
        from safetensors.torch import save_file

        data = store_activations(cfg) if cfg.store else synthetic_activations(cfg)
        cfg.d_in = data["train"].shape[1]  # a store decides the width
        data_path = Path(tmp) / "data.safetensors"
        save_file({k: v.contiguous() for k, v in data.items()}, str(data_path))
        del data
        runs: dict[str, list[dict]] = {name: [] for name in names}
        # Round-robin repeats: on a shared machine a neighbour's burst then hits every trainer alike.
        for _ in range(a.repeats):
            for name in names:
                python = sys.executable if name in OUR_NAMES else peers_python(a.peers_python)
                runs[name].append(spawn_worker(name, cfg, data_path, python, Path(tmp)))
        rows = [best_run(r) for r in runs.values()]
    fastest = add_ratios(rows)
    print(f"load average (1, 5, 15 min) at the start {load_start}, at the end {os.getloadavg()}")
    print_table(rows, cfg, fastest)
    if a.repeats > 1 and fastest:
        print(per_repeat_ratios(runs, fastest))
    for r in rows:
        if r.get("profile"):
            print(f"\n== profile: {r['trainer']} ({cfg.profile_steps} steps)\n{r['profile']}")
    if a.json:
        Path(a.json).write_text(
            json.dumps({"config": asdict(cfg), "fastest_peer": fastest, "rows": rows}, indent=2)
        )
    return rows


if __name__ == "__main__":
    main()

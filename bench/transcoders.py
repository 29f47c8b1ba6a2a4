"""Bench: TopK transcoder vs skip-transcoder at equal k (L0), and interplab's trainer vs EleutherAI
sparsify's, on the same pairs.

    PYTHONPATH=src python bench/transcoders.py                        # SmolLM2 layer 6, 300 timed steps
    PYTHONPATH=src python bench/transcoders.py --layer 12 --steps 1000 --batch-size 2048

1. Pairs: SmolLM2-135M's layer-L MLP input and output on wiki-en, from `ForwardStream` (attention sinks
   left out, each side scaled to mean norm sqrt(d)), written once to a temporary safetensors file:
   a training pool cycled batch by batch, and held-out rows for FVU.
2. Each trainer runs in its own subprocess: *interplab* (`fit` on a `topk_transcoder` and on a
   `topk_skip_transcoder`, its sparse TopK kernel, same k, seed and batches) with this Python;
   *sparsify* (`SparseCoder(transcode=True, skip_connection=True)`, stepped as `sparsify.Trainer`
   does with `loss_fn="fvu"`: encoder bias centring and b_dec = target mean on the first step,
   loss = FVU, Adam at the same lr) with the Python of `--peers-python`, a venv
   holding eai-sparsify 1.3.3 (its Trainer needs the model and the dataset itself, so its hook/forward
   loop is not what is timed; both rows time the transcoder's step on the same batches).
3. `--warmup` steps untimed, then `--steps` timed; tokens/s, CPU seconds, peak RSS, held-out FVU, and
   each row's FVU and speed as ratios to interplab's skip-transcoder (FVU ratio > 1: the row
   reconstructs worse; speed ratio > 1: the row trains faster; CPU-seconds ratio > 1: it costs more CPU,
   the steadier number on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from timing import cpu_seconds, peak_rss_mib

DEFAULT_PEERS_PYTHON = "/work/ct-venv/bin/python"



def build_pairs(path: Path, layer: int, pool: int, held_out: int, threads: int) -> float:
    """Write x/y (training pool) and ex/ey (held out) to `path`; returns the seconds it took."""
    from safetensors.torch import save_file

    from interplab.activations.stream import ForwardStream, StreamConfig
    from interplab.data.text import load_texts
    from interplab.models import load_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    lm = load_model("smollm2-135m", device="cpu")
    cfg = StreamConfig(batch_size=256, context_size=64, window_seqs=32, forward_batch=16, epochs=1)
    stream = ForwardStream(lm, load_texts("wiki-en")[:2000], [f"blocks.{layer}.mlp_in"],
                           [f"blocks.{layer}.mlp_out"], cfg)
    xs, ys, n = [], [], 0
    for x, y in stream:  # type: ignore[misc]
        xs.append(x)
        ys.append(y)
        n += len(x)
        if n >= pool + held_out:
            break
    x, y = torch.cat(xs), torch.cat(ys)
    save_file({"x": x[:pool].contiguous(), "y": y[:pool].contiguous(), "ex": x[pool: pool + held_out].contiguous(),
               "ey": y[pool: pool + held_out].contiguous()}, str(path))
    return time.perf_counter() - t0


def _batches(x: torch.Tensor, y: torch.Tensor, batch: int, total: int):
    n = len(x) // batch
    for step in range(total):
        i = step % n
        yield x[i * batch: (i + 1) * batch], y[i * batch: (i + 1) * batch]


def _fvu(y: torch.Tensor, y_hat: torch.Tensor) -> float:
    return float((y - y_hat).pow(2).sum() / (y - y.mean(0)).pow(2).sum())


def worker_interplab(data: dict[str, torch.Tensor], args: argparse.Namespace) -> dict[str, float]:
    from interplab.saes import make_sae, sae_config
    from interplab.training import TrainConfig, fit

    tc = make_sae(sae_config(args.worker.split(":")[1], d_in=data["x"].shape[1], d_sae=args.d_sae, k=args.k,
                             seed=args.seed))
    marks: dict[str, float] = {}

    def on_step(step: int, _: dict[str, float]) -> None:
        if step == args.warmup:
            marks["t"], marks["c"] = time.perf_counter(), cpu_seconds()

    total = args.warmup + args.steps
    cfg = TrainConfig(total_steps=total, lr=args.lr, b_dec_init="mean", log_every=total, threads=args.threads,
                      seed=args.seed)
    fit(tc, _batches(data["x"], data["y"], args.batch_size, total), cfg, on_step=on_step)
    wall, cpu = time.perf_counter() - marks["t"], cpu_seconds() - marks["c"]
    with torch.no_grad():
        fvu = _fvu(data["ey"], tc(data["ex"]).x_hat)
    return {"wall": wall, "cpu": cpu, "fvu": fvu}


def worker_sparsify(data: dict[str, torch.Tensor], args: argparse.Namespace) -> dict[str, float]:
    from sparsify import SparseCoder, SparseCoderConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    sae = SparseCoder(data["x"].shape[1], SparseCoderConfig(num_latents=args.d_sae, k=args.k, transcode=True,
                                                            skip_connection=True), "cpu", dtype=torch.float32)
    opt = torch.optim.Adam(sae.parameters(), lr=args.lr)
    t = c = 0.0
    for step, (x, y) in enumerate(_batches(data["x"], data["y"], args.batch_size, args.warmup + args.steps)):
        if step == args.warmup:
            t, c = time.perf_counter(), cpu_seconds()
        if step == 0:  # as sparsify.Trainer on its first step for transcoders
            sae.encoder.bias.data = -x.mean(0) @ sae.encoder.weight.data.T
            sae.b_dec.data = y.mean(0)
        out = sae(x, y=y, dead_mask=None)
        out.fvu.backward()
        opt.step()
        opt.zero_grad()
    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
    with torch.no_grad():
        fvu = _fvu(data["ey"], sae(data["ex"]).sae_out)
    return {"wall": wall, "cpu": cpu, "fvu": fvu}


def run_worker(args: argparse.Namespace) -> None:
    from safetensors.torch import load_file

    data = load_file(args.data)
    result = (worker_sparsify if args.worker == "sparsify" else worker_interplab)(data, args)
    result["rss_mib"] = peak_rss_mib()
    Path(args.result).write_text(json.dumps(result))


def _spawn(python: str, name: str, data: Path, args: argparse.Namespace, env: dict[str, str]) -> dict | str:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    cmd = [python, __file__, "--worker", name, "--data", str(data), "--result", str(result)]
    for flag in ("steps", "warmup", "batch_size", "d_sae", "k", "lr", "threads", "seed"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer", type=int, default=6)
    ap.add_argument("--pool", type=int, default=8192)
    ap.add_argument("--held-out", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--d-sae", type=int, default=2304)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers-python", default=DEFAULT_PEERS_PYTHON)
    ap.add_argument("--data", default=None, help="pairs file to reuse (written by a previous run)")
    ap.add_argument("--worker", choices=("interplab:topk_transcoder", "interplab:topk_skip_transcoder", "sparsify"),
                    default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_worker(args)
        return
    data = Path(args.data or Path(tempfile.gettempdir()) / f"interplab-bench-tc-L{args.layer}.safetensors")
    if not data.exists():
        print(f"pairs: {build_pairs(data, args.layer, args.pool, args.held_out, args.threads):.0f} s of forward passes")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    rows: dict[str, dict | str] = {
        "interplab `topk_transcoder`": _spawn(sys.executable, "interplab:topk_transcoder", data, args, env),
        "interplab `topk_skip_transcoder`": _spawn(sys.executable, "interplab:topk_skip_transcoder", data, args, env),
    }
    peer_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rows["sparsify 1.3.3 `SparseCoder` (skip)"] = (
        _spawn(args.peers_python, "sparsify", data, args, peer_env) if Path(args.peers_python).exists()
        else f"{args.peers_python} not found (a venv with eai-sparsify)")
    load = os.getloadavg()
    tokens = args.steps * args.batch_size
    print(f"SmolLM2-135M layer {args.layer} MLP in -> out, {args.pool} training pairs (cycled), {args.held_out} "
          f"held out; TopK d_sae {args.d_sae}, k {args.k} (L0 = k for every row), batch {args.batch_size}, lr "
          f"{args.lr}, {args.warmup} + {args.steps} steps, {args.threads} threads, load average {load[0]:.1f} / "
          f"{load[1]:.1f}")
    print("| trainer | tokens/s | CPU s | peak RSS MiB | held-out FVU | FVU / skip's | speed / skip's | "
          "CPU s / skip's |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ref = rows["interplab `topk_skip_transcoder`"]
    for name, row in rows.items():
        if not isinstance(row, dict):
            print(f"| {name} | failed: {row} | | | | | | |")
            continue
        tps = tokens / row["wall"]
        fvu_ratio = f"{row['fvu'] / ref['fvu']:.2f}" if isinstance(ref, dict) else "n/a"
        speed_ratio = f"{ref['wall'] / row['wall']:.2f}" if isinstance(ref, dict) else "n/a"
        cpu_ratio = f"{row['cpu'] / ref['cpu']:.2f}" if isinstance(ref, dict) else "n/a"
        print(f"| {name} | {tps:,.0f} | {row['cpu']:.1f} | {row['rss_mib']:.0f} | {row['fvu']:.3f} | {fvu_ratio} | "
              f"{speed_ratio} | {cpu_ratio} |")


if __name__ == "__main__":
    main()

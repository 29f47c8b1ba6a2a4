"""Bench: SAEs for several hooks at once from streamed forward passes vs one at a time from activation stores.

1. Model (`--model`, default SmolLM2-135M) and text (`--data`, default wiki-en); M hooks (`--hooks`);
   one TopK SAE per hook (`--d-sae`, `--k`), batches of `--batch-size` tokens; every run reads the
   same first `--windows` × `--window-seqs` × `--context` token positions of the text, once (1 epoch).
   Every stage is timed whole (first step included), so each window's forward passes are counted.
2. Streamed (no store): `fit` trains an `SAEGroup` of the M SAEs on a `ForwardStream` of the M hooks,
   one forward pass (to the deepest hook) per window for all of them, for all the batches those
   windows give. Timed twice: forward passes + training, and the stream alone (no training).
3. Cached, one hook at a time: per hook, `cache_activations` of the same positions into a store
   (forward to that hook's layer + writing shards; timed), then `fit` of that hook's SAE from the store
   (`ActivationBuffer`) for as many steps as the stream gave (timed).
4. Table 1, measured: CPU ms per 1,000 training tokens of every stage (CPU time of this process: on a
   shared machine it moves far less than wall time; wall is printed too), and tokens/s per hook.
5. Table 2, derived from table 1, for E passes (epochs) over the same tokens, per 1,000 tokens per hook:
   streamed = E · (stream + M · train_group) / M; cached = (Σ cache + E · Σ train_store) / M; and the
   smallest E from which caching is cheaper (it pays once its one-time forward passes are made up by
   not repeating them every epoch). Disk a store needs: d · 4 bytes per token per hook.

Run: `PYTHONPATH=src python bench/many_layers.py` (defaults: 4 hooks of SmolLM2, d_sae 16,384, k 64,
batch 2,048, one window of 128 x 128 positions; ~5 CPU-minutes), `--quick` for a smoke run on a tiny
random Llama.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from interplab.activations import ActivationStore, CacheConfig, cache_activations
from interplab.activations.buffer import ActivationBuffer, BufferConfig
from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.models.loading import LoadedModel, load_model
from interplab.saes import SAEGroup, make_sae, sae_config
from interplab.training import TrainConfig, fit


@dataclass
class Stage:
    name: str
    hook: str
    tokens: int
    wall_s: float
    cpu_s: float

    @property
    def cpu_ms_per_1k(self) -> float:
        return 1000 * self.cpu_s / self.tokens * 1000

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


class Clock:
    """Wall and CPU seconds between `start()` and `stop()`."""

    def start(self) -> None:
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.w0, time.process_time() - self.c0


def texts_for(args: argparse.Namespace) -> list[str]:
    if args.quick:
        from interplab.data.corpus import load_demo_corpus

        return load_demo_corpus()
    from interplab.data.text import load_texts

    return list(load_texts(args.data))


def train_cfg(args: argparse.Namespace, steps: int) -> TrainConfig:
    return TrainConfig(total_steps=steps, batch_size=args.batch_size, lr=2e-4 / (args.d_sae / 2**14) ** 0.5,
                       lr_decay="none", device="cpu", threads=args.threads, log_every=steps, seed=0)


def new_sae(args: argparse.Namespace, d: int, hook: str, seed: int):
    return make_sae(sae_config("topk", d_in=d, d_sae=args.d_sae, k=args.k, seed=seed, metadata={"hook_name": hook}))


def timed_fit(model, batches, args: argparse.Namespace, steps: int) -> tuple[float, float, int]:
    """(wall s, CPU s, steps done) of a whole `fit` (b_dec init and first step included)."""
    clock, done = Clock(), [0]

    def on_step(step: int, _metrics: dict) -> None:
        done[0] = step

    clock.start()
    fit(model, batches, train_cfg(args, steps), on_step=on_step)
    return (*clock.stop(), done[0])


def stream_cfg(args: argparse.Namespace) -> StreamConfig:
    return StreamConfig(batch_size=args.batch_size, context_size=args.context, window_seqs=args.window_seqs,
                        forward_batch=args.forward_batch, max_tokens=args.tokens, epochs=1,
                        normalize=False)  # the cached SAEs train on raw rows too


def streamed(lm: LoadedModel, texts: list[str], args: argparse.Namespace) -> tuple[list[Stage], int]:
    """The streamed rows, and the number of batches one epoch of the stream gives (counted by the
    forward-only pass, which runs first: sinks and special tokens are left out, so only a pass knows)."""
    hooks = args.hooks
    clock = Clock()
    clock.start()
    n = sum(len(x) for x in ForwardStream(lm, texts, hooks, cfg=stream_cfg(args)))
    only_forward = Stage("streamed: forward passes only", "all", n, *clock.stop())
    group = SAEGroup.of(hooks, [new_sae(args, lm.d_model, h, i).cfg for i, h in enumerate(hooks)])
    stream = ForwardStream(lm, texts, hooks, cfg=stream_cfg(args))
    wall, cpu, steps = timed_fit(group, stream, args, n // args.batch_size)
    return [Stage("streamed: forward + train all", "all", steps * args.batch_size, wall, cpu), only_forward], steps


def cached(lm: LoadedModel, texts: list[str], args: argparse.Namespace, work: Path, steps: int) -> list[Stage]:
    rows = []
    for i, hook in enumerate(args.hooks):
        clock = Clock()
        clock.start()
        cache_activations(lm, texts, hook, work / f"store{i}",
                          CacheConfig(context_size=args.context, batch_size=args.forward_batch, max_tokens=args.tokens))
        wall, cpu = clock.stop()
        store = ActivationStore.open(work / f"store{i}")
        # per kept token: the tokens training reads
        rows.append(Stage("cached: cache_activations", hook, store.n_tokens, wall, cpu))
        buffer = ActivationBuffer(store, BufferConfig(batch_size=args.batch_size, epochs=None, seed=i))
        wall, cpu, done = timed_fit(new_sae(args, store.d, hook, i), buffer, args, steps)
        rows.append(Stage("cached: train from the store", hook, done * args.batch_size, wall, cpu))
    return rows


def derived(rows: list[Stage], m: int, epochs: list[int]) -> tuple[list[dict], int | None]:
    """Table 2: CPU ms per 1k tokens per hook over E epochs, streamed vs cached; and the break-even E."""
    by = {r.name: r for r in rows if r.hook == "all"}
    total_stream = by["streamed: forward + train all"].cpu_ms_per_1k  # all M hooks, one epoch
    cache = sum(r.cpu_ms_per_1k for r in rows if r.name == "cached: cache_activations")
    train = sum(r.cpu_ms_per_1k for r in rows if r.name == "cached: train from the store")
    out, even = [], None
    for e in range(1, max(epochs) + 1):
        s, c = e * total_stream / m, (cache + e * train) / m
        if even is None and c < s:
            even = e
        if e in epochs:
            out.append({"epochs": e, "streamed": s, "cached": c, "cached / streamed": c / s})
    return out, even


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", default="wiki-en")
    p.add_argument("--hooks", default="blocks.3.resid_post,blocks.9.resid_post,blocks.15.resid_post,"
                                      "blocks.21.resid_post")
    p.add_argument("--d-sae", type=int, default=16384)
    p.add_argument("--k", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--windows", type=int, default=1, help="streamed windows of text read (1 epoch)")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--window-seqs", type=int, default=128, help="sequences mixed per streamed window")
    p.add_argument("--forward-batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", default="1,2,3,4,8", help="passes over the data in table 2")
    p.add_argument("--quick", action="store_true", help="tiny random Llama, seconds")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.hooks = [h.strip() for h in args.hooks.split(",")]
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_layers_") as tmp:
        if args.quick:
            from interplab.models.tiny import build_tiny_model

            args.model = str(build_tiny_model("llama", Path(tmp) / "tiny", n_layers=4))
            args.hooks = [f"blocks.{i}.resid_post" for i in range(4)]
            args.d_sae, args.k, args.batch_size, args.context, args.window_seqs = 256, 8, 256, 32, 32
        args.tokens = args.windows * args.window_seqs * args.context
        lm = load_model(args.model, device="cpu")
        texts = texts_for(args)
        load0 = os.getloadavg()
        rows, steps = streamed(lm, texts, args)
        rows += cached(lm, texts, args, Path(tmp), steps)
        load1 = os.getloadavg()
    m, d = len(args.hooks), lm.d_model
    print(f"\n{args.model}: {m} hooks, TopK d_sae {args.d_sae} k {args.k}, batch {args.batch_size}, {steps} steps "
          f"({args.tokens:,} positions), {args.threads} thread(s); load average {load0} -> {load1}")
    print("| stage | hook | tokens | wall s | CPU s | CPU ms / 1k tokens | tokens/s (wall) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.name} | {r.hook} | {r.tokens:,} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.cpu_ms_per_1k:,.0f} | "
              f"{r.tokens_per_s:,.0f} |")
    epochs = [int(e) for e in args.epochs.split(",")]
    table, even = derived(rows, m, epochs)
    print(f"\nPer hook, CPU ms per 1,000 training tokens over E epochs (a store needs {d * 4:,} bytes per token "
          f"per hook):")
    print("| epochs E | streamed | cached one hook at a time | cached / streamed |")
    print("|---:|---:|---:|---:|")
    for t in table:
        print(f"| {t['epochs']} | {t['streamed']:,.0f} | {t['cached']:,.0f} | {t['cached / streamed']:.2f} |")
    print(f"caching pays off from E = {even} epochs" if even else f"caching does not pay off within {max(epochs)} "
          "epochs")
    if args.json:
        args.json.write_text(json.dumps({"config": {k: v for k, v in vars(args).items() if k != "json"},
                                         "rows": [asdict(r) for r in rows], "derived": table, "break_even": even,
                                         "load": [load0, load1]}, indent=2, default=str))


if __name__ == "__main__":
    main()

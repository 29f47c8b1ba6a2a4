"""Bench: caching activations to disk vs a plain forward pass of the same model on the same tokens.

1. Pack the demo corpus (repeated up to `--tokens`) once per model into [n_seq, ctx] windows.
2. Time, on those windows with the same batch size (best of `--repeats`, CUDA synchronised):
     full forward        model(**batch), no hooks: what any use of the model costs
     hidden_states       model(**batch, output_hidden_states=True): the naive way to get activations
     forward to layer    run_to_capture(model, batch, hook): the same forward pass, stopped after the hook
     interplab cache     cache_activations(...) into a fresh folder: tokenize + forward + copy + checksum + write
     tokenize+pack       the tokenization alone (part of the cache row, not of the forward rows)
3. Print one table per model with tokens/s and each row's time as a ratio to "forward to layer" (the
   work caching cannot avoid); the cache's overhead is its ratio minus one. Targets: <= 25% on CPU,
   <= 10% on GPU.

Run: `python bench/cache.py --device cpu` (or `--device cuda --tokens 2000000` on a GPU box).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from interplab.activations.cache import CacheConfig, cache_activations
from interplab.data.corpus import load_demo_corpus
from interplab.data.text import tokenize_and_pack
from interplab.models.interventions import run_to_capture
from interplab.models.loading import LoadedModel, load_model
from interplab.models.tiny import build_tiny_model
from timing import best_time


@dataclass
class Row:
    model: str
    method: str
    seconds: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def texts_for(n_tokens: int, tokens_per_pass: int) -> list[str]:
    corpus = load_demo_corpus()
    return corpus * max(1, -(-n_tokens // max(tokens_per_pass, 1)))


def bench_model(label: str, lm: LoadedModel, hook: str, args: argparse.Namespace) -> list[Row]:
    one_pass = tokenize_and_pack(lm.tokenizer, load_demo_corpus(), args.context_size, lm.is_causal)
    texts = texts_for(args.tokens, int(one_pass.attention_mask.sum()))
    packed = tokenize_and_pack(lm.tokenizer, texts, args.context_size, lm.is_causal)
    n_seq = min(len(packed.input_ids), -(-args.tokens // args.context_size))
    ids, mask = packed.input_ids[:n_seq], packed.attention_mask[:n_seq]
    n_tokens = int(mask.sum())
    batches = [
        {
            "input_ids": ids[i : i + args.batch_size].to(lm.device),
            "attention_mask": mask[i : i + args.batch_size].to(lm.device, dtype=torch.long),
        }
        for i in range(0, n_seq, args.batch_size)
    ]

    def full_forward() -> None:
        with torch.no_grad():
            for batch in batches:
                lm.model(**batch)

    def hidden_states() -> None:
        with torch.no_grad():
            for batch in batches:
                lm.model(**batch, output_hidden_states=True)

    def to_layer() -> None:
        for batch in batches:
            run_to_capture(lm.model, batch, hook)

    def tokenize() -> None:
        tokenize_and_pack(lm.tokenizer, texts, args.context_size, lm.is_causal, max_seq=n_seq)

    out_root = Path(tempfile.mkdtemp(prefix="interplab_bench_cache_", dir=args.tmp_dir))
    cfg = CacheConfig(
        context_size=args.context_size,
        batch_size=args.batch_size,
        shard_tokens=args.shard_tokens,
        dtype=args.store_dtype,
        max_tokens=n_seq * args.context_size,
        overwrite=True,
        write_threads=args.write_threads,
    )

    def cache() -> None:
        cache_activations(lm, texts, hook, out_root / "store", cfg)

    try:
        rows = [
            Row(label, name, best_time(fn, lm.device, args.repeats, warmup=True), n_tokens)
            for name, fn in [
                ("tokenize+pack", tokenize),
                ("full forward", full_forward),
                ("hidden_states", hidden_states),
                ("forward to layer", to_layer),
                ("interplab cache", cache),
            ]
        ]
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    return rows


def print_table(rows: list[Row], header: bool = True) -> None:
    base = {r.model: r.seconds for r in rows if r.method == "forward to layer"}
    title = f"{'model':<28} {'method':<18} {'seconds':>9} {'tokens/s':>11} {'vs fwd-to-layer':>16}"
    if header:
        print(title)
        print("-" * len(title))
    for r in rows:
        print(
            f"{r.model:<28} {r.method:<18} {r.seconds:>9.3f} {r.tokens_per_s:>11.0f} {r.seconds / base[r.model]:>15.2f}x",
            flush=True,
        )


def models_to_bench(args: argparse.Namespace, work: Path) -> list[tuple[str, LoadedModel, str]]:
    device, dtype = args.device, args.model_dtype
    out = []
    if "minilm" in args.models:
        out.append(
            (
                "MiniLM-L6 (real) L3",
                load_model("sentence-transformers/all-MiniLM-L6-v2", device=device, dtype=dtype),
                "blocks.3.resid_post",
            )
        )
    if "smollm2" in args.models:
        lm = load_model("smollm2-135m", device=device, dtype=dtype)
        out.append((f"SmolLM2-135M (real) L{lm.n_layers // 2}", lm, f"blocks.{lm.n_layers // 2}.resid_post"))
    for name, layers, d in [("tiny", 2, 64), ("medium", 6, 512)]:
        if f"gpt2-{name}" in args.models:
            folder = build_tiny_model("gpt2", work / f"gpt2_{name}", n_layers=layers, d_model=d, n_ctx=512)
            hook = f"blocks.{layers // 2}.resid_post"
            out.append(
                (
                    f"GPT-2 {name} {layers}L d={d} L{layers // 2}",
                    load_model(folder, device=device, dtype=dtype),
                    hook,
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--models", default="smollm2,minilm,gpt2-tiny,gpt2-medium",
                        help="comma-separated subset of smollm2, minilm, gpt2-tiny, gpt2-medium")
    parser.add_argument("--tokens", type=int, default=32_768, help="token positions per timing")
    parser.add_argument("--context-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-tokens", type=int, default=8192, help="several shards, so writes overlap")
    parser.add_argument("--store-dtype", default="float32")
    parser.add_argument("--write-threads", type=int, default=None, help="default: 2 on CUDA, 1 on CPU")
    parser.add_argument("--model-dtype", default=None, help="dtype to run the model in (default float32)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--tmp-dir", default=None, help="where the bench store is written (default: system temp)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"device: {load_device_name(args.device)}, torch threads: {torch.get_num_threads()}, tokens per timing: "
        f"~{args.tokens}, context {args.context_size}, batch {args.batch_size}, best of {args.repeats}",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="interplab_bench_models_") as work:
        for label, lm, hook in models_to_bench(args, Path(work)):
            model_rows = bench_model(label, lm, hook, args)
            print_table(model_rows, header=not rows)
            rows += model_rows
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "tokens_per_s": r.tokens_per_s} for r in rows], indent=2)
        )


def load_device_name(requested: str | None) -> str:
    from interplab.common import get_device

    device = get_device(requested)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()

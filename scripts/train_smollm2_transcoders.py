"""Train TopK skip-transcoders on every layer of SmolLM2-135M from wiki-en (CPU sized), with plain TopK
transcoders trained side by side on the same batches for the FVU comparison at equal k.

    PYTHONPATH=src python scripts/train_smollm2_transcoders.py runs/smollm2-tc
Used for the graph bench, the intervention check and the slow tests (bench/README.md has the numbers).
"""

from __future__ import annotations

import argparse
import logging

from interplab.activations.stream import StreamConfig
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.pipelines.transcoders import train_transcoders_run
from interplab.saes import sae_config
from interplab.training import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", default="topk_skip_transcoder")
    ap.add_argument("--side-by-side", default="topk_transcoder", help="comma-separated; '' for none")
    ap.add_argument("--d-sae", type=int, default=2304)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--layers", default="all")
    ap.add_argument("--n-docs", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    lm = load_model("smollm2-135m", device="cpu")
    texts = load_texts("wiki-en")
    train, held_out = texts[: args.n_docs], texts[-16:]
    layers = None if args.layers == "all" else [int(x) for x in args.layers.split(",")]
    cfg = sae_config(args.arch, d_in=lm.d_model, d_sae=args.d_sae, k=args.k)
    others = [sae_config(a, d_in=lm.d_model, d_sae=args.d_sae, k=args.k) for a in args.side_by_side.split(",") if a]
    tc = TrainConfig(total_steps=args.steps, lr=args.lr, log_every=5, threads=args.threads, checkpoint_every=25,
                     lr_decay_fraction=0.3, dead_after_tokens=50_000)
    stream = StreamConfig(batch_size=args.batch_size, context_size=64, window_seqs=32, forward_batch=16)
    run = train_transcoders_run(args.out, lm, train, held_out, cfg, tc, stream, layers=layers,
                                model_name="smollm2-135m", show_progress=False, side_by_side=others)
    logging.info("eval: %s", {k: v for k, v in run.evaluation.items() if k not in ("layers", "side_by_side")})


if __name__ == "__main__":
    main()

"""Auto-interpretability on the demo SAE: token-statistics explainer vs a local LLM explainer, one judge.

    PYTHONPATH=src python bench/autointerp_demo.py --run runs/demo --latents 40 --dev 8 --report 21 --part 0/3 --out runs/ai-0
    ... --part 1/3 --out runs/ai-1; ... --part 2/3 --out runs/ai-2      (parts can run side by side)
    PYTHONPATH=src python bench/autointerp_demo.py --merge runs/ai-0 runs/ai-1 runs/ai-2

Examples come from the demo's activation store (the tokens the SAE was trained on), not from the dashboards
DB, so the negatives of detection are exact: windows of 24 tokens are cut from each 128-token row (positions
8..127, away from the attention sink), every latent is encoded, and latents firing in at least 40 windows and
silent in at least `n_random` are sampled at random (seed 0). The first `--dev` sampled latents are the ones
settings were picked on; the rest are reported. Prints each explainer's mean ± std (min..max) of detection
and fuzzing balanced accuracy and AUROC over the reported latents, with CPU seconds and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from interplab.autointerp import (
    AutointerpConfig,
    ExampleConfig,
    LatentExamples,
    LocalHFClient,
    LogprobJudge,
    ScoreConfig,
    StoreExampleConfig,
    examples_from_store,
    run_autointerp,
    summarize,
)
from interplab.models.loading import load_model
from interplab.models.tokens import token_texts
from interplab.saes.io import load_sae
from timing import cpu_seconds

FIRST, MIN_WINDOWS = 8, 40  # windows of ExampleConfig.context (24) tokens


def store_examples(run: Path, n_latents: int, cfg: ExampleConfig, tokenizer) -> dict[int, LatentExamples]:
    """Examples of `n_latents` latents sampled at random (seed 0) from the demo store (see the docstring)."""
    hook_dir = next((run / "stores").iterdir())
    sae = load_sae(run / "saes" / hook_dir.name / "sae")
    store_cfg = StoreExampleConfig(examples=cfg, skip_first=FIRST, min_windows=MIN_WINDOWS)
    return examples_from_store(hook_dir / "train", sae.encode, token_texts(tokenizer), store_cfg,
                               n_latents=n_latents, seed=0)


def print_summary(summary: dict) -> None:
    for key, value in summary.items():
        if value is not None and (any(s in key for s in ("mean", "std", "min", "max", "above"))
                                  or key in ("n_features", "judge")):
            print(f"{key}: {value}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/demo"))
    ap.add_argument("--latents", type=int, default=40, help="latents sampled (dev + reported + unused)")
    ap.add_argument("--report", type=int, default=21, help="latents reported: the ones after the dev ones")
    ap.add_argument("--dev", type=int, default=8, help="first sampled latents, used to pick settings: not reported")
    ap.add_argument("--method", default="likelihood", help="likelihood or yes-no")
    ap.add_argument("--max-examples", type=int, default=8, help="held-out items per class")
    ap.add_argument("--part", default="0/1", help="i/n: score every n-th reported latent from the i-th")
    ap.add_argument("--merge", type=Path, nargs="+", help="print the summary of finished parts' folders")
    ap.add_argument("--no-llm", action="store_true", help="token-statistics explainer only")
    ap.add_argument("--no-fuzzing", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-autointerp"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.merge:
        records = [json.loads(line) for folder in args.merge
                   for line in (folder / "explanations.jsonl").read_text().splitlines()]
        print_summary(summarize(records))
        return
    torch.set_num_threads(args.threads)
    wall, cpu = time.perf_counter(), cpu_seconds()
    lm = load_model(json.loads((args.run / "config.json").read_text())["analyze"]["model"])
    cfg_ex = ExampleConfig(n_top=16, n_per_quantile=3, n_random=24)
    examples = store_examples(args.run, args.latents, cfg_ex, lm.tokenizer)
    reported = dict(list(examples.items())[args.dev : args.dev + args.report])
    print(f"dev latents (not reported): {list(examples)[: args.dev]}; reported: {list(reported)}")
    i, n = (int(x) for x in args.part.split("/"))
    reported = dict(list(reported.items())[i::n])
    cfg = AutointerpConfig(score=ScoreConfig(method=args.method, max_examples=args.max_examples),
                           fuzzing=not args.no_fuzzing)
    client = None if args.no_llm else LocalHFClient(lm)
    records = run_autointerp(client, reported, args.out, cfg, judge=LogprobJudge(lm), overwrite=True)
    print_summary(summarize(records))
    print(f"wall {time.perf_counter() - wall:.0f} s, CPU {cpu_seconds() - cpu:.0f} s, load average "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

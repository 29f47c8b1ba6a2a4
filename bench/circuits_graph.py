"""Attribution-graph build time and peak memory on SmolLM2-135M (all 30 layers), 30-token prompt.

    PYTHONPATH=src python bench/circuits_graph.py                       # 256 feature rows, batch 32
    PYTHONPATH=src python bench/circuits_graph.py --max-feature-nodes 512 --baseline-rows 8

Rows: *interplab* (`attribute`: one replay of B prompt copies, B targets per backward pass) and the
*plain autograd* baseline: the same rows, one target per backward pass (batch 1), timed on
`--baseline-rows` targets and extrapolated linearly to the same number of rows. The transcoders are
random TopK skip-transcoders (k active latents per token and layer, as trained ones have): build
time depends on the number of active features and rows, not on what the features mean.
circuit-tracer (0.5.0) is not run: it pins transformers<=4.57.3 next to our 5.x (see bench/README.md).
Prints wall and CPU seconds, peak RSS, load average and the ratio baseline / interplab.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch

from interplab.circuits.attribution import GraphConfig, _Builder, attribute, record
from interplab.data.text import load_texts
from interplab.models import load_model
from interplab.saes import make_sae, sae_config


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=30)
    ap.add_argument("--max-feature-nodes", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--d-sae", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--baseline-rows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m", device="cpu")
    tcs = []
    for layer in range(lm.n_layers):
        tc = make_sae(sae_config("topk_skip_transcoder", d_in=lm.d_model, d_sae=args.d_sae, k=args.k, seed=layer))
        with torch.no_grad():
            tc.W_skip.normal_(0, 0.01)
        tcs.append(tc.eval())
    text = load_texts("wiki-en")[0]
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"][:, : args.tokens]
    cfg = GraphConfig(max_feature_nodes=args.max_feature_nodes, batch_size=args.batch_size)
    t0, c0 = time.perf_counter(), _cpu()
    g = attribute(lm.model, lm.tokenizer, tcs, ids, cfg)
    ours_wall, ours_cpu = time.perf_counter() - t0, _cpu() - c0
    rss_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_rows = g.rows.shape[0]
    # baseline: the same kind of row, one target per backward pass
    t0, c0 = time.perf_counter(), _cpu()
    rec = record(lm.model, tcs, ids)
    b = _Builder(lm.model, tcs, rec, GraphConfig(batch_size=1))
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for col in g.row_features[: args.baseline_rows].tolist():
        b.rows([int(col)], [])
    per_row = (time.perf_counter() - t1) / args.baseline_rows
    base_wall = setup + per_row * n_rows
    base_cpu = (_cpu() - c0) * base_wall / max(time.perf_counter() - t0, 1e-9)
    load = os.getloadavg()
    print(f"SmolLM2-135M, {ids.shape[1]} tokens, 30 layers, {g.n_features} active features, {n_rows} rows "
          f"(1 logit + {n_rows - 1} features), d_sae {args.d_sae}, k {args.k}, {args.threads} threads, "
          f"load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"completeness |Σ edges + bias - logit| = {g.meta['completeness_logit_abs_error']:.2e} (float32)")
    print("| builder | wall s | CPU s | peak RSS MiB | baseline / this |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| interplab (batch {args.batch_size}) | {ours_wall:.1f} | {ours_cpu:.1f} | {rss_ours:.0f} | "
          f"{base_wall / ours_wall:.2f} |")
    print(f"| plain autograd, 1 target per backward (extrapolated from {args.baseline_rows} rows) | "
          f"{base_wall:.1f} | {base_cpu:.1f} | (same process) | 1.00 |")


if __name__ == "__main__":
    main()

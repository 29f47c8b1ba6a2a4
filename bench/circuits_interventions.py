"""Bench: interventions on graph nodes vs the graph's linear prediction, on tiny models with trained transcoders.

    PYTHONPATH=src python bench/circuits_interventions.py                  # llama and gpt2, 300 steps
    PYTHONPATH=src python bench/circuits_interventions.py --families llama --steps 1000

1. A tiny random model per family (3 layers, d 64, `interplab.models.tiny`), TopK skip-transcoders
   (d_sae 256, k 8) on every layer trained by `interplab train-transcoders` (wiki-en, streamed).
2. For each of 5 prompts a graph in float64 (256 feature rows) with its own top logit as target; the
   top-5 features by |direct effect| are ablated (scale 0) in the real model (`check_interventions`).
3. Per feature: relative error |Δ_real − Δ_graph| / |Δ_real|, split into what moving attention and norm
   scales add (|Δ_real − Δ_frozen_attn| / |Δ_real|) and what the MLPs' nonlinearity adds
   (|Δ_frozen_attn − Δ_graph| / |Δ_real|). Prints the spread (10/50/90 % quantiles) and the share of
   features within 10 %.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

PROMPTS = ["The cat sat on the mat because it was", "Once upon a time there lived a", "The capital of France is",
           "She opened the door and saw", "In 1990 the company announced"]


def _train(model_dir: Path, out: Path, args: argparse.Namespace) -> tuple[float, str]:
    from typer.testing import CliRunner

    from interplab.cli import app

    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["train-transcoders", "--model", str(model_dir), "--out", str(out), "--d-sae",
                                   str(args.d_sae), "--k", str(args.k), "--steps", str(args.steps), "--batch-size",
                                   "256", "--context-size", "32", "--threads", str(args.threads), "--eval-texts",
                                   "20"])
    if res.exit_code != 0:
        raise SystemExit(res.output)
    summary = [line for line in res.output.splitlines() if line.startswith("FVU mean")]
    return time.perf_counter() - t0, summary[-1] if summary else ""


def _q(values: list[float]) -> str:
    t = torch.tensor(values, dtype=torch.float64)
    q = t.quantile(torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)).tolist()
    return f"{q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="llama,gpt2")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--d-sae", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="print every feature's row")
    args = ap.parse_args()
    from interplab.circuits.attribution import GraphConfig, attribute
    from interplab.circuits.interventions import check_interventions
    from interplab.models import load_model
    from interplab.models.tiny import build_tiny_model
    from interplab.pipelines.transcoders import load_layer_transcoders

    torch.set_num_threads(args.threads)
    table = []
    for family in args.families.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir = build_tiny_model(family, Path(tmp) / "model", n_layers=3)
            seconds, fvu_line = _train(model_dir, Path(tmp) / "run", args)
            lm = load_model(model_dir, device="cpu")
            lm.model.double()
            layers = load_layer_transcoders(Path(tmp) / "run" / "transcoders")
            tcs = [layers[L].double().eval() for L in range(lm.n_layers)]
            total, moving, mlp, deltas = [], [], [], []
            for prompt in PROMPTS:
                g = attribute(lm.model, lm.tokenizer, tcs, prompt, GraphConfig(max_feature_nodes=256, batch_size=32))
                for r in check_interventions(lm.model, tcs, g, top=args.top):
                    real = max(abs(r["delta_real"]), 1e-12)
                    total.append(r["rel_error"])
                    moving.append(abs(r["delta_real"] - r["delta_frozen_attn"]) / real)
                    mlp.append(abs(r["delta_frozen_attn"] - r["delta_graph"]) / real)
                    deltas.append(abs(r["delta_real"]))
                    if args.verbose:
                        print(family, {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()})
            within = sum(e <= 0.1 for e in total) / len(total)
            print(f"{family}: transcoders trained in {seconds:.0f} s; {fvu_line}")
            table.append(f"| tiny {family} | {len(total)} | {_q(deltas)} | {_q(total)} | {within:.0%} | "
                         f"{_q(moving)} | {_q(mlp)} |")
    print(f"{len(PROMPTS)} prompts x top-{args.top} features by |direct effect|, ablated; TopK skip-transcoders "
          f"d_sae {args.d_sae}, k {args.k}, {args.steps} steps; float64")
    print("| model | features | abs Δ_real logit (10/50/90 %) | rel error (10/50/90 %) | within 10 % | "
          "attention + norms part | MLP nonlinearity part |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(table))


if __name__ == "__main__":
    main()

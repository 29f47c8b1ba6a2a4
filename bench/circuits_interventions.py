"""Bench: interventions on graph nodes vs the graph's linear prediction, with trained transcoders.

    PYTHONPATH=src python bench/circuits_interventions.py                  # tiny llama and gpt2, 300 steps
    PYTHONPATH=src python bench/circuits_interventions.py --families llama --steps 1000
    PYTHONPATH=src python bench/circuits_interventions.py --model smollm2-135m \
        --transcoders runs/smollm2-tc/transcoders                         # a real model, trained transcoders

1. Tiny random models (3 layers, d 64, `interplab.models.tiny`) get TopK skip-transcoders (d_sae 256,
   k 8) on every layer trained by `interplab train-transcoders` (wiki-en, streamed); with `--model` the
   transcoders come from `--transcoders` (a train-transcoders run's `transcoders/`).
2. For each of 5 prompts a graph in float64 (`--max-feature-nodes` rows) with its own top logit as
   target; the top-5 features are ablated (`--scale 0`; 0.9 is a small step) in the real model
   (`check_interventions`), chosen by |direct effect| on the logit and by influence through the graph
   (`--by`; direct-effect picks sit mostly in the last layers, influence picks reach earlier ones);
   `--max-layer` keeps to features at or below a layer, whose effect passes through later MLPs.
3. Per feature, two protocols: the real model with nothing frozen (Δ_real), and the real model with
   attention patterns and norm scales held at the clean run's, MLPs live (Δ_frozen_attn: what
   circuit-tracer's `feature_intervention` measures by default, `freeze_attention=True`). Relative
   errors |Δ − Δ_graph| / |Δ| of both, the share within 10 %, and the split of the nothing-frozen error
   into what moving attention and norms add (|Δ_real − Δ_frozen_attn| / |Δ_real|) and what the real
   MLPs add by responding unlike their transcoders (|Δ_frozen_attn − Δ_graph| / |Δ_real|). Prints the spread (10/50/90 % quantiles).
4. Beside Δ_graph (the visited rows only), Δ_linear: the graph's prediction with every feature row,
   computed as one forward pass of the linearised replacement model (`linear_change`). The frozen
   protocol against it (`rel_error_linear`) shows what is left without the row budget: the real MLPs
   responding unlike their transcoders.
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


def _rows(lm, tcs, args: argparse.Namespace, by: str) -> list[dict]:
    from interplab.circuits.attribution import GraphConfig, attribute
    from interplab.circuits.interventions import check_interventions, top_features

    rows = []
    for prompt in PROMPTS:
        g = attribute(lm.model, lm.tokenizer, tcs, prompt,
                      GraphConfig(max_feature_nodes=args.max_feature_nodes, batch_size=args.batch_size))
        cols = [c for c in top_features(g, g.n_features, by)
                if args.max_layer is None or int(g.feat_layer[c]) <= args.max_layer][: args.top]
        for r in check_interventions(lm.model, tcs, g, columns=cols, scale=args.scale):
            rows.append(r)
            if args.verbose:
                print(by, {k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()})
    return rows


def _line(name: str, by: str, rows: list[dict]) -> str:
    real = [max(abs(r["delta_real"]), 1e-12) for r in rows]
    moving = [abs(r["delta_real"] - r["delta_frozen_attn"]) / d for r, d in zip(rows, real, strict=True)]
    mlp = [abs(r["delta_frozen_attn"] - r["delta_graph"]) / d for r, d in zip(rows, real, strict=True)]
    total, frozen = [r["rel_error"] for r in rows], [r["rel_error_frozen"] for r in rows]
    linear = [r["rel_error_linear"] for r in rows]
    layers = sorted({r["layer"] for r in rows})
    return (f"| {name} | {by} | {len(rows)} | {min(layers)}-{max(layers)} | {_q(real)} | {_q(total)} | "
            f"{_within(total)} | {_q(frozen)} | {_within(frozen)} | {_q(linear)} | {_within(linear)} | "
            f"{_q(moving)} | {_q(mlp)} |")


def _within(errors: list[float]) -> str:
    return f"{sum(e <= 0.1 for e in errors) / len(errors):.0%}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="llama,gpt2", help="tiny random models to train transcoders for")
    ap.add_argument("--model", default=None, help="a real model instead (packaged name, hub id or folder)")
    ap.add_argument("--transcoders", type=Path, default=None, help="with --model: its transcoders/ folder")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--d-sae", type=int, default=256)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--scale", type=float, default=0.0,
                    help="multiply each chosen feature's write by this (0 ablates; 0.9 is a small step, where "
                         "a linear prediction has only the Jacobians to get right)")
    ap.add_argument("--by", default="direct,influence", help="feature choice: direct, influence or both")
    ap.add_argument("--max-layer", type=int, default=None,
                    help="choose only features at this layer or below (last-layer features reach the logit "
                         "through no MLP, so they only test the norms and attention)")
    ap.add_argument("--max-feature-nodes", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32, help="graph targets per backward pass")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="print every feature's row")
    args = ap.parse_args()
    from interplab.models import load_model
    from interplab.models.tiny import build_tiny_model
    from interplab.pipelines.transcoders import load_layer_transcoders

    if args.model and not args.transcoders:
        raise SystemExit("--model needs --transcoders (a train-transcoders run's transcoders/ folder)")
    torch.set_num_threads(args.threads)
    table, notes = [], []
    targets = [args.model] if args.model else [f"tiny {f}" for f in args.families.split(",")]
    for name in targets:
        with tempfile.TemporaryDirectory() as tmp:
            if args.model:
                lm, folder = load_model(args.model, device="cpu"), args.transcoders
            else:
                model_dir = build_tiny_model(name.split()[1], Path(tmp) / "model", n_layers=3)
                seconds, fvu_line = _train(model_dir, Path(tmp) / "run", args)
                notes.append(f"{name}: transcoders trained in {seconds:.0f} s; {fvu_line}")
                lm, folder = load_model(model_dir, device="cpu"), Path(tmp) / "run" / "transcoders"
            lm.model.double()
            layers = load_layer_transcoders(folder)
            tcs = [layers[L].double().eval() for L in range(lm.n_layers)]
            for by in args.by.split(","):
                t0 = time.perf_counter()
                rows = _rows(lm, tcs, args, by)
                notes.append(f"{name}, by {by}: {time.perf_counter() - t0:.0f} s")
                table.append(_line(name, by, rows))
    print("\n".join(notes))
    below = f" at layers <= {args.max_layer}" if args.max_layer is not None else ""
    edit = "ablated" if args.scale == 0 else f"scaled by {args.scale:g}"
    print(f"{len(PROMPTS)} prompts x top-{args.top} features{below}, {edit}; float64; "
          "rel error = |Δ - Δ_graph| / |Δ|")
    print("| model | chosen by | features | layers | abs Δ_real logit (10/50/90 %) | rel error, nothing frozen "
          "(10/50/90 %) | within 10 % | rel error, attention + norms frozen (10/50/90 %) | within 10 % | "
          "same, vs Δ_linear (every row) | within 10 % | attention + norms part | MLP part |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(table))


if __name__ == "__main__":
    main()

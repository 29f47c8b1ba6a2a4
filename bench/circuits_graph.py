"""Attribution-graph build time and peak memory on SmolLM2-135M (all 30 layers), 30-token prompt.

    PYTHONPATH=src python bench/circuits_graph.py                       # 256 feature rows, batch 8
    PYTHONPATH=src python bench/circuits_graph.py --max-feature-nodes 512 --baseline-rows 8

Rows: *interplab* (`attribute`: one replay of B prompt copies, B targets per backward pass), the
*plain autograd* baseline: the same rows, one target per backward pass (batch 1), timed on
`--baseline-rows` targets and extrapolated linearly to the same number of rows, and *circuit-tracer*
0.5.0 (`attribute` on its nnsight backend, the same transcoders, target logit, feature budget and batch)
run with `--peers-python`, a venv of its own because it pins transformers<=4.57.3 (and needs
nnsight<0.8: `pip install circuit-tracer==0.5.0 "nnsight>=0.6,<0.8"`). The transcoders are
random TopK skip-transcoders (k active latents per token and layer, as trained ones have): build
time depends on the number of active features and rows, not on what the features mean.
Prints wall and CPU seconds, peak RSS, load average and the ratios to interplab.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from timing import cpu_seconds, peak_rss_mib

DEFAULT_PEERS_PYTHON = "/work/ct-venv/bin/python"



def _export(tcs: list, lm, folder: Path) -> Path:
    """The transcoders in circuit-tracer's layout (W_enc [f, d]), and a model folder transformers 4.57
    reads (its config spells rope_theta, which 5.x moved into rope_parameters; its tokenizer class is
    the fast one, not 5.x's TokenizersBackend)."""
    from safetensors.torch import save_file

    for layer, tc in enumerate(tcs):
        save_file({"W_enc": tc.W_enc.detach().T.contiguous(), "b_enc": tc.b_enc.detach(),
                   "W_dec": tc.W_dec.detach().contiguous(), "b_dec": tc.b_dec.detach(),
                   "W_skip": tc.W_skip.detach().contiguous()}, str(folder / f"layer_{layer}.safetensors"))
    src = Path(lm.model.config._name_or_path)
    model_dir = folder / "model"
    model_dir.mkdir()
    for f in src.iterdir():
        if f.name not in ("config.json", "tokenizer_config.json"):
            (model_dir / f.name).symlink_to(f)
    tok = json.loads((src / "tokenizer_config.json").read_text())
    if tok.get("tokenizer_class") == "TokenizersBackend":  # transformers 5's name; 4.57 knows the fast class
        tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    (model_dir / "tokenizer_config.json").write_text(json.dumps(tok))
    cfg = json.loads((src / "config.json").read_text())
    cfg["rope_theta"] = cfg.get("rope_parameters", {}).get("rope_theta", 10000.0)
    (model_dir / "config.json").write_text(json.dumps(cfg))
    return model_dir


def circuit_tracer_worker(args: argparse.Namespace) -> None:
    """Runs under the circuit-tracer venv: no interplab import (it needs transformers 5)."""
    from circuit_tracer import ReplacementModel, attribute
    from circuit_tracer.transcoder import SingleLayerTranscoder, TranscoderSet
    from circuit_tracer.transcoder.activation_functions import TopK
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    folder = Path(args.worker_dir)
    layers = sorted(folder.glob("layer_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))
    tcs = {}
    for i, path in enumerate(layers):
        w = load_file(str(path))
        tc = SingleLayerTranscoder(w["W_enc"].shape[1], w["W_enc"].shape[0], TopK(args.k), i, skip_connection=True,
                                   device=torch.device("cpu"), dtype=torch.float32)
        tc.load_state_dict(w, strict=False)
        tcs[i] = tc
    ts = TranscoderSet(tcs, feature_input_hook="mlp.hook_in", feature_output_hook="mlp.hook_out")
    model = ReplacementModel.from_pretrained_and_transcoders(str(folder / "model"), ts, backend="nnsight",
                                                             device=torch.device("cpu"), dtype=torch.float32)
    ids = torch.tensor(json.loads(args.ids))
    t0, c0 = time.perf_counter(), cpu_seconds()
    graph = attribute(ids, model, attribution_targets=torch.tensor([args.target]), max_feature_nodes=args.max_feature_nodes,
                      batch_size=args.batch_size)
    out = {"wall": time.perf_counter() - t0, "cpu": cpu_seconds() - c0,
           "rss_mib": peak_rss_mib(),
           "active_features": int(graph.active_features.shape[0]), "rows": int(graph.adjacency_matrix.shape[0])}
    Path(args.result).write_text(json.dumps(out))


def _circuit_tracer_row(args: argparse.Namespace, tcs: list, lm, ids, target: int) -> dict | str:
    python = Path(args.peers_python)
    if not python.exists():
        return f"{python} not found (a venv with circuit-tracer 0.5.0)"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _export(tcs, lm, folder)
        result = folder / "result.json"
        cmd = [str(python), __file__, "--worker-dir", str(folder), "--result", str(result), "--ids",
               json.dumps(ids[0].tolist()), "--target", str(target), "--k", str(args.k), "--threads",
               str(args.threads), "--max-feature-nodes", str(args.max_feature_nodes), "--batch-size",
               str(args.batch_size)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return "failed: " + ((proc.stderr.strip().splitlines() or ["?"])[-1])[:200]
        return json.loads(result.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=30)
    ap.add_argument("--max-feature-nodes", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--d-sae", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--baseline-rows", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peers-python", default=DEFAULT_PEERS_PYTHON)
    ap.add_argument("--no-circuit-tracer", action="store_true")
    ap.add_argument("--worker-dir", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ids", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--target", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_dir:
        circuit_tracer_worker(args)
        return
    from interplab.circuits.attribution import GraphConfig, _Builder, attribute, record
    from interplab.data.text import load_texts
    from interplab.models import load_model
    from interplab.saes import make_sae, sae_config

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
    t0, c0 = time.perf_counter(), cpu_seconds()
    g = attribute(lm.model, lm.tokenizer, tcs, ids, cfg)
    ours_wall, ours_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    rss_ours = peak_rss_mib()
    n_rows = g.rows.shape[0]
    # baseline: the same kind of row, one target per backward pass
    t0, c0 = time.perf_counter(), cpu_seconds()
    rec = record(lm.model, tcs, ids)
    b = _Builder(lm.model, tcs, rec, GraphConfig(batch_size=1))
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    for col in g.row_features[: args.baseline_rows].tolist():
        b.rows([int(col)], [])
    per_row = (time.perf_counter() - t1) / args.baseline_rows
    base_wall = setup + per_row * n_rows
    base_cpu = (cpu_seconds() - c0) * base_wall / max(time.perf_counter() - t0, 1e-9)
    peer = None if args.no_circuit_tracer else _circuit_tracer_row(args, tcs, lm, ids, g.logit_tokens[0])
    load = os.getloadavg()
    print(f"SmolLM2-135M, {ids.shape[1]} tokens, 30 layers, {g.n_features} active features, {n_rows} rows "
          f"(1 logit + {n_rows - 1} features), d_sae {args.d_sae}, k {args.k}, {args.threads} threads, "
          f"load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"completeness |Σ edges + bias - logit| = {g.meta['completeness_logit_abs_error']:.2e} (float32)")
    print("| builder | wall s | CPU s | peak RSS MiB | CPU s / interplab's |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| interplab (batch {args.batch_size}) | {ours_wall:.1f} | {ours_cpu:.1f} | {rss_ours:.0f} | 1.00 |")
    print(f"| plain autograd, 1 target per backward (extrapolated from {args.baseline_rows} rows) | "
          f"{base_wall:.1f} | {base_cpu:.1f} | (same process) | {base_cpu / ours_cpu:.2f} |")
    if isinstance(peer, dict):
        print(f"| circuit-tracer 0.5.0, nnsight backend (batch {args.batch_size}; {peer['active_features']} active "
              f"features, {peer['rows']} rows) | {peer['wall']:.1f} | {peer['cpu']:.1f} | {peer['rss_mib']:.0f} | "
              f"{peer['cpu'] / ours_cpu:.2f} |")
    elif peer is not None:
        print(f"| circuit-tracer 0.5.0 | {peer} | | | |")


if __name__ == "__main__":
    main()

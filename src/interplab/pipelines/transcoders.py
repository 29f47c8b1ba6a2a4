"""Train one transcoder per layer (MLP input -> MLP output) in one pass over the data, and evaluate them.

Run folder:
    config.json        model, data, layers, transcoder config, training and stream configs
    metrics.jsonl      one line per logged step (summed loss, FVU over all layers, mean L0, ...)
    checkpoints/       resumable state of the whole group (parameters, Adam, stream position)
    transcoders/       group.json + one SAELens folder per layer, named blocks.L.mlp_in
    eval.json          per-layer FVU / L0 of the MLP output, CE / KL recovered with all MLPs replaced
    done.json          written last

1. Stream (input, target) pairs of every chosen layer from forward passes (`ForwardStream`).
2. `fit` trains the `SAEGroup` of transcoders on them (one optimiser, one pass over the data).
3. Save each layer's transcoder; evaluate on held-out texts (`evaluate_transcoders`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.common import InterplabError
from interplab.evals.transcoders import evaluate_transcoders
from interplab.files import read_json_object, write_json_atomic
from interplab.models.loading import LoadedModel
from interplab.pipelines.progress import progress_bar
from interplab.pipelines.run_folder import RunState, open_run
from interplab.saes import SAE, SAEConfig, SAEGroup, is_transcoder, load_group, make_sae, save_group
from interplab.training import TrainConfig, fit
from interplab.training.metrics_log import JsonlMetrics


@dataclass
class TranscoderRun:
    out: Path
    transcoders: dict[int, SAE]
    evaluation: dict[str, Any]
    reused: bool


def layer_names(layers: Sequence[int]) -> list[str]:
    return [f"blocks.{L}.mlp_in" for L in layers]


def load_layer_transcoders(folder: str | Path, device: Any = None) -> dict[int, SAE]:
    """{layer: transcoder} from a `transcoders/` folder written by `train_transcoders_run`."""
    members = load_group(folder, device=device)
    return {int(name.split(".")[1]): sae for name, sae in members.items()}


def train_transcoders_run(out: str | Path, lm: LoadedModel, texts: Sequence[str], eval_texts: Sequence[str],
                          tc_cfg: SAEConfig, train_cfg: TrainConfig, stream_cfg: StreamConfig,
                          layers: Sequence[int] | None = None, model_name: str = "", resume: bool = False,
                          overwrite: bool = False, show_progress: bool = True) -> TranscoderRun:
    """Train `tc_cfg`'s architecture at every layer in `layers` (default: all) into the run folder `out`."""
    out = Path(out)
    layers = list(range(lm.n_layers)) if layers is None else sorted(set(layers))
    probe = make_sae(tc_cfg.replace(d_in=lm.d_model))
    if not is_transcoder(probe):
        raise InterplabError(f"{tc_cfg.architecture} is not a transcoder architecture; choose one of "
                             "topk_transcoder, topk_skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder")
    names = layer_names(layers)
    configs = [tc_cfg.replace(d_in=lm.d_model, seed=tc_cfg.seed + L,
                              metadata={"model_name": model_name or lm.name, "hook_name": n,
                                        "hook_name_out": f"blocks.{L}.mlp_out", "d_model": lm.d_model,
                                        "context_size": stream_cfg.context_size})
               for L, n in zip(layers, names, strict=True)]
    group = SAEGroup.of(names, configs)
    tc = train_cfg.replace(checkpoint_dir=str(out / "checkpoints"), batch_size=stream_cfg.batch_size)
    tc.check()
    run_cfg = {"model": model_name or lm.name, "layers": layers, "n_texts": len(texts),
               "transcoder": tc_cfg.to_dict(), "train": tc.to_dict(), "stream": asdict(stream_cfg)}
    folder = open_run(out, run_cfg, resume=resume, overwrite=overwrite)
    if folder.finished:
        return TranscoderRun(out, load_layer_transcoders(out / "transcoders"),
                             read_json_object(out / "eval.json", what="evaluation"), reused=True)
    tc = tc.replace(resume=folder.state is RunState.CONTINUE)
    stream = ForwardStream(lm, texts, names, [f"blocks.{L}.mlp_out" for L in layers], stream_cfg)
    metrics_log = JsonlMetrics(out / "metrics.jsonl", resume=tc.resume)
    title = f"train {len(layers)} {tc_cfg.architecture}s"
    with progress_bar(title, total=tc.total_steps, show=show_progress) as update:
        def on_step(step: int, metrics: dict[str, float]) -> None:
            metrics_log(step, metrics)
            if metrics:
                update(step, None, f"{title} fvu={metrics['fvu']:.3f} l0={metrics['l0']:.1f}")

        fit(group, stream, tc, on_step=on_step)
    save_group(group.cpu(), out / "transcoders", overwrite=True)
    transcoders = {L: m for L, m in zip(layers, group.members, strict=True)}  # type: ignore[misc]
    batches = (lm.tokenize(eval_texts[i: i + 4], max_length=stream_cfg.context_size)
               for i in range(0, len(eval_texts), 4))
    result = evaluate_transcoders(lm, batches, {L: t.to(lm.device) for L, t in transcoders.items()})
    write_json_atomic(out / "eval.json", result)
    folder.mark_done({"fvu_mean": result["fvu_mean"], "ce_recovered": result["ce_recovered"]})
    return TranscoderRun(out, transcoders, result, reused=False)  # type: ignore[arg-type]

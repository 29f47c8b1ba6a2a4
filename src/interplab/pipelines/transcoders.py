"""Train one transcoder per layer (MLP input -> MLP output) in one pass over the data, and evaluate them.

Run folder:
    config.json        model, data, layers, transcoder config, training and stream configs
    metrics.jsonl      one line per logged step (summed loss, FVU over all layers, mean L0, ...)
    checkpoints/       resumable state of the whole group (parameters, Adam, stream position)
    transcoders/       group.json + one SAELens folder per layer, named blocks.L.mlp_in
    eval.json          per-layer FVU / L0 of the MLP output, CE / KL recovered with all MLPs replaced
    side_by_side/<arch>/transcoders/, eval.json   other architectures trained on the same batches
    done.json          written last

1. Stream (input, target) pairs of every chosen layer from forward passes (`ForwardStream`), attention
   sinks left out and each hook scaled to mean norm sqrt(d).
2. `fit` trains the `SAEGroup` of transcoders on them (one optimiser, one pass over the data). Other
   architectures given `side_by_side` join the same group and read the same batches (the stream
   tiled), so a comparison costs their training only, not another pass of forward passes.
3. Fold the stream's scales into each transcoder (so it reads and writes the model's own activations),
   record the exclusion rule in its metadata, save; evaluate on held-out texts
   (`evaluate_transcoders`, under the same rule).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from interplab.activations.stream import ForwardStream, StreamConfig
from interplab.common import InterplabError
from interplab.evals.transcoders import evaluate_transcoders
from interplab.files import read_json_object, write_json_atomic
from interplab.models.loading import LoadedModel
from interplab.pipelines.progress import progress_bar
from interplab.pipelines.run_folder import RunState, open_run
from interplab.saes import (
    SAE,
    SAEConfig,
    SAEGroup,
    TranscoderFields,
    fold_transcoder_scales_,
    load_group,
    save_group,
)
from interplab.training import TrainConfig, fit
from interplab.training.metrics_log import JsonlMetrics


@dataclass
class TranscoderRun:
    out: Path
    transcoders: dict[int, SAE]
    evaluation: dict[str, Any]
    """eval.json: the main architecture's, with "side_by_side": {arch: evaluation} for the others."""
    reused: bool


class _Tiled:
    """The stream with its hooks repeated `times` (one copy per architecture), resumable like it."""

    def __init__(self, stream: ForwardStream, times: int):
        self.stream, self.times = stream, times

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in self.stream:  # type: ignore[misc]
            yield x.repeat(1, self.times, 1), y.repeat(1, self.times, 1)

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)


def layer_names(layers: Sequence[int]) -> list[str]:
    return [f"blocks.{L}.mlp_in" for L in layers]


def load_layer_transcoders(folder: str | Path, device: Any = None) -> dict[int, SAE]:
    """{layer: transcoder} from a `transcoders/` folder written by `train_transcoders_run`."""
    members = load_group(folder, device=device)
    return {int(name.split(".")[1]): sae for name, sae in members.items()}


def layer_configs(tc_cfg: SAEConfig, lm: LoadedModel, layers: list[int], model_name: str,
                  stream_cfg: StreamConfig) -> list[SAEConfig]:
    """One transcoder config per layer (MLP input to MLP output hooks, SAELens metadata, seed + layer)."""
    if not isinstance(tc_cfg, TranscoderFields):
        raise InterplabError(f"{tc_cfg.architecture} is not a transcoder architecture; choose one of "
                             "topk_transcoder, topk_skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder")
    exclusion = stream_cfg.exclusion_rule(lm.tokenizer, lm.is_causal)
    return [tc_cfg.replace(d_in=lm.d_model, seed=tc_cfg.seed + L,
                           metadata={"model_name": model_name or lm.name, "hook_name": f"blocks.{L}.mlp_in",
                                     "hook_name_out": f"blocks.{L}.mlp_out", "d_model": lm.d_model,
                                     "context_size": stream_cfg.context_size, "exclusion": exclusion.to_json()})
            for L in layers]


def train_transcoders_run(out: str | Path, lm: LoadedModel, texts: Sequence[str], eval_texts: Sequence[str],
                          tc_cfg: SAEConfig, train_cfg: TrainConfig, stream_cfg: StreamConfig,
                          layers: Sequence[int] | None = None, model_name: str = "", resume: bool = False,
                          overwrite: bool = False, show_progress: bool = True,
                          side_by_side: Sequence[SAEConfig] = ()) -> TranscoderRun:
    """Train `tc_cfg`'s architecture at every layer in `layers` (default: all) into the run folder `out`,
    and each of `side_by_side` (other architectures) on the same batches."""
    out = Path(out)
    layers = list(range(lm.n_layers)) if layers is None else sorted(set(layers))
    sets = [tc_cfg, *side_by_side]
    archs = [c.architecture for c in sets]
    if len(set(archs)) != len(archs):
        raise InterplabError(f"side-by-side architectures must differ from each other and from --arch: {archs}")
    configs = [layer_configs(c, lm, layers, model_name, stream_cfg) for c in sets]
    names = layer_names(layers)
    group = SAEGroup.of([f"{a}/{n}" for a in archs for n in names], [c for cs in configs for c in cs])
    tc = train_cfg.replace(checkpoint_dir=str(out / "checkpoints"), batch_size=stream_cfg.batch_size)
    tc.check()
    run_cfg = {"model": model_name or lm.name, "layers": layers, "n_texts": len(texts),
               "transcoder": tc_cfg.to_dict(), "train": tc.to_dict(), "stream": asdict(stream_cfg)}
    if side_by_side:
        run_cfg["side_by_side"] = [c.to_dict() for c in side_by_side]
    folder = open_run(out, run_cfg, resume=resume, overwrite=overwrite)
    if folder.finished:
        return TranscoderRun(out, load_layer_transcoders(out / "transcoders"),
                             read_json_object(out / "eval.json", what="evaluation"), reused=True)
    tc = tc.replace(resume=folder.state is RunState.CONTINUE)
    stream = ForwardStream(lm, texts, names, [f"blocks.{L}.mlp_out" for L in layers], stream_cfg)
    metrics_log = JsonlMetrics(out / "metrics.jsonl", resume=tc.resume)
    title = f"train {len(layers)} {'+'.join(archs)}s"
    with progress_bar(title, total=tc.total_steps, show=show_progress) as update:
        def on_step(step: int, metrics: dict[str, float]) -> None:
            metrics_log(step, metrics)
            if metrics:
                update(step, None, f"{title} fvu={metrics['fvu']:.3f} l0={metrics['l0']:.1f}")

        fit(group, _Tiled(stream, len(sets)) if side_by_side else stream, tc, on_step=on_step)
    group.cpu()
    M = len(layers)
    results = []
    for j, arch in enumerate(archs):
        sub = group.subgroup(slice(j * M, (j + 1) * M), names)
        where = out if j == 0 else out / "side_by_side" / arch
        results.append(save_and_evaluate(sub, where, lm, layers, stream, eval_texts))
        if j:
            write_json_atomic(where / "eval.json", results[-1])
    result = {**results[0], "side_by_side": dict(zip(archs[1:], results[1:], strict=True))} if side_by_side \
        else results[0]
    write_json_atomic(out / "eval.json", result)
    folder.mark_done({"fvu_mean": result["fvu_mean"], "ce_recovered": result["ce_recovered"]})
    return TranscoderRun(out, load_layer_transcoders(out / "transcoders"), result, reused=False)


def save_and_evaluate(group: SAEGroup, where: Path, lm: LoadedModel, layers: list[int], stream: ForwardStream,
                      eval_texts: Sequence[str]) -> dict[str, Any]:
    """Fold the stream's scales into each member, save them to where/transcoders, evaluate (held-out texts)."""
    for L, member in zip(layers, group.saes(), strict=True):
        s_in, s_out = stream.scales[f"blocks.{L}.mlp_in"], stream.scales[f"blocks.{L}.mlp_out"]
        fold_transcoder_scales_(member, s_in, s_out)
        member.cfg.metadata["folded_scales"] = {"in": s_in, "out": s_out}
    save_group(group, where / "transcoders", overwrite=True)
    ctx = stream.cfg.context_size
    batches = (lm.tokenize(list(eval_texts[i: i + 4]), max_length=ctx) for i in range(0, len(eval_texts), 4))
    transcoders = {L: t.to(lm.device) for L, t in zip(layers, group.saes(), strict=True)}
    return evaluate_transcoders(lm, batches, transcoders, stream.exclusion)

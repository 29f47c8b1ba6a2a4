"""The tuned-lens report: KL to the model's output per layer for the logit and the tuned lens on held-out text.

Layout (interplab.reports): figures/kl_by_layer.png, tables/kl_by_layer.csv/.json, config.json, metrics.jsonl,
and the trained translators in lens/ (lens/tuned.py format), so the web lens page can offer them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from interplab.reports import ReportWriter

REPORT_KIND = "tuned-lens"
LENS_SUBFOLDER = "lens"


def write_lens_report(writer: ReportWriter, layers: list[str], kl: Mapping[str, Tensor], model: str,
                      config: Mapping[str, Any]) -> Path:
    """Figure + table of KL per layer for each lens in `kl` ('logit', 'tuned'), the summary, index.json last."""
    writer.write_config({"model": model, **config})
    rows = [{"layer": label, **{f"kl_{name}": float(values[i]) for name, values in kl.items()}}
            for i, label in enumerate(layers)]
    writer.table("kl_by_layer", rows, "Mean KL(model output || lens) per layer on held-out text (nats)")
    writer.line_plot("kl_by_layer", list(range(len(layers))), {f"{name} lens": [float(v) for v in values]
                                                               for name, values in kl.items()},
                     f"{model}: KL to the output, held-out text",
                     "layer (0 = embeddings, i = after block i-1)", "KL (nats)",
                     caption="How far each layer's early guess at the next word is from the model's final answer "
                             "(KL divergence; 0 means the same prediction): lower is closer, and a lens whose line "
                             "lies lower reads the layers more faithfully.")
    summary: dict[str, Any] = {"model": model, "n_layers": len(layers)}
    for name, values in kl.items():
        summary[f"mean_kl_{name}"] = float(values[:-1].mean())  # the last layer is the output itself
        writer.log_metric(lens=name, mean_kl=summary[f"mean_kl_{name}"])
    if "logit" in kl and "tuned" in kl:
        better = [i for i in range(len(layers) - 1) if float(kl["tuned"][i]) < float(kl["logit"][i])]
        summary["layers_where_tuned_beats_logit"] = f"{len(better)} of {len(layers) - 1}"
    return writer.finish(summary)

"""The report of `interplab steer compare`: cosine similarities between steering vectors as a heatmap.

E.g. one concept built from English, French and German pairs: high cosines mean the model uses one
direction for the concept across languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from interplab.reports.writer import ReportWriter


def write_cosine_report(
    out: str | Path, names: Sequence[str], cosines_KK: Tensor, sources: Sequence[str], overwrite: bool = False
) -> Path:
    """Write the report folder (config, heatmap PNG + HTML table, CSV, index.json last); return index.json.

    `names` label the rows of `cosines_KK` (from `vectors.cosine_comparison`); `sources` are the vector
    files, recorded in config.json.
    """
    writer = ReportWriter(out, "Steering vector cosines", "steering-compare", overwrite=overwrite)
    writer.write_config({"vectors": [str(s) for s in sources]})
    writer.heatmap(
        "cosines", cosines_KK, names, names, "Cosine similarity of steering vectors", "vector", "vector", -1, 1,
        caption="How alike each pair of steering vectors is: 1 means the same direction, 0 unrelated, -1 opposite.",
    )
    return writer.finish({"n_vectors": len(names)})

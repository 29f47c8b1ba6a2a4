"""`run_tuned_lens`: train tuned-lens translators on a corpus and compare them with the logit lens on held-out
text, in one report folder.

1. Load the model and the texts; split off the last `heldout_texts` documents (never trained on), after a
   seeded shuffle.
2. Train the translators (lens.train_tuned_lens; checkpoints and metrics.jsonl in the report folder, so a
   killed run resumes) and save them under <out>/lens/ (safetensors + JSON).
3. One pass over the held-out texts gives the mean KL(model output || lens) per layer for the logit and
   the tuned lens; the report holds it as a figure and a table, index.json last.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from interplab.common import InterplabError, cpu_threads, get_logger
from interplab.data.text import load_texts
from interplab.lens import (
    TunedLensConfig,
    compare_lenses,
    layer_labels,
    save_tuned_lens,
    train_tuned_lens,
    write_lens_report,
)
from interplab.models import load_model
from interplab.reports import ReportWriter

log = get_logger(__name__)


@dataclass
class LensRunConfig:
    """What to train a tuned lens on and how to hold text out."""

    model: str = "smollm2-135m"
    """A causal LM: packaged name, hub id or folder."""
    data: str = "wiki-en"
    """Corpus name, file or folder (see docs/models-and-data.md)."""
    heldout_texts: int = 48
    """Documents kept out of training, on which both lenses are compared."""
    max_texts: int = 2000
    """Documents read from the corpus at most (after the seeded shuffle)."""
    device: str | None = None
    """cpu, cuda, ... (None: CUDA when present)."""


def split_texts(texts: list[str], heldout: int, max_texts: int, seed: int) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts) after a seeded shuffle; the held-out ones are never trained on."""
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    chosen = [texts[i] for i in order[:max_texts]]
    if len(chosen) <= heldout:
        raise InterplabError(f"{len(chosen)} documents cannot give {heldout} held-out ones and training text; "
                             "pass more data or a smaller --heldout-texts")
    return chosen[:-heldout], chosen[-heldout:]


def run_tuned_lens(out: str | Path, run: LensRunConfig | None = None, train: TunedLensConfig | None = None,
                   overwrite: bool = False, on_step=None) -> Path:
    """Train, save and evaluate a tuned lens; return the report's index.json."""
    run, train = run or LensRunConfig(), train or TunedLensConfig()
    writer = ReportWriter(out, f"Tuned lens vs logit lens: {run.model}", "tuned-lens", overwrite=overwrite)
    load0 = os.getloadavg()[0]
    with cpu_threads(run.device, train.threads):
        lm = load_model(run.model, device=run.device)
        train_texts, heldout = split_texts(load_texts(run.data), run.heldout_texts, run.max_texts, train.seed)
        cpu0 = time.process_time()
        lens, result = train_tuned_lens(lm, train_texts, train, folder=writer.folder, on_step=on_step)
        cpu1 = time.process_time()
        lens.metadata.update(model=run.model, data=run.data, steps=result.steps)
        save_tuned_lens(lens, writer.folder / "lens")
        kl = compare_lenses(lm, heldout, {"logit": None, "tuned": lens}, max_length=train.max_length)
        cpu2 = time.process_time()
    log.info("held-out mean KL: logit %.3f, tuned %.3f", float(kl["logit"][:-1].mean()), float(kl["tuned"][:-1].mean()))
    # CPU seconds beside the load average: on a shared machine wall time says little (docs/labs/logit-lens.md)
    cost = {"train_tokens": result.tokens, "train_cpu_s": round(cpu1 - cpu0, 1), "eval_cpu_s": round(cpu2 - cpu1, 1),
            "load_avg_start": round(load0, 2), "load_avg_end": round(os.getloadavg()[0], 2)}
    return write_lens_report(writer, layer_labels(lm.n_layers), kl, run.model,
                             {"run": asdict(run), "train": asdict(train), "n_train_texts": len(train_texts),
                              "n_heldout_texts": len(heldout), "lens_folder": "lens", "cost": cost})

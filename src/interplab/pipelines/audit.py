"""`audit_run(model, out)`: audit one organism and write the report folder (kind "audit").

The organism's card (`organism_card.json` in its model folder, or `card=`) is read by the audit game's
game master only; see `interplab.audit.run`. The corpus gives the SAE its clean text (the first three
quarters) and the perplexity cost its held-out text (the last quarter).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from interplab.audit import AuditConfig, run_audit, write_audit_report
from interplab.common import free_cpu_threads, get_logger, seed_everything
from interplab.configs import to_json_dict
from interplab.data.text import load_texts
from interplab.models.loading import load_model
from interplab.organisms import read_card
from interplab.reports import refuse_to_replace_report

log = get_logger(__name__)


def audit_run(model: str | Path, out: str | Path, cfg: AuditConfig | None = None, card: str | Path | None = None,
              overwrite: bool = False, device: str | None = None) -> Path:
    """Audit the organism at `model`; returns the report's index.json path."""
    cfg = cfg or AuditConfig()
    refuse_to_replace_report(out, overwrite)
    organism_card = read_card(card if card is not None else model)
    wall0, cpu0, load0 = time.time(), time.process_time(), os.getloadavg()[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(free_cpu_threads())
    try:
        seed_everything(cfg.seed)
        lm = load_model(model, device=device)
        corpus = [t for t in load_texts(cfg.corpus) if t.strip()][: cfg.n_corpus]
        result = run_audit(lm, organism_card, cfg, corpus)
    finally:
        torch.set_num_threads(threads)
    result.causal["audit_wall_s"] = round(time.time() - wall0, 1)
    result.causal["audit_cpu_s"] = round(time.process_time() - cpu0, 1)
    result.causal["load_avg_start"] = load0
    config = {"model": str(model), "card": str(card) if card else None, **to_json_dict(cfg)}
    return write_audit_report(out, result, config, overwrite=overwrite)

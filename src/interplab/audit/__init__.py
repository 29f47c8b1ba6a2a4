"""Auditing organisms: defection probes, SAE-based search, causal checks, a behavioural baseline and the
blinded 20-candidate audit game, each scored against the organism's card without reading it."""

from interplab.audit.causal import ablate_directions, layer_directions, text_perplexity
from interplab.audit.defection_probe import (
    GENERIC_QUESTIONS,
    LayerScores,
    generic_pairs,
    probe_layers,
    roc_curve,
)
from interplab.audit.game import Candidate, Game, candidates_for, rank_of_truth
from interplab.audit.report import write_audit_report
from interplab.audit.run import AuditConfig, AuditResult, default_layer, run_audit
from interplab.audit.sae_search import SaeSearch, SaeSearchConfig, SearchResult

__all__ = [
    "GENERIC_QUESTIONS",
    "AuditConfig",
    "AuditResult",
    "Candidate",
    "Game",
    "LayerScores",
    "SaeSearch",
    "SaeSearchConfig",
    "SearchResult",
    "ablate_directions",
    "candidates_for",
    "default_layer",
    "generic_pairs",
    "layer_directions",
    "probe_layers",
    "rank_of_truth",
    "roc_curve",
    "run_audit",
    "text_perplexity",
    "write_audit_report",
]

"""Circuits: attribution graphs over per-layer transcoders (local replacement model, direct-effect edges,
pruning by influence, graph JSON), interventions checking them against the real model, and attention–MLP
interactions (heads' direct contributions to an MLP latent)."""

from interplab.circuits.attention_mlp import AttentionMLPConfig
from interplab.circuits.attribution import AttributionGraph, GraphConfig, attribute, influence
from interplab.circuits.graph import graph_json, prune, read_graph, write_graph
from interplab.circuits.head_contributions import Reader, contributions, neuron_reader, transcoder_reader
from interplab.circuits.interventions import (
    check_interventions,
    frozen_change,
    graph_prediction,
    top_features,
)

__all__ = [
    "AttentionMLPConfig",
    "AttributionGraph",
    "Reader",
    "GraphConfig",
    "attribute",
    "check_interventions",
    "contributions",
    "frozen_change",
    "graph_json",
    "graph_prediction",
    "influence",
    "neuron_reader",
    "prune",
    "read_graph",
    "top_features",
    "transcoder_reader",
    "write_graph",
]

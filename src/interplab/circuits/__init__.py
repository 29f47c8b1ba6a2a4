"""Circuits: attribution graphs over per-layer transcoders (local replacement model, direct-effect edges,
pruning by influence, graph JSON) and interventions checking them against the real model."""

from interplab.circuits.attribution import AttributionGraph, GraphConfig, attribute, influence
from interplab.circuits.graph import graph_json, prune, read_graph, write_graph
from interplab.circuits.interventions import check_interventions, frozen_change, graph_prediction

__all__ = [
    "AttributionGraph",
    "GraphConfig",
    "attribute",
    "check_interventions",
    "frozen_change",
    "graph_json",
    "graph_prediction",
    "influence",
    "prune",
    "read_graph",
    "write_graph",
]

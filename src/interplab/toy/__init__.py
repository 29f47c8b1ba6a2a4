"""Toy models of superposition (Elhage et al. 2022): models, metrics, phase diagram, figures.

https://transformer-circuits.pub/2022/toy_model/

Modules: `superposition` (batched-instance model and training), `metrics` (‖W_i‖, superposition, D_i, D*),
`experiments` (the paper's n=5/m=2, n=20/m=5 and n=200/m=20 runs), `phase` (n=2, m=1 phase diagram),
`static_figures` (PNG), `interactive` (offline HTML, drawn with `interplab.reports.svg_charts`), `runner` (run folder for `interplab toy`).
"""

from interplab.toy.superposition import ToyConfig, ToyFit, ToyModel, ToyOutput, fit, generate_batch

# isort: split
# after the submodule `superposition`: imported later, it would rebind the name to the module
from interplab.toy.metrics import dimensionality, dims_per_feature, feature_norms, superposition

__all__ = [
    "ToyConfig",
    "ToyFit",
    "ToyModel",
    "ToyOutput",
    "dimensionality",
    "dims_per_feature",
    "feature_norms",
    "fit",
    "generate_batch",
    "superposition",
]

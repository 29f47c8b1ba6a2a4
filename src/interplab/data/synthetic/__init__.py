"""Synthetic data with known answers: toy ground-truth features, answerability sets, ..."""

from interplab.data.synthetic.hierarchy import HierarchyConfig, HierarchySource
from interplab.data.synthetic.toy_features import ToyFeatureConfig, ToyFeatureSource, firing_probabilities

__all__ = ["HierarchyConfig", "HierarchySource", "ToyFeatureConfig", "ToyFeatureSource", "firing_probabilities"]

"""Synthetic data with known answers: toy ground-truth features, answerability sets, ..."""

from interplab.data.synthetic.toy_features import ToyFeatureConfig, ToyFeatureSource, firing_probabilities

__all__ = ["ToyFeatureConfig", "ToyFeatureSource", "firing_probabilities"]

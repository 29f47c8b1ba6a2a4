"""interplab: a local interpretability workbench for HuggingFace models."""

__version__ = "0.1.0"

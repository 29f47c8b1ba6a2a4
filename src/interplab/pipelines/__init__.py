"""Whole jobs that own a run folder (train an SAE, cache activations, analyze a model, the demo).

Each is a plain function a notebook calls the same way the CLI does; `interplab <command>` is a few
lines over one of them.
"""

"""CLI commands, one module each; every module defines `register(app: typer.Typer)`.

Modules import heavy dependencies inside the command function so `interplab --help` stays fast.
"""

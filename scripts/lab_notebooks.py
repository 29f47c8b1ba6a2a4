"""Build the labs' Jupyter notebooks from their sources in labs/*.py, and run them.

A lab is a Python file in the "percent" format that Jupytext, VS Code and Spyder read as a notebook:
`# %%` starts a code cell, `# %% [markdown]` a markdown cell (each line commented with `# `), and
`# %% tags=["exercise:NAME"]` an exercise: code a student writes, always followed by a cell whose `assert`
checks it. Instructors' solutions live in labs/solutions/<lab>.py as cells with the same tag; with
--solutions they replace the exercises. Only the sources are in git, so no notebook output ever is.

    python scripts/lab_notebooks.py                   # labs/build/<lab>.ipynb for students
    python scripts/lab_notebooks.py --solutions       # ... with the solutions filled in
    python scripts/lab_notebooks.py --execute dyck    # build with solutions and run it (INTERPLAB_LAB_SIZE=small
                                                      # for the CI sizes)
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
HEADER = re.compile(r"^# %%(?P<rest>.*)$")
TAGS = re.compile(r"tags=(\[.*?\])")


@dataclass
class Cell:
    kind: str
    """'code' or 'markdown'."""
    source: str
    tags: list[str] = field(default_factory=list)

    @property
    def exercise(self) -> str | None:
        return next((t.split(":", 1)[1] for t in self.tags if t.startswith("exercise:")), None)


def _markdown(lines: list[str]) -> str:
    return "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines)


def parse_cells(text: str) -> list[Cell]:
    """The cells of a percent-format file (anything before the first `# %%` is the file's docstring and
    header, kept out of the notebook)."""
    cells: list[Cell] = []
    kind, tags, lines = None, [], []  # type: ignore[var-annotated]

    def close() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        cells.append(Cell(kind, _markdown(body.splitlines()) if kind == "markdown" else body, tags))

    for line in text.splitlines():
        match = HEADER.match(line)
        if match:
            close()
            rest = match.group("rest")
            kind = "markdown" if "[markdown]" in rest else "code"
            tag_match = TAGS.search(rest)
            tags, lines = (json.loads(tag_match.group(1)) if tag_match else []), []
        else:
            lines.append(line)
    close()
    return cells


def lab_cells(name: str, solutions: bool = False) -> list[Cell]:
    """A lab's cells; with `solutions`, each exercise replaced by the solution cell of the same tag."""
    cells = parse_cells((LABS / f"{name}.py").read_text(encoding="utf-8"))
    if not solutions:
        return cells
    answers = {c.exercise: c for c in parse_cells((LABS / "solutions" / f"{name}.py").read_text(encoding="utf-8"))
               if c.exercise}
    missing = [c.exercise for c in cells if c.exercise and c.exercise not in answers]
    if missing:
        raise SystemExit(f"labs/solutions/{name}.py has no solution for exercise(s) {missing}")
    return [answers[c.exercise] if c.exercise else c for c in cells]


def build_notebook(name: str, solutions: bool = False):
    """An nbformat v4 notebook of the lab, without outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for cell in lab_cells(name, solutions):
        make = nbformat.v4.new_markdown_cell if cell.kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(cell.source, metadata={"tags": cell.tags} if cell.tags else {}))
    return nb


def execute_notebook(nb, cwd: Path, timeout: int | None = 600) -> float:
    """Run every cell in a fresh kernel with `cwd` as working folder; the wall-clock seconds it took.
    `timeout`: seconds allowed per cell (None: no limit). The kernel inherits this process's environment
    (PYTHONPATH, INTERPLAB_LAB_SIZE)."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return time.perf_counter() - start


def lab_names() -> list[str]:
    return sorted(p.stem for p in LABS.glob("*.py"))


def main() -> None:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="lab names (default: all)")
    parser.add_argument("--solutions", action="store_true", help="fill in the exercises' solutions")
    parser.add_argument("--execute", action="store_true", help="run the notebooks (implies --solutions)")
    parser.add_argument("--out", type=Path, default=LABS / "build", help="folder for the .ipynb files")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds allowed per cell with --execute (default: no limit; full-size training cells "
                             "take minutes)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.labs or lab_names():
        nb = build_notebook(name, args.solutions or args.execute)
        if args.execute:
            seconds = execute_notebook(nb, args.out, args.timeout)
            print(f"{name}: executed in {seconds:.1f} s")
        path = args.out / f"{name}.ipynb"
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""The labs under labs/: each one's exercises are checked by an assertion and have a solution, and each
notebook, built with its solutions, runs top to bottom at its small size (INTERPLAB_LAB_SIZE=small)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

import interplab

ROOT = Path(__file__).resolve().parents[3]


def _builder():
    spec = importlib.util.spec_from_file_location("lab_notebooks", ROOT / "scripts" / "lab_notebooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["lab_notebooks"] = module
    spec.loader.exec_module(module)
    return module


labs = _builder()
FAST = ["circuits", "dyck", "logit_lens", "organisms_audit", "probes_answerability", "sae_smollm2", "steering_autointerp",
        "toy_models", "unlearning"]
SLOW = ["crosslingual"]


def test_every_lab_is_run_by_a_test() -> None:
    assert sorted(labs.lab_names()) == sorted(n for n in FAST + SLOW if (ROOT / "labs" / f"{n}.py").exists())


@pytest.mark.parametrize("name", labs.lab_names())
def test_every_exercise_is_checked_by_an_assertion_and_has_a_solution(name: str) -> None:
    cells = labs.lab_cells(name)
    exercises = [i for i, c in enumerate(cells) if c.exercise]
    assert exercises, f"{name} has no exercise"
    for i in exercises:
        assert "assert " in cells[i + 1].source, f"{name}: exercise {cells[i].exercise} is not followed by a check"
        assert "assert " not in cells[i].source
    solved = labs.lab_cells(name, solutions=True)
    assert [c.exercise for c in solved] == [c.exercise for c in cells]
    assert all(s.source != c.source for s, c in zip(solved, cells, strict=True) if c.exercise)


@pytest.mark.parametrize("name", labs.lab_names())
def test_the_built_notebooks_are_valid_and_carry_no_outputs(name: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    for solutions in (False, True):
        nb = labs.build_notebook(name, solutions)
        nbformat.validate(nb)
        assert all(not c.get("outputs") for c in nb.cells)


def test_cells_parse_from_the_percent_format() -> None:
    cells = labs.parse_cells('"""doc"""\n# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n'
                             '# %% tags=["exercise:a"]\ny = None\n')
    assert [(c.kind, c.source, c.exercise) for c in cells] == [
        ("markdown", "# Title\n\ntext", None), ("code", "x = 1", None), ("code", "y = None", "a")]


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    src = str(Path(interplab.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", src)
    monkeypatch.setenv("INTERPLAB_LAB_SIZE", "small")
    start = time.perf_counter()
    labs.execute_notebook(labs.build_notebook(name, solutions=True), tmp_path, timeout=300)
    return time.perf_counter() - start


@pytest.mark.parametrize("name", FAST)
def test_the_notebook_runs_at_its_small_size(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (ROOT / "labs" / f"{name}.py").exists():
        pytest.skip(f"labs/{name}.py not written yet")
    pytest.importorskip("nbclient")
    _run(name, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_the_slow_notebook_runs_at_its_small_size(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (ROOT / "labs" / f"{name}.py").exists():
        pytest.skip(f"labs/{name}.py not written yet")
    pytest.importorskip("nbclient")
    _run(name, tmp_path, monkeypatch)

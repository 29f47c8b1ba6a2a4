"""The layer contract (tests/import_contract.py) holds for interplab, and catches each kind of wrong import."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_contract import check_package, private_imports

SRC = Path(__file__).resolve().parents[2] / "src" / "interplab"


def test_interplab_imports_point_down_the_layers() -> None:
    violations = check_package(SRC)
    assert not violations, "layer contract broken:\n" + "\n".join(map(str, violations))


def test_no_package_imports_another_packages_private_names() -> None:
    violations = private_imports(SRC)
    assert not violations, "\n".join(map(str, violations))


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    """A fake `interplab` folder with the given modules (path -> source); returns the folder."""
    pkg = root / "interplab"
    for rel, source in {"__init__.py": "__version__ = '0'\n", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return pkg


CLEAN = {
    "common.py": "from interplab import __version__\n",
    "models/__init__.py": "from interplab.common import x\n",
    "models/loading.py": "from interplab.models import y\n",
    "activations/store.py": "from interplab.models.loading import load_model\n",
    "probes/__init__.py": "from interplab.probes.linear import LinearProbe\n__all__ = ['LinearProbe']\n",
    "probes/linear.py": "import interplab.models.loading\n",
    "steering/sweep.py": "from interplab.probes import LinearProbe\nfrom . import apply\n",
    "web/__init__.py": "from interplab.web.app import create_app\n__all__ = ['create_app']\n",
    "web/app.py": "from interplab.steering.sweep import sweep\n",
    "cli.py": "from interplab import commands\n",
    "commands/serve.py": "from interplab.web import create_app\nfrom interplab.cli import app\n",
}


def test_a_clean_fake_package_passes(tmp_path: Path) -> None:
    assert check_package(_fake_package(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(
    ("path", "source", "reason"),
    [
        ("models/tiny.py", "from interplab.probes import LinearProbe\n", "upward: models (foundations)"),
        ("probes/study.py", "def f():\n    from interplab.web.app import create_app\n", "upward"),
        ("common.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import interplab.models\n",
         "upward"),
        ("steering/apply.py", "from interplab.probes.linear import LinearProbe\n", "not a submodule"),
        ("steering/apply.py", "from interplab.probes import train\n", "not a public name"),
        ("activations/cache.py", "from interplab.models.loading import _is_causal\n", "_private"),
        ("web/pages.py", "from interplab.commands.serve import serve\n", "web must not import commands"),
        ("commands/x.py", "from interplab.web.app import create_app\n", "not a submodule"),
        ("newpkg/a.py", "from interplab.common import x\n", "'newpkg' is in no layer"),
        ("steering/apply.py", "from ..probes.linear import LinearProbe\n", "not a submodule"),
    ],
)
def test_a_wrong_import_in_a_fake_package_is_reported(tmp_path: Path, path: str, source: str, reason: str) -> None:
    (violation,) = check_package(_fake_package(tmp_path, {**CLEAN, path: source}))
    assert reason in violation.reason and str(violation).startswith(f"interplab/{path}:")


def test_private_imports_are_listed_across_layers(tmp_path: Path) -> None:
    pkg = _fake_package(tmp_path, {**CLEAN, "web/live.py": "from interplab.models.loading import _causal\n",
                                   "models/hooks.py": "from interplab.models.loading import _own_package\n"})
    assert [str(v) for v in private_imports(pkg)] == [
        "interplab/web/live.py:1: imports interplab.models.loading._causal: a _private name of another package"]

"""The layer contract of interplab's packages, checked by reading imports (AST), so it needs no dependency.

Layers, lowest first; a module may import its own package, any package of a lower layer, and another
package of its own layer only through that package's public face:

1. Upward imports are refused (an analysis importing a pipeline, a foundation importing an analysis...).
2. Same layer, analyses / pipelines / interfaces: `from interplab.<pkg> import <name>` with <name> in the
   package's `__all__` (or, without `__all__`, not starting with "_"); never a submodule. What two
   analyses both need beyond that moves down a layer.
3. Same layer, core / foundations: any module, but never a `_private` module or name.
4. `web` never imports the CLI (`cli`, `commands`): the CLI starts the web app, not the other way round.
5. A package missing from LAYERS is refused: a new package says where it sits.
Every import counts: top-level, inside functions (lazy imports) and under TYPE_CHECKING.
`private_imports` lists, separately, every import of another package's `_private` module or name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("core", frozenset({"common", "files", "configs", "reports"})),
    ("foundations", frozenset({"models", "activations", "saes", "data", "training"})),
    ("analyses", frozenset({"evals", "probes", "steering", "autointerp", "toy", "dashboards", "organisms",
                            "audit", "unlearning", "circuits", "lens", "dyck", "crosslingual"})),
    ("pipelines", frozenset({"pipelines"})),
    ("interfaces", frozenset({"cli", "commands", "web"})),
)
"""Layer name and the top-level packages (or modules) of interplab in it, lowest layer first."""

UNITS = {"commands": "cli"}
"""Packages that form one unit with another (cli.py registers the modules of commands/)."""

PUBLIC_FACE_LAYERS = frozenset({"analyses", "pipelines", "interfaces"})
"""Layers whose packages reach each other only through the package root's public names."""

FORBIDDEN = frozenset({("web", "cli")})
"""(importer unit, imported unit) pairs refused whatever the names."""

ROOT = "interplab"


@dataclass(frozen=True)
class Violation:
    """One import that breaks the contract."""

    path: Path
    line: int
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.reason}"


@dataclass(frozen=True)
class Import:
    """`from <module> import <name>` (name None for `import <module>`), inside the package."""

    path: Path
    line: int
    module: tuple[str, ...]  # parts after "interplab"
    name: str | None


def _layer_of(package: str) -> int | None:
    return next((i for i, (_, members) in enumerate(LAYERS) if package in members), None)


def _unit(package: str) -> str:
    return UNITS.get(package, package)


def _module_parts(path: Path, src_root: Path) -> tuple[str, ...]:
    """Parts of a module's dotted name after "interplab" (a package's __init__ is the package)."""
    rel = path.relative_to(src_root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return tuple(parts)


def _resolve_relative(node: ast.ImportFrom, here: tuple[str, ...], is_package: bool) -> tuple[str, ...]:
    base = here if is_package else here[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return (*base, *(node.module.split(".") if node.module else ()))


def imports_of(path: Path, src_root: Path) -> list[Import]:
    """Every import of an interplab module in the file at `path` (src_root = the interplab folder)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_parts(path, src_root)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == ROOT:
                    found.append(Import(path, node.lineno, tuple(parts[1:]), None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                module = _resolve_relative(node, here, path.name == "__init__.py")
            elif node.module and node.module.split(".")[0] == ROOT:
                module = tuple(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:
                if not module:  # `from interplab import x`: a top-level package/module, or a name of the root
                    top = (src_root / alias.name).is_dir() or (src_root / f"{alias.name}.py").is_file()
                    found.append(Import(path, node.lineno, (alias.name,), None) if top else
                                 Import(path, node.lineno, (), alias.name))
                else:
                    found.append(Import(path, node.lineno, module, alias.name))
    return found


def _public_names(src_root: Path, package: str) -> set[str] | None:
    """The package's `__all__` (a literal list or tuple of strings), or None when it has none."""
    init = src_root / package / "__init__.py"
    if not init.is_file():
        return None
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            if isinstance(node.value, (ast.List, ast.Tuple)):
                return {e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return None


def _dotted(imp: Import) -> str:
    return ".".join((ROOT, *imp.module, *([imp.name] if imp.name else [])))


def _is_private(imp: Import) -> bool:
    return any(p.startswith("_") for p in imp.module[1:]) or bool(imp.name and imp.name.startswith("_"))


def _same_layer_reason(imp: Import, layer: str, target: str, src_root: Path) -> str | None:
    if layer not in PUBLIC_FACE_LAYERS:
        return "a _private name of another package" if _is_private(imp) else None
    if len(imp.module) > 1:
        return f"same layer ({layer}): import from the package root `interplab.{target}`, not a submodule"
    if imp.name is None:
        return None
    public = _public_names(src_root, target)
    if (public is not None and imp.name not in public) or imp.name.startswith("_"):
        return f"same layer ({layer}): {imp.name!r} is not a public name of interplab.{target} (its __all__)"
    return None


def check_import(imp: Import, src_root: Path) -> str | None:
    """Why `imp` breaks the contract, or None."""
    here = _module_parts(imp.path, src_root)
    if not here or not imp.module:
        return None  # interplab/__init__.py, or `import interplab`
    source, target = here[0], imp.module[0]
    if _unit(source) == _unit(target):
        return None
    src_layer, dst_layer = _layer_of(source), _layer_of(target)
    if src_layer is None:
        return f"package {source!r} is in no layer: add it to LAYERS in tests/import_contract.py"
    if dst_layer is None:
        return f"package {target!r} is in no layer: add it to LAYERS in tests/import_contract.py"
    if (_unit(source), _unit(target)) in FORBIDDEN:
        return f"{source} must not import {target}"
    if dst_layer > src_layer:
        return f"upward: {source} ({LAYERS[src_layer][0]}) may not import {target} ({LAYERS[dst_layer][0]})"
    if dst_layer == src_layer:
        return _same_layer_reason(imp, LAYERS[src_layer][0], target, src_root)
    return None


def python_files(src_root: Path) -> list[Path]:
    return sorted(p for p in src_root.rglob("*.py") if "__pycache__" not in p.parts)


def check_package(src_root: Path) -> list[Violation]:
    """Every contract violation in the package whose folder is `src_root` (e.g. src/interplab)."""
    out = []
    for path in python_files(src_root):
        for imp in imports_of(path, src_root):
            reason = check_import(imp, src_root)
            if reason is not None:
                out.append(Violation(path.relative_to(src_root.parent), imp.line, _dotted(imp), reason))
    return out


def private_imports(src_root: Path) -> list[Violation]:
    """Every import of another package's `_private` module or name, whatever the layers."""
    out = []
    for path in python_files(src_root):
        here = _module_parts(path, src_root)
        for imp in imports_of(path, src_root):
            if here and imp.module and here[0] != imp.module[0] and _is_private(imp):
                out.append(Violation(path.relative_to(src_root.parent), imp.line, _dotted(imp),
                                     "a _private name of another package"))
    return out

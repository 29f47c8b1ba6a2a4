"""Config dataclasses <-> JSON, checked field by field, and the docstrings under their fields.

Every component has a config dataclass with a docstring under each field (the sparsify style). This
module is the one place that:
1. builds a dataclass from a JSON dict (`from_json_dict`): unknown keys are ignored (files written by
   a newer version), missing required fields and values of the wrong type (a `d_sae` written as a
   string, a `k` that is a float) raise one InterplabError naming the file, the field and the fix;
2. reads the docstring under each field (`field_docs`), so the CLI's help and defaults come from the
   dataclass itself and are written once.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

from interplab.common import InterplabError, get_logger

log = get_logger(__name__)

T = TypeVar("T")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """{field name: the docstring written under it} for a dataclass and its bases (first line kept whole)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (frozen app): help without docs
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def resolved_hints(cls: type) -> dict[str, Any]:
    """Field annotations with postponed (string) annotations evaluated."""
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _matches(value: Any, tp: Any) -> bool:
    """Whether a JSON value fits annotation `tp` (ints fit floats; bools fit only bools)."""
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in get_args(tp))
    if tp is type(None):
        return value is None
    if origin is typing.Literal:
        return value in get_args(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return not args or all(_matches(v, args[0] if len(args) == 1 or origin is list else a)
                                for v, a in zip(value, args * len(value), strict=False))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return True  # anything else (nested types): checked by the dataclass itself


def from_json_dict(cls: type[T], data: Any, source: str, renamed: dict[str, str] | None = None) -> T:
    """Build dataclass `cls` from `data` (parsed JSON), checking presence and type of every field.

    `renamed` maps old key names to current field names (files written by an older version). Lists
    become tuples where the field is a tuple.
    """
    if not isinstance(data, dict):
        raise InterplabError(f"{source} must hold a JSON object, not {type(data).__name__}")
    data = {(renamed or {}).get(k, k): v for k, v in data.items()}
    hints = resolved_hints(cls)
    kwargs: dict[str, Any] = {}
    missing = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                missing.append(f.name)
            continue
        value, tp = data[f.name], hints[f.name]
        if not _matches(value, tp):
            raise InterplabError(
                f"{source}: field {f.name!r} is {value!r} ({type(value).__name__}), expected {_type_name(tp)}; "
                "fix or delete the file"
            )
        if isinstance(value, list) and (get_origin(tp) is tuple or any(get_origin(a) is tuple for a in get_args(tp))):
            value = tuple(value)
        kwargs[f.name] = value
    if missing:
        raise InterplabError(f"{source} lacks required field(s) {missing}; fix or delete the file")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
    if unknown:
        log.debug("%s: ignoring unknown keys %s", source, unknown)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InterplabError(f"{source}: {exc}") from None


def to_json_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}

"""Command-line options generated from config dataclasses, so defaults and help are written once.

`dataclass_options(Cfg, panel=...)` turns every field of `Cfg` into a typer option: the field's type,
its default and the docstring under it (see `interplab.configs.field_docs`) become the option's type,
default and help, grouped under `panel` in `--help`. `command(params, run)` builds a typer command
from such options plus hand-written ones; `run(values)` receives every option's value by name.

Options for several config classes at once (the SAE architectures) come from `union_options`: each
field appears once, its help says which classes have it, and it defaults to None ("the class's own
default"), so `pick_fields` can tell what the user set and refuse a field the chosen class lacks
instead of ignoring it.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union, get_args, get_origin

import typer

from interplab.common import InterplabError
from interplab.configs import field_docs, resolved_hints


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return ...


def _cli_type(tp: Any) -> Any:
    """The annotation typer parses: Optional[X] stays; unions of several types become str."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return (_cli_type(args[0]) | None) if len(args) == 1 else str | None  # type: ignore[operator]
    if origin is tuple and get_args(tp)[-1:] == (Ellipsis,):
        return list[get_args(tp)[0]]  # type: ignore[misc]  # a repeated option: --prefixes 8 --prefixes 64
    return tp


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _decls(name: str, tp: Any) -> list[str]:
    """`--name`, or the `--name/--no-name` pair for booleans (so a True default can be switched off)."""
    flag = option_name(name)
    is_bool = tp is bool or (get_origin(tp) in (Union, types.UnionType) and bool in get_args(tp))
    return [f"{flag}/--no-{flag[2:]}"] if is_bool else [flag]


def _none_or(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if str(text).lower() == "none" else kind(text)

    return parse


def _parameter(name: str, tp: Any, default: Any, help_text: str, panel: str,
               aliases: Sequence[str] = ()) -> inspect.Parameter:
    decls = [*_decls(name, tp), *aliases]
    tp = _cli_type(tp)
    args = [a for a in get_args(tp) if a is not type(None)]
    if default is not None and default is not ... and len(args) == 1 and args[0] in (int, float, str):
        # an optional field with a real default: the word "none" sets it to None on the command line
        info = typer.Option(default, *decls, help=f"{help_text} ('none' to unset)", rich_help_panel=panel,
                            parser=_none_or(args[0]))
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=args[0])
    info = typer.Option(default, *decls, help=help_text, rich_help_panel=panel, show_default=default is not None)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=tp)


def dataclass_options(
    cls: type,
    panel: str,
    exclude: Iterable[str] = (),
    defaults: dict[str, Any] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    rename: dict[str, str] | None = None,
) -> list[inspect.Parameter]:
    """One option per field of dataclass `cls` (minus `exclude` and dict-typed fields).

    `defaults` overrides a field's default for this command; `aliases` adds option spellings kept
    for older command lines (`--steps` for `total_steps`); `rename` gives a field another option name
    when two classes of one command share it (returned values then carry the new name).
    """
    docs, hints = field_docs(cls), resolved_hints(cls)
    skip, defaults, aliases, rename = set(exclude), defaults or {}, aliases or {}, rename or {}
    params = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if f.name in skip or not f.init or tp is dict or get_origin(tp) is dict:
            continue
        default = defaults.get(f.name, _default(f))
        params.append(_parameter(rename.get(f.name, f.name), tp, default, docs.get(f.name, ""), panel,
                                 aliases.get(f.name, ())))
    return params


def union_options(classes: dict[str, type], panel: str, exclude: Iterable[str] = (),
                  rename: dict[str, str] | None = None, required: dict[str, Any] | None = None,
                  ) -> list[inspect.Parameter]:
    """One option per field of any of `classes` (name -> dataclass), default None = the class's own.
    `required` gives a command default to fields that no class defaults (e.g. d_sae)."""
    skip, rename, required = set(exclude), rename or {}, required or {}
    owners: dict[str, list[str]] = {}
    found: dict[str, tuple[Any, str, dict[str, Any]]] = {}
    for name, cls in classes.items():
        docs, hints = field_docs(cls), resolved_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if f.name in skip or not f.init or tp is dict or get_origin(tp) is dict:
                continue
            owners.setdefault(f.name, []).append(name)
            _, doc, defaults = found.get(f.name, (tp, docs.get(f.name, ""), {}))
            defaults[name] = _default(f)
            found[f.name] = (tp, doc, defaults)
    params = []
    for field, (tp, doc, defaults) in found.items():
        if field in required:
            params.append(_parameter(rename.get(field, field), tp, required[field], doc, panel))
            continue
        who = owners[field]
        scope = "" if len(who) == len(classes) else f"[{', '.join(who)}] "
        values = {repr(v) for v in defaults.values()}
        shown = (f"default {values.pop()}" if len(values) == 1
                 else "default " + ", ".join(f"{k} {v!r}" for k, v in defaults.items()))
        optional = tp if get_origin(tp) in (Union, types.UnionType) else tp | None
        params.append(_parameter(rename.get(field, field), optional, None, f"{scope}{doc} ({shown})", panel))
    return params


def pick_fields(values: dict[str, Any], cls: type, label: str, union_names: Iterable[str] = (),
                rename: dict[str, str] | None = None) -> dict[str, Any]:
    """The values for `cls`'s fields that were given (not None), refusing given options of the union
    that `cls` lacks (e.g. --l1-coeff with --arch topk) with a one-line error."""
    rename = rename or {}
    mine = {f.name for f in dataclasses.fields(cls)}
    picked = {}
    for field in union_names:
        key = rename.get(field, field)
        value = values.get(key)
        if value is None:
            continue
        if field not in mine:
            raise InterplabError(f"{option_name(key)} does not apply to {label}; see --help for its options")
        picked[field] = tuple(value) if isinstance(value, list) else value
    return picked


def values_for(cls: type, values: dict[str, Any], rename: dict[str, str] | None = None, **extra: Any) -> Any:
    """Build `cls` from the options generated by `dataclass_options(cls, ...)` (plus `extra` fields)."""
    rename = rename or {}
    kwargs = {f.name: values[rename.get(f.name, f.name)] for f in dataclasses.fields(cls)
              if rename.get(f.name, f.name) in values}
    kwargs.update(extra)
    return cls(**kwargs)


def command(params: Sequence[inspect.Parameter], run: Callable[[dict[str, Any]], None], doc: str,
            name: str) -> Callable[..., None]:
    """A typer-ready function with signature `params` that calls `run(values_by_name)`."""
    seen: set[str] = set()
    for p in params:
        if p.name in seen:
            raise RuntimeError(f"two options named {p.name!r} in `interplab {name}`")  # a bug, not user input
        seen.add(p.name)

    def fn(**values: Any) -> None:
        run(values)

    fn.__signature__ = inspect.Signature(list(params))  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params}
    fn.__doc__ = doc
    fn.__name__ = name.replace("-", "_")
    return fn


def option(name: str, default: Any, help_text: str, tp: Any = None, panel: str = "Run",
           decls: Sequence[str] = ()) -> inspect.Parameter:
    """A hand-written option (for what no config dataclass holds: paths, resume flags, devices)."""
    tp = tp if tp is not None else type(default)
    info = typer.Option(default, *(decls or _decls(name, tp)), help=help_text, rich_help_panel=panel)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=tp)

"""The shell blocks of the docs as commands: extraction, splitting, and checks against the real CLI.

Used by tests/unit/docs/test_doc_commands.py (every `interplab ...` command of README.md and docs/*.md
parses against the click command, without running) and tests/integration/test_doc_blocks_run.py (the
blocks run, in order, with small sizes).

A block may be preceded by directives, HTML comments the rendered page does not show:

    <!-- doc-test: --steps 20 --train-tokens 2048 -->    extra args, appended to every interplab
                                                         command of the block that has the option
    <!-- doc-test: skip: needs an OpenAI-compatible server -->   not run (the reason is printed)
    <!-- doc-test: defer -->                             run after the doc's other blocks (it uses
                                                         what a later block writes)
    <!-- doc-test: servers: as written -->               `serve` / `explain-server` run as written
                                                         (the block itself waits for and stops them),
                                                         not checked and stopped by the test

Several directives may stand one per line above a block.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGS = ("bash", "sh", "shell", "console", "zsh")
DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
# <causal LM>, <model>, <hub id | folder>: a value the reader fills in (never a redirect in a doc)
PLACEHOLDER = re.compile(r"<([A-Za-z][^<>]*)>")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SEPARATORS = {"&&", "||", ";", "|", "&", ";;"}
REDIRECTS = {">", ">>", "<", ">&", "&>", "<&", ">|", "<<", "<<<", "&>>"}


def doc_files(root: Path = REPO) -> list[Path]:
    """README.md and every docs/*.md (docs added later are picked up)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@dataclass
class Directives:
    skip: str | None = None
    defer: bool = False
    servers_as_written: bool = False
    args: list[str] = field(default_factory=list)


@dataclass
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    lang: str
    lines: list[tuple[int, str]]  # (1-based line, text without the fence's indentation)
    directives: Directives

    @property
    def where(self) -> str:
        return f"{_rel(self.doc)}:{self.line}"

    def script_lines(self) -> list[tuple[int, str]]:
        """The lines a shell runs: prompts ('$ ') stripped; in a console block, output lines dropped."""
        out: list[tuple[int, str]] = []
        continuing = False
        for lineno, text in self.lines:
            stripped = text.lstrip()
            if stripped.startswith("$ ") or stripped == "$":
                out.append((lineno, stripped[2:]))
            elif self.lang != "console" or continuing:
                out.append((lineno, text))
            continuing = bool(out) and out[-1][0] == lineno and text.rstrip().endswith("\\")
        return out

    def script(self) -> str:
        return "\n".join(text for _, text in self.script_lines()) + "\n"

    def commands(self) -> list[Command]:
        return split_commands(self.script_lines(), self)


@dataclass
class Command:
    block: Block
    line: int
    argv: list[str]
    env: dict[str, str]
    background: bool = False
    placeholders: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{_rel(self.block.doc)}:{self.line}"

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def parse_directive(text: str, into: Directives) -> None:
    if text.startswith("skip"):
        into.skip = text.partition(":")[2].strip() or "skipped"
    elif text == "defer":
        into.defer = True
    elif text.replace(" ", "") == "servers:aswritten":
        into.servers_as_written = True
    else:
        into.args.extend(shlex.split(text.removeprefix("args:").strip()))


def extract_blocks(doc: Path, text: str | None = None) -> list[Block]:
    """Every fenced shell block of a markdown file, with the directives written above it."""
    lines = (doc.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        start = i
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            line = lines[i]
            body.append((i + 1, line[len(indent):] if line.startswith(indent) else line.lstrip()))
            i += 1
        i += 1  # closing fence
        if lang not in SHELL_LANGS:
            continue
        directives = Directives()
        j = start - 1
        found: list[str] = []
        while j >= 0 and (not lines[j].strip() or DIRECTIVE.match(lines[j])):
            d = DIRECTIVE.match(lines[j])
            if d:
                found.append(d.group(1))
            j -= 1
        for d in reversed(found):
            parse_directive(d, directives)
        blocks.append(Block(doc, start + 1, lang, body, directives))
    return blocks


def logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations and drop heredoc bodies; each result keeps its first line number."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    heredoc_end: str | None = None
    for lineno, text in lines:
        if heredoc_end is not None:
            if text.strip() == heredoc_end:
                heredoc_end = None
            continue
        if pending is not None:
            pending = (pending[0], pending[1] + " " + text.strip())
        else:
            pending = (lineno, text)
        if pending[1].rstrip().endswith("\\"):
            pending = (pending[0], pending[1].rstrip()[:-1])
            continue
        out.append(pending)
        h = HEREDOC.search(pending[1])
        if h:
            heredoc_end = h.group(2)
        pending = None
    if pending is not None:
        out.append(pending)
    return out


def split_commands(lines: list[tuple[int, str]], block: Block) -> list[Command]:
    """Simple commands of a script: separators (&&, ;, |, &), comments, redirects and env prefixes handled."""
    commands: list[Command] = []
    for lineno, text in logical_lines(lines):
        placeholders = [m.group(1) for m in PLACEHOLDER.finditer(text)]
        text = PLACEHOLDER.sub(lambda m: "PLACEHOLDER_" + re.sub(r"\W+", "_", m.group(1)), text)
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:  # unbalanced quotes
            commands.append(Command(block, lineno, ["<unparsable>", str(exc), text], {}))
            continue
        current: list[str] = []
        skip_next = False
        for tok in tokens:
            if skip_next:
                skip_next = False
                continue
            if tok in SEPARATORS:
                _flush(commands, current, block, lineno, placeholders, background=tok == "&")
                current = []
            elif tok in REDIRECTS:
                if current and current[-1].isdigit():
                    current.pop()
                skip_next = True
            else:
                current.append(tok)
        _flush(commands, current, block, lineno, placeholders)
    return commands


def _flush(commands: list[Command], tokens: list[str], block: Block, line: int, placeholders: list[str],
           background: bool = False) -> None:
    env: dict[str, str] = {}
    argv = list(tokens)
    while argv and ENV_ASSIGN.match(argv[0]):
        name, _, value = argv.pop(0).partition("=")
        env[name] = value
    if argv:
        commands.append(Command(block, line, argv, env, background, list(placeholders)))


# --- the CLI ---------------------------------------------------------------------------------------------

_ROOT: Any = None


def cli_root() -> Any:
    """The click group behind `interplab` (typer vendors click, so this is duck-typed)."""
    global _ROOT
    if _ROOT is None:
        import typer

        from interplab.cli import app

        _ROOT = typer.main.get_command(app)
    return _ROOT


def resolve(args: list[str]) -> tuple[list[str], Any, list[str]]:
    """(command path, leaf command, the leaf's args) for `interplab ARGS`; raises LookupError."""
    cmd = cli_root()
    path: list[str] = []
    rest = list(args)
    while hasattr(cmd, "commands"):
        if not rest or rest[0] in ("--help", "-h"):
            return path, cmd, rest
        if rest[0].startswith("-"):
            raise LookupError(f"option {rest[0]} before a command name (interplab {' '.join(path)})")
        name = rest.pop(0)
        sub = cmd.commands.get(name)
        if sub is None:
            known = ", ".join(sorted(cmd.commands))
            raise LookupError(f"no command `interplab {' '.join([*path, name])}` (commands: {known})")
        path.append(name)
        cmd = sub
    return path, cmd, rest


def option_names(cmd: Any) -> set[str]:
    names: set[str] = set()
    for p in getattr(cmd, "params", []):
        if getattr(p, "param_type_name", "") == "option":
            names.update(p.opts)
            names.update(p.secondary_opts)
    return names


def option_takes_value(cmd: Any, name: str) -> bool:
    for p in cmd.params:
        if getattr(p, "param_type_name", "") == "option" and (name in p.opts or name in p.secondary_opts):
            return not p.is_flag and not p.count
    return False


def check_interplab_args(args: list[str]) -> str | None:
    """None when `interplab ARGS` names a command and parses (types checked, callback not run), else why."""
    try:
        path, cmd, rest = resolve(args)
    except LookupError as exc:
        return str(exc)
    if hasattr(cmd, "commands"):
        return None if rest else f"`interplab {' '.join(path)}` needs a subcommand"
    try:
        ctx = cmd.make_context(" ".join(["interplab", *path]), list(rest), resilient_parsing=False)
        ctx.close()
    except Exception as exc:  # click's exceptions (typer vendors click: matched by shape, not class)
        if type(exc).__name__ == "Exit":  # --help
            return None
        if not hasattr(exc, "format_message"):
            raise
        return f"`interplab {' '.join(path)}`: {exc.format_message()}"
    return None


def split_option_args(args: list[str]) -> list[list[str]]:
    """`--steps 20 --no-serve --x=1` -> [['--steps', '20'], ['--no-serve'], ['--x=1']]."""
    groups: list[list[str]] = []
    for a in args:
        if a.startswith("--") or not groups:
            groups.append([a])
        else:
            groups[-1].append(a)
    return groups


def applicable_args(extra: list[str], cmd: Any) -> list[str]:
    """The directive's extra args that `cmd` has an option for."""
    names = option_names(cmd)
    out: list[str] = []
    for group in split_option_args(extra):
        if group[0].split("=", 1)[0] in names:
            out.extend(group)
    return out


def make_targets(root: Path = REPO) -> set[str]:
    text = (root / "Makefile").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


def _module_exists(name: str, root: Path = REPO) -> bool:
    parts = name.split(".")
    for base in (root / "src", root):
        target = base.joinpath(*parts)
        if target.with_suffix(".py").is_file() or (target / "__init__.py").is_file() or (
                target / "__main__.py").is_file():
            return True
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_command(command: Command, root: Path = REPO) -> str | None:
    """Why a doc command would fail as written (None: fine or not ours to check)."""
    argv = command.argv
    prog = argv[0]
    if prog == "<unparsable>":
        return f"cannot split the line: {argv[1]}"
    if prog == "interplab":
        return check_interplab_args(argv[1:])
    if prog in ("python", "python3") or prog == "torchrun":
        rest = argv[1:]
        while rest and rest[0] != "-m" and rest[0].startswith("-"):
            # torchrun / python options before the program; torchrun's take a value unless --opt=value
            opt = rest.pop(0)
            if prog == "torchrun" and "=" not in opt and rest and not rest[0].startswith("-") \
                    and opt not in ("--standalone", "--no-python", "--run-path", "--no_python", "--run_path"):
                rest.pop(0)
        if not rest:
            return None
        if rest[0] == "-m":
            if len(rest) < 2:
                return "`-m` without a module"
            module = rest[1]
            if module in ("interplab.cli", "interplab"):
                return check_interplab_args(rest[2:])
            if module.startswith("interplab") or module.split(".")[0] in ("tests", "bench", "scripts"):
                return None if _module_exists(module, root) else f"no module {module}"
            return None
        if rest[0] == "-c":
            return None
        script = rest[0]
        if script.endswith(".py") and not (root / script).is_file():
            return f"no file {script} in the repository"
        return None
    if prog == "make":
        targets = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
        missing = [t for t in targets if t not in make_targets(root)]
        return f"no Makefile target {', '.join(missing)}" if missing else None
    return None

"""Every command block of README.md and docs/*.md parses against the real CLI (nothing is run here;
tests/integration/test_doc_blocks_run.py runs them, marked slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from doc_blocks import (
    REPO,
    applicable_args,
    check_command,
    doc_files,
    extract_blocks,
    resolve,
)

DOCS = doc_files()


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_command_of_the_doc_parses(doc: Path) -> None:
    problems = []
    for block in extract_blocks(doc):
        for command in block.commands():
            why = check_command(command)
            if why:
                problems.append(f"{command.where}: {command}\n    {why}")
    assert not problems, "doc commands that fail as written:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_directive_args_fit_a_command_of_their_block(doc: Path) -> None:
    """A doc-test directive's extra args are options of some interplab command in its block (a typo
    such as --step would otherwise be dropped silently and the block run at full size)."""
    problems = []
    for block in extract_blocks(doc):
        if not block.directives.args:
            continue
        leaves = []
        for command in block.commands():
            if command.argv[0] == "interplab":
                try:
                    leaves.append(resolve(command.argv[1:])[1])
                except LookupError:
                    pass
        used: set[str] = set()
        for leaf in leaves:
            used.update(a for a in applicable_args(block.directives.args, leaf) if a.startswith("--"))
        unused = [a for a in block.directives.args if a.startswith("--") and a not in used]
        if unused:
            problems.append(f"{block.where}: {' '.join(unused)} fits no interplab command of the block")
    assert not problems, "\n".join(problems)


def test_the_docs_hold_interplab_commands() -> None:
    """The extraction finds the docs' commands at all (an empty result would pass every check above)."""
    commands = [c for d in DOCS for b in extract_blocks(d) for c in b.commands() if c.argv[0] == "interplab"]
    assert len(commands) >= 20
    assert {c.block.doc.name for c in commands} >= {"README.md", "toy-lab.md", "steering-autointerp.md"}


SAMPLE = """\
Intro.

<!-- doc-test: --steps 20 --no-serve -->
<!-- doc-test: defer -->
```bash
# a comment line
A=1 B="x y" interplab toy --preset intro \\
    --out runs/t   # trailing comment
cat > pairs.jsonl <<'END'
{"positive": "interplab nope", "negative": "b"}
END
interplab toy --preset intro --out a && interplab toy --bogus 2>&1 | tee log &
interplab steer build --model <causal LM> --pairs p.jsonl --hook blocks.1.resid_post --out v
```

<!-- doc-test: skip: needs a server -->
```console
$ interplab nosuchcommand
some output line
$ make nosuchtarget
```

```python
interplab = "not shell"
```
"""


def test_blocks_are_split_into_commands(tmp_path: Path) -> None:
    doc = tmp_path / "sample.md"
    doc.write_text(SAMPLE)
    first, second = extract_blocks(doc)
    assert (first.line, first.lang, first.directives.args, first.directives.defer) == (
        5, "bash", ["--steps", "20", "--no-serve"], True)
    assert second.directives.skip == "needs a server"
    cmds = first.commands()
    assert [c.argv[:3] for c in cmds] == [["interplab", "toy", "--preset"], ["cat"], ["interplab", "toy", "--preset"],
                                          ["interplab", "toy", "--bogus"], ["tee", "log"],
                                          ["interplab", "steer", "build"]]
    assert cmds[0].env == {"A": "1", "B": "x y"} and cmds[0].argv[-2:] == ["--out", "runs/t"] and cmds[0].line == 7
    assert cmds[3].argv == ["interplab", "toy", "--bogus"] and cmds[3].line == 12
    assert cmds[4].background
    assert cmds[5].placeholders == ["causal LM"]
    assert [c.argv for c in second.commands()] == [["interplab", "nosuchcommand"], ["make", "nosuchtarget"]]


def test_broken_commands_are_reported(tmp_path: Path) -> None:
    doc = tmp_path / "sample.md"
    doc.write_text(SAMPLE)
    first, second = extract_blocks(doc)
    verdicts = [check_command(c) for c in first.commands() + second.commands()]
    assert verdicts[0] is None and verdicts[2] is None and verdicts[5] is None
    assert "--bogus" in verdicts[3]
    assert "no command `interplab nosuchcommand`" in verdicts[6]
    assert "no Makefile target nosuchtarget" in verdicts[7]


def test_options_are_checked_by_type_and_requirement() -> None:
    from doc_blocks import check_interplab_args

    assert check_interplab_args(["toy", "--preset", "intro", "--steps", "ten"])  # not an int
    assert check_interplab_args(["serve"])  # --db is required
    assert check_interplab_args(["steer"])  # a group needs a subcommand
    assert check_interplab_args(["steer", "--help"]) is None
    assert check_interplab_args(["toy", "--preset", "intro", "--out", "x"]) is None


def test_python_and_torchrun_commands_are_checked(tmp_path: Path) -> None:
    doc = tmp_path / "s.md"
    doc.write_text("```sh\n"
                   "torchrun --nproc_per_node 2 -m interplab.cli train-sae --stor x --out y\n"
                   "python scripts/nope.py\n"
                   "python -m interplab.web.nope\n"
                   "PYTHONPATH=src python -m interplab.web.openapi\n"
                   "python scripts/update_constraints.py\n"
                   "```\n")
    verdicts = [check_command(c) for c in extract_blocks(doc)[0].commands()]
    assert "--stor" in verdicts[0]
    assert "no file scripts/nope.py" in verdicts[1]
    assert "no module interplab.web.nope" in verdicts[2]
    assert verdicts[3] is None and verdicts[4] is None
    assert (REPO / "scripts" / "update_constraints.py").is_file()


def test_directive_args_go_to_the_commands_that_have_them() -> None:
    extra = ["--steps", "20", "--no-serve", "--top-n", "2", "--coefs=-1,1"]
    assert applicable_args(extra, resolve(["demo"])[1]) == ["--steps", "20", "--no-serve"]
    assert applicable_args(extra, resolve(["explain"])[1]) == ["--top-n", "2"]
    assert applicable_args(extra, resolve(["steer", "sweep"])[1]) == ["--coefs=-1,1"]


MENTION = re.compile(r"`interplab ([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9-]*))?")


def test_commands_named_in_prose_and_help_exist() -> None:
    """`interplab <command> [<subcommand>]` in the docs' prose and in the CLI's own strings (help, errors)
    names a command that exists (help once pointed at a nonexistent `interplab hooks`)."""
    files = [*DOCS, *sorted((REPO / "src" / "interplab").rglob("*.py"))]
    problems = []
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in MENTION.finditer(line):
                try:
                    _, cmd, _ = resolve([m.group(1)])
                except LookupError as exc:
                    problems.append(f"{path.relative_to(REPO)}:{lineno}: {exc}")
                    continue
                if m.group(2) and hasattr(cmd, "commands") and m.group(2) not in cmd.commands:
                    problems.append(f"{path.relative_to(REPO)}:{lineno}: no command `interplab {m.group(1)} "
                                    f"{m.group(2)}`")
    assert not problems, "\n".join(problems)

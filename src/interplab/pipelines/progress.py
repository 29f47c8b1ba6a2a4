"""Progress bars for pipelines (rich, on stderr, removed when done), or none for quiet callers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

Update = Callable[[int, int | None, str | None], None]
"""update(done, total, description): move a bar (total None: unknown; description None: unchanged)."""


@contextmanager
def progress_bar(description: str, total: int | None = None, show: bool = True) -> Iterator[Update]:
    """A context giving an `update(done, total, description)` function for one bar."""
    if not show:
        def ignore(done: int, total: int | None = None, desc: str | None = None) -> None:
            return None

        yield ignore
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task: TaskID = bar.add_task(description, total=total)

        def update(done: int, total: int | None = None, desc: str | None = None) -> None:
            kwargs: dict = {"completed": done}
            if total is not None:
                kwargs["total"] = total
            if desc is not None:
                kwargs["description"] = desc
            bar.update(task, **kwargs)

        yield update

"""Requests that arrive while a batch runs are run together in the next one (no timer, no extra thread).

The server answers each request on a thread of its pool; live inference would run one forward pass per
request, each paying the per-call overhead of every layer. Instead:

1. A request appends its job to a FIFO queue and waits on a condition.
2. Whenever no batch is running, one waiting thread takes the next batch: the oldest job and up to
   `max_batch - 1` later jobs with the same key (one model and SAE per batch), in arrival order.
   It runs the batch without holding the queue's lock, hands every job its result (or the exception
   the batch raised), and wakes the waiting threads.
3. A thread returns as soon as its own job has a result; others keep taking batches in turn. A request
   that arrives while the runner is idle runs alone at once, so batching adds no delay when the server
   is quiet; under load a batch holds what queued during the previous one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from interplab.common import InterplabError

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class _Slot(Generic[J]):
    key: Hashable
    job: J
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    batch_size: int = field(default=0)


class BatchRunner(Generic[J, R]):
    """Runs `run_batch(key, jobs) -> results` (one result per job, same order) over batches of queued jobs."""

    def __init__(self, run_batch: Callable[[Hashable, Sequence[J]], Sequence[R]], max_batch: int = 16) -> None:
        if max_batch < 1:
            raise InterplabError(f"the live-inference batch must hold at least 1 text, got {max_batch}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._queue: list[_Slot[J]] = []
        self._cond = threading.Condition()
        self._busy = False
        self.batches = 0
        """Batches run so far."""
        self.jobs = 0
        """Jobs run so far (jobs / batches is the mean batch size)."""

    def submit(self, key: Hashable, job: J) -> R:
        """Queue `job` under `key`, run batches until it is done, and return its result (or raise its error)."""
        slot: _Slot[J] = _Slot(key, job)
        with self._cond:
            self._queue.append(slot)
            while not slot.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch = self._take()
                self._busy = True
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[no-any-return]

    def _take(self) -> list[_Slot[J]]:
        """The oldest queued job and the next ones with its key, up to max_batch; removed from the queue."""
        key = self._queue[0].key
        batch = [s for s in self._queue if s.key == key][: self.max_batch]
        taken = {id(s) for s in batch}
        self._queue = [s for s in self._queue if id(s) not in taken]
        return batch

    def _run(self, batch: list[_Slot[J]]) -> None:
        try:
            results = list(self.run_batch(batch[0].key, [s.job for s in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} jobs returned {len(results)} results")
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except Exception as exc:  # every job of the batch gets the error, each caller raises it
            for slot in batch:
                slot.error = exc
        for slot in batch:
            slot.done, slot.batch_size = True, len(batch)
        self.batches += 1
        self.jobs += len(batch)

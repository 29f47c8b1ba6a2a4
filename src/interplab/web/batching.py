"""Requests that arrive while a batch runs are run together in the next one (no timer), on one worker thread.

The server answers each request on a thread of its pool; live inference would run one forward pass per
request, each paying the per-call overhead of every layer. Instead:

1. A request appends its job to a FIFO queue, wakes the worker thread (starting it if none is running)
   and waits on a condition.
2. The worker takes the next batch: the oldest job and up to `max_batch - 1` later jobs with the same key
   (one model and SAE per batch), in arrival order. It runs the batch without holding the queue's lock,
   hands every job its result (or the exception the batch raised), and wakes the waiting threads.
3. A thread returns as soon as its own job has a result. A request that arrives while the worker is idle
   runs alone at once, so batching adds no delay when the server is quiet; under load a batch holds what
   queued during the previous one. The worker ends after `idle_s` seconds without work.

Why one worker thread, not the request's own: every batch's tensors are then allocated and freed on one
thread. Run on whichever of the pool's 40 threads took it, each thread's malloc arena kept its own freed
blocks, and the server's memory grew round after round (bench/README.md, "Under load").
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

    def __init__(self, run_batch: Callable[[Hashable, Sequence[J]], Sequence[R]], max_batch: int = 16,
                 idle_s: float = 30.0) -> None:
        if max_batch < 1:
            raise InterplabError(f"the live-inference batch must hold at least 1 text, got {max_batch}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.idle_s = idle_s
        self._queue: list[_Slot[J]] = []
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self.batches = 0
        """Batches run so far."""
        self.jobs = 0
        """Jobs run so far (jobs / batches is the mean batch size)."""

    def submit(self, key: Hashable, job: J) -> R:
        """Queue `job` under `key`, wait until the worker has run it, and return its result (or raise its error)."""
        slot: _Slot[J] = _Slot(key, job)
        with self._cond:
            self._queue.append(slot)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="live-batches", daemon=True)
                self._worker.start()
            self._cond.notify_all()
            while not slot.done:
                self._cond.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[no-any-return]

    def _work(self) -> None:
        """The worker thread: run batches while jobs are queued; end after `idle_s` seconds without any."""
        try:
            while True:
                with self._cond:
                    if not self._queue and not self._cond.wait_for(lambda: bool(self._queue), timeout=self.idle_s):
                        self._worker = None  # under the lock that saw the queue empty: a later submit starts one
                        return
                    batch = self._take()
                self._run(batch)
                with self._cond:
                    self._cond.notify_all()
        finally:  # ended by something `_run` does not catch: the next submit starts a new worker
            with self._cond:
                if self._worker is threading.current_thread():
                    self._worker = None

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

"""Live inference batches concurrent requests: each gets what it would get alone, and batches do form."""

from __future__ import annotations

import platform
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from interplab.common import InterplabError
from interplab.dashboards.db import DashboardDB
from interplab.web.batching import BatchRunner
from interplab.web.live import LiveInference, bound_malloc_arenas

TEXTS = ["The cat sat on the mat.", "A dog", "Paris is the capital of France, and it is large.", "x y z",
         "Rain fell all night over the quiet town and its sleeping people.", "Hello"]


def test_jobs_queued_while_a_batch_runs_share_the_next_one_and_each_gets_its_own_result() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[list[int]] = []

    def run(key, jobs):
        seen.append(list(jobs))
        if len(seen) == 1:
            started.set()
            assert release.wait(10)
        return [j * 10 for j in jobs]

    runner = BatchRunner(run, max_batch=3)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(runner.submit, "a", 0)
        assert started.wait(10)
        rest = [pool.submit(runner.submit, "a", j) for j in range(1, 6)]
        while len(runner._queue) < 5:  # the five later jobs wait while the first batch runs
            time.sleep(0.01)
        release.set()
        assert first.result() == 0 and [f.result() for f in rest] == [10, 20, 30, 40, 50]
    assert seen == [[0], [1, 2, 3], [4, 5]]  # arrival order, at most max_batch per batch
    assert (runner.batches, runner.jobs) == (3, 6)


def test_a_batch_holds_one_key_and_its_error_reaches_each_of_its_callers() -> None:
    gate = threading.Event()

    def run(key, jobs):
        gate.wait(10)
        if key == "bad":
            raise InterplabError("no such SAE")
        return [(key, j) for j in jobs]

    runner = BatchRunner(run, max_batch=8)
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(runner.submit, key, j) for j, key in enumerate(["a", "bad", "a", "bad", "b"])]
        time.sleep(0.2)
        gate.set()
        results = []
        for f in futures:
            try:
                results.append(f.result())
            except InterplabError as exc:
                results.append(str(exc))
    assert results == [("a", 0), "no such SAE", ("a", 2), "no such SAE", ("b", 4)]


@pytest.fixture()
def sae_row(web_data):
    db = DashboardDB(web_data.db_path, create=False)
    try:
        return db.get_sae(web_data.sae_id)
    finally:
        db.close()


def test_concurrent_live_requests_run_batched_and_match_each_text_run_alone(web_data, sae_row) -> None:
    alone = LiveInference(device="cpu", max_batch=1)
    want = [alone.run(sae_row, t, top_n=4) for t in TEXTS]
    batched = LiveInference(device="cpu", max_batch=8)
    batched.run(sae_row, "warm up", top_n=1)  # the model loads outside the race
    real = batched.batcher.run_batch

    def slow(key, jobs):  # a forward pass long enough for the other requests to queue behind it
        time.sleep(0.05)
        return real(key, jobs)

    batched.batcher.run_batch = slow
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        got = list(pool.map(lambda t: batched.run(sae_row, t, top_n=4), TEXTS * 4))
    assert batched.batcher.jobs == 1 + 4 * len(TEXTS)
    assert batched.batcher.batches < batched.batcher.jobs  # some requests shared a forward pass
    for w, g in zip(want * 4, got, strict=True):
        assert g.tokens == w.tokens and [len(i) for i in g.top_idx] == [len(i) for i in w.top_idx]
        for wi, gi, wv, gv in zip(w.top_idx, g.top_idx, w.top_val, g.top_val, strict=True):
            torch.testing.assert_close(torch.tensor(gv), torch.tensor(wv), rtol=1e-4, atol=1e-5)
            close = [a == b or abs(x - y) < 1e-4 for a, b, x, y in zip(wi, gi, wv, gv, strict=True)]
            assert all(close)  # the same latents, except where two of them tie


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_serve_can_bound_the_malloc_arenas_on_glibc() -> None:
    assert bound_malloc_arenas(8)  # mallopt answered 1 (applied); 8 arenas leave the test process much as it was

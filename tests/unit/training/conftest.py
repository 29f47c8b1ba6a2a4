"""Single-threaded torch for these tests (see tests/torch_threads.py)."""

from torch_threads import one_torch_thread  # noqa: F401  (autouse fixture)

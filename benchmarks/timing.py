"""The time of one reading on one thread: the median of wall and CPU milliseconds.

On an idle machine the two agree; on a shared one the CPU time is what the call itself
cost, whatever else was running.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import torch


def one_thread_p50(calls: Iterable[Callable[[], object]], warm_up: Callable[[], object] | None = None
                   ) -> tuple[float, float]:
    """Run each of ``calls`` on one PyTorch thread (after ``warm_up``, not timed); the
    median wall and CPU milliseconds per call."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if warm_up is not None:
            warm_up()
        wall, cpu = [], []
        for call in calls:
            t, c = time.perf_counter(), time.process_time()
            call()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000

"""The encoder's queue: text queries are encoded one at a time on one dedicated thread (the
Hugging Face fast tokenizer must not be used from two threads at once: "Already borrowed"), and
at most `depth` queries wait for it. A query beyond that is refused at once with 503 and
`Retry-After`, so a burst of text queries never holds the threads that answer the cheap GETs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from recommender.serving.metrics import Metrics

T = TypeVar("T")
RETRY_AFTER_SECONDS = 1


class EncodeQueueFull(RuntimeError):
    pass


class EncodeQueue:
    def __init__(self, depth: int, metrics: Metrics | None = None) -> None:
        self.limit = depth + 1
        self.metrics = metrics
        self.pending = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on the encoder thread; EncodeQueueFull when `depth` queries already wait."""
        if self.pending >= self.limit:
            if self.metrics:
                self.metrics.encode_refused.inc()
            raise EncodeQueueFull(
                f"the encoder is busy ({self.pending} text queries in line): retry shortly"
            )
        self.pending += 1
        self._gauge()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, fn)
        finally:
            self.pending -= 1
            self._gauge()

    def _timed(self, fn: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            if self.metrics:
                self.metrics.encode_seconds.observe(time.perf_counter() - start)

    def _gauge(self) -> None:
        if self.metrics:
            self.metrics.encode_waiting.set(self.pending)

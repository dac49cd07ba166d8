"""Run calls at the same moment on real threads and collect what each one got."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def race(calls: list[Callable[[], Any]], *, timeout: float = 60) -> list[Any]:
    """Start every call together (a barrier); return each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # the test inspects what each racer got
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a racer hung"
    return results

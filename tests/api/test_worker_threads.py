"""The worker threads a process runs requests' engine calls on: as many as configured, no more.

Requests past the limit wait on the event loop for a thread instead of contending for the GIL
(docs/performance.md §7). Each test drives the real app, its lifespan included, and counts
the engine calls that are running at the same moment.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import engine
from api.app import create_app
from api.settings import Settings
from engine.store.uow import Zizhi
from tests.api.client import Api


class Overlap:
    """Wraps an engine function; remembers how many of its calls ran at once, at most."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self._original = original
        self._lock = threading.Lock()
        self._running = 0
        self.most = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._running += 1
            self.most = max(self.most, self._running)
        try:
            time.sleep(0.2)  # long enough for every request sent together to be waiting
            return self._original(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1


def _read_together(z: Zizhi, settings: Settings, monkeypatch: pytest.MonkeyPatch, n: int) -> int:
    overlap = Overlap(engine.get_project)
    with TestClient(create_app(z, settings)) as client:
        api = Api(client, z)
        community = api.community()
        committee = api.token("committee", communities=[community])
        project = api.project(committee, community)
        monkeypatch.setattr(engine, "get_project", overlap)
        with ThreadPoolExecutor(n) as clients:
            answers = list(
                clients.map(
                    lambda _: api.get(f"/api/v1/projects/{project['id']}", committee), range(n)
                )
            )
    assert [a.status_code for a in answers] == [200] * n
    assert {a.json()["id"] for a in answers} == {project["id"]}
    return overlap.most


def test_engine_calls_run_on_at_most_the_configured_threads(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _read_together(z, Settings(threads=2), monkeypatch, n=6) == 2


def test_one_thread_serves_requests_one_at_a_time(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _read_together(z, Settings(threads=1), monkeypatch, n=4) == 1


def test_default_thread_count_follows_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZIZHI_THREADS", raising=False)
    cpus = os.cpu_count() or 1
    assert Settings().worker_threads(sqlite=True) == cpus
    # PostgreSQL: a thread per connection the pool can lend (the pool and its overflow).
    assert Settings(db_pool_size=7).worker_threads(sqlite=False) == 14
    assert Settings(threads=3).worker_threads(sqlite=True) == 3
    assert Settings(threads=3).worker_threads(sqlite=False) == 3


def test_thread_count_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZIZHI_THREADS", " 12 ")
    assert Settings().worker_threads(sqlite=True) == 12
    for wrong in ("0", "-1", "many", "1001"):
        monkeypatch.setenv("ZIZHI_THREADS", wrong)
        with pytest.raises(ValidationError):
            Settings()

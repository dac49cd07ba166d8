"""The worker threads a process runs requests' engine calls on: as many as configured, no more.

Requests past the limit wait on the event loop for a thread instead of contending for the GIL
(docs/performance.md §7). On SQLite, which has one writer, writes enter a thread one at a
time and leave the other threads to reads. Each test drives the real app, its lifespan
included, and counts the engine calls that are running at the same moment.
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
from engine import CLI
from engine.store.uow import Zizhi
from tests.api.client import Api
from tests.api.web_client import new_address, sign_in, submit, user
from tests.factories import World, new_id


class Overlap:
    """Wraps engine functions; remembers how many calls of them ran at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self.most = 0

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._running += 1
                self.most = max(self.most, self._running)
            try:
                time.sleep(0.2)  # long enough for every request sent together to be waiting
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self._running -= 1

        return counted


def _together(
    z: Zizhi, settings: Settings, monkeypatch: pytest.MonkeyPatch, *, reads: int, writes: int
) -> int:
    """How many engine calls ran at once, at most, when ``reads`` project reads and
    ``writes`` project creations are sent together."""
    overlap = Overlap()
    with TestClient(create_app(z, settings)) as client:
        api = Api(client, z)
        community = api.community()
        committee = api.token("committee", communities=[community])
        project = api.project(committee, community)
        monkeypatch.setattr(engine, "get_project", overlap.wrap(engine.get_project))
        monkeypatch.setattr(engine, "open_project", overlap.wrap(engine.open_project))

        def read() -> Any:
            return api.ok(api.get(f"/api/v1/projects/{project['id']}", committee))["id"]

        def write() -> Any:
            return api.project(committee, community)["id"]

        calls = [read] * reads + [write] * writes
        with ThreadPoolExecutor(len(calls)) as clients:
            answers = list(clients.map(lambda call: call(), calls))
    assert answers[:reads] == [project["id"]] * reads
    assert len(set(answers[reads:])) == writes  # every write made its own project
    return overlap.most


def test_engine_calls_run_on_at_most_the_configured_threads(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _together(z, Settings(threads=2), monkeypatch, reads=6, writes=0) == 2


def test_one_thread_serves_requests_one_at_a_time(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _together(z, Settings(threads=1), monkeypatch, reads=4, writes=0) == 1


def test_sqlite_writes_enter_threads_one_at_a_time(
    z: Zizhi, monkeypatch: pytest.MonkeyPatch
) -> None:
    most = _together(z, Settings(threads=4), monkeypatch, reads=0, writes=4)
    # SQLite has one writer: a second write in a thread could only wait for the first.
    # PostgreSQL's writers run side by side, as many as there are threads.
    assert most == (1 if z.db.is_sqlite else 4)


def test_reads_do_not_wait_behind_sqlite_writes(z: Zizhi, monkeypatch: pytest.MonkeyPatch) -> None:
    most = _together(z, Settings(threads=2), monkeypatch, reads=2, writes=3)
    # SQLite: one write, and both reads on the two threads beside it. PostgreSQL: every
    # request shares the two threads.
    assert most == (3 if z.db.is_sqlite else 2)


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


def test_sqlite_web_form_writes_enter_threads_one_at_a_time(
    z: Zizhi, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    community = world.community()
    username = user(z, new_id("u"), "committee", communities=[community])
    pool = f"/communities/{community}/demands"
    overlap = Overlap()
    app = create_app(z, Settings(threads=4))
    with TestClient(app, raise_server_exceptions=False, client=(new_address(), 50000)) as client:
        sign_in(client, username)
        monkeypatch.setattr(engine, "record_demand", overlap.wrap(engine.record_demand))

        def post(n: int) -> int:
            # Each form drawn afresh, with its own form_key: four demands, not one sent 4 times.
            fields = {"content": f"路灯不亮 {n}号", "resident": "陈阿姨"}
            return submit(client, pool, "form-demand", fields).status_code

        with ThreadPoolExecutor(4) as browsers:
            codes = list(browsers.map(post, range(4)))
    assert codes == [303] * 4
    recorded = engine.list_demands(z, CLI, community_id=community, pool=True).items
    assert sorted(d.content for d in recorded) == [f"路灯不亮 {n}号" for n in range(4)]
    # A form's POST is a write like the API's: one at a time on SQLite.
    assert overlap.most == (1 if z.db.is_sqlite else 4)

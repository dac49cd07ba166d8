"""Verification pauses Python's cyclic garbage collector while it runs, and only then."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from engine.store.verify_read import cyclic_gc_paused


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_the_collector_is_off_during_a_check_and_on_after_it_even_after_a_failure() -> None:
    gc.enable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("a check failed")
    assert gc.isenabled()


def test_a_collector_someone_else_turned_off_stays_off() -> None:
    gc.disable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_checks_turn_it_on_when_the_last_one_ends() -> None:
    gc.enable()
    first_in, second_done, states = threading.Event(), threading.Event(), []

    def first() -> None:
        with cyclic_gc_paused():
            first_in.set()
            second_done.wait(10)
            states.append(gc.isenabled())  # the second ended, this one still runs

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(10)
    with cyclic_gc_paused():
        pass
    second_done.set()
    worker.join(10)
    assert states == [False]
    assert gc.isenabled()

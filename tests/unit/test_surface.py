"""The engine's public surface (``engine/__init__.py``), the one way into a change, and the
API's routers.

The import contracts (``lint-imports``) hold who may import what; these hold what the
surface offers and what a use case may not do by itself.
"""

from __future__ import annotations

import inspect
import re
from importlib import import_module
from pathlib import Path

from fastapi import APIRouter

import engine

USECASES = Path(engine.__file__).parent / "usecases"
ROUTES = Path(engine.__file__).parent.parent / "api" / "routes"


def test_every_name_the_surface_lists_is_there() -> None:
    missing = [name for name in engine.__all__ if not hasattr(engine, name)]
    assert missing == []
    assert len(set(engine.__all__)) == len(engine.__all__)


def test_every_use_case_on_the_surface_says_what_it_does() -> None:
    undocumented = [
        name
        for name in engine.__all__
        if inspect.isfunction(obj := getattr(engine, name, None))
        and obj.__module__.startswith("engine.usecases.")
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


# What only the unit of work (engine/store/uow.py) takes, in its one order: the reservation
# barrier, the row locks on projects and chain heads, the Idempotency-Key. (A webhook
# subscription's own row is the one row a use case locks, after the system chain's head.)
_TAKEN_BY_THE_CHANGE = re.compile(r"pg_advisory|idempotency_keys|FOR UPDATE")
_ROW_LOCK = re.compile(r"with_for_update")
_OWN_ROW_LOCKS = {"webhooks.py"}


def test_no_use_case_takes_a_lock_or_looks_a_key_up_itself() -> None:
    found = []
    for path in sorted(USECASES.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            if _TAKEN_BY_THE_CHANGE.search(line) or (
                _ROW_LOCK.search(line) and path.name not in _OWN_ROW_LOCKS
            ):
                found.append(f"{path.name}:{n}: {line.strip()}")
    assert found == []


def test_the_api_s_routers_are_built_at_import() -> None:
    """Each route module holds its router; only what the loaded workflows decide is built at
    start: an endpoint per action, and the listing's ``?state=`` values."""
    modules = sorted(p.stem for p in ROUTES.glob("[!_]*.py"))
    built_at_start = {"actions"}
    without = [
        name
        for name in modules
        if name not in built_at_start
        and not isinstance(getattr(import_module(f"api.routes.{name}"), "router", None), APIRouter)
    ]
    assert without == []

"""Named workflow effects: what firing an action does to money and to the project record.

A definition names them (``effects: [reserve]``); the engine applies them, in the order
named, inside the transition's transaction, after the state machine has decided the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.errors import GuardFailed
from engine.model import ProjectRecord


class Ledger(Protocol):
    """The ledger movements an effect may make (``engine.store.ledger.Ledger`` has them)."""

    def reserve(self, project: ProjectRecord, amount: int, cause: int) -> None: ...

    def release(self, project: ProjectRecord, cause: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Effect:
    name: str
    apply: Callable[[Ledger, ProjectRecord, Mapping[str, Any], int], None]
    needs_fields: frozenset[str] = frozenset()


def _set_budget(
    ledger: Ledger, project: ProjectRecord, data: Mapping[str, Any], cause: int
) -> None:
    project.budget_fen = data["budget_fen"]


def _reserve(ledger: Ledger, project: ProjectRecord, data: Mapping[str, Any], cause: int) -> None:
    if project.budget_fen is None:
        raise GuardFailed("项目还没有预算，无法预留经费")
    ledger.reserve(project, project.budget_fen, cause)


def _release(ledger: Ledger, project: ProjectRecord, data: Mapping[str, Any], cause: int) -> None:
    ledger.release(project, cause)


EFFECTS: dict[str, Effect] = {
    e.name: e
    for e in (
        Effect("set_budget", _set_budget, frozenset({"budget_fen"})),
        Effect("reserve", _reserve),
        Effect("release", _release),
    )
}

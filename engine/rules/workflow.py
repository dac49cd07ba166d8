"""Workflow definitions: loaded from data, validated, and compiled once into a state machine.

A definition (see ``workflows/*.yaml``) names its states, its actions (from → to, who may
fire them, the fields they require, named conditions and effects) and the fund it draws on.
Loading refuses, with every problem listed, a definition that names an unknown state, role,
field type, condition or effect, or that has a state no project can reach or leave.

Each definition becomes one ``transitions.Machine``, built once with
``auto_transitions=False`` (the ``to_<state>`` shortcuts would bypass the workflow) and no
models bound to it: deciding a step triggers the machine's event on a throwaway cursor, so
nothing is built or registered per request and one machine serves every thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine
from transitions.core import EventData, MachineError

from engine.errors import (
    ActionNotAllowed,
    DefinitionError,
    Forbidden,
    GuardFailed,
    ValidationFailed,
)
from engine.model import Fund, Role
from engine.rules import fields
from engine.rules.conditions import CONDITIONS, Facts
from engine.rules.fields import FieldSpec
from engine.rules.menu import Menu


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    label: str
    final: bool = False


@dataclass(frozen=True, slots=True)
class ActionDef:
    name: str
    label: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[Role]
    fields: Mapping[str, FieldSpec]
    conditions: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()

    def request_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "title": self.label,
            "properties": {name: spec.json_schema() for name, spec in self.fields.items()},
            "required": [name for name, spec in self.fields.items() if spec.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True, slots=True)
class Step:
    """What firing an action decides: the engine then writes it in one transaction."""

    action: ActionDef
    source: str
    dest: str
    data: Mapping[str, Any]


@dataclass(slots=True)
class _Cursor:
    """The only model the machine ever sees: a state name, for the length of one trigger."""

    state: str


@dataclass(slots=True)
class _Attempt:
    data: Mapping[str, Any]
    facts: Facts
    cleaned: dict[str, Any] = field(default_factory=dict)


class Workflow:
    """One loaded, validated definition and its compiled state machine."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        label: str,
        fund: Fund,
        initial: str,
        states: Mapping[str, StateDef],
        actions: Mapping[str, ActionDef],
        expenses_in: frozenset[str],
        demands_in: frozenset[str],
    ) -> None:
        self.name = name
        self.version = version
        self.label = label
        self.fund = fund
        self.initial = initial
        self.states = states
        self.actions = actions
        self.expenses_in = expenses_in
        self.demands_in = demands_in
        self._by_state: dict[str, tuple[ActionDef, ...]] = {
            s: tuple(a for a in actions.values() if s in a.sources) for s in states
        }
        self._machine = self._build_machine()

    def _build_machine(self) -> Machine:
        machine = Machine(
            model=None,
            states=list(self.states),
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            name=f"{self.name}.v{self.version}",
        )
        for action in self.actions.values():
            guards = [_field_check(action)] + [
                _guard(CONDITIONS[c].check) for c in action.conditions
            ]
            machine.add_transition(
                action.name, list(action.sources), action.dest, conditions=guards
            )
        return machine

    def describe(self) -> dict[str, Any]:
        """The definition as plain data, for clients that draw forms and timelines."""
        return {
            "name": self.name,
            "version": self.version,
            "label": self.label,
            "fund": self.fund.value,
            "initial": self.initial,
            "expenses_in": sorted(self.expenses_in),
            "demands_in": sorted(self.demands_in),
            "states": [
                {"name": s.name, "label": s.label, "final": s.final} for s in self.states.values()
            ],
            "actions": [
                {
                    "name": a.name,
                    "label": a.label,
                    "from": list(a.sources),
                    "to": a.dest,
                    "who": sorted(a.roles),
                    "schema": a.request_schema(),
                }
                for a in self.actions.values()
            ],
        }

    def state_label(self, state: str) -> str:
        return self.states[state].label

    def is_final(self, state: str) -> bool:
        """Whether a project in ``state`` is done (completed, rejected or cancelled)."""
        return self.states[state].final

    def allowed_actions(self, state: str, role: Role) -> list[str]:
        return [a.name for a in self._by_state.get(state, ()) if role in a.roles]

    def decide(
        self, state: str, action: str, role: Role, data: Mapping[str, Any], facts: Facts
    ) -> Step:
        """Check that ``role`` may fire ``action`` from ``state`` with ``data``.

        Raises ValidationFailed (unknown action, bad fields), Forbidden (wrong role),
        ActionNotAllowed (not from this state), GuardFailed or FundCapExceeded (a condition).
        """
        act = self.actions.get(action)
        if act is None:
            known = "、".join(self.actions)
            raise ValidationFailed(
                f"未知操作“{action}”；{self.label}的操作有：{known}",
                errors={"action": f"未知操作；可用：{known}"},
            )
        if role not in act.roles:
            who = "、".join(r.label for r in sorted(act.roles))
            raise Forbidden(f"“{act.label}”只能由{who}执行")
        attempt = _Attempt(data=data, facts=facts)
        cursor = _Cursor(state)
        try:
            fired = self._machine.events[action].trigger(cursor, attempt=attempt)
        except MachineError:
            raise ActionNotAllowed(
                f"项目当前处于“{self.state_label(state)}”阶段，不能执行“{act.label}”"
            ) from None
        if not fired:  # every condition raises its own reason; this is a safety net
            raise GuardFailed(f"“{act.label}”的条件不满足")
        return Step(action=act, source=state, dest=cursor.state, data=attempt.cleaned)


def _field_check(action: ActionDef) -> Any:
    # The first condition of every transition, so the machine refuses a wrong state
    # (MachineError) before anyone is told their fields are wrong.
    def check(event: EventData) -> bool:
        attempt: _Attempt = event.kwargs["attempt"]
        attempt.cleaned = fields.validate(action.fields, attempt.data)
        return True

    return check


def _guard(check: Any) -> Any:
    def run(event: EventData) -> bool:
        attempt: _Attempt = event.kwargs["attempt"]
        check(attempt.cleaned, attempt.facts)
        return True

    return run


class WorkflowRegistry:
    """Every loaded version of every workflow; new projects start on the latest version."""

    def __init__(self, workflows: Iterable[Workflow], menu: Menu | None = None) -> None:
        # The menu project library every project names an item of (issue 12).
        self.menu = menu if menu is not None else Menu.empty()
        self._versions: dict[str, dict[int, Workflow]] = {}
        for wf in workflows:
            versions = self._versions.setdefault(wf.name, {})
            if wf.version in versions:
                raise DefinitionError(wf.name, [f"version {wf.version} is defined twice"])
            versions[wf.version] = wf
        self._reserving = frozenset(
            a.name for wf in self.all() for a in wf.actions.values() if "reserve" in a.effects
        )

    def names(self) -> list[str]:
        return sorted(self._versions)

    def has(self, name: str, version: int) -> bool:
        return version in self._versions.get(name, {})

    def may_reserve(self, action: str) -> bool:
        """Whether an action of this name reserves money in any loaded definition."""
        return action in self._reserving

    def latest(self, name: str) -> Workflow:
        versions = self._versions.get(name)
        if not versions:
            raise ValidationFailed(
                f"未知流程“{name}”；可用流程：{'、'.join(self.names())}",
                errors={"workflow": "未知流程"},
            )
        return versions[max(versions)]

    def get(self, name: str, version: int) -> Workflow:
        return self._versions[name][version]

    def all(self) -> list[Workflow]:
        return [wf for name in self.names() for _, wf in sorted(self._versions[name].items())]

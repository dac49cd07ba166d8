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

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transitions import Machine
from transitions.core import EventData, MachineError

from engine import fields
from engine.conditions import CONDITIONS, Facts
from engine.domain import Fund, Role
from engine.effects import EFFECTS
from engine.errors import (
    ActionNotAllowed,
    DefinitionError,
    Forbidden,
    GuardFailed,
    ValidationFailed,
)
from engine.fields import FieldSpec


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

    def is_final(self, state: str) -> bool:
        return self.states[state].final

    def state_label(self, state: str) -> str:
        return self.states[state].label

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

    def __init__(self, workflows: Iterable[Workflow]) -> None:
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


# --- loading ---------------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "version",
    "label",
    "fund",
    "initial",
    "states",
    "actions",
    "expenses_in",
    "demands_in",
}
_ACTION_KEYS = {"label", "from", "to", "who", "fields", "conditions", "effects"}
_FIELD_KEYS = {"type", "label", "required", "min", "max", "max_length"}


def load_definition(raw: Any, *, source: str) -> Workflow:
    """Validate a parsed definition and compile it; DefinitionError lists every problem."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise DefinitionError(source, ["the definition must be a mapping"])
    for key in sorted(set(raw) - _TOP_KEYS):
        problems.append(f"unknown key {key!r}")
    for key in ("name", "version", "label", "fund", "initial", "states", "actions"):
        if key not in raw:
            problems.append(f"missing key {key!r}")
    if problems:
        raise DefinitionError(source, problems)

    name, version = raw["name"], raw["version"]
    if not isinstance(name, str) or not name.isidentifier():
        problems.append(f"name {name!r} must be an identifier")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"version {version!r} must be a positive integer")
    if raw["fund"] not in Fund.__members__:
        problems.append(f"unknown fund {raw['fund']!r}; known: {', '.join(Fund)}")

    states = _load_states(raw["states"], problems)
    initial = raw["initial"]
    if initial not in states:
        problems.append(f"initial state {initial!r} is not a declared state")
    actions = _load_actions(raw["actions"], states, problems)
    expenses_in = _state_set(raw.get("expenses_in", []), "expenses_in", states, problems)
    demands_in = _state_set(raw.get("demands_in", []), "demands_in", states, problems)
    if not problems:
        _check_graph(initial, states, actions, problems)
    if problems:
        raise DefinitionError(source, problems)
    return Workflow(
        name=name,
        version=version,
        label=str(raw["label"]),
        fund=Fund(raw["fund"]),
        initial=initial,
        states=states,
        actions=actions,
        expenses_in=expenses_in,
        demands_in=demands_in,
    )


def _load_states(raw: Any, problems: list[str]) -> dict[str, StateDef]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("states must be a non-empty mapping")
        return {}
    states = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(f"state name {name!r} must be an identifier")
            continue
        if not isinstance(spec, Mapping) or not isinstance(spec.get("label"), str):
            problems.append(f"state {name!r} needs a label")
            continue
        unknown = set(spec) - {"label", "final"}
        if unknown:
            problems.append(f"state {name!r} has unknown keys {sorted(unknown)}")
        states[name] = StateDef(name, spec["label"], bool(spec.get("final", False)))
    return states


def _load_actions(
    raw: Any, states: Mapping[str, StateDef], problems: list[str]
) -> dict[str, ActionDef]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append("actions must be a non-empty mapping")
        return {}
    actions = {}
    for name, spec in raw.items():
        where = f"action {name!r}"
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(f"{where}: name must be an identifier")
            continue
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        for key in sorted(set(spec) - _ACTION_KEYS):
            problems.append(f"{where}: unknown key {key!r}")
        if not isinstance(spec.get("label"), str):
            problems.append(f"{where}: needs a label")
        sources = _sources(spec.get("from"), where, states, problems)
        dest = spec.get("to")
        if dest not in states:
            problems.append(f"{where}: unknown target state {dest!r}")
        roles = _roles(spec.get("who"), where, problems)
        field_specs = _fields(spec.get("fields") or {}, where, problems)
        conditions = tuple(spec.get("conditions") or ())
        effects = tuple(spec.get("effects") or ())
        for cond in conditions:
            if cond not in CONDITIONS:
                problems.append(f"{where}: unknown condition {cond!r}")
            elif missing := CONDITIONS[cond].needs_fields - set(field_specs):
                problems.append(f"{where}: condition {cond!r} needs fields {sorted(missing)}")
        for eff in effects:
            if eff not in EFFECTS:
                problems.append(f"{where}: unknown effect {eff!r}")
            elif missing := EFFECTS[eff].needs_fields - set(field_specs):
                problems.append(f"{where}: effect {eff!r} needs fields {sorted(missing)}")
        actions[name] = ActionDef(
            name=name,
            label=str(spec.get("label")),
            sources=sources,
            dest=str(dest),
            roles=roles,
            fields=field_specs,
            conditions=conditions,
            effects=effects,
        )
    return actions


def _sources(
    raw: Any, where: str, states: Mapping[str, StateDef], problems: list[str]
) -> tuple[str, ...]:
    if raw == "*":  # every state a project can still leave
        return tuple(s for s, d in states.items() if not d.final)
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: 'from' must be a list of states or '*'")
        return ()
    for s in raw:
        if s not in states:
            problems.append(f"{where}: unknown source state {s!r}")
        elif states[s].final:
            problems.append(f"{where}: source state {s!r} is final")
    return tuple(s for s in raw if s in states)


def _roles(raw: Any, where: str, problems: list[str]) -> frozenset[Role]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: 'who' must be a non-empty list of roles")
        return frozenset()
    for r in raw:
        if r not in Role.__members__:
            problems.append(f"{where}: unknown role {r!r}")
    return frozenset(Role(r) for r in raw if r in Role.__members__)


def _fields(raw: Any, where: str, problems: list[str]) -> dict[str, FieldSpec]:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: 'fields' must be a mapping")
        return {}
    specs = {}
    for name, spec in raw.items():
        if not isinstance(spec, Mapping) or spec.get("type") not in fields.FIELD_TYPES:
            problems.append(
                f"{where}: field {name!r} needs a type from {sorted(fields.FIELD_TYPES)}"
            )
            continue
        for key in sorted(set(spec) - _FIELD_KEYS):
            problems.append(f"{where}: field {name!r} has unknown key {key!r}")
        specs[name] = FieldSpec(
            name=name,
            type=spec["type"],
            label=str(spec.get("label", name)),
            required=bool(spec.get("required", True)),
            min=spec.get("min"),
            max=spec.get("max"),
            max_length=int(spec.get("max_length", fields.DEFAULT_TEXT_LENGTH)),
        )
    return specs


def _state_set(
    raw: Any, key: str, states: Mapping[str, StateDef], problems: list[str]
) -> frozenset[str]:
    if not isinstance(raw, list):
        problems.append(f"{key} must be a list of states")
        return frozenset()
    for s in raw:
        if s not in states:
            problems.append(f"{key}: unknown state {s!r}")
    return frozenset(s for s in raw if s in states)


def _check_graph(
    initial: str,
    states: Mapping[str, StateDef],
    actions: Mapping[str, ActionDef],
    problems: list[str],
) -> None:
    reachable, queue = {initial}, deque([initial])
    while queue:
        here = queue.popleft()
        for action in actions.values():
            if here in action.sources and action.dest not in reachable:
                reachable.add(action.dest)
                queue.append(action.dest)
    for name in states:
        if name not in reachable:
            problems.append(f"state {name!r} is unreachable from {initial!r}")
    for name, state in states.items():
        leaves = any(name in a.sources for a in actions.values())
        if not state.final and not leaves:
            problems.append(f"state {name!r} is not final but no action leaves it")
    if not any(s.final for s in states.values()):
        problems.append("no final state")

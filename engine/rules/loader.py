"""Loading a workflow definition from data: every problem listed, or a compiled ``Workflow``.

Loading refuses a definition that names an unknown state, role, field type, condition or
effect, or that has a state no project can reach or leave.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from engine.errors import (
    DefinitionError,
)
from engine.model import Fund, Role
from engine.rules import fields
from engine.rules.conditions import CONDITIONS
from engine.rules.effects import EFFECTS
from engine.rules.fields import FieldSpec
from engine.rules.workflow import ActionDef, StateDef, Workflow

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

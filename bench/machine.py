"""Building a ``transitions`` Machine for a workflow, against using one already built.

    .venv/bin/python bench/machine.py

``engine.rules.workflow.Workflow`` builds one Machine per definition at load time and, per request,
only triggers an event on a throwaway cursor (``Workflow.decide``). This measures why:

* ``load_definition``: validating a parsed definition and compiling it (what startup pays);
* ``build Machine``: ``Workflow._build_machine`` alone, the Machine the engine keeps;
* ``Machine per request``: the obvious alternative — a Machine bound to the project as its
  model, built for each request, then triggered once;
* ``decide``: ``Workflow.decide`` on the built machine, field validation and conditions
  included, for a plain action (``cancel``) and one with a guard (``approve``);
* ``trigger only``: the event trigger inside ``decide``, without validation or errors.

No database is involved; conditions read facts from a stub. Each figure is the median of
seven timings of a loop long enough to take at least 0.2 s.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from common import describe_environment
from transitions import Machine

import workflows
from engine import Role
from engine.rules import fields
from engine.rules.conditions import CONDITIONS
from engine.rules.loader import load_definition
from engine.rules.workflow import Workflow, _Attempt, _Cursor

VOTE = {"council_size": 9, "attendees": 7, "votes_for": 6, "votes_against": 1, "abstentions": 0}


class StubFacts:
    """Facts a condition may ask for, answered without a database."""

    def demand_count(self) -> int:
        return 1

    def available_fen(self) -> int:
        return 1_000_000_000


class ProjectModel:
    """A plain object: the Machine attaches its triggers to it (slots would refuse them)."""

    def __init__(self, state: str) -> None:
        self.state = state


@dataclass(slots=True)
class Attempt:
    data: Mapping[str, Any]
    cleaned: dict[str, Any]


def per_request_machine(wf: Workflow, state: str) -> tuple[Machine, ProjectModel]:
    """A Machine built the obvious way for one request: the project bound as its model."""
    model = ProjectModel(state)
    facts = StubFacts()
    transitions = []
    for action in wf.actions.values():

        def check(event: Any, action: Any = action) -> bool:
            attempt: Attempt = event.kwargs["attempt"]
            attempt.cleaned = fields.validate(action.fields, attempt.data)
            for name in action.conditions:
                CONDITIONS[name].check(attempt.cleaned, facts)
            return True

        transitions.append(
            {
                "trigger": action.name,
                "source": list(action.sources),
                "dest": action.dest,
                "conditions": [check],
            }
        )
    machine = Machine(
        model=model,
        states=list(wf.states),
        transitions=transitions,
        initial=state,
        auto_transitions=False,
        send_event=True,
    )
    return machine, model


def fire_per_request(wf: Workflow, state: str, action: str, data: Mapping[str, Any]) -> str:
    _machine, model = per_request_machine(wf, state)
    getattr(model, action)(attempt=Attempt(data, {}))
    return model.state


def measure(call: Callable[[], object]) -> float:
    """Median µs per call over seven timed loops of at least 0.2 s each."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(t / number * 1e6 for t in timer.repeat(repeat=7, number=number))


def rows_for(name: str) -> list[tuple[str, float]]:
    path = workflows.DEFINITIONS_DIR / f"{name}.v1.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    wf = load_definition(raw, source=path.name)
    facts = StubFacts()
    committee = Role.committee
    cancel = {"reason": "撤销"}
    # The engine's own machine, triggered with the private cursor and attempt that decide
    # hands it.
    event = wf._machine.events["cancel"]

    def trigger_only() -> object:
        return event.trigger(_Cursor("planning"), attempt=_Attempt(data=cancel, facts=facts))

    return [
        (
            f"{name}: load_definition (validate + build)",
            measure(lambda: load_definition(raw, source=path.name)),
        ),
        (f"{name}: build Machine (kept per definition)", measure(wf._build_machine)),
        (
            f"{name}: Machine per request + 1 trigger",
            measure(lambda: fire_per_request(wf, "planning", "cancel", cancel)),
        ),
        (
            f"{name}: decide cancel (built machine)",
            measure(lambda: wf.decide("planning", "cancel", committee, cancel, facts)),
        ),
        (
            f"{name}: decide approve (built machine)",
            measure(lambda: wf.decide("review", "approve", committee, VOTE, facts)),
        ),
        (f"{name}: trigger only (built machine)", measure(trigger_only)),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", default="self_governance,party_service")
    args = parser.parse_args(argv)
    print(f"# {describe_environment(postgresql=False)}")
    rows = [row for name in args.workflows.split(",") for row in rows_for(name)]
    width = max(len(label) for label, _ in rows)
    print(f"{'what':<{width}} {'µs/call':>9}")
    print("-" * (width + 10))
    for label, us in rows:
        print(f"{label:<{width}} {us:>9.1f}")


if __name__ == "__main__":
    main()

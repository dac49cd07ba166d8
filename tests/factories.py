"""Test data, always built through the engine so that every history stays valid."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

import engine
from engine import WorkflowRegistry, load_definition
from engine.model import CLI, Principal, Role
from engine.store.uow import Zizhi
from engine.usecases.audit import EventFilter
from engine.usecases.projects import ProjectView
from workflows import DEFINITIONS_DIR, load_registry

VOTE = {"council_size": 9, "attendees": 7, "votes_for": 6, "votes_against": 1, "abstentions": 0}

# The happy path of each workflow: (state the project is in, action that leaves it, fields).
PATHS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "self_governance": [
        ("demand_collection", "close_collection", {}),
        ("screening", "accept", {"note": "属于房前屋后急难事"}),
        ("planning", "submit_plan", {"budget_fen": 1_000_000, "plan": "清理通道"}),
        ("review", "approve", VOTE),
        ("implementation", "complete_implementation", {"report": "已完成"}),
        ("evaluation", "evaluate", {"score": 4, "report": "效果良好"}),
        ("feedback", "close", {"notice": "项目已办结", "satisfied": 40, "unsatisfied": 2}),
    ],
}
PATHS["party_service"] = [
    *PATHS["self_governance"][:4],
    ("street_review", "street_approve", {"note": "同意"}),
    *PATHS["self_governance"][4:],
]

_counter = itertools.count(1)


def happy_steps(
    workflow: str, state: str, to_state: str, *, budget_fen: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The actions, with their fields, that move a project on from ``state`` along its
    workflow's happy path until it reaches ``to_state`` (or the path's end)."""
    path = PATHS[workflow]
    states = [s for s, _, _ in path]
    start = states.index(state) if state in states else len(path)
    stop = states.index(to_state) if to_state in states[start:] else len(path)
    steps = []
    for _, action, data in path[start:stop]:
        if action == "submit_plan" and budget_fen is not None:
            data = {**data, "budget_fen": budget_fen}
        steps.append((action, data))
    return steps


def assert_replays_to(
    history: list[engine.EventView], project: ProjectView, why: object = None
) -> None:
    """The project rebuilt from its events alone is the project the engine shows."""
    replayed = engine.replay_project(history)
    assert (
        replayed.state,
        replayed.version,
        replayed.budget_fen,
        replayed.reserved_fen,
        replayed.spent_fen,
    ) == (
        project.state,
        project.version,
        project.budget_fen,
        project.reserved_fen,
        project.spent_fen,
    ), why


def new_id(prefix: str = "c") -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:8]}"


def secret(token: engine.TokenView) -> str:
    """The secret of a token just created (only that answer carries it)."""
    assert token.token is not None, "a created token's answer carries its secret"
    return token.token


class World:
    """Communities, people and projects for one test, on a shared database."""

    def __init__(self, z: Zizhi) -> None:
        self.z = z

    def community(self, *, kind: str = "urban", street: str | None = None) -> str:
        community_id = new_id()
        engine.create_community(
            self.z,
            CLI,
            id=community_id,
            name=f"测试社区{community_id}",
            street=street or new_id("街道"),
            district="姑苏区",
            kind=kind,
        )
        return community_id

    def street_of(self, community_id: str) -> str:
        return engine.get_community(self.z, CLI, community_id).street

    @staticmethod
    def committee(*community_ids: str) -> Principal:
        return Principal(
            id=f"token:{new_id('k')}",
            name="居委会",
            role=Role.committee,
            communities=frozenset(community_ids),
        )

    @staticmethod
    def street_officer(*streets: str) -> Principal:
        return Principal(
            id=f"token:{new_id('s')}", name="街道", role=Role.street, streets=frozenset(streets)
        )

    @staticmethod
    def auditor() -> Principal:
        return Principal(id=f"token:{new_id('a')}", name="审计", role=Role.auditor)

    def project(
        self,
        community_id: str,
        *,
        workflow: str = "self_governance",
        committee: Principal | None = None,
    ) -> ProjectView:
        return engine.open_project(
            self.z,
            committee or self.committee(community_id),
            community_id=community_id,
            workflow=workflow,
            title="消防通道改善",
            menu_item="C0101",
        )

    def advance(
        self,
        project: ProjectView,
        to_state: str,
        *,
        budget_fen: int | None = None,
        committee: Principal | None = None,
    ) -> ProjectView:
        """Drive a project along its workflow's happy path until it reaches ``to_state``."""
        committee = committee or self.committee(project.community_id)
        officer = self.street_officer(self.street_of(project.community_id))
        steps = happy_steps(project.workflow, project.state, to_state, budget_fen=budget_fen)
        for action, data in steps:
            if action == "close_collection":
                engine.add_to_project(
                    self.z, committee, project.id, {"content": "通道堵塞", "resident": "王老伯"}
                )
            actor = officer if action == "street_approve" else committee
            project = engine.fire(self.z, actor, project.id, action, data)
        assert project.state == to_state, f"{to_state} is not on the happy path"
        return project


def with_version_2() -> WorkflowRegistry:
    """The loaded definitions plus a version 2 of self_governance: a field more on approve,
    and an action only it has (``publish``)."""
    raw: dict[str, Any] = yaml.safe_load(
        (DEFINITIONS_DIR / "self_governance.v1.yaml").read_text("utf-8")
    )
    raw["version"] = 2
    approve = raw["actions"]["approve"]
    approve["fields"]["minutes"] = {"type": "text", "label": "会议纪要", "max_length": 2000}
    raw["actions"]["publish"] = {
        "label": "张贴公示",
        "from": ["feedback"],
        "to": "feedback",
        "who": ["committee"],
        "fields": {"board_note": {"type": "text", "label": "公示栏说明"}},
    }
    v2 = load_definition(raw, source="self_governance.v2.yaml")
    v1 = load_registry()
    return WorkflowRegistry([*v1.all(), v2], menu=v1.menu)


def paged_event_ids(z: Zizhi, where: EventFilter, limit: int) -> list[int]:
    """The ids of every event ``where`` matches, read page by page on ``next_cursor``."""
    ids: list[int] = []
    cursor = None
    while True:
        page = engine.query_events(z, CLI, where, limit=limit, cursor=cursor)
        ids += [e.id for e in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


T = TypeVar("T")


def settled(read: Callable[[], list[T]], expected: list[T], what: object = None) -> list[T]:
    """``read`` (a paged or streamed read of the feed) shows exactly ``expected``, in order.

    On PostgreSQL the feed ends, for a moment, before a transaction that may be ours has
    ended (``engine.store.feed``): one of another database's — another test worker's — that
    ended between a read's snapshot and its look at ``pg_stat_activity`` counts as ours. So
    a read may stop short at the end, never skip or reorder: each is a prefix of the whole,
    and a later one shows the whole."""
    for _ in range(100):
        got = read()
        assert got == expected[: len(got)], what
        if got == expected:
            return got
        time.sleep(0.05)
    raise AssertionError(f"the feed never caught up: {what}")

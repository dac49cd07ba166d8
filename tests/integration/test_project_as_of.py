"""``get_project(as_of=…)``: the project as it stood at any moment, rebuilt from its history."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest

import engine
from engine.errors import NotFound, ValidationFailed
from engine.model import CLI
from engine.store.uow import Zizhi
from tests.factories import PATHS, World

TICK = timedelta(microseconds=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_as_of_equals_the_project_after_every_change(z: Zizhi) -> None:
    zc = Zizhi(z.db, z.workflows, policy=z.policy, clock=Clock())
    world = World(zc)
    community = world.community()
    committee = world.committee(community)
    project = world.project(community)
    seen = [project]  # the project as each change answered it
    pooled = engine.record_demand(zc, committee, community, {"content": "灯", "resident": "李"})
    engine.add_to_project(zc, committee, project.id, {"demand_id": pooled.id})
    seen.append(engine.get_project(zc, CLI, project.id))
    engine.erase_personal_data(zc, CLI, community, pooled.id)  # not a change of the project
    for state, action, data in PATHS["self_governance"][:5]:
        assert engine.get_project(zc, CLI, project.id).state == state
        if action == "close_collection":
            engine.add_to_project(zc, committee, project.id, {"content": "x", "resident": "王"})
            seen.append(engine.get_project(zc, CLI, project.id))
        seen.append(engine.fire(zc, committee, project.id, action, data))
        if state == "implementation":
            break
        if state == "review":
            engine.record_expense(
                zc,
                committee,
                project.id,
                {"amount_fen": 1234, "payee": "某", "invoice_no": "F1", "description": "材料"},
            )
            seen.append(engine.get_project(zc, CLI, project.id))
    for shown in seen:
        at = shown.updated_at
        then = engine.get_project(zc, CLI, project.id, as_of=at)
        assert asdict(then) == asdict(replace(shown, allowed_actions=[])), shown.version
        later = engine.get_project(zc, CLI, project.id, as_of=at + timedelta(milliseconds=500))
        assert later.version == shown.version
    for before, after in zip(seen, seen[1:], strict=False):
        just_before = engine.get_project(zc, CLI, project.id, as_of=after.updated_at - TICK)
        assert asdict(just_before) == asdict(replace(before, allowed_actions=[]))
    with pytest.raises(NotFound, match="尚未创建"):
        engine.get_project(zc, CLI, project.id, as_of=seen[0].created_at - TICK)
    with pytest.raises(ValidationFailed):
        engine.get_project(zc, CLI, project.id, as_of=datetime(2026, 6, 1))
    # Outside the principal's scope the project does not exist, now or then.
    with pytest.raises(NotFound):
        engine.get_project(zc, world.committee(world.community()), project.id, as_of=zc.clock())


def test_the_api_answers_as_of_and_refuses_bad_moments(z: Zizhi) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from tests.api.client import Api

    with TestClient(create_app(z, Settings()), raise_server_exceptions=False) as client:
        api = Api(client, z)
        community = api.community()
        committee = api.token("committee", communities=[community])
        project = api.project(committee, community)
        created = project["created_at"]
        answer = api.get(f"/api/v1/projects/{project['id']}", committee, as_of=created)
        assert answer.status_code == 200 and answer.json()["version"] == 1
        assert answer.headers["ETag"] == '"1"' and answer.json()["allowed_actions"] == []
        for bad in ("2026-06-01T00:00:00", "yesterday", "2026-13-01T00:00:00Z", "１"):
            refused = api.get(f"/api/v1/projects/{project['id']}", committee, as_of=bad)
            assert refused.status_code == 422, bad
            assert refused.json()["code"] == "validation_error"

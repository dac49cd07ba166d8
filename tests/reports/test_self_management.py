"""自治管理 after completion: follow-ups as history events, through the engine, the API and
the web form; shown on the project page and the public board."""

from __future__ import annotations

import pytest

import engine
from engine import CLI, ActionNotAllowed, ValidationFailed, Zizhi
from engine.model import Principal, Role
from tests.api.web_client import browser, sign_in, submit, user
from tests.factories import World, assert_replays_to

FOLLOW_UP = {"keeper": "楼道长团队", "checked_on": "2026-01-02", "findings": "通道畅通，无堆物"}


def completed(world: World) -> engine.ProjectView:
    community = world.community()
    return world.advance(world.project(community), "completed")


def test_a_completed_project_takes_follow_ups_as_history_events(world: World) -> None:
    project = completed(world)
    committee = world.committee(project.community_id)
    first = engine.record_self_management(
        world.z,
        committee,
        project.id,
        {**FOLLOW_UP, "checked_on": "２０２６年１月２日\u3000", "volunteer_team": "睦邻志愿队"},
    )
    assert (str(first.checked_on), first.volunteer_team) == ("2026-01-02", "睦邻志愿队")
    engine.record_self_management(world.z, committee, project.id, FOLLOW_UP)
    records = engine.list_self_management(world.z, CLI, project.id)
    assert [r.volunteer_team for r in records] == ["睦邻志愿队", None]
    history = engine.project_history(world.z, CLI, project.id)
    assert [e.type for e in history].count("project.self_managed") == 2
    now = engine.get_project(world.z, CLI, project.id)
    assert now.version == project.version + 2
    assert_replays_to(history, now)
    # Verify what this test wrote: its community's chain (other tests share the database).
    auditor = Principal(
        id="token:sm-auditor",
        name="审计",
        role=Role.auditor,
        communities=frozenset({project.community_id}),
    )
    assert engine.verify(world.z, auditor).ok
    board = engine.notice_board(world.z, project.community_id, project.year)
    shown = next(p for p in board.projects if p.id == project.id)
    assert shown.self_management is not None and shown.self_management["keeper"] == "楼道长团队"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"checked_on": "明天"}, "checked_on"),
        ({"checked_on": "2026-02-30"}, "checked_on"),
        ({"checked_on": "2999-01-01"}, "checked_on"),
        ({"keeper": "\u3000"}, "keeper"),
        ({"findings": "a\u202eb"}, "findings"),
    ],
)
def test_bad_follow_ups_are_refused_and_change_nothing(
    world: World, change: dict[str, str], field: str
) -> None:
    project = completed(world)
    with pytest.raises(ValidationFailed) as refused:
        engine.record_self_management(
            world.z, world.committee(project.community_id), project.id, {**FOLLOW_UP, **change}
        )
    assert field in refused.value.errors
    assert engine.list_self_management(world.z, CLI, project.id) == []


def test_only_a_completed_project_is_self_managed(world: World) -> None:
    community = world.community()
    working = world.advance(world.project(community), "implementation")
    with pytest.raises(ActionNotAllowed):
        engine.record_self_management(world.z, world.committee(community), working.id, FOLLOW_UP)


def test_through_the_api_and_the_web_form(world: World, z: Zizhi) -> None:
    project = completed(world)
    token = engine.create_token(
        z, CLI, name="居委会", role="committee", communities=[project.community_id]
    ).token
    client = browser(z)
    answer = client.post(
        f"/api/v1/projects/{project.id}/self-management",
        json=FOLLOW_UP,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "sm-1"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["ETag"] == f'"{project.version + 1}"'
    again = client.get(answer.headers["Location"], headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200 and again.json()["keeper"] == "楼道长团队"

    name = user(z, f"u{project.community_id}"[:60], "committee", communities=[project.community_id])
    assert sign_in(client, name).status_code == 303
    sent = submit(
        client,
        f"/projects/{project.id}",
        "form-self-management",
        {"keeper": "物业公司", "checked_on": "2026/1/3", "findings": "灯具完好"},
    )
    assert sent.status_code == 303, sent.text
    page = client.get(f"/projects/{project.id}").text
    assert "物业公司" in page and "灯具完好" in page and "自治管理（2）" in page
    public = client.get(f"/public/{project.community_id}?year={project.year}").text
    assert "由物业公司负责日常管护" in public

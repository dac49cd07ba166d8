"""自治管理: after a project is completed, residents keep its result up themselves.

The committee records follow-ups on a completed project: who keeps the result up (a team, a
post or an organisation — never a resident's name, since history events are public to
auditors and the notice board shows them), the date of the check, what was found, and
optionally the residents' volunteer team. Each is a ``project.self_managed`` history event,
written in one change with the project's row (its version moves on); the history is the
only record, so the project page, the notice board and the annual report all read it there.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import ActionNotAllowed, NotFound, ValidationFailed
from engine.model import FISCAL_TZ, IdempotencyKey, Principal, Role
from engine.rules import fields
from engine.store.scope import visible_project
from engine.store.tables import events
from engine.store.uow import Zizhi

EVENT = "project.self_managed"
SELF_MANAGEMENT_FIELDS = {
    "keeper": fields.text(
        "keeper", "管护责任方（团队、岗位或单位）", max_length=100, single_line=True
    ),
    "checked_on": fields.text("checked_on", "检查日期", max_length=20, single_line=True),
    "findings": fields.text("findings", "检查情况", max_length=2000),
    "volunteer_team": fields.text(
        "volunteer_team", "居民志愿者队伍", max_length=100, required=False, single_line=True
    ),
}
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


@dataclass(frozen=True, slots=True)
class SelfManagementView:
    event_id: int
    project_id: int
    community_id: str
    keeper: str
    checked_on: date
    findings: str
    volunteer_team: str | None
    recorded_at: datetime
    project_version: int | None = None  # in the answer that recorded it: the project's ETag


def record_self_management(
    z: Zizhi,
    principal: Principal,
    project_id: int,
    data: Mapping[str, Any],
    *,
    idempotency: IdempotencyKey | None = None,
) -> SelfManagementView:
    """A follow-up on a completed project (the community's committee)."""
    principal.require(Role.committee)
    clean = fields.validate(SELF_MANAGEMENT_FIELDS, data)
    checked_on = parse_date(clean["checked_on"])
    with z.change(principal, idempotency, project=project_id) as change:
        if (done := change.replay(SelfManagementView)) is not None:
            return done
        project = change.project
        if project.state != "completed":
            wf = z.workflows.get(project.workflow, project.workflow_version)
            raise ActionNotAllowed(
                f"项目当前处于“{wf.state_label(project.state)}”阶段；办结后才能登记自治管理情况"
            )
        today = change.at.astimezone(FISCAL_TZ).date()
        if checked_on > today:
            raise ValidationFailed.fields({"checked_on": "检查日期不能晚于今天"})
        record = {
            "keeper": clean["keeper"],
            "checked_on": checked_on.isoformat(),
            "findings": clean["findings"],
            "volunteer_team": clean.get("volunteer_team"),
        }
        event_id = change.history.append(
            EVENT, record, community_id=project.community_id, project_id=project.id
        )
        project.details["self_management"] = record
        saved = change.save_project()
        view = SelfManagementView(
            event_id=event_id,
            project_id=project.id,
            community_id=project.community_id,
            keeper=record["keeper"],
            checked_on=checked_on,
            findings=record["findings"],
            volunteer_team=record["volunteer_team"],
            recorded_at=change.at,
            project_version=saved.version,
        )
        change.commit(view)
    return view


def list_self_management(
    z: Zizhi, principal: Principal | None, project_id: int
) -> list[SelfManagementView]:
    """A project's follow-ups, oldest first, read from its history."""
    with z.read() as conn:
        if principal is not None:
            visible_project(conn, principal, project_id)
        rows = conn.execute(
            sa.select(events)
            .where(events.c.project_id == project_id, events.c.type == EVENT)
            .order_by(events.c.id)
        ).all()
    return [view_of(r) for r in rows]


def view_of(row: Any) -> SelfManagementView:
    """A ``project.self_managed`` event (a row, or an ``EventView``) as a follow-up."""
    data = row.data if isinstance(row.data, dict) else json.loads(row.data)
    return SelfManagementView(
        event_id=row.id,
        project_id=row.project_id,
        community_id=row.community_id,
        keeper=data["keeper"],
        checked_on=date.fromisoformat(data["checked_on"]),
        findings=data["findings"],
        volunteer_team=data.get("volunteer_team"),
        recorded_at=row.at,
    )


def get_self_management(
    z: Zizhi, principal: Principal, project_id: int, event_id: int
) -> SelfManagementView:
    """One follow-up of a project (the Location of a new one)."""
    for view in list_self_management(z, principal, project_id):
        if view.event_id == event_id:
            return view
    raise NotFound(f"项目 {project_id} 没有编号为 {event_id} 的自治管理记录")


def parse_date(typed: str) -> date:
    """A date as people type it: ``2026-05-01``, ``２０２６年5月1日``, ``2026/5/1``."""
    found = _DATE.match(unicodedata.normalize("NFKC", typed).replace(" ", ""))
    try:
        if found is None:
            raise ValueError(typed)
        return date(*(int(g) for g in found.groups()))
    except ValueError:
        raise ValidationFailed.fields(
            {"checked_on": "检查日期须为有效日期，如 2026-05-01 或 2026年5月1日"}
        ) from None

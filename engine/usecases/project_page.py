"""Everything one project's page shows to one reader, and what that reader may do there.

The engine decides what the reader may do: the workflow's allowed actions for the role (with
each action's fields, from the definition, so a new workflow version needs no new page),
whether expenses or demands can be recorded now, and which of the pool's demands can be
taken up. Residents' names come through only where the reader may see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.model import Principal, Role
from engine.rules.fields import FieldSpec
from engine.rules.workflow import ActionDef, Workflow
from engine.store.uow import Zizhi
from engine.usecases import audit, communities, demands, expenses, projects
from engine.usecases.audit import EventView
from engine.usecases.communities import CommunityView
from engine.usecases.demands import DEMAND_FIELDS, DemandView
from engine.usecases.expenses import EXPENSE_FIELDS, ExpenseView
from engine.usecases.overview import every
from engine.usecases.projects import ProjectView
from engine.usecases.self_management import (
    EVENT as SELF_MANAGED,
)
from engine.usecases.self_management import (
    SELF_MANAGEMENT_FIELDS,
    SelfManagementView,
    view_of,
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one action recorded on the project (the latest time it was taken)."""

    action: ActionDef
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProjectPage:
    project: ProjectView
    workflow: Workflow
    community: CommunityView
    actions: list[ActionDef]
    recorded: list[Recorded]
    demands: list[DemandView]
    pool: list[DemandView]  # the community's demands no project has taken up yet
    expenses: list[ExpenseView]
    history: list[EventView]
    can_record_expense: bool
    can_add_demand: bool
    expense_fields: Mapping[str, FieldSpec]
    demand_fields: Mapping[str, FieldSpec]
    # 自治管理: follow-ups after completion, read from the history shown above (issue 12)
    self_management: list[SelfManagementView]
    can_record_self_management: bool
    self_management_fields: Mapping[str, FieldSpec]


def project_page(z: Zizhi, principal: Principal, project_id: int) -> ProjectPage:
    """One project's page for ``principal``: the project, and what the reader may do there."""
    with z.snapshot():  # one moment for every read below
        project = projects.get_project(z, principal, project_id)
        wf = z.workflows.get(project.workflow, project.workflow_version)
        committee = principal.role is Role.committee
        can_add_demand = committee and project.state in wf.demands_in
        history = audit.project_history(z, principal, project_id)
        return ProjectPage(
            project=project,
            workflow=wf,
            community=communities.get_community(z, principal, project.community_id),
            actions=[wf.actions[a] for a in project.allowed_actions],
            recorded=[
                Recorded(wf.actions[name], values)
                for name in wf.actions
                if (values := project.details.get(name)) and wf.actions[name].fields
            ],
            demands=every(
                lambda c: demands.list_demands(
                    z, principal, project_id=project_id, limit=500, cursor=c
                )
            ),
            pool=every(
                lambda c: demands.list_demands(
                    z, principal, community_id=project.community_id, pool=True, limit=500, cursor=c
                )
            )
            if can_add_demand
            else [],
            expenses=expenses.list_expenses(z, principal, project_id),
            history=history,
            can_record_expense=committee and project.state in wf.expenses_in,
            can_add_demand=can_add_demand,
            expense_fields=EXPENSE_FIELDS,
            demand_fields=DEMAND_FIELDS,
            self_management=[view_of(e) for e in history if e.type == SELF_MANAGED],
            can_record_self_management=committee and project.state == "completed",
            self_management_fields=SELF_MANAGEMENT_FIELDS,
        )

"""Drive a real server with nothing but a client generated from its OpenAPI document.

Run by ``test_generated_client.py`` in a subprocess whose path holds the generated package
``zizhi_api_client`` (and not the repository): ``python drive_generated_client.py BASE TOKEN``.
A project goes through all seven steps of ``self_governance``, with a demand, an expense, an
overspend the server refuses and a stale If-Match it refuses; it prints ``done`` at the end.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

from zizhi_api_client import AuthenticatedClient
from zizhi_api_client.api.actions import (
    fire_accept,
    fire_approve,
    fire_close,
    fire_close_collection,
    fire_complete_implementation,
    fire_evaluate,
    fire_submit_plan,
)
from zizhi_api_client.api.audit import verify_history
from zizhi_api_client.api.communities import create_community, get_funds, set_allocation
from zizhi_api_client.api.projects import (
    add_project_demand,
    get_project,
    list_projects,
    open_project,
    record_expense,
)
from zizhi_api_client.api.tokens import create_token
from zizhi_api_client.models import (
    AcceptRequest,
    AddProjectDemandNewDemand,
    AllocationIn,
    ApproveRequest,
    CloseCollectionRequest,
    CloseRequest,
    CommunityIn,
    CommunityInKind,
    CompleteImplementationRequest,
    EvaluateRequest,
    ExpenseIn,
    ListProjectsState,
    Problem,
    ProjectIn,
    ProjectView,
    SetAllocationFund,
    SubmitPlanRequest,
    TokenIn,
    TokenInRole,
)


def ok(response: Any, status: HTTPStatus = HTTPStatus.OK) -> Any:
    assert response.status_code == status, (response.status_code, response.content)
    assert not isinstance(response.parsed, Problem), response.parsed
    return response.parsed


def refused(response: Any, status: HTTPStatus, code: str) -> Problem:
    assert response.status_code == status, (response.status_code, response.content)
    problem = response.parsed
    assert isinstance(problem, Problem) and problem.code == code, response.content
    return problem


def main(base: str, admin_token: str) -> None:
    admin = AuthenticatedClient(base_url=base, token=admin_token, raise_on_unexpected_status=True)
    made = create_community.sync_detailed(
        client=admin,
        body=CommunityIn(
            id="lihe",
            name="里河社区",
            street="金阊街道",
            district="姑苏区",
            kind=CommunityInKind.URBAN,
        ),
    )
    ok(made, HTTPStatus.CREATED)
    assert made.headers["Location"] == "/api/v1/communities/lihe"
    token = ok(
        create_token.sync_detailed(
            client=admin,
            body=TokenIn(name="里河社区居委会", role=TokenInRole.COMMITTEE, communities=["lihe"]),
        ),
        HTTPStatus.CREATED,
    ).token
    committee = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

    opened = open_project.sync_detailed(
        client=committee,
        body=ProjectIn(
            community_id="lihe",
            workflow="self_governance",
            title="老新村消防通道“最后一公里”改善",
            category="居民自治类",
        ),
    )
    project: ProjectView = ok(opened, HTTPStatus.CREATED)
    assert opened.headers["Location"] == f"/api/v1/projects/{project.id}"
    assert opened.headers["ETag"] == f'"{project.version}"'
    ok(
        set_allocation.sync_detailed(
            "lihe",
            SetAllocationFund.SELF_GOVERNANCE,
            project.year,
            client=admin,
            body=AllocationIn(allocated_fen=5_000_000),
        )
    )

    demand = add_project_demand.sync_detailed(
        project.id,
        client=committee,
        body=AddProjectDemandNewDemand(content="主干道堆满杂物，消防车进不来", resident="王老伯"),
    )
    ok(demand, HTTPStatus.CREATED)
    etag = demand.headers["ETag"]
    first_etag = etag

    # The seven steps, each sent with the ETag of the answer before it.
    steps: list[tuple[Any, Any, str]] = [
        (fire_close_collection, CloseCollectionRequest(), "screening"),
        (fire_accept, AcceptRequest(note="居民反映集中"), "planning"),
        (fire_submit_plan, SubmitPlanRequest(budget_fen=1_000_000, plan="清理主干道"), "review"),
        (
            fire_approve,
            ApproveRequest(
                council_size=9, attendees=7, votes_for=6, votes_against=1, abstentions=0
            ),
            "implementation",
        ),
    ]
    for module, body, state in steps:
        answer = module.sync_detailed(project.id, client=committee, body=body, if_match=etag)
        project = ok(answer)
        assert project.state == state, (project.state, state)
        etag = answer.headers["ETag"]
    assert project.reserved_fen == 1_000_000

    expense = record_expense.sync_detailed(
        project.id,
        client=committee,
        body=ExpenseIn(
            amount_fen=400_000,
            payee="苏州某物业管理有限公司",
            invoice_no="32010012345678",
            description="杂物清运",
        ),
    )
    assert ok(expense, HTTPStatus.CREATED).amount_fen == 400_000
    assert expense.headers["Location"].startswith(f"/api/v1/projects/{project.id}/expenses/")
    etag = expense.headers["ETag"]

    overspend = record_expense.sync_detailed(
        project.id,
        client=committee,
        body=ExpenseIn(
            amount_fen=600_001,
            payee="苏州某物业管理有限公司",
            invoice_no="32010012345679",
            description="超出预留",
        ),
    )
    refused(overspend, HTTPStatus.CONFLICT, "fund_cap_exceeded")

    stale = fire_complete_implementation.sync_detailed(
        project.id,
        client=committee,
        body=CompleteImplementationRequest(report="通道已疏通"),
        if_match=first_etag,
    )
    refused(stale, HTTPStatus.PRECONDITION_FAILED, "version_conflict")
    assert stale.headers["ETag"] == etag

    for module, body, state in [
        (
            fire_complete_implementation,
            CompleteImplementationRequest(report="通道已疏通"),
            "evaluation",
        ),
        (fire_evaluate, EvaluateRequest(score=5, report="居民满意度高"), "feedback"),
        (fire_close, CloseRequest(notice="项目已办结", satisfied=86, unsatisfied=3), "completed"),
    ]:
        answer = module.sync_detailed(project.id, client=committee, body=body, if_match=etag)
        project = ok(answer)
        assert project.state == state, (project.state, state)
        etag = answer.headers["ETag"]

    final = ok(get_project.sync_detailed(project.id, client=committee))
    assert (final.state, final.reserved_fen, final.spent_fen) == ("completed", 0, 400_000)
    assert final.details.additional_properties["approve"].additional_properties["votes_for"] == 6
    listed = ok(list_projects.sync_detailed(client=committee, state=ListProjectsState.COMPLETED))
    assert [p.id for p in listed.items] == [project.id]
    (fund,) = [
        f
        for f in ok(get_funds.sync_detailed("lihe", client=committee, year=project.year))
        if f.fund == "self_governance"
    ]
    assert (fund.allocated_fen, fund.reserved_fen, fund.spent_fen) == (5_000_000, 0, 400_000)
    report = ok(verify_history.sync_detailed(client=admin))
    assert report.ok, report
    print("done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

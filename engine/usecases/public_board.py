"""What anyone may read or send without signing in: the notice board (公示) and the intake.

The board shows a community's projects of one year — step, budget, spending, the council's
vote and the closing notice — and its fund totals. It never shows a resident's name or
contact: it reads nothing from the demands table but counts.

The intake adds a demand to the community's pool as a resident (no account), at most
``INTAKE_LIMIT`` times per address within ``INTAKE_WINDOW``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFound
from engine.model import CLI, IdempotencyKey, check_year, fiscal_year
from engine.store.tables import communities
from engine.store.uow import Zizhi
from engine.usecases import demands, funds, projects
from engine.usecases.communities import CommunityView, get_community
from engine.usecases.demands import DemandView
from engine.usecases.funds import FundView
from engine.usecases.overview import every
from engine.usecases.web_sign_in import admit

INTAKE_WINDOW = timedelta(hours=1)
INTAKE_LIMIT = 5


@dataclass(frozen=True, slots=True)
class PublicCommunity:
    id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class PublicStreet:
    street: str
    district: str
    communities: list[PublicCommunity]


@dataclass(frozen=True, slots=True)
class PublicVote:
    council_size: int
    attendees: int
    votes_for: int
    votes_against: int
    abstentions: int


@dataclass(frozen=True, slots=True)
class PublicProject:
    id: int
    title: str
    category: str
    workflow_label: str
    state: str
    state_label: str
    final: bool
    budget_fen: int | None
    spent_fen: int
    vote: PublicVote | None
    notice: str | None  # the closing notice (公示反馈), once closed
    satisfied: int | None
    unsatisfied: int | None
    updated_at: datetime
    # 自治管理: the latest follow-up after completion (who keeps it up, when checked, found)
    self_management: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class NoticeBoard:
    community: CommunityView
    year: int
    funds: list[FundView]
    projects: list[PublicProject]


def streets(z: Zizhi) -> list[PublicStreet]:
    """Every community, grouped by district and street."""
    c = communities.c
    with z.read() as conn:
        rows = conn.execute(
            sa.select(c.id, c.name, c.kind, c.street, c.district).order_by(
                c.district, c.street, c.id
            )
        ).all()
    return [
        PublicStreet(
            street=street,
            district=district,
            communities=[PublicCommunity(r.id, r.name, r.kind) for r in group],
        )
        for (district, street), group in groupby(rows, key=lambda r: (r.district, r.street))
    ]


def notice_board(z: Zizhi, community_id: str, year: int | None = None) -> NoticeBoard:
    """A community's public notice board for ``year`` (this year by default); no resident's name."""
    with z.snapshot():  # one moment for every read below
        year = check_year(year if year is not None else fiscal_year(z.clock()))
        community = get_community(z, CLI, community_id)
        shown = [
            _public(z, p)
            for p in every(
                lambda c: projects.list_projects(
                    z, CLI, community_id=community_id, year=year, limit=500, cursor=c
                )
            )
        ]
        return NoticeBoard(community, year, funds.funds(z, CLI, community_id, year=year), shown)


def submit_demand(
    z: Zizhi,
    community_id: str,
    data: Mapping[str, Any],
    *,
    address: str,
    idempotency: IdempotencyKey | None = None,
) -> DemandView:
    """A resident's demand into the community's pool; the answer carries no personal data.

    ``idempotency`` (the intake form's own key): the same form sent twice — a double click —
    records one demand and counts as one submission against the address's limit."""
    if idempotency is None or not z.answered(idempotency):
        admit(
            z,
            "提交过于频繁，请稍后再试；如有急事请直接联系社区居委会",
            ("public_demand", address, INTAKE_WINDOW, INTAKE_LIMIT),
        )
    with z.read() as conn:
        if (
            conn.execute(
                sa.select(communities.c.id).where(communities.c.id == community_id)
            ).first()
            is None
        ):
            raise NotFound(f"社区“{community_id}”不存在")
    return demands.record_demand(z, None, community_id, data, idempotency=idempotency)


def _public(z: Zizhi, p: projects.ProjectView) -> PublicProject:
    wf = z.workflows.get(p.workflow, p.workflow_version)
    vote = p.details.get("approve")
    closing = p.details.get("close") or {}
    return PublicProject(
        id=p.id,
        title=p.title,
        category=p.category,
        workflow_label=wf.label,
        state=p.state,
        state_label=p.state_label,
        final=wf.is_final(p.state),
        budget_fen=p.budget_fen,
        spent_fen=p.spent_fen,
        vote=PublicVote(**{k: vote[k] for k in PublicVote.__slots__}) if vote else None,
        notice=closing.get("notice"),
        satisfied=closing.get("satisfied"),
        unsatisfied=closing.get("unsatisfied"),
        updated_at=p.updated_at,
        self_management=p.details.get("self_management"),
    )

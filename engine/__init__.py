"""Zizhi's engine: workflows, the fund ledger and the tamper-evident history. No HTTP here.

Use cases are functions in ``engine.places``, ``engine.projects``, ``engine.demands``,
``engine.access`` and ``engine.audit``; each takes a ``Zizhi`` (the dependencies) and the
``Principal`` acting, and runs as one transaction.
"""

from engine.access import CLI, Principal
from engine.db import Database
from engine.domain import CommunityKind, Fund, Role
from engine.errors import ZizhiError
from engine.ledger import AllocationPolicy
from engine.uow import IdempotencyKey, Zizhi

# --- web pages (issue 9): the use cases and names api/web reads ---------------------------------
# isort: split
from engine.audit import EventFilter, EventView, project_history, query_events, stream_events
from engine.audit import verify as verify_history
from engine.demands import (
    DEMAND_FIELDS,
    DemandView,
    add_to_project,
    list_demands,
    record_demand,
)
from engine.domain import FISCAL_TZ, fiscal_year
from engine.errors import (
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
    VersionConflict,
)
from engine.fields import FieldSpec
from engine.places import (
    CommunityView,
    FundView,
    StatementLine,
    funds,
    get_community,
    list_communities,
    set_allocation,
    statement,
)
from engine.projects import (
    EXPENSE_FIELDS,
    ProjectView,
    fire,
    get_project,
    list_projects,
    open_project,
    record_expense,
)
from engine.rules.form_input import display_label, read_form
from engine.rules.money import fen_as_yuan_text, format_fen, parse_count, parse_yuan
from engine.usecases.overview import Overview, every, overview
from engine.usecases.project_page import ProjectPage, project_page
from engine.usecases.public_board import NoticeBoard, PublicStreet, notice_board
from engine.usecases.public_board import streets as public_streets
from engine.usecases.public_board import submit_demand as submit_public_demand
from engine.usecases.web_sign_in import Session as WebSession
from engine.usecases.web_sign_in import SignedIn, TooManyAttempts
from engine.usecases.web_sign_in import session as web_session
from engine.usecases.web_sign_in import sign_in as web_sign_in
from engine.usecases.web_sign_in import sign_out as web_sign_out
from engine.workflow import ActionDef, Workflow

# --- end of web pages block ---------------------------------------------------------------------

__all__ = [
    "CLI",
    "AllocationPolicy",
    "CommunityKind",
    "Database",
    "Fund",
    "IdempotencyKey",
    "Principal",
    "Role",
    "Zizhi",
    "ZizhiError",
    # web pages (issue 9)
    "DEMAND_FIELDS",
    "EXPENSE_FIELDS",
    "FISCAL_TZ",
    "ActionDef",
    "CommunityView",
    "DemandView",
    "EventFilter",
    "EventView",
    "FieldSpec",
    "Forbidden",
    "FundView",
    "NoticeBoard",
    "NotFound",
    "Overview",
    "ProjectPage",
    "ProjectView",
    "PublicStreet",
    "SignedIn",
    "StatementLine",
    "TooManyAttempts",
    "Unauthenticated",
    "ValidationFailed",
    "VersionConflict",
    "WebSession",
    "Workflow",
    "add_to_project",
    "display_label",
    "every",
    "fen_as_yuan_text",
    "fire",
    "fiscal_year",
    "format_fen",
    "funds",
    "get_community",
    "get_project",
    "list_communities",
    "list_demands",
    "list_projects",
    "notice_board",
    "open_project",
    "overview",
    "parse_count",
    "parse_yuan",
    "project_history",
    "project_page",
    "public_streets",
    "query_events",
    "read_form",
    "record_demand",
    "record_expense",
    "set_allocation",
    "statement",
    "stream_events",
    "submit_public_demand",
    "verify_history",
    "web_session",
    "web_sign_in",
    "web_sign_out",
]

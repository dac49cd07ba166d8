"""Zizhi's engine: workflows, the fund ledger and the tamper-evident history. No HTTP here.

This module is the engine's only public surface: ``api/``, ``demo/`` and ``workflows/``
import from ``engine`` and nothing deeper. Inside, lower layers never import higher ones::

    engine.errors, engine.model      records and values, no SQL
        ↑
    engine.rules                     workflows, their loader, conditions, effects, fields
        ↑
    engine.store                     tables, statements, history chains, ledger, unit of work
        ↑
    engine.usecases                  one function per use case, each one transaction
        ↑
    engine (this surface)  ←  api, demo, workflows

Each use case takes a ``Zizhi`` (the dependencies) and the ``Principal`` acting.
"""

from engine.errors import (
    ActionNotAllowed,
    AlreadyExists,
    DefinitionError,
    Forbidden,
    FundCapExceeded,
    GuardFailed,
    IdempotencyConflict,
    NotFound,
    Unauthenticated,
    ValidationFailed,
    VersionConflict,
    YearClosed,
    ZizhiError,
)
from engine.model import (
    CLI,
    FISCAL_TZ,
    MAX_YEAR,
    MIN_YEAR,
    PUBLIC,
    Account,
    Actor,
    AllocationPolicy,
    Balance,
    CommunityKind,
    Fund,
    IdempotencyKey,
    Principal,
    ProjectRecord,
    Role,
    check_year,
    fiscal_year,
    utc_now,
)
from engine.rules.fields import MAX_AMOUNT_FEN, FieldSpec, optional_text_pattern, text_pattern
from engine.rules.loader import load_definition
from engine.rules.workflow import Workflow, WorkflowRegistry
from engine.store.db import Database, UnknownSchema
from engine.store.history import SYSTEM_CHAIN, canonical_json
from engine.store.history import iso as history_time
from engine.store.pagination import Page
from engine.store.uow import Zizhi
from engine.usecases.access_log import AccessView, access_records
from engine.usecases.audit import (
    EventFilter,
    EventView,
    ReplayedProject,
    TreeReport,
    VerifyReport,
    project_history,
    query_events,
    replay_project,
    stream_events,
    verify,
    verify_helper,
    verify_tree,
)
from engine.usecases.checkpoints import (
    CheckpointReport,
    CheckpointView,
    PublicKeyView,
    checkpoint,
    checkpoint_json,
    ensure_signing_key,
    latest_checkpoint,
    parse_checkpoint,
    public_key,
    publish_checkpoint,
    verify_checkpoint,
    verify_signature,
)
from engine.usecases.communities import (
    COMMUNITY_ID_PATTERN,
    PLACE_FIELDS,
    CommunityView,
    create_community,
    get_community,
    list_communities,
)
from engine.usecases.demands import (
    DEMAND_FIELDS,
    DEMAND_LINK_FIELDS,
    DemandView,
    add_to_project,
    erase_personal_data,
    list_demands,
    record_demand,
)
from engine.usecases.expenses import EXPENSE_FIELDS, ExpenseView, list_expenses, record_expense
from engine.usecases.funds import FundView, StatementLine, funds, set_allocation, statement
from engine.usecases.projects import (
    PROJECT_FIELDS,
    ProjectView,
    definitions_missing,
    fire,
    get_project,
    list_projects,
    open_project,
)
from engine.usecases.proofs import (
    ConsistencyProof,
    InclusionProof,
    consistency_proof,
    inclusion_proof,
)
from engine.usecases.tokens import (
    TOKEN_PREFIX,
    TokenView,
    authenticate_token,
    cached_principal,
    create_token,
    has_admin,
    hash_token,
    list_tokens,
    revoke_token,
)
from engine.usecases.users import UserView, authenticate_password, create_user
from engine.usecases.years import YearView, close_year, reopen_year, year_status

# isort: split
# --- added for the API contract (issue 7): one demand, for the Location of a new one ---
from engine.usecases.demands import get_demand

# --- web pages (issue 9): the use cases and names api/web reads ---------------------------------
# isort: split
from engine.rules.form_input import display_label, read_form
from engine.rules.money import fen_as_yuan_text, format_fen, parse_count, parse_yuan
from engine.rules.workflow import ActionDef
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

# --- end of web pages block ---------------------------------------------------------------------

# isort: split
# --- reports, the menu library and self-management (issue 12) ---
from engine.rules.menu import UNCLASSIFIED, Category, Menu, MenuItem, SubItem, load_menu
from engine.usecases.reports import (
    AnnualReport,
    CommunityFigures,
    DistrictFigures,
    Figures,
    FundFigures,
    StreetFigures,
    annual_report,
    public_annual_report,
)
from engine.usecases.self_management import (
    SELF_MANAGEMENT_FIELDS,
    SelfManagementView,
    get_self_management,
    list_self_management,
    record_self_management,
)
from engine.usecases.users import PasswordHash, hash_password

# isort: split
# --- webhooks (issue 10): subscriptions, the outbox's claim, signing, formats, SSRF guard ---
from engine.rules.webhooks.formats import FORMATS as WEBHOOK_FORMATS
from engine.rules.webhooks.formats import bot_refused, wire_body
from engine.rules.webhooks.formats import signed_url as signed_bot_url
from engine.rules.webhooks.guard import Refused, UrlGuard, parse_networks
from engine.rules.webhooks.signing import headers as signature_headers
from engine.store.dispatch import Claimed, Outcome
from engine.store.dispatch import any_due as any_deliveries_due
from engine.store.dispatch import claim as claim_deliveries
from engine.usecases import webhook_deliveries as deliveries
from engine.usecases import webhooks as subscriptions
from engine.usecases.webhook_deliveries import AttemptView, DeliveryView, record_attempt
from engine.usecases.webhooks import WebhookView

__all__ = [
    # reports, the menu library and self-management (issue 12)
    "UNCLASSIFIED",
    "Category",
    "Menu",
    "MenuItem",
    "SubItem",
    "load_menu",
    "AnnualReport",
    "CommunityFigures",
    "DistrictFigures",
    "Figures",
    "FundFigures",
    "StreetFigures",
    "annual_report",
    "public_annual_report",
    "PasswordHash",
    "hash_password",
    "SELF_MANAGEMENT_FIELDS",
    "SelfManagementView",
    "list_self_management",
    "get_self_management",
    "record_self_management",
    "CheckpointReport",
    "CheckpointView",
    "ConsistencyProof",
    "InclusionProof",
    "PublicKeyView",
    "checkpoint",
    "checkpoint_json",
    "consistency_proof",
    "ensure_signing_key",
    "inclusion_proof",
    "latest_checkpoint",
    "parse_checkpoint",
    "public_key",
    "publish_checkpoint",
    "verify_checkpoint",
    "verify_signature",
    # webhooks (issue 10)
    "COMMUNITY_ID_PATTERN",
    "WEBHOOK_FORMATS",
    "AttemptView",
    "Claimed",
    "DeliveryView",
    "Outcome",
    "Refused",
    "UrlGuard",
    "WebhookView",
    "any_deliveries_due",
    "bot_refused",
    "claim_deliveries",
    "parse_networks",
    "record_attempt",
    "signature_headers",
    "signed_bot_url",
    "deliveries",
    "subscriptions",
    "wire_body",
    # the engine
    "CLI",
    "DEMAND_FIELDS",
    "DEMAND_LINK_FIELDS",
    "EXPENSE_FIELDS",
    "FISCAL_TZ",
    "MAX_AMOUNT_FEN",
    "MAX_YEAR",
    "MIN_YEAR",
    "PLACE_FIELDS",
    "PROJECT_FIELDS",
    "PUBLIC",
    "SYSTEM_CHAIN",
    "TOKEN_PREFIX",
    "Account",
    "ActionNotAllowed",
    "Actor",
    "AllocationPolicy",
    "AlreadyExists",
    "Balance",
    "CommunityKind",
    "CommunityView",
    "Database",
    "UnknownSchema",
    "DefinitionError",
    "DemandView",
    "EventFilter",
    "EventView",
    "ExpenseView",
    "FieldSpec",
    "optional_text_pattern",
    "text_pattern",
    "Forbidden",
    "Fund",
    "FundCapExceeded",
    "FundView",
    "GuardFailed",
    "IdempotencyConflict",
    "IdempotencyKey",
    "NotFound",
    "Page",
    "Principal",
    "ProjectRecord",
    "ProjectView",
    "ReplayedProject",
    "Role",
    "StatementLine",
    "TokenView",
    "Unauthenticated",
    "UserView",
    "ValidationFailed",
    "TreeReport",
    "VerifyReport",
    "VersionConflict",
    "Workflow",
    "WorkflowRegistry",
    "YearClosed",
    "YearView",
    "Zizhi",
    "ZizhiError",
    "add_to_project",
    "authenticate_password",
    "authenticate_token",
    "cached_principal",
    "canonical_json",
    "check_year",
    "close_year",
    "create_community",
    "create_token",
    "create_user",
    "erase_personal_data",
    "definitions_missing",
    "fire",
    "AccessView",
    "access_records",
    "history_time",
    "fiscal_year",
    "funds",
    "get_community",
    "get_project",
    "has_admin",
    "hash_token",
    "list_communities",
    "list_demands",
    "list_expenses",
    "list_projects",
    "list_tokens",
    "load_definition",
    "open_project",
    "project_history",
    "query_events",
    "record_demand",
    "record_expense",
    "reopen_year",
    "replay_project",
    "revoke_token",
    "set_allocation",
    "statement",
    "stream_events",
    "utc_now",
    "verify",
    "verify_helper",
    "verify_tree",
    "year_status",
    # --- added for the API contract (issue 7) ---
    "get_demand",
    # web pages (issue 9)
    "ActionDef",
    "NoticeBoard",
    "Overview",
    "ProjectPage",
    "PublicStreet",
    "SignedIn",
    "TooManyAttempts",
    "WebSession",
    "display_label",
    "every",
    "fen_as_yuan_text",
    "format_fen",
    "notice_board",
    "overview",
    "parse_count",
    "parse_yuan",
    "project_page",
    "public_streets",
    "read_form",
    "submit_public_demand",
    "web_session",
    "web_sign_in",
    "web_sign_out",
]

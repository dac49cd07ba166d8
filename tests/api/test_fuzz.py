"""Fuzzing the API against its own OpenAPI document (schemathesis, in-process).

Every documented operation gets the document's examples, its coverage cases (each boundary,
each missing or wrongly typed field, each undeclared method) and a bounded number of
generated requests, once with an admin token and once with a committee token scoped to a
community that has projects in every state. Every answer must be documented: no 5xx, a
documented status code and content type, a body that matches its schema (problem documents
included); bad input must be refused, good input not, and a missing token must matter.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData
from starlette.types import Receive, Scope, Send

import engine
from api.app import create_app
from api.settings import Settings
from engine import UrlGuard
from engine.model import CLI
from engine.rules.workflow import WorkflowRegistry
from engine.store.db import Database
from engine.store.uow import Zizhi
from tests.conftest import DatabaseFactory
from tests.factories import World
from workflows import load_registry

# The community the document's examples name, so that the examples hit real data.
COMMUNITY = "lihe"
OTHER = "other"
# Generated requests per operation; the examples and coverage phases add their own bounded
# cases. Enough to find the odd input, small enough for CI on two cores.
MAX_EXAMPLES = 50
SEED = 20260101
# Small enough that some generated bodies pass it, to see payload_too_large answered as
# documented; large enough for every example body.
BODY_LIMIT = 8 * 1024

# Text that has broken web services (and databases: PostgreSQL text never holds NUL), mixed
# into generated strings: valid where the document allows it, as bad input where it does not.
AWKWARD = [
    *("\x00", "lihe\x00", "a\x00b", "\x1f", "lihe\n", " lihe", "\t", "\u202e", "\ufeff"),
    *("%", "_", "\\", "*", "ledger.*", "' OR '1'='1", "\U0001d518", "9" * 30, "-1", "null"),
]

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "dictionaries": {"awkward": {"values": AWKWARD}},
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "dictionaries": {"string": {"dictionary": "awkward", "probability": 0.2}},
        },
        "checks": {
            # A valid request may still be refused for the state it meets: 409 (not from this
            # step, a guard, the fund cap), 412 (a stale If-Match), or for its size (413, see
            # BODY_LIMIT). Schemathesis already expects 401/403/404/409 here.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "413"]
            },
            # Schemathesis's list, and 413: a body over the limit is refused before it is read;
            # and 412: a stale If-Match is answered before the body is looked at, as RFC 9110
            # §13.2.1 orders it (preconditions are evaluated before processing the content).
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "412", "413", "415"),
                    "422",
                    *("428", "429", "5xx"),
                ]
            },
        },
    }
)


@dataclass
class Current:
    """The app and token of the running test; the schema is loaded once, at collection."""

    app: FastAPI
    z: Zizhi | None = None
    token: str = ""


def _document_only() -> FastAPI:
    # The OpenAPI document depends on the loaded workflows only, so this database is never
    # opened; ``target`` checks that every app under test serves the very same document.
    unused = Database(f"sqlite:///{tempfile.gettempdir()}/zizhi-openapi-never-opened.db")
    return create_app(Zizhi(unused, load_registry()), Settings())


CURRENT = Current(_document_only())
ACTION_LABEL = "POST /api/v1/projects/{project_id}/actions/"


async def under_test(scope: Scope, receive: Receive, send: Send) -> None:
    await CURRENT.app(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", under_test, config=CONFIG)


# Some cases are built at collection, before any token exists: they carry this stand-in,
# which the test swaps for the running test's token when it sends them.
STAND_IN = "Bearer <token of the running test>"


@schema.auth(refresh_interval=None)
class Bearer:
    """Schemathesis leaves the token off (or spoils it) where it tests a missing one."""

    def get(self, case: Any, context: Any) -> str:
        return STAND_IN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


@schema.hook
def flatmap_case(context: Any, case: Any) -> Any:
    """Aim half the valid paths at what exists, so that more than not_found is exercised."""
    known = {
        "community_id": st.sampled_from([COMMUNITY, OTHER]),
        "project_id": st.integers(1, 12),
    }
    names = [name for name in known if name in (case.path_parameters or {})]
    if not names or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)):
        return st.just(case)

    def aimed(real: dict[str, Any]) -> Any:
        case.path_parameters = {**case.path_parameters, **real}
        return case

    return st.one_of(st.just(case), st.fixed_dictionaries({n: known[n] for n in names}).map(aimed))


# Fields whose validity depends on other fields or on stored data, which no JSON Schema can
# state: a schema-valid request refused for them (422, naming only them) is no finding.
BEYOND_SCHEMA: dict[str, set[str]] = {
    # A cursor is an opaque string that only the server issues.
    "*": {"cursor"},
    # as_of's fiscal year must be one the API keeps (2000–2100); the engine names as_of.
    "GET /api/v1/communities/{community_id}/funds": {"year", "as_of"},
    # Workflows are data: GET /api/v1/workflows lists the loaded ones. So is the menu
    # library (GET /api/v1/menu): an item is named by its id or label as people type them,
    # and a category given with it must be the item's.
    "POST /api/v1/projects": {"workflow", "menu_item", "category"},
    # A check date is a real date, typed as people type it, and not later than today.
    "POST /api/v1/projects/{project_id}/self-management": {"checked_on"},
    # The scope a role takes (communities for a committee, streets for a street officer,
    # neither for an admin), and the communities and streets named must exist.
    "POST /api/v1/tokens": {"role", "communities", "streets"},
    # The policy floor depends on the fund and on the community's kind (urban or rural).
    "PUT /api/v1/communities/{community_id}/funds/{fund}/{year}": {"allocated_fen"},
    # A tree size must be one the Merkle tree has reached, and first <= second.
    "GET /api/v1/audit/proofs/inclusion": {"tree_size", "event_id"},
    "GET /api/v1/audit/proofs/consistency": {"first", "second"},
    # A year can be closed only once it has ended: that depends on today's date.
    "POST /api/v1/years/{year}/close": {"year"},
    # A webhook's URL must resolve to a public address, its events be known types, its
    # filter name a community or street that exists (one of the two), and only a DingTalk
    # robot takes a bot secret.
    "POST /api/v1/webhooks": {"url", "events", "community_id", "street", "bot_secret"},
    "PATCH /api/v1/webhooks/{webhook_id}": {
        "url",
        "events",
        "community_id",
        "street",
        "bot_secret",
    },
}


def _public_resolver(host: str, port: int) -> list[str]:
    """Every name is a public address here: the fuzzer's hosts are never looked up, and no
    dispatcher runs to send anything to them."""
    return ["93.184.216.34"]


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Drop a "valid request refused" failure only for a rule no JSON Schema can state."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    problem = response.json()
    # The same Idempotency-Key was sent before with another request: state, not shape.
    if problem.get("code") == "idempotency_conflict":
        return False
    fields = set(problem.get("errors") or {})
    if fields and fields <= BEYOND_SCHEMA["*"] | BEYOND_SCHEMA.get(case.operation.label, set()):
        return False
    # JSON Schema counts 1.0 as an integer; the API never takes a JSON number with a
    # fraction part for a count or an amount of fen, on purpose.
    body = case.body if isinstance(case.body, dict) else {}
    if fields and all(isinstance(v := body.get(f), float) and v.is_integer() for f in fields):
        return False
    if case.operation.label.startswith(ACTION_LABEL):
        return _fits_the_action(case)
    return True


def _fits_the_action(case: Any) -> bool:
    """Whether the body is one the action in the path takes, on this project.

    An action's schema is the union of what every definition declaring it takes; which
    definition applies depends on the project's workflow (``street_approve`` is no action of
    a self-governance project).
    """
    z = CURRENT.z
    assert z is not None
    project = engine.get_project(z, CLI, case.path_parameters["project_id"])
    workflow = z.workflows.get(project.workflow, project.workflow_version)
    action = workflow.actions.get(case.operation.label.removeprefix(ACTION_LABEL))
    body = case.body if isinstance(case.body, dict) else {}
    return action is not None and jsonschema_rs.validator_for(action.request_schema()).is_valid(
        body
    )


@dataclass
class Target:
    z: Zizhi
    app: FastAPI
    admin: str
    committee: str


def _seed(z: Zizhi) -> Target:
    """里河社区 with a project in every state (ids 1–9), a pooled demand, another community."""
    world = World(z)
    engine.create_community(
        z, CLI, id=COMMUNITY, name="里河社区", street="金阊街道", district="姑苏区", kind="urban"
    )
    engine.create_community(
        z, CLI, id=OTHER, name="别的社区", street="别的街道", district="姑苏区", kind="urban"
    )
    committee = world.committee(COMMUNITY)
    for workflow, state in [
        ("self_governance", "demand_collection"),
        ("self_governance", "screening"),
        ("self_governance", "planning"),
        ("self_governance", "review"),
        ("self_governance", "implementation"),
        ("party_service", "street_review"),
        ("self_governance", "evaluation"),
        ("self_governance", "feedback"),
        ("self_governance", "completed"),
    ]:
        project = world.project(COMMUNITY, workflow=workflow, committee=committee)
        project = world.advance(project, state, budget_fen=500_000, committee=committee)
        if state == "implementation":
            engine.record_expense(
                z,
                committee,
                project.id,
                {
                    "amount_fen": 100_000,
                    "payee": "苏州某物业管理有限公司",
                    "invoice_no": "32010012345678",
                    "description": "杂物清运",
                },
            )
    engine.record_demand(z, committee, COMMUNITY, {"content": "楼道灯坏了", "resident": "王老伯"})
    world.project(OTHER)
    app = create_app(z, Settings(max_body_bytes=BODY_LIMIT))
    app.state.webhook_guard = UrlGuard(resolver=_public_resolver)
    return Target(
        z=z,
        app=app,
        admin=engine.create_token(z, CLI, name="模糊测试管理员", role="admin").token or "",
        committee=engine.create_token(
            z, CLI, name="里河社区居委会", role="committee", communities=[COMMUNITY]
        ).token
        or "",
    )


@pytest.fixture(scope="module")
def target(backend: str, databases: DatabaseFactory, registry: WorkflowRegistry) -> Target:
    # A database of its own: the admin closes fiscal years and revokes tokens here.
    target = _seed(Zizhi(databases.new(backend), registry))
    assert target.app.openapi() == schema.raw_schema
    return target


@pytest.fixture(params=["admin", "committee"])
def as_role(request: pytest.FixtureRequest, target: Target) -> None:
    CURRENT.app, CURRENT.z = target.app, target.z
    CURRENT.token = target.admin if request.param == "admin" else target.committee


@schema.parametrize()
def test_every_answer_is_documented(case: Any, as_role: None) -> None:
    headers = case.headers
    if (headers or {}).get("Authorization") == STAND_IN:
        case.headers = {**headers, "Authorization": f"Bearer {CURRENT.token}"}
    try:
        case.call_and_validate()
    finally:
        case.headers = headers  # a case built at collection is sent once per role and backend

"""The contract as a client generator and a careful HTTP client meet it (issue 7).

The document: ASCII names, one typed endpoint per workflow action, examples that fit their
schemas, headers and problems declared. The server: what the document says is sent is sent,
HEAD works wherever GET does, If-Match compares strongly, ids and enum values are checked.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

import jsonschema_rs
import pytest
import yaml

from api.app import create_app
from api.settings import Settings
from engine import Database, WorkflowRegistry, Zizhi, load_definition
from tests.api.client import Api
from tests.factories import VOTE, new_id
from workflows import DEFINITIONS_DIR, load_registry

PROBLEM = "application/problem+json"
ACTIONS = sorted({a for wf in load_registry().all() for a in wf.actions})


def document_of(registry: WorkflowRegistry) -> dict[str, Any]:
    # The document depends on the loaded workflows only: this database is never opened.
    unused = Database(f"sqlite:///{tempfile.gettempdir()}/zizhi-contract-never-opened.db")
    return create_app(Zizhi(unused, registry), Settings()).openapi()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return document_of(load_registry())


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({**schema, "components": spec["components"]})


# --- names a generator turns into package, module, class and function names ---------------


def test_title_tags_schema_names_and_titles_are_ascii(spec: dict[str, Any]) -> None:
    assert spec["info"]["title"] == "Zizhi API"
    assert all(tag["name"].isascii() for tag in spec["tags"])
    for method, path, op in _operations(spec):
        assert all(tag.isascii() for tag in op["tags"]), (method, path)
    for name, schema in spec["components"]["schemas"].items():
        assert name.isascii() and schema.get("title", name).isascii(), name
        for field, prop in schema.get("properties", {}).items():
            assert prop.get("title", field).isascii(), (name, field)


def test_operation_ids_are_short_unique_and_snake_case(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][a-z_]{2,31}", i) for i in ids), ids
    assert {"list_projects", "get_project", "open_project", "fire_approve"} <= set(ids)
    assert {f"fire_{a}" for a in ACTIONS} <= set(ids)


# --- one typed endpoint per action ---------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_has_its_own_schema_and_an_example_that_fits_it(
    spec: dict[str, Any], action: str
) -> None:
    operation = spec["paths"][f"/api/v1/projects/{{project_id}}/actions/{action}"]["post"]
    body = operation["requestBody"]
    content = body["content"]["application/json"]
    ref = content["schema"]["$ref"]
    name = ref.rsplit("/", 1)[1]
    schema = spec["components"]["schemas"][name]
    assert name.endswith("Request") and schema["title"] == name
    assert schema["additionalProperties"] is False
    # A body is required exactly where the action has required fields.
    assert body["required"] is bool(schema.get("required"))
    validator = _validator(spec, {"$ref": ref})
    examples = [content["example"], *schema["examples"]]
    for example in examples:
        assert validator.is_valid(example), (action, example)
    # Nothing ties two actions' bodies together any more: each path has one schema.
    assert "oneOf" not in content["schema"]


def test_every_documented_example_fits_its_schema(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            validator = _validator(spec, media["schema"])
            examples = [e["value"] for e in media.get("examples", {}).values()]
            if "example" in media:
                examples.append(media["example"])
            for example in examples:
                assert validator.is_valid(example), (method, path, example)
    for name, schema in spec["components"]["schemas"].items():
        validator = _validator(spec, {"$ref": f"#/components/schemas/{name}"})
        for example in schema.get("examples", []):
            assert validator.is_valid(example), (name, example)


def _with_version_2(changes: dict[str, Any]) -> WorkflowRegistry:
    raw = yaml.safe_load((DEFINITIONS_DIR / "self_governance.v1.yaml").read_text("utf-8"))
    raw["version"] = 2
    raw["actions"].update(changes)
    v2 = load_definition(raw, source="self_governance.v2.yaml")
    return WorkflowRegistry([*load_registry().all(), v2])


def test_a_new_definition_version_adds_and_changes_action_schemas_with_no_route_code() -> None:
    approve = yaml.safe_load((DEFINITIONS_DIR / "self_governance.v1.yaml").read_text("utf-8"))[
        "actions"
    ]["approve"]
    spec = document_of(
        _with_version_2(
            {
                # approve also takes the meeting's minutes in v2 (v1 does not know them)
                "approve": {
                    **approve,
                    "fields": {
                        **approve["fields"],
                        "minutes": {"type": "text", "label": "会议纪要"},
                    },
                },
                "publish": {
                    "label": "公示",
                    "from": ["feedback"],
                    "to": "feedback",
                    "who": ["committee"],
                    "fields": {"notice": {"type": "text", "label": "公示内容"}},
                },
            }
        )
    )
    publish = spec["paths"]["/api/v1/projects/{project_id}/actions/publish"]["post"]
    assert publish["operationId"] == "fire_publish"
    assert spec["components"]["schemas"]["PublishRequest"]["required"] == ["notice"]
    union = spec["components"]["schemas"]["ApproveRequest"]
    # Required only where every definition requires it: a v1 project's body stays valid.
    assert "minutes" in union["properties"] and "minutes" not in union["required"]
    assert set(VOTE) <= set(union["required"])
    assert _validator(spec, union).is_valid(VOTE)
    assert _validator(spec, union).is_valid({**VOTE, "minutes": "全体同意"})


def test_a_field_typed_differently_in_two_definitions_accepts_either_type() -> None:
    spec = document_of(
        _with_version_2(
            {
                "accept": {
                    "label": "通过筛选",
                    "from": ["screening"],
                    "to": "planning",
                    "who": ["committee"],
                    "fields": {"note": {"type": "int", "label": "评分", "max": 10}},
                }
            }
        )
    )
    accept = spec["components"]["schemas"]["AcceptRequest"]
    validator = _validator(spec, accept)
    assert validator.is_valid({"note": "同意"}) and validator.is_valid({"note": 7})
    assert not validator.is_valid({"note": True})


def _integers(spec: dict[str, Any], schema: dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """Every integer schema in a request body, with where it is."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _integers(spec, spec["components"]["schemas"][name], name)
    found = [(where, schema)] if schema.get("type") == "integer" else []
    for branch in (*schema.get("oneOf", []), *schema.get("anyOf", [])):
        found += _integers(spec, branch, where)
    for field, prop in schema.get("properties", {}).items():
        found += _integers(spec, prop, f"{where}.{field}")
    return found


def test_every_integer_a_body_takes_is_bounded_as_the_engine_bounds_it(
    spec: dict[str, Any],
) -> None:
    # An unbounded integer in the document is a schema-valid request the server refuses
    # (the pooled demand's demand_id was one: the engine takes 1 to 2**62).
    for method, path, op in _operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            for where, schema in _integers(spec, media["schema"], f"{method} {path}"):
                assert "minimum" in schema and "maximum" in schema, where
    body = spec["paths"]["/api/v1/projects/{project_id}/demands"]["post"]["requestBody"]
    pooled = body["content"]["application/json"]["schema"]["oneOf"][1]
    assert pooled["properties"]["demand_id"]["maximum"] == 2**62


# --- what is declared is sent, and what is sent is declared --------------------------------


def test_every_operation_declares_405_and_500_as_problems(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        for status in ("405", "500"):
            assert PROBLEM in op["responses"][status]["content"], (method, path, status)


def test_etag_and_location_are_declared_where_they_are_sent(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    etag = [
        paths["/api/v1/projects"]["post"]["responses"]["201"],
        paths["/api/v1/projects/{project_id}"]["get"]["responses"]["200"],
        paths["/api/v1/projects/{project_id}/expenses"]["post"]["responses"]["201"],
        paths["/api/v1/projects/{project_id}/demands"]["post"]["responses"]["201"],
        *(
            paths[f"/api/v1/projects/{{project_id}}/actions/{a}"]["post"]["responses"]["200"]
            for a in ACTIONS
        ),
    ]
    assert all("ETag" in r["headers"] for r in etag)
    for method, path, op in _operations(spec):
        if "201" in op["responses"]:
            assert "Location" in op["responses"]["201"]["headers"], (method, path)


def test_problem_code_is_an_open_string_listing_the_known_codes(spec: dict[str, Any]) -> None:
    code = spec["components"]["schemas"]["Problem"]["properties"]["code"]
    assert code["type"] == "string" and "enum" not in code
    for known in ("fund_cap_exceeded", "version_conflict", "method_not_allowed"):
        assert known in code["description"] and known in code["examples"]


def test_free_form_fields_and_workflows_are_typed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    details = schemas["ProjectView"]["properties"]["details"]
    assert details["additionalProperties"]["type"] == "object"
    assert schemas["EventView"]["properties"]["data"]["additionalProperties"]["anyOf"]
    first_bad = schemas["VerifyReport"]["properties"]["first_bad"]["anyOf"][0]
    assert schemas[first_bad["$ref"].rsplit("/", 1)[1]]["required"]
    workflows = spec["paths"]["/api/v1/workflows"]["get"]["responses"]["200"]
    items = workflows["content"]["application/json"]["schema"]["items"]
    assert items == {"$ref": "#/components/schemas/WorkflowDefinition"}


# --- behaviour, on both databases ---------------------------------------------------------


def test_the_workflows_answer_matches_its_schema(api: Api, spec: dict[str, Any]) -> None:
    answer = api.ok(api.get("/api/v1/workflows", api.admin))
    schema = spec["paths"]["/api/v1/workflows"]["get"]["responses"]["200"]["content"]
    assert _validator(spec, schema["application/json"]["schema"]).is_valid(answer)
    assert {a["name"] for wf in answer for a in wf["actions"]} == set(ACTIONS)


def _setup(api: Api) -> tuple[str, str, dict[str, Any]]:
    community = api.community()
    committee = api.token("committee", communities=[community])
    api.ok(
        api.put(
            f"/api/v1/communities/{community}/funds/self_governance/2026",
            api.admin,
            {"allocated_fen": 5_000_000},
        )
    )
    return community, committee, api.project(committee, community)


def test_answers_that_change_a_project_carry_its_new_etag_and_201s_their_location(
    api: Api,
) -> None:
    community, committee, project = _setup(api)
    created = api.post(
        "/api/v1/projects",
        committee,
        {
            "community_id": community,
            "workflow": "self_governance",
            "title": "楼道",
            "category": "居民自治类",
        },
    )
    assert (
        api.ok(api.client.get(created.headers["Location"], headers=api.auth(committee)), 200)["id"]
        == created.json()["id"]
    )

    demand = api.post(
        f"/api/v1/projects/{project['id']}/demands",
        committee,
        {"content": "楼道堆物", "resident": "高阿姨"},
    )
    assert demand.status_code == 201
    now = api.client.get(f"/api/v1/projects/{project['id']}", headers=api.auth(committee))
    assert demand.headers["ETag"] == now.headers["ETag"] == f'"{project["version"] + 1}"'
    shown = api.ok(api.client.get(demand.headers["Location"], headers=api.auth(committee)))
    assert shown["id"] == demand.json()["id"] and shown["project_id"] == project["id"]

    pooled = api.post(
        f"/api/v1/communities/{community}/demands", committee, {"content": "路灯", "resident": "王"}
    )
    assert (
        api.ok(api.client.get(pooled.headers["Location"], headers=api.auth(committee)))["content"]
        == "路灯"
    )

    project = api.advance(committee, now.json(), "implementation", budget_fen=1_000_000)
    expense = api.post(
        f"/api/v1/projects/{project['id']}/expenses",
        committee,
        {"amount_fen": 1000, "payee": "物业", "invoice_no": "A1", "description": "清运"},
    )
    assert expense.status_code == 201
    assert expense.headers["ETag"] == f'"{project["version"] + 1}"'
    assert (
        api.ok(api.client.get(expense.headers["Location"], headers=api.auth(committee)))[
            "amount_fen"
        ]
        == 1000
    )
    # The ETag the expense answered with is good for the next action.
    done = api.act(
        committee,
        project["id"],
        "complete_implementation",
        {"report": "完成"},
        **{"If-Match": expense.headers["ETag"]},
    )
    assert done.status_code == 200 and done.headers["ETag"] == f'"{project["version"] + 2}"'

    token = api.post("/api/v1/tokens", api.admin, {"name": "审计", "role": "auditor"})
    revoked = api.client.delete(token.headers["Location"], headers=api.auth(api.admin))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    community_made = api.post(
        "/api/v1/communities",
        api.admin,
        {
            "id": (cid := new_id()),
            "name": "社区",
            "street": "街道",
            "district": "区",
            "kind": "urban",
        },
    )
    assert community_made.headers["Location"] == f"/api/v1/communities/{cid}"


def test_an_action_of_another_workflow_and_an_unknown_action_answer_as_before(api: Api) -> None:
    _, committee, project = _setup(api)
    for action in ("street_approve", "launch_rocket"):
        refused = api.act(committee, project["id"], action, {"note": "同意"})
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
        assert "未知操作" in refused.json()["detail"]
    wrong_step = api.act(committee, project["id"], "approve", VOTE)
    assert wrong_step.status_code == 409 and wrong_step.json()["code"] == "action_not_allowed"


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/api/v1/projects/{id}",
        "/api/v1/projects?state=demand_collection",
        "/api/v1/workflows",
        "/api/v1/audit/events.csv",
        "/openapi.json",
    ],
)
def test_head_answers_wherever_get_does_with_its_headers_and_no_body(api: Api, path: str) -> None:
    _, _, project = _setup(api)
    path = path.format(id=project["id"])
    got = api.client.get(path, headers=api.auth(api.admin))
    head = api.client.head(path, headers=api.auth(api.admin))
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers.get("ETag") == got.headers.get("ETag")


def test_head_where_get_is_not_answered_is_method_not_allowed(api: Api) -> None:
    head = api.client.head("/api/v1/tokens/abc", headers=api.auth(api.admin))
    assert head.status_code == 405 and head.content == b""
    listed = api.client.delete("/api/v1/projects", headers=api.auth(api.admin))
    assert set(listed.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


@pytest.mark.parametrize("tag", ['W/"{v}"', ' W/"{v}" ', "W/{v}"])
def test_a_weak_if_match_is_refused_and_changes_nothing(api: Api, tag: str) -> None:
    _, committee, project = _setup(api)
    refused = api.act(
        committee,
        project["id"],
        "cancel",
        {"reason": "重复"},
        **{"If-Match": tag.format(v=project["version"])},
    )
    assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
    assert "强比较" in refused.json()["errors"]["If-Match"]
    after = api.ok(api.get(f"/api/v1/projects/{project['id']}", committee))
    assert after["state"] == "demand_collection" and after["version"] == project["version"]


@pytest.mark.parametrize(
    "suffix",
    ["{id}.0", "+{id}", "0{id}", " {id}", "{id}_0", "{fw}", "{id}e0", "0x{id}"],
)
def test_a_project_id_is_plain_decimal_digits(api: Api, suffix: str) -> None:
    _, committee, project = _setup(api)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in str(project["id"]))
    path = "/api/v1/projects/" + suffix.format(id=project["id"], fw=fullwidth)
    refused = api.client.get(path, headers=api.auth(committee))
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert "project_id" in refused.json()["errors"]
    assert api.get(f"/api/v1/projects/{project['id']}", committee).status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/projects?state=nonsense", "state"),
        ("/api/v1/projects?state=DEMAND_COLLECTION", "state"),
        ("/api/v1/projects?year=2026.0", "year"),
        ("/api/v1/projects?limit=１０", "limit"),
        ("/api/v1/audit/events?project_id=1.0", "project_id"),
        ("/api/v1/years/2026.0", "year"),
    ],
)
def test_unknown_enum_values_and_non_integers_in_queries_are_refused(
    api: Api, path: str, field: str
) -> None:
    refused = api.client.get(path, headers=api.auth(api.admin))
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert field in refused.json()["errors"]


def test_a_known_state_filters_projects(api: Api) -> None:
    _, committee, project = _setup(api)
    found = api.ok(api.get("/api/v1/projects", committee, state="demand_collection"))
    assert [p["id"] for p in found["items"]] == [project["id"]]
    assert api.ok(api.get("/api/v1/projects", committee, state="completed"))["items"] == []

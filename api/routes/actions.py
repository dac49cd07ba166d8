"""Workflow actions: one typed endpoint per action, generated from the loaded definitions.

``POST /api/v1/projects/{project_id}/actions/{action}`` exists once per action name that any
loaded definition declares, each with its own request schema (``ApproveRequest``, …) and
operationId (``fire_approve``), built when the app starts from the definitions' fields, so a
new definition version adds or changes them with no route code.

One schema per action *name*, not per workflow: the path names only the action, and which
workflow applies depends on the project. Where definitions disagree on an action's fields the
schema is their union: a field is required only if every definition requires it, and a field
typed differently accepts any of its types. The engine then checks the body against the
project's own definition (``validate`` in ``engine.rules.fields``), so the API and the CLI
refuse the same things in the same words; the schema documents those rules, it does not
enforce a second copy of them.

An action name no definition knows still reaches the engine through the undocumented
``/actions/{action}`` route, which answers it as it always has (``validation_error`` naming
the actions there are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticUndefined

import engine
from api.deps import CurrentPrincipal, Idempotency, IfMatch, JsonObject, ProjectId, ZizhiDep
from api.handoff import Router
from api.headers import ETAG, set_etag
from api.problems import responses
from engine import FieldSpec, ProjectView, WorkflowRegistry

REF = "#/components/schemas/{model}"

# Examples a person would send; an action without one here (a new definition's) gets one
# built from its fields. Each is used only if it fits the action's schema.
EXAMPLES: dict[str, dict[str, Any]] = {
    "close_collection": {},
    "accept": {"note": "居民反映集中，属于房前屋后急难事"},
    "reject": {"reason": "不属于本社区自治范围"},
    "submit_plan": {"budget_fen": 3_000_000, "plan": "联合物业清理主干道，开展消防演习"},
    "return_for_revision": {"reason": "预算明细不全"},
    "approve": {
        "council_size": 9,
        "attendees": 7,
        "votes_for": 6,
        "votes_against": 1,
        "abstentions": 0,
    },
    "street_approve": {"note": "同意"},
    "complete_implementation": {"report": "通道已疏通，消防演习已开展"},
    "rectify": {"issues": "部分路段仍有堆物"},
    "evaluate": {"score": 5, "report": "居民满意度高"},
    "close": {"notice": "项目已办结，共支出 12,500.00 元", "satisfied": 86, "unsatisfied": 3},
    "cancel": {"reason": "居民需求已由其他途径解决"},
}

PROBLEMS = (
    "unauthenticated",
    "forbidden",
    "not_found",
    "validation_error",
    "action_not_allowed",
    "guard_failed",
    "fund_cap_exceeded",
    "year_closed",
    "version_conflict",
    "idempotency_conflict",
    "payload_too_large",
)


@dataclass(frozen=True)
class ActionSchema:
    """One action name as the API documents it: its labels, fields and request model."""

    name: str
    labels: tuple[str, ...]
    workflows: tuple[str, ...]
    fields: dict[str, tuple[FieldSpec, ...]]  # every definition's spec of each field
    required: frozenset[str]
    model: type[BaseModel]

    @property
    def label(self) -> str:
        return " / ".join(self.labels)

    @property
    def example(self) -> dict[str, Any]:
        curated = EXAMPLES.get(self.name)
        if curated is not None and self.fits(curated):
            return curated
        return {n: _example(specs[0]) for n, specs in self.fields.items() if n in self.required}

    def fits(self, body: dict[str, Any]) -> bool:
        """Whether ``body`` is valid for the union schema (as the engine would check it)."""
        if set(body) - set(self.fields) or self.required - set(body):
            return False
        return all(
            any(spec.check(value) is None for spec in self.fields[name])
            for name, value in body.items()
        )


def _example(spec: FieldSpec) -> Any:
    if spec.type == "bool":
        return True
    if spec.type in ("amount", "int"):
        return spec.bounds()[0]
    return spec.label


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def action_schemas(workflows: WorkflowRegistry) -> list[ActionSchema]:
    """Every action name of the loaded definitions, with the union of its fields."""
    defs: dict[str, list[Any]] = {}
    owners: dict[str, list[str]] = {}
    for wf in workflows.all():
        for action in wf.actions.values():
            defs.setdefault(action.name, []).append(action)
            owners.setdefault(action.name, [])
            if wf.name not in owners[action.name]:
                owners[action.name].append(wf.name)
    out = []
    for name, versions in defs.items():
        fields: dict[str, tuple[FieldSpec, ...]] = {}
        for action in versions:
            for field_name, spec in action.fields.items():
                if spec not in fields.get(field_name, ()):
                    fields[field_name] = (*fields.get(field_name, ()), spec)
        required = frozenset(
            f for f in fields if all(f in a.fields and a.fields[f].required for a in versions)
        )
        labels = tuple(dict.fromkeys(a.label for a in versions))
        out.append(
            ActionSchema(
                name=name,
                labels=labels,
                workflows=tuple(owners[name]),
                fields=fields,
                required=required,
                model=_model(name, labels, fields, required),
            )
        )
    return out


def _model(
    name: str,
    labels: Iterable[str],
    fields: dict[str, tuple[FieldSpec, ...]],
    required: frozenset[str],
) -> type[BaseModel]:
    """A pydantic model whose JSON Schema states what the engine accepts for the action."""
    definitions: dict[str, Any] = {}
    for field_name, specs in fields.items():
        schemas = []
        for spec in specs:
            schema = spec.json_schema()
            schema.pop("title", None)
            if schema not in schemas:
                schemas.append(schema)
        extra: dict[str, Any] = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
        description = " / ".join(dict.fromkeys(spec.label for spec in specs))
        definitions[field_name] = (
            _python_type(specs),
            Field(
                default=PydanticUndefined if field_name in required else None,
                description=description,
                json_schema_extra=extra,
            ),
        )
    model: type[BaseModel] = create_model(
        f"{_camel(name)}Request",
        __config__=ConfigDict(
            extra="forbid",
            title=f"{_camel(name)}Request",
            json_schema_extra={"description": f"{'、'.join(labels)}（{name}）的请求体"},
        ),
        **definitions,
    )
    return model


def _python_type(specs: tuple[FieldSpec, ...]) -> Any:
    kinds = {{"amount": int, "int": int, "bool": bool}.get(s.type, str) for s in specs}
    return kinds.pop() if len(kinds) == 1 else Any


def components(schemas: list[ActionSchema]) -> dict[str, Any]:
    """The request models as OpenAPI component schemas, keyed by model name.

    An optional field has no default in the document: it is left out, never sent as null.
    """
    _, document = models_json_schema([(s.model, "validation") for s in schemas], ref_template=REF)
    out: dict[str, Any] = document.get("$defs", {})
    for schema in out.values():
        for prop in schema.get("properties", {}).values():
            prop.pop("default", None)
    for s in schemas:
        out[s.model.__name__]["examples"] = [s.example]
    return out


def _request_body(schema: ActionSchema) -> dict[str, Any]:
    return {
        "requestBody": {
            # A body is required where the action has required fields; otherwise an empty
            # body means {} (``close_collection``).
            "required": bool(schema.required),
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=schema.model.__name__)},
                    "example": schema.example,
                }
            },
        }
    }


Fire = Callable[..., ProjectView]


def _endpoint(action: str | None) -> Fire:
    """The handler of one action's route (``action`` None: the name comes from the path)."""

    def fire(
        project_id: ProjectId,
        body: JsonObject,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        expected: IfMatch,
        idempotency: Idempotency,
        response: Response,
        name: str,
    ) -> ProjectView:
        view = engine.fire(
            z,
            principal,
            project_id,
            name,
            body,
            expected_version=expected,
            idempotency=idempotency,
        )
        set_etag(response, view.version)
        return view

    if action is None:

        def fire_named(
            project_id: ProjectId,
            action: Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$")],
            body: JsonObject,
            z: ZizhiDep,
            principal: CurrentPrincipal,
            expected: IfMatch,
            idempotency: Idempotency,
            response: Response,
        ) -> ProjectView:
            return fire(
                project_id, body, z, principal, expected, idempotency, response, name=action
            )

        return fire_named

    def fire_action(
        project_id: ProjectId,
        body: JsonObject,
        z: ZizhiDep,
        principal: CurrentPrincipal,
        expected: IfMatch,
        idempotency: Idempotency,
        response: Response,
    ) -> ProjectView:
        return fire(project_id, body, z, principal, expected, idempotency, response, name=action)

    return fire_action


def build_router(schemas: list[ActionSchema]) -> APIRouter:
    router = Router(prefix="/api/v1/projects", tags=["actions"])
    for schema in schemas:
        who = "、".join(schema.workflows)
        router.add_api_route(
            f"/{{project_id}}/actions/{schema.name}",
            _endpoint(schema.name),
            methods=["POST"],
            name=f"fire_{schema.name}",
            operation_id=f"fire_{schema.name}",
            response_model=ProjectView,
            summary=f"{schema.label}（{schema.name}）",
            description=(
                f"流程：{who}。可选 If-Match（项目 ETag，强比较）：版本已变时返回 412 "
                "version_conflict。应答的 ETag 为执行后的版本。"
            ),
            openapi_extra=_request_body(schema),
            responses={200: {"headers": {"ETag": ETAG}}, **responses(*PROBLEMS)},
        )
    # Names no loaded definition declares: today's answer, from the engine, undocumented.
    router.add_api_route(
        "/{project_id}/actions/{action}",
        _endpoint(None),
        methods=["POST"],
        name="fire_unknown_action",
        response_model=ProjectView,
        include_in_schema=False,
    )
    return router

"""The OpenAPI document as clients (and client generators) meet it.

FastAPI builds the document from the routes; this module holds what it cannot know: the
tags, the response headers, the problems every operation may answer, the shape of the
engine's free-form fields, and the action request models built from the workflow
definitions (``api.routes.actions``). Titles, tags, schema names and operationIds are ASCII
and stable, because generators turn them into package, module and function names; Chinese
lives in descriptions.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from api import problems

TITLE = "Zizhi API"

TAGS = [
    {"name": "projects", "description": "项目：新建、查询、支出、需求与历史"},
    {"name": "actions", "description": "流程操作：每个操作一个地址，请求体由流程定义生成"},
    {"name": "communities", "description": "社区、经费与居民需求池"},
    {"name": "audit", "description": "审计：历史事件查询、导出与校验"},
    {"name": "years", "description": "年度结账"},
    {"name": "tokens", "description": "令牌与当前身份"},
    {"name": "webhooks", "description": "推送订阅：Standard Webhooks 签名推送与投递记录"},
    {"name": "workflows", "description": "流程定义"},
    {"name": "menu", "description": "菜单式项目库：3 大类、21 个子项、85 个小项"},
    {"name": "reports", "description": "年度报表：按社区、街道、全区汇总，含 CSV 与 XLSX 导出"},
    {"name": "operations", "description": "运维"},
]

# Answers any operation can give, whatever it does: a method the address does not support,
# and a fault of ours.
EVERYWHERE = ("method_not_allowed", "internal_error")

_SCALAR = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]}
_JSON = {
    "anyOf": [
        {"type": "string"},
        {"type": "integer"},
        {"type": "boolean"},
        {"type": "array", "items": {}},
        {"type": "object"},
        {"type": "null"},
    ]
}

# The engine's views hold a few free-form mappings; the document says what they hold.
FIELD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("ProjectView", "details"): {
        "type": "object",
        "title": "Details",
        "description": '每个操作最近一次记录的字段，按操作名，如 {"approve": {"votes_for": 6}}',
        "additionalProperties": {"type": "object", "additionalProperties": _SCALAR},
    },
    ("EventView", "data"): {
        "type": "object",
        "title": "Data",
        "description": "事件内容，字段随事件类型（type）而定",
        "additionalProperties": _JSON,
    },
    ("VerifyReport", "first_bad"): {
        "anyOf": [{"$ref": "#/components/schemas/ChainFault"}, {"type": "null"}],
        "title": "First Bad",
        "description": "第一处断链；全部无误时为 null",
    },
}

CHAIN_FAULT = {
    "type": "object",
    "title": "ChainFault",
    "description": "历史链或账本中第一处不一致",
    "properties": {
        "chain": {"type": "string", "title": "Chain", "description": "链（社区编号或系统链）"},
        "seq": {"type": "integer", "title": "Seq", "description": "链内序号"},
        "event_id": {
            "anyOf": [{"type": "integer"}, {"type": "null"}],
            "title": "Event Id",
            "description": "出错事件的编号；事件缺失时为 null",
        },
        "reason": {"type": "string", "title": "Reason", "description": "原因（中文）"},
    },
    "required": ["chain", "seq", "event_id", "reason"],
}


def operation_id(route: APIRoute) -> str:
    """The route's function name: short, stable, and what generated clients call."""
    return route.name


def as_served(document: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Corrections to what FastAPI documents, so that clients read what is served.

    * ``components``: the action request models, referred to by the action routes.
    * An error answer is ``application/problem+json``: FastAPI puts a response ``model``
      under ``application/json`` whatever the answer's media type.
    * Every operation can answer ``method_not_allowed`` and ``internal_error``.
    * An optional query or header parameter is left out, never null: FastAPI documents
      ``str | None = None`` as "a string or null", and clients then send the text ``null``.
    * The engine's free-form fields get their shapes (``FIELD_SCHEMAS``).
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    schemas["ChainFault"] = CHAIN_FAULT
    for (model, field), schema in FIELD_SCHEMAS.items():
        if model in schemas:
            schemas[model]["properties"][field] = schema
    everywhere = problems.responses(*EVERYWHERE)
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, entry in everywhere.items():
                operation["responses"].setdefault(
                    str(status),
                    {
                        "description": entry["description"],
                        "content": {
                            problems.MEDIA_TYPE: {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    },
                )
            for response in operation["responses"].values():
                content = response.get("content", {})
                if problems.MEDIA_TYPE in content and "application/json" in content:
                    content[problems.MEDIA_TYPE] = content.pop("application/json")
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                others = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
                if len(others) == 1 and len(schema["anyOf"]) == 2:
                    rest = {k: v for k, v in schema.items() if k != "anyOf"}
                    parameter["schema"] = {**others[0], **rest}
    return document

"""What a webhook says: the event types a subscription may name, and each message's body.

A message is one history event, ``{type, timestamp, data}``. ``data`` carries the event's
id, chain, seq and hash (a receiver can cross-check it with the audit API), its community,
the event's own fields (``details``) and, for a project's event, the project as the change
left it: id, community, title, state and the state's label. Nothing in it names a resident
or a contact: history events never hold them, and a demand's free text is left out as well
because a resident may have written their name into it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INT = {"type": "integer"}
FEN = {"type": "integer", "description": "金额（分）"}
TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
_LEDGER = {
    "entry_id": INT,
    "fund": TEXT,
    "year": INT,
    "amount_fen": FEN,
    "cause_event_id": INT,
    "allocated_fen": FEN,
    "reserved_fen": FEN,
    "spent_fen": FEN,
}


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    label: str  # what happened, in Chinese
    details: Mapping[str, Any]  # the event's own fields: name → JSON Schema


EVENT_TYPES: dict[str, EventType] = {
    e.name: e
    for e in [
        EventType(
            "project.created",
            "新建项目",
            {
                "workflow": TEXT,
                "workflow_version": INT,
                "fund": TEXT,
                "year": INT,
                "state": TEXT,
                "title": TEXT,
                "category": TEXT,
                "menu_item": NULLABLE_TEXT,
            },
        ),
        EventType(
            "project.self_managed",
            "自治管理记录",
            {
                "keeper": TEXT,
                "checked_on": TEXT,
                "findings": TEXT,
                "volunteer_team": NULLABLE_TEXT,
            },
        ),
        EventType(
            "project.transitioned",
            "项目流转",
            {"action": TEXT, "from": TEXT, "to": TEXT, "fields": {"type": "object"}},
        ),
        EventType("project.year_closed", "年度结账释放预留", {"year": INT, "released_fen": FEN}),
        EventType(
            "demand.created",
            "登记居民需求",
            {"demand_id": INT, "source": TEXT, "has_contact": {"type": "boolean"}},
        ),
        EventType("demand.linked", "需求纳入项目", {"demand_id": INT}),
        EventType("demand.erased", "删除居民个人信息", {"demand_id": INT}),
        EventType(
            "expense.recorded",
            "登记支出",
            {
                "expense_id": INT,
                "amount_fen": FEN,
                "payee": TEXT,
                "invoice_no": TEXT,
                "description": TEXT,
            },
        ),
        EventType("ledger.allocated", "核定经费", _LEDGER),
        EventType("ledger.reserved", "预留经费", _LEDGER),
        EventType("ledger.spent", "支出经费", _LEDGER),
        EventType("ledger.released", "释放预留", _LEDGER),
        EventType(
            "community.created",
            "新建社区",
            {"id": TEXT, "kind": TEXT, "name": TEXT, "street": TEXT, "district": TEXT},
        ),
        EventType(
            "fund.allocation_set", "设定经费额度", {"fund": TEXT, "year": INT, "allocated_fen": FEN}
        ),
        EventType("year.closed", "年度结账", {"year": INT, "projects": INT, "released_fen": FEN}),
        EventType(
            "audit.checkpoint",
            "历史检查点",
            {
                "tree_size": INT,
                "root_hash": TEXT,
                "timestamp": TEXT,
                "key_id": TEXT,
                "signature": TEXT,
            },
        ),
        EventType(
            "token.created",
            "创建令牌",
            {
                "token_id": TEXT,
                "name": TEXT,
                "role": TEXT,
                "communities": {"type": "array"},
                "streets": {"type": "array"},
            },
        ),
        EventType("token.revoked", "吊销令牌", {"token_id": TEXT}),
        EventType(
            "user.created",
            "创建用户",
            {
                "user_id": INT,
                "username": TEXT,
                "role": TEXT,
                "communities": {"type": "array"},
                "streets": {"type": "array"},
            },
        ),
        *[
            EventType(f"webhook.{what}", label, {"webhook_id": TEXT})
            for what, label in [
                ("created", "新建推送订阅"),
                ("updated", "修改推送订阅"),
                ("disabled", "停用推送订阅"),
                ("deleted", "删除推送订阅"),
                ("secret_rotated", "更换推送密钥"),
            ]
        ],
        EventType("webhook.test", "推送测试", {"webhook_id": TEXT, "message": TEXT}),
    ]
}
# Fields left out of a message: free text a resident wrote may hold their name or phone; the
# salted commitment to the name and contact is for verification, not for receivers.
_WITHHELD = {"demand.created": {"content", "personal"}}
_PATTERN = re.compile(r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$")


def check_patterns(patterns: Iterable[Any]) -> str | None:
    """Why these subscription patterns are refused, or None: known types, ``x.*`` or ``*``."""
    wanted = list(patterns)
    if not wanted:
        return "至少订阅一种事件"
    if len(wanted) > 50:
        return "订阅的事件不能超过 50 项"
    prefixes = {name.split(".")[0] for name in EVENT_TYPES}
    for pattern in wanted:
        if not isinstance(pattern, str) or not _PATTERN.match(pattern):
            shown = str(pattern)[:64]
            return f"事件类型格式无效：{shown!r}（应如 project.transitioned、ledger.* 或 *）"
        if pattern.endswith(".*") and pattern[:-2] not in prefixes:
            return f"没有以 {pattern[:-2]} 开头的事件类型"
        if pattern != "*" and not pattern.endswith(".*") and pattern not in EVENT_TYPES:
            return f"未知的事件类型：{pattern}"
    return None


def matches(patterns: Iterable[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def details_of(event_type: str, data_text: str) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(data_text)
    for name in _WITHHELD.get(event_type, ()):
        details.pop(name, None)
    return details


def body(
    *,
    event_type: str,
    timestamp: str,
    event: Mapping[str, Any] | None,
    details: Mapping[str, Any],
    project: Mapping[str, Any] | None,
    community: Mapping[str, Any] | None,
) -> str:
    """The JSON body of one message, built once and sent unchanged on every attempt."""
    data: dict[str, Any] = {**(event or {}), "details": dict(details)}
    data["community"] = dict(community) if community else None
    data["project"] = dict(project) if project else None
    return json.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def json_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of a message of this type (served and documented)."""
    nullable_int = {"type": ["integer", "null"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{event_type.name}（{event_type.label}）",
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": event_type.name},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": {
                "type": "object",
                "required": ["details", "community", "project"],
                "properties": {
                    "event_id": {**nullable_int, "description": "历史事件编号（测试推送为 null）"},
                    "chain": {**NULLABLE_TEXT, "description": "历史链：社区编号或 _system"},
                    "seq": nullable_int,
                    "hash": {**NULLABLE_TEXT, "description": "事件哈希，可与审计接口核对"},
                    "at": {**NULLABLE_TEXT, "format": "date-time"},
                    "community_id": NULLABLE_TEXT,
                    "project_id": nullable_int,
                    "details": {
                        "type": "object",
                        "description": "历史事件本身记录的字段",
                        "required": sorted(event_type.details),
                        "properties": dict(event_type.details),
                    },
                    "summary": {**TEXT, "description": "中文摘要，如群机器人所发"},
                    "community": {
                        "type": ["object", "null"],
                        "properties": {"id": TEXT, "name": TEXT, "street": TEXT},
                    },
                    "project": {
                        "type": ["object", "null"],
                        "properties": {
                            "id": INT,
                            "community_id": TEXT,
                            "title": TEXT,
                            "workflow": TEXT,
                            "state": TEXT,
                            "state_label": TEXT,
                            "budget_fen": {"type": ["integer", "null"]},
                            "reserved_fen": FEN,
                            "spent_fen": FEN,
                        },
                    },
                },
            },
        },
    }

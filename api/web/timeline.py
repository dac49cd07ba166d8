"""A project's history as people read it: when, who, what — in Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import engine
from engine import EventView, Role, Workflow


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    who: str
    what: str
    kind: str  # the event type, for styling


def who_did(event: EventView) -> str:
    kind, _, name = event.actor.partition(":")
    if event.actor == "public":
        return "居民（公开表单）"
    if event.actor == "cli":
        return "系统管理员（命令行）"
    try:
        role = Role(event.role).label
    except ValueError:
        role = event.role
    if kind == "token":
        return f"{role}（接口令牌）"
    return f"{role} {name}"


def describe(event: EventView, wf: Workflow) -> str:
    d = event.data
    if event.type == "project.created":
        return f"创建项目（{wf.label}）"
    if event.type == "project.transitioned":
        act = wf.actions.get(d.get("action", ""))
        label = act.label if act else d.get("action", "")
        source = wf.states[d["from"]].label if d.get("from") in wf.states else d.get("from")
        dest = wf.states[d["to"]].label if d.get("to") in wf.states else d.get("to")
        return f"{label}：{source} → {dest}"
    if event.type == "demand.created":
        content = str(d.get("content", ""))
        short = content if len(content) <= 60 else content[:60] + "…"
        return f"记录居民需求：{short}"
    if event.type == "demand.linked":
        return f"从需求池纳入需求（编号 {d.get('demand_id')}）"
    if event.type == "demand.erased":
        return f"应居民申请删除其姓名和联系方式（需求编号 {d.get('demand_id')}）"
    if event.type == "expense.recorded":
        return (
            f"登记支出 {engine.format_fen(int(d.get('amount_fen', 0)))}，"
            f"收款方 {d.get('payee', '')}，发票号 {d.get('invoice_no', '')}"
        )
    if event.type == "project.self_managed":
        return f"自治管理记录：{d.get('checked_on', '')} 检查，管护方 {d.get('keeper', '')}"
    amount = d.get("amount_fen")
    money = engine.format_fen(int(amount)) if isinstance(amount, int) else ""
    return {
        "ledger.reserved": f"经费预留 {money}",
        "ledger.spent": f"经费支出 {money}",
        "ledger.released": f"释放未用预留 {money}",
        "ledger.allocated": f"分配经费 {money}",
        "project.year_closed": "年度结账",
    }.get(event.type, event.type)


def timeline(history: list[EventView], wf: Workflow) -> list[Entry]:
    return [Entry(e.at, who_did(e), describe(e, wf), e.type) for e in history]

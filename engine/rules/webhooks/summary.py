"""A one-line Chinese summary of an event, for people reading a group chat.

"里河社区「老新村消防通道整治」评议通过（评议 → 实施），预留 ¥12,345.67"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.rules.webhooks.events import EVENT_TYPES
from engine.rules.webhooks.formats import yuan

_MONEY_WORDS = {
    "ledger.allocated": "核定",
    "ledger.reserved": "预留",
    "ledger.spent": "支出",
    "ledger.released": "释放",
}


def summarise(
    event_type: str,
    details: Mapping[str, Any],
    *,
    community: Mapping[str, Any] | None,
    project: Mapping[str, Any] | None,
    action_label: str | None = None,
    from_label: str | None = None,
    money: Sequence[tuple[str, int]] = (),
) -> str:
    place = str(community["name"]) if community else ""
    subject = f"{place}「{project['title']}」" if project else place
    label = EVENT_TYPES[event_type].label if event_type in EVENT_TYPES else event_type
    if event_type == "project.transitioned" and project is not None:
        text = f"{subject}{action_label or details.get('action')}"
        text += f"（{from_label or details.get('from')} → {project.get('state_label')}）"
        for kind, amount in money:
            text += f"，{_MONEY_WORDS.get(kind, kind)} {yuan(amount)}"
        return text
    if event_type in _MONEY_WORDS and isinstance(details.get("amount_fen"), int):
        return f"{subject}{_MONEY_WORDS[event_type]}经费 {yuan(details['amount_fen'])}"
    if event_type == "expense.recorded" and isinstance(details.get("amount_fen"), int):
        return f"{subject}登记支出 {yuan(details['amount_fen'])}（{details.get('payee', '')}）"
    if event_type == "project.created" and project is not None:
        return f"{place}新建项目「{project['title']}」"
    return f"{subject}{label}" if subject else label

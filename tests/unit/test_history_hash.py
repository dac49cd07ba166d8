"""Each event's hash covers every field and the previous hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.store.history import canonical_json, event_hash, genesis_hash

BASE: dict[str, Any] = {
    "chain": "lihe",
    "seq": 3,
    "at": datetime(2026, 3, 1, 4, 0, 0, 123456, tzinfo=UTC),
    "actor": "token:ab",
    "role": "committee",
    "community_id": "lihe",
    "project_id": 7,
    "type": "project.transitioned",
    "data": canonical_json({"to": "review"}),
    "prev_hash": "0" * 64,
}


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("chain", "other"),
        ("seq", 4),
        ("at", datetime(2026, 3, 1, 4, 0, 0, 123457, tzinfo=UTC)),
        ("actor", "token:cd"),
        ("role", "street"),
        ("community_id", None),
        ("project_id", 8),
        ("type", "project.created"),
        ("data", canonical_json({"to": "planning"})),
        ("prev_hash", "1" * 64),
    ],
)
def test_changing_any_field_changes_the_hash(field: str, other: Any) -> None:
    assert event_hash(**BASE) != event_hash(**{**BASE, field: other})


def test_the_hash_is_stable() -> None:
    assert event_hash(**BASE) == event_hash(**dict(BASE))


def test_canonical_json_sorts_keys_and_keeps_chinese_readable() -> None:
    assert canonical_json({"b": 1, "a": "评议"}) == '{"a":"评议","b":1}'


def test_each_chain_starts_from_its_own_genesis() -> None:
    assert genesis_hash("lihe") != genesis_hash("caixiang")
    assert len(genesis_hash("lihe")) == 64

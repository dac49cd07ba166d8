"""A row as the history says it must be, and the one comparison of a table's rows with them.

``verify`` rebuilds each fact row from the events that made it (``engine.store.replay``,
and the system chain's in ``engine.store.system_facts``) and compares: a column that
differs, a row no event made, a row an event made that is gone — each named as a fault
with the event that made the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.store.verify import ChainFault


@dataclass
class Expected:
    """A row as its events say it must be, and the event that made it (for the fault)."""

    values: dict[str, Any]
    seq: int
    event_id: int
    extra: dict[str, Any] = field(default_factory=dict)


def compare_row(
    chain: str,
    label: str,
    row: Mapping[str, Any],
    expected: dict[Any, Expected],
    same: Callable[[Mapping[str, Any], Expected], str | None],
) -> ChainFault | None:
    want = expected.pop(row["id"], None)
    if want is None:
        reason = f"{label} {row['id']} 在历史中没有记录（被人为添加或改动）"
        return ChainFault(chain, 0, None, reason)
    column = same(row, want)
    if column is not None:
        reason = f"{label} {row['id']} 的 {column} 与历史记录不符"
        return ChainFault(chain, want.seq, want.event_id, reason)
    return None


def compare(
    chain: str,
    label: str,
    actual: Iterable[Any],
    expected: dict[Any, Expected],
    same: Callable[[Mapping[str, Any], Expected], str | None],
) -> ChainFault | None:
    for row in actual:
        fault = compare_row(chain, label, row, expected, same)
        if fault is not None:
            return fault
    if expected:
        row_id = min(expected)
        want = expected[row_id]
        return ChainFault(chain, want.seq, want.event_id, f"历史中记录的{label} {row_id} 已缺失")
    return None


def first_difference(row: Any, values: Mapping[str, Any]) -> str | None:
    """The first of ``values``' columns whose value ``row`` does not hold, if any."""
    if type(row) is dict and values.items() <= row.items():
        return None  # every row of a sound history: one containment test, in C
    for name, value in values.items():
        if row[name] != value:
            return name
    return None

"""Cursor pagination: opaque cursors over an ascending key, stable while rows are added."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from engine.errors import ValidationFailed

T = TypeVar("T")
K = TypeVar("K", int, str)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(after: int | str) -> str:
    raw = json.dumps({"after": after}, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, start: K) -> K:
    """The key after which the next page starts; ``start`` for the first page."""
    if not cursor:
        return start
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ValidationFailed.fields({"cursor": "分页游标无效"}) from None
    # Only what page_of could have issued: a key the database can compare with its own.
    if type(after) is not type(start) or not (
        -(2**63) <= after < 2**63 if isinstance(after, int) else "\x00" not in after
    ):
        raise ValidationFailed.fields({"cursor": "分页游标无效"})
    return after


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.fields({"limit": f"每页条数必须在 1 至 {MAX_LIMIT} 之间"})
    return limit


def page_of(rows: list[T], limit: int, key_of: Callable[[T], int | str]) -> Page[T]:
    """``rows`` was fetched with ``limit + 1`` rows, to learn whether another page exists."""
    if len(rows) > limit:
        items = rows[:limit]
        return Page(items, encode_cursor(key_of(items[-1])))
    return Page(rows, None)

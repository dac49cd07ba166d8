"""FastAPI dependencies: the engine, the caller, Idempotency-Key, If-Match, raw JSON bodies."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

import engine
from engine import (
    COMMUNITY_ID_PATTERN,
    MAX_YEAR,
    MIN_YEAR,
    IdempotencyKey,
    Principal,
    Unauthenticated,
    ValidationFailed,
    Zizhi,
    canonical_json,
)

MAX_ID = 2**63 - 1


async def get_zizhi(request: Request) -> Zizhi:
    zizhi: Zizhi = request.app.state.zizhi
    return zizhi


ZizhiDep = Annotated[Zizhi, Depends(get_zizhi)]

_bearer = HTTPBearer(
    auto_error=False, description="`zizhi token create` 或 POST /api/v1/tokens 所得令牌"
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """On the event loop: a token seen before costs one primary-key read outside any
    transaction (engine.authenticate_token); only a token not yet cached is looked up in a
    transaction of its own, in the threadpool. (The engine is taken from the app here, not
    as a dependency: every dependency node costs FastAPI ~100 calls per request, and this
    one is solved up to twice per request.)"""
    if credentials is None:
        raise Unauthenticated("请在 Authorization 请求头中提供 Bearer 令牌")
    token = credentials.credentials
    z: Zizhi = request.app.state.zizhi
    principal = engine.cached_principal(z, token)
    if principal is None:
        principal = await run_in_threadpool(engine.authenticate_token, z, token)
    request.state.principal = principal  # for idempotency_key, without a second solve
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

# Names and ids that are looked up rather than checked by the engine: PostgreSQL text never
# holds NUL, and no stored name holds a control character or a line break.
SINGLE_LINE = r"^[^\x00-\x1f\x7f]+$"
CURSOR = r"^[A-Za-z0-9_-]+$"  # next_cursor is unpadded base64url


def _decimal_digits(value: Any) -> Any:
    """An integer in a path or query is plain decimal digits, nothing else.

    Pydantic also reads "1.0", "+1", " 1", "1_0" and full-width "１" as 1, which would let one
    project answer at many addresses.
    """
    if isinstance(value, str) and re.fullmatch(r"0|-?[1-9][0-9]{0,18}", value) is None:
        raise PydanticCustomError("int_parsing", "not a decimal integer")
    return value


# Every integer path or query parameter: ``Annotated[int, Path(...), DIGITS]`` (after the
# Path or Query, or FastAPI drops their bounds).
DIGITS = BeforeValidator(_decimal_digits)

ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="项目编号", examples=[7]), DIGITS]
Year = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description="年度", examples=[2026]), DIGITS]
YearFilter = Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR, description="年度"), DIGITS]
YearQuery = Annotated[
    int, Query(ge=MIN_YEAR, le=MAX_YEAR, description="年度", examples=[2025]), DIGITS
]
Limit = Annotated[int, Query(ge=1, le=500, description="每页条数"), DIGITS]
CommunityId = Annotated[
    str,
    Path(max_length=64, pattern=COMMUNITY_ID_PATTERN, description="社区编号", examples=["lihe"]),
]
CommunityFilter = Annotated[str | None, Query(max_length=64, pattern=COMMUNITY_ID_PATTERN)]
NameFilter = Annotated[str | None, Query(max_length=64, pattern=SINGLE_LINE)]
Cursor = Annotated[
    str | None, Query(max_length=400, pattern=CURSOR, description="上一页返回的 next_cursor")
]


# A day in from datetime's limits: converting a moment to any time zone stays representable.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _iso_8601_text(value: Any) -> Any:
    """Only ISO 8601 text: pydantic would also read "0.5" or "1700000000" as Unix time."""
    if isinstance(value, str) and not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise PydanticCustomError("datetime_parsing", "not an ISO 8601 date and time")
    return value


def _within_reach(value: datetime) -> datetime:
    """A moment in UTC, a day in from datetime's limits if it lies closer to them.

    Nothing is recorded out there, so a filter or balance moved that far means the same.
    """
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        return _EARLIEST if value.year == 1 else _LATEST
    return min(max(moment, _EARLIEST), _LATEST)


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_8601_text), AfterValidator(_within_reach)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: NaN and Infinity are not numbers a client may send."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed.fields({"body": "请求体不是有效的 JSON"}) from None


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object."""
    raw = await request.body()
    if not raw.strip():
        return {}
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise ValidationFailed.fields({"body": "请求体必须是 JSON 对象"})
    return value


JsonObject = Annotated[dict[str, Any], Depends(json_object)]


# What If-Match and Idempotency-Key accept, checked here with a sentence that says so and
# published as the headers' patterns so that clients (and the fuzzer) know it too.
IF_MATCH = r'^[ \t]*(\*|"?[0-9]{1,18}"?)[ \t]*$'
IDEMPOTENCY_KEY = r"^[!-~]{1,255}$"


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='项目的 ETag，如 "3"',
            json_schema_extra={"pattern": IF_MATCH},
        ),
    ] = None,
) -> int | None:
    """The version the client last saw; None when absent or ``*``."""
    if value is None:
        return None
    if value.strip(" \t").startswith("W/"):
        # If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches. The server
        # only sends strong tags, so a weak one is a client's mistake, said as such.
        raise ValidationFailed.fields(
            {"If-Match": 'If-Match 使用强比较，不接受弱 ETag（W/…）；请原样发送项目的 ETag，如 "3"'}
        )
    if re.fullmatch(IF_MATCH, value) is None:
        raise ValidationFailed.fields({"If-Match": '应为项目的 ETag，例如 "3"'})
    tag = value.strip(" \t").strip('"')
    return None if tag == "*" else int(tag)


IfMatch = Annotated[int | None, Depends(if_match)]


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="重试同一请求时使用同一个键（1 至 255 个可见 ASCII 字符）",
            json_schema_extra={"pattern": IDEMPOTENCY_KEY},
        ),
    ] = None,
) -> IdempotencyKey | None:
    if key is None:
        return None
    if re.fullmatch(IDEMPOTENCY_KEY, key) is None:
        raise ValidationFailed.fields({"Idempotency-Key": "应为 1 至 255 个可见 ASCII 字符"})
    # Every route declares its CurrentPrincipal before its Idempotency, so the caller is
    # known by now; asking for it as a dependency again would cost FastAPI a second solve.
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await current_principal(request, await _bearer(request))
    raw = await request.body()
    try:
        body = canonical_json(json.loads(raw)) if raw.strip() else ""
    except (ValueError, UnicodeDecodeError):
        body = raw.hex()
    fingerprint = "\n".join(
        [request.method, request.url.path, body, request.headers.get("if-match", "")]
    )
    return IdempotencyKey(principal.id, key, hashlib.sha256(fingerprint.encode()).hexdigest())


Idempotency = Annotated[IdempotencyKey | None, Depends(idempotency_key)]


# --- the fast path (api.handoff) ------------------------------------------------------------


async def _principal_from(request: Request) -> Principal:
    return await current_principal(request, await _bearer(request))


async def _if_match_from(request: Request) -> int | None:
    return await if_match(request.headers.get("if-match"))


async def _idempotency_from(request: Request) -> IdempotencyKey | None:
    return await idempotency_key(request, request.headers.get("idempotency-key"))


FROM_REQUEST: dict[Callable[..., Any], Callable[[Request], Awaitable[Any]]] = {
    get_zizhi: get_zizhi,
    current_principal: _principal_from,
    json_object: json_object,
    if_match: _if_match_from,
    idempotency_key: _idempotency_from,
}
"""Each dependency above as FastAPI calls it, computed from the request alone: what lets a
route skip FastAPI's general dependency solving (``api.handoff``). A dependency added above
and not here only sends the routes that use it through FastAPI's own path."""

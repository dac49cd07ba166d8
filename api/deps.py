"""FastAPI dependencies: the engine, the caller, Idempotency-Key, If-Match, raw JSON bodies."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine import access
from engine.access import Principal
from engine.errors import Unauthenticated, ValidationFailed
from engine.history import canonical_json
from engine.uow import IdempotencyKey, Zizhi

MAX_ID = 2**63 - 1


def get_zizhi(request: Request) -> Zizhi:
    zizhi: Zizhi = request.app.state.zizhi
    return zizhi


ZizhiDep = Annotated[Zizhi, Depends(get_zizhi)]

_bearer = HTTPBearer(
    auto_error=False, description="`zizhi token create` 或 POST /api/v1/tokens 所得令牌"
)


def current_principal(
    z: ZizhiDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("请在 Authorization 请求头中提供 Bearer 令牌")
    return access.authenticate_token(z, credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="项目编号", examples=[7])]
CommunityId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="社区编号",
        examples=["lihe"],
    ),
]


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


def if_match(
    value: Annotated[
        str | None, Header(alias="If-Match", description='项目的 ETag，如 "3"')
    ] = None,
) -> int | None:
    """The version the client last saw; None when absent or ``*``."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise ValidationFailed.fields({"If-Match": '应为项目的 ETag，例如 "3"'})
    return int(tag)


IfMatch = Annotated[int | None, Depends(if_match)]


async def idempotency_key(
    request: Request,
    principal: CurrentPrincipal,
    key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="重试同一请求时使用同一个键")
    ] = None,
) -> IdempotencyKey | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not all("!" <= ch <= "~" for ch in key):
        raise ValidationFailed.fields({"Idempotency-Key": "应为 1 至 255 个可见 ASCII 字符"})
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

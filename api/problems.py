"""RFC 9457 problem details: the one place that turns any refusal into an HTTP answer.

Every error answer is ``application/problem+json`` with a stable ``code``; ``detail`` is a
sentence in Simplified Chinese; ``errors`` (validation only) maps each bad field to what is
wrong with it. Routes never build error answers themselves: they let engine errors rise.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.headers import etag
from engine import VersionConflict, ZizhiError

log = logging.getLogger("zizhi.api")

MEDIA_TYPE = "application/problem+json"

# code → (HTTP status, title)
CODES: dict[str, tuple[int, str]] = {
    "unauthenticated": (401, "未登录或令牌无效"),
    "forbidden": (403, "无权执行此操作"),
    "not_found": (404, "未找到"),
    "method_not_allowed": (405, "不支持的请求方法"),
    "payload_too_large": (413, "请求体过大"),
    "validation_error": (422, "输入有误"),
    "idempotency_conflict": (422, "幂等键冲突"),
    "action_not_allowed": (409, "当前阶段不能执行此操作"),
    "guard_failed": (409, "条件不满足"),
    "fund_cap_exceeded": (409, "经费不足"),
    "already_exists": (409, "已存在"),
    "year_closed": (409, "年度已结账"),
    "version_conflict": (412, "版本冲突"),
    "internal_error": (500, "服务器内部错误"),
}


class Problem(BaseModel):
    """An error answer (RFC 9457)."""

    type: str = Field(
        pattern="^urn:zizhi:problem:[a-z_]+$", examples=["urn:zizhi:problem:fund_cap_exceeded"]
    )
    title: str = Field(examples=["经费不足"])
    status: int = Field(examples=[409])
    # An open string, not an enum: a code added later must not break an older client.
    code: str = Field(
        description="稳定的错误代码。目前有："
        + "、".join(f"`{code}`" for code in CODES)
        + "；今后可能增加新的代码，客户端应能处理未知代码（按 HTTP 状态处理）。",
        examples=list(CODES),
    )
    detail: str = Field(examples=["预算 3000000 分超过本年度可用经费 2000000 分，无法预留"])
    instance: str | None = Field(default=None, examples=["/api/v1/projects/7/actions/approve"])
    errors: dict[str, str] | None = Field(
        default=None,
        description="仅 validation_error：字段 → 问题",
        examples=[{"budget_fen": "预算（分）必须是整数（单位：分），不能是小数或字符串"}],
    )


def problem(
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status, title = CODES[code]
    body: dict[str, Any] = {
        "type": f"urn:zizhi:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route can answer with."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        status, title = CODES[code]
        entry = out.setdefault(
            status, {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": ""}
        )
        entry["description"] = "；".join(filter(None, [entry["description"], f"{code}：{title}"]))
    return out


def install(app: FastAPI) -> None:
    app.add_exception_handler(ZizhiError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ZizhiError)
    headers = {}
    if exc.code == "unauthenticated":
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, VersionConflict):
        headers["ETag"] = etag(exc.current_version)
    errors = getattr(exc, "errors", None)
    return problem(exc.code, exc.message, instance=request.url.path, errors=errors, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        if loc and loc[0] in ("query", "path", "header"):
            loc = loc[1:]
        field = ".".join(loc) or "body"
        errors.setdefault(field, _message(err))
    summary = "；".join(f"{field}：{message}" for field, message in errors.items())
    return problem(
        "validation_error", f"输入有误：{summary}", instance=request.url.path, errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return problem(
            "method_not_allowed",
            "此地址不支持该请求方法",
            instance=request.url.path,
            headers={"Allow": _allowed_methods(request)},
        )
    if exc.status_code == 413:
        return problem("payload_too_large", "请求体超过大小上限", instance=request.url.path)
    if exc.status_code == 400:
        return problem(
            "validation_error",
            "无法读取请求体",
            instance=request.url.path,
            errors={"body": "无法读取请求体"},
        )
    return problem("not_found", "请求的地址不存在", instance=request.url.path)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """RFC 9110: a 405 lists every method the address supports (``Allow``).

    Starlette's own header names the methods of the first route whose path matched, though
    GET and POST on one address are two routes: ask every route about every method instead.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # HEAD is answered wherever GET is
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return ", ".join(allowed)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unexpected error on %s %s: %s\n%s",
        request.method,
        request.url.path,
        _describe(exc),
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    return problem(
        "internal_error", "服务器内部错误，请稍后重试；问题已记录", instance=request.url.path
    )


def _describe(exc: Exception) -> str:
    """The error without the data it may quote.

    Never the request body, and for database errors only the primary message: PostgreSQL's
    DETAIL line quotes the failing row, which can hold a resident's name and phone number.
    """
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        diag = getattr(exc.orig, "diag", None)
        primary = getattr(diag, "message_primary", None) or str(exc.orig).split("\n")[0]
        return f"{type(exc.orig).__name__}: {primary}"
    return f"{type(exc).__name__}: {exc}"


_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "int_type": "必须是整数，不能是小数或字符串",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数，不能是小数",
    "string_type": "必须是文本",
    "bool_type": "必须是 true 或 false",
    "bool_parsing": "必须是 true 或 false",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "string_pattern_mismatch": "格式无效",
    "greater_than_equal": "超出允许范围",
    "less_than_equal": "超出允许范围",
    "greater_than": "超出允许范围",
    "less_than": "超出允许范围",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    "model_attributes_type": "请求体必须是 JSON 对象",
    "dict_type": "请求体必须是 JSON 对象",
    "model_type": "请求体必须是 JSON 对象",
    "dataclass_type": "请求体必须是 JSON 对象",
    "list_type": "必须是列表",
    "enum": "取值无效",
    "literal_error": "取值无效",
    "datetime_parsing": "时间格式无效，应为 ISO 8601，例如 2026-03-01T12:00:00+08:00",
    "datetime_from_date_parsing": "时间格式无效，应为 ISO 8601，例如 2026-03-01T12:00:00+08:00",
    "datetime_type": "时间格式无效，应为 ISO 8601",
    "timezone_aware": "时间必须带时区",
}


def _message(err: Any) -> str:
    if err.get("type") == "model_attributes_type" and isinstance(err.get("input"), bytes):
        return "请求体须为 JSON，并带请求头 Content-Type: application/json"
    message = _MESSAGES.get(err.get("type", ""), "取值无效")
    ctx = err.get("ctx") or {}
    if err.get("type") in ("greater_than_equal", "less_than_equal") and ctx:
        bound = ctx.get("ge", ctx.get("le"))
        message = f"{message}（边界 {bound}）"
    if err.get("type") == "string_too_long" and "max_length" in ctx:
        message = f"不能超过 {ctx['max_length']} 个字符"
    return message

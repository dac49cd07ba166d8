"""The web pages (DESIGN §9): server-rendered Simplified Chinese, for people, not programs.

Routes are grouped by who uses them; every figure, rule and refusal comes from the engine's
use cases. ``install`` mounts the pages, the static files and the error pages on the app.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web import audit, demands, projects, public, reports, sign_in, street
from api.web.render import error_page, install_filters
from api.web.session import BadForm, SignInRequired, login_url
from engine import ZizhiError

STATIC_DIR = Path(__file__).resolve().parent / "static"
ROUTERS = [
    sign_in.router,
    projects.router,
    demands.router,
    street.router,
    audit.router,
    reports.router,  # before public: /public/reports/{year} is not a community's board
    public.router,
]
log = logging.getLogger("zizhi.web")

_STATUS = {
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "validation_error": 422,
    "version_conflict": 412,
    "too_many_attempts": 429,
}


def install(app: FastAPI) -> None:
    install_filters(app.state.templates)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_engine_error = app.exception_handlers[ZizhiError]
    api_http_error = app.exception_handlers[StarletteHTTPException]
    api_unexpected = app.exception_handlers[Exception]
    api_validation_error = app.exception_handlers[RequestValidationError]

    async def engine_error(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await _call(api_engine_error, request, exc)
        assert isinstance(exc, ZizhiError)
        return error_page(request, _STATUS.get(exc.code, 409), exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _is_page(request) and not _wants_html(request):
            return await _call(api_http_error, request, exc)
        assert isinstance(exc, StarletteHTTPException)
        message = {404: "您要找的页面不存在。", 405: "不支持这种请求方式。"}.get(
            exc.status_code, "请求无法处理，请返回重试。"
        )
        return error_page(request, exc.status_code, message)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await _call(api_unexpected, request, exc)
        log.error(
            "unexpected error on page %s %s: %s\n%s",
            request.method,
            request.url.path,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return error_page(request, 500, "服务器内部错误，请稍后重试；问题已记录。")

    async def bad_address(request: Request, exc: Exception) -> Response:
        if not _is_page(request):
            return await _call(api_validation_error, request, exc)
        assert isinstance(exc, RequestValidationError)
        if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
            return error_page(request, 404, "您要找的页面不存在。")
        return error_page(request, 422, "地址中的查询条件无效，请返回修改后重试。")

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    async def bad_form(request: Request, exc: Exception) -> Response:
        return error_page(
            request,
            403,
            "表单已失效（可能已在别处退出登录或页面停留过久），请返回页面刷新后重新提交。",
        )

    app.add_exception_handler(ZizhiError, engine_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(RequestValidationError, bad_address)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(BadForm, bad_form)


async def _call(handler: Any, request: Request, exc: Exception) -> Response:
    """The API's own handler (problem details) for a request that is not a page."""
    answer = handler(request, exc)
    if inspect.isawaitable(answer):
        answer = await answer
    assert isinstance(answer, Response)
    return answer


def _is_page(request: Request) -> bool:
    route = request.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    return getattr(endpoint, "__module__", "").startswith("api.web")


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")

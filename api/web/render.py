"""Rendering pages: the templates, their filters, and error pages in Chinese.

Templates autoescape everything (Jinja2 with autoescape on): whatever a resident typed is
shown as text. Errors on a page are pages too — a sentence in Chinese and a way back, never
a stack trace.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

import engine
from api.web.session import Visitor, set_anon_cookie, visitor
from engine import Role


def local_time(moment: datetime | None, with_seconds: bool = False) -> str:
    """A moment as a worker in Suzhou reads it (Beijing time)."""
    if moment is None:
        return ""
    local = moment.astimezone(engine.FISCAL_TZ)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def yuan(fen: int | None) -> str:
    return "—" if fen is None else engine.format_fen(fen)


def install_filters(templates: Jinja2Templates) -> None:
    env = templates.env
    env.filters["yuan"] = yuan
    env.filters["local_time"] = local_time
    env.globals["role_label"] = lambda role: Role(role).label
    env.globals["fund_label"] = lambda fund: engine.Fund(fund).label


def nav(who: Visitor) -> list[tuple[str, str]]:
    if who.principal is None:
        return [("/public", "公示栏")]
    role = who.principal.role
    items = [("/", "首页")]
    if role is Role.committee:
        items += [("/projects/new", "新建项目")]
        items += [
            (f"/communities/{c}/demands", "需求池") for c in sorted(who.principal.communities)[:1]
        ]
    if role in (Role.street, Role.admin):
        items += [("/street", "街道")]
    if role in (Role.auditor, Role.admin, Role.street):
        items += [("/audit", "审计查询")]
    items += [("/public", "公示栏")]
    return items


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    who = visitor(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "nav": nav(who),
            "csrf": who.csrf_token,
            "form_key": new_form_key,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if who.fresh_anon_token:
        set_anon_cookie(request, response, who.csrf_token)
    return response


def new_form_key() -> str:
    """One per rendered form: sent twice (a double click), the change is done once."""
    return secrets.token_urlsafe(16)


STATUS_TITLES = {
    400: "请求无效",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持的请求方式",
    409: "操作未能完成",
    412: "页面已过期",
    413: "提交的内容过大",
    422: "输入有误",
    429: "操作过于频繁",
    500: "服务器内部错误",
}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": STATUS_TITLES.get(status, "出错了"), "message": message, "status": status},
        status_code=status,
    )

"""The FastAPI application: routes, problem details, the request size limit, OpenAPI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from api.routes import audit, communities, meta, projects, tokens, webhooks, years
from api.settings import Settings
from engine.uow import Zizhi

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

DESCRIPTION = """
自治（Zizhi）居民自治项目流程与经费台账接口。

* 认证：`Authorization: Bearer <令牌>`（`zizhi token create` 或 `POST /api/v1/tokens`）。
* 金额一律为整数“分”（`*_fen`），不接受字符串或小数。
* 错误为 RFC 9457 problem details（`application/problem+json`），`code` 字段稳定不变。
* 每个 POST 都接受 `Idempotency-Key`：同键同请求返回首次结果且不重复执行；同键不同请求为
  `idempotency_conflict`。
* 项目的 `ETag` 即版本号；执行操作时带 `If-Match` 可防止覆盖他人的更新（`version_conflict`）。
* 列表用游标分页：把应答中的 `next_cursor` 作为下一次请求的 `cursor`。
"""


def create_app(zizhi: Zizhi, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Zizhi 自治 API",
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "项目"},
            {"name": "社区与经费"},
            {"name": "审计"},
            {"name": "年度结账"},
            {"name": "令牌"},
            {"name": "推送订阅"},
            {"name": "流程"},
            {"name": "运维"},
        ],
    )
    app.state.zizhi = zizhi
    app.state.webhook_guard = settings.webhook_guard()
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    problems.install(app)
    for router in (
        communities.router,
        projects.build_router(zizhi.workflows),
        audit.router,
        years.router,
        tokens.router,
        webhooks.router,
        meta.router,
    ):
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    document = app.openapi
    app.openapi = lambda: _as_served(document())  # type: ignore[method-assign]
    return app


def _as_served(document: dict[str, Any]) -> dict[str, Any]:
    """Two corrections to what FastAPI documents, so that clients read what is served.

    * An error answer is ``application/problem+json``: FastAPI puts a response ``model``
      under ``application/json`` whatever the answer's media type.
    * An optional query or header parameter is left out, never null: FastAPI documents
      ``str | None = None`` as "a string or null", and clients then send the text ``null``.
    """
    for operations in document["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                content = response.get("content", {})
                if problems.MEDIA_TYPE in content and "application/json" in content:
                    content[problems.MEDIA_TYPE] = content.pop("application/json")
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                others = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
                if len(others) == 1 and len(schema["anyOf"]) == 2:
                    rest = {k: v for k, v in schema.items() if k != "anyOf"}
                    parameter["schema"] = {**others[0], **rest}
    return document


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with ``payload_too_large``.

    An announced Content-Length is refused before anything is read; a streamed (chunked)
    body is cut off as soon as it passes the limit. (FastAPI's own ``max_body_size`` would
    answer in plain text, outside the problem-details contract.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = problems.problem(
                "payload_too_large",
                f"请求体超过 {self.max_bytes} 字节的上限",
                instance=scope.get("path"),
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413)
            return message

        await self.app(scope, limited_receive, send)

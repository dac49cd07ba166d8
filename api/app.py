"""The FastAPI application: routes, problem details, the request size limit, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import handoff, openapi, problems, web
from api.routes import (
    actions,
    audit,
    communities,
    meta,
    projects,
    reports,
    tokens,
    webhooks,
    years,
)
from api.settings import Settings
from engine import Zizhi

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
        lifespan=_worker_threads(
            settings.worker_threads(sqlite=zizhi.db.is_sqlite), one_writer=zizhi.db.is_sqlite
        ),
        title=openapi.TITLE,
        version="1.0",
        description=DESCRIPTION,
        openapi_tags=openapi.TAGS,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.zizhi = zizhi
    app.state.webhook_guard = settings.webhook_guard()
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    problems.install(app)
    action_schemas = actions.action_schemas(zizhi.workflows)
    for router in (
        communities.router,
        projects.router,
        projects.list_router(zizhi.workflows),
        actions.build_router(action_schemas),
        audit.router,
        years.router,
        tokens.router,
        webhooks.router,
        reports.router,
        meta.router,
    ):
        app.include_router(router)
    web.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadAsGet)
    document = app.openapi
    components = actions.components(action_schemas)
    app.openapi = lambda: openapi.as_served(document(), components)  # type: ignore[method-assign]
    return app


def _worker_threads(
    count: int, *, one_writer: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan that sizes this process's worker threads (``Settings.worker_threads``).

    Every route's engine call runs in the event loop's default thread pool (anyio's), 40
    threads unless told otherwise. More threads than the work can use make requests wait
    for the GIL instead of in the loop's queue: on two CPUs, 32 clients' reads had a p99 of
    74–79 ms with 40 threads and 13–15 ms with 2, and 2 served a third more of them
    (docs/performance.md §7). With ``one_writer`` (SQLite), the API's writes take a thread
    of their own one at a time (``handoff.one_writer_at_a_time``): queued writers then wait
    on the loop instead of in threads beside the one holding SQLite's lock, and reads never
    wait behind them.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = count
        if one_writer:
            handoff.one_writer_at_a_time()
        yield

    return lifespan


class HeadAsGet:
    """Answer ``HEAD`` wherever ``GET`` is answered: the same status and headers, no body.

    RFC 9110 asks a server that answers GET to answer HEAD too; FastAPI's routes take only
    the methods they name. The request runs as a GET and its body is dropped on the way out.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


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

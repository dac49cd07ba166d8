"""The FastAPI application: routes, problem details, the request size limit, OpenAPI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from api import problems
from api.routes import audit, communities, meta, projects, tokens
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
    app = FastAPI(title="Zizhi 自治 API", version="1.0", description=DESCRIPTION,
                  max_body_size=settings.max_body_bytes,
                  openapi_tags=[{"name": "项目"}, {"name": "社区与经费"}, {"name": "审计"},
                                {"name": "令牌"}, {"name": "流程"}, {"name": "运维"}])
    app.state.zizhi = zizhi
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    problems.install(app)
    for router in (communities.router, projects.build_router(zizhi.workflows), audit.router,
                   tokens.router, meta.router):
        app.include_router(router)
    return app

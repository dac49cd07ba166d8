"""Webhook subscriptions, their delivery log, redelivery and a test ping (admin).

docs/webhooks.md describes the messages, their signatures and the retry schedule.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request, Response
from pydantic import ConfigDict, Field
from starlette.convertors import Convertor, register_url_convertor

import engine
from api.deps import MAX_ID, CurrentPrincipal, Cursor, Idempotency, ZizhiDep
from api.handoff import Router
from api.headers import LOCATION
from api.problems import responses
from api.schemas import PageOut, Strict
from engine import (
    COMMUNITY_ID_PATTERN,
    DeliveryView,
    UrlGuard,
    WebhookView,
    deliveries,
    subscriptions,
)

router = Router(prefix="/api/v1/webhooks", tags=["webhooks"])


class WebhookIdConvertor(Convertor[str]):
    """Only a subscription id is one, so ``/event-types`` never reaches ``/{webhook_id}``
    (another method on it is then ``method_not_allowed``, not a malformed id)."""

    regex = "wh_[0-9a-f]{16}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("webhook_id", WebhookIdConvertor())

EVENT_PATTERN = r"^(\*|[a-z_]+\.\*|[a-z_]+\.[a-z_]+)$"
WebhookId = Annotated[
    str, Path(max_length=32, pattern=r"^wh_[0-9a-f]{16}$", description="订阅编号")
]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="推送记录编号")]
Limit = Annotated[int, Query(ge=1, le=500, description="每页条数")]
Format = Literal["standard", "wecom_bot", "dingtalk_bot"]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2000,
        description="接收地址（http 或 https，须为公网地址）",
        examples=["https://data.example.gov.cn/zizhi/webhooks"],
    ),
]
Events = Annotated[
    list[Annotated[str, Field(max_length=64, pattern=EVENT_PATTERN)]],
    Field(
        min_length=1,
        max_length=50,
        description="事件类型（见 GET /api/v1/webhooks/event-types），如 project.transitioned、"
        "前缀 ledger.*，或 * 表示全部",
    ),
]
CommunityFilter = Annotated[
    str | None,
    Field(max_length=64, pattern=COMMUNITY_ID_PATTERN, description="只推送该社区的事件"),
]
StreetFilter = Annotated[
    str | None,
    Field(
        max_length=64,
        pattern=engine.text_pattern(single_line=True),
        description="只推送该街道的事件",
    ),
]
# One line of text, possibly blank (none): the engine's own rule for a description.
Description = Annotated[
    str | None,
    Field(
        max_length=200,
        pattern=engine.optional_text_pattern(single_line=True),
        description="说明（一行文字，可为空）",
    ),
]
BotSecret = Annotated[
    str | None,
    Field(
        max_length=200,
        pattern=r"^[A-Za-z0-9_+/=-]+$",
        description="钉钉机器人“加签”密钥（SEC 开头），仅 dingtalk_bot",
    ),
]
ERRORS = ("unauthenticated", "forbidden", "not_found", "validation_error")


class WebhookIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://data.example.gov.cn/zizhi/webhooks",
                    "events": ["project.transitioned", "ledger.*"],
                    "street": "金阊街道",
                    "description": "街道数据平台",
                }
            ]
        }
    )

    url: Url
    events: Events
    community_id: CommunityFilter = None
    street: StreetFilter = None
    description: Description = None
    format: Format = Field(default="standard", description="standard / wecom_bot / dingtalk_bot")
    bot_secret: BotSecret = None


class WebhookPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events": ["*"], "active": True}]})

    url: Url | None = None
    events: Events | None = None
    community_id: CommunityFilter = None
    street: StreetFilter = None
    description: Description = None
    format: Format | None = None
    bot_secret: BotSecret = None
    active: bool | None = Field(default=None, description="true 启用 / false 停用")


async def url_guard(request: Request) -> UrlGuard:
    guard: UrlGuard = request.app.state.webhook_guard
    return guard


Guard = Annotated[UrlGuard, Depends(url_guard)]


@router.post(
    "",
    status_code=201,
    response_model=WebhookView,
    summary="新建推送订阅（管理员）；签名密钥只在此次应答中出现一次",
    responses={
        201: {"headers": {"Location": LOCATION}},
        **responses(
            "unauthenticated",
            "forbidden",
            "validation_error",
            "idempotency_conflict",
            "payload_too_large",
        ),
    },
)
def create_webhook(
    body: WebhookIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    guard: Guard,
    idempotency: Idempotency,
    response: Response,
) -> WebhookView:
    view = subscriptions.create_subscription(
        z, principal, guard, **body.model_dump(), idempotency=idempotency
    )
    response.headers["Location"] = f"/api/v1/webhooks/{view.id}"
    return view


@router.get(
    "",
    response_model=list[WebhookView],
    summary="全部推送订阅（不含密钥）",
    responses=responses("unauthenticated", "forbidden"),
)
def list_webhooks(z: ZizhiDep, principal: CurrentPrincipal) -> list[WebhookView]:
    return subscriptions.list_subscriptions(z, principal)


@router.get(
    "/event-types",
    summary="可订阅的事件类型及每种消息的 JSON Schema",
    responses=responses("unauthenticated"),
)
def event_types(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    return subscriptions.event_types()


@router.get(
    "/{webhook_id:webhook_id}",
    response_model=WebhookView,
    summary="一个推送订阅（不含密钥）",
    responses=responses(*ERRORS),
)
def get_webhook(webhook_id: WebhookId, z: ZizhiDep, principal: CurrentPrincipal) -> WebhookView:
    return subscriptions.get_subscription(z, principal, webhook_id)


@router.patch(
    "/{webhook_id:webhook_id}",
    response_model=WebhookView,
    summary="修改推送订阅；active 为 false 停用、true 重新启用",
    responses=responses(*ERRORS, "payload_too_large"),
)
def update_webhook(
    webhook_id: WebhookId,
    body: WebhookPatch,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    guard: Guard,
) -> WebhookView:
    # null clears a filter, a description or a bot secret; elsewhere it means "unchanged".
    clearable = {"community_id", "street", "description", "bot_secret"}
    changes = {
        k: v
        for k, v in body.model_dump(include=body.model_fields_set).items()
        if v is not None or k in clearable
    }
    return subscriptions.update_subscription(z, principal, guard, webhook_id, changes)


@router.delete(
    "/{webhook_id:webhook_id}",
    response_model=WebhookView,
    summary="删除推送订阅及其未送达消息与推送记录",
    responses=responses(*ERRORS),
)
def delete_webhook(webhook_id: WebhookId, z: ZizhiDep, principal: CurrentPrincipal) -> WebhookView:
    return subscriptions.delete_subscription(z, principal, webhook_id)


@router.post(
    "/{webhook_id:webhook_id}/disable",
    response_model=WebhookView,
    summary="停用推送订阅（未送达的消息保留，重新启用后继续推送）",
    responses=responses(*ERRORS, "idempotency_conflict", "payload_too_large"),
)
def disable_webhook(
    webhook_id: WebhookId, z: ZizhiDep, principal: CurrentPrincipal, idempotency: Idempotency
) -> WebhookView:
    return subscriptions.disable_subscription(z, principal, webhook_id, idempotency=idempotency)


@router.post(
    "/{webhook_id:webhook_id}/rotate-secret",
    response_model=WebhookView,
    summary="更换签名密钥；新密钥只显示这一次，24 小时内新旧两个签名同时发送",
    responses=responses(*ERRORS, "idempotency_conflict", "payload_too_large"),
)
def rotate_webhook_secret(
    webhook_id: WebhookId, z: ZizhiDep, principal: CurrentPrincipal, idempotency: Idempotency
) -> WebhookView:
    return subscriptions.rotate_secret(z, principal, webhook_id, idempotency=idempotency)


@router.get(
    "/{webhook_id:webhook_id}/deliveries",
    response_model=PageOut[DeliveryView],
    summary="推送记录：每条消息及其每次尝试（时间、状态码、耗时、错误、应答摘录），新的在前",
    responses=responses(*ERRORS),
)
def list_deliveries(
    webhook_id: WebhookId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> object:
    return deliveries.list_deliveries(z, principal, webhook_id, limit=limit, cursor=cursor)


@router.post(
    "/{webhook_id:webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryView,
    summary="重新推送一条消息（webhook-id 不变）",
    responses=responses(*ERRORS, "idempotency_conflict", "payload_too_large"),
)
def redeliver(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
) -> DeliveryView:
    return deliveries.redeliver(z, principal, webhook_id, delivery_id, idempotency=idempotency)


@router.post(
    "/{webhook_id:webhook_id}/ping",
    response_model=DeliveryView,
    summary="发送一条 webhook.test 测试消息",
    responses=responses(*ERRORS, "idempotency_conflict", "payload_too_large"),
)
def ping(
    webhook_id: WebhookId, z: ZizhiDep, principal: CurrentPrincipal, idempotency: Idempotency
) -> DeliveryView:
    return deliveries.ping(z, principal, webhook_id, idempotency=idempotency)

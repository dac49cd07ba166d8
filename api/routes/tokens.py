"""API tokens (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Response

import engine
from api.deps import CurrentPrincipal, Idempotency, ZizhiDep
from api.handoff import Router
from api.headers import LOCATION
from api.problems import responses
from api.schemas import TokenIn
from engine import TokenView

router = Router(prefix="/api/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=201,
    response_model=TokenView,
    summary="创建令牌（管理员）；令牌明文只在此次应答中出现一次",
    description="带同一 Idempotency-Key 重试时返回同一令牌记录，但不再包含明文。",
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
def create_token(
    body: TokenIn,
    z: ZizhiDep,
    principal: CurrentPrincipal,
    idempotency: Idempotency,
    response: Response,
) -> TokenView:
    view = engine.create_token(
        z,
        principal,
        name=body.name,
        role=body.role,
        communities=body.communities,
        streets=body.streets,
        idempotency=idempotency,
    )
    # The token's address: DELETE there revokes it.
    response.headers["Location"] = f"/api/v1/tokens/{view.id}"
    return view


@router.get(
    "",
    response_model=list[TokenView],
    summary="全部令牌（不含明文）",
    responses=responses("unauthenticated", "forbidden"),
)
def list_tokens(z: ZizhiDep, principal: CurrentPrincipal) -> list[TokenView]:
    return engine.list_tokens(z, principal)


@router.delete(
    "/{token_id}",
    response_model=TokenView,
    summary="吊销令牌",
    responses=responses("unauthenticated", "forbidden", "not_found", "validation_error"),
)
def revoke_token(
    token_id: Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]+$")],
    z: ZizhiDep,
    principal: CurrentPrincipal,
) -> TokenView:
    return engine.revoke_token(z, principal, token_id)

"""API tokens: created by an admin, shown once, stored only as their SHA-256, revocable.

A token is a 256-bit random string; a fast hash is enough for a secret with that much
entropy.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine import text
from engine.errors import (
    NotFound,
    Unauthenticated,
)
from engine.model import IdempotencyKey, Principal, Role
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import api_tokens, users
from engine.store.uow import Zizhi
from engine.usecases.access import check_grant, check_scope_exists

TOKEN_PREFIX = "zz_"


@dataclass(frozen=True, slots=True)
class TokenView:
    id: str
    name: str
    role: str
    communities: list[str]
    streets: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    # The secret, shown once, in the answer that created it (never stored, never replayed).
    token: str | None = None


def hash_token(token: str) -> str:
    """The SHA-256 a token is stored and looked up as."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    z: Zizhi,
    principal: Principal,
    *,
    name: str,
    role: str,
    communities: Iterable[str] = (),
    streets: Iterable[str] = (),
    idempotency: IdempotencyKey | None = None,
) -> TokenView:
    """Create an API token (admin); its secret is in this answer only, never replayed."""
    principal.require(Role.admin)
    scope = check_grant(name=name, role=role, communities=communities, streets=streets)
    name = text.clean(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    with z.change(principal, idempotency, chain=SYSTEM_CHAIN) as change:
        if (done := change.replay(TokenView)) is not None:
            return done
        check_scope_exists(change.conn, scope)
        change.conn.execute(
            sa.insert(api_tokens).values(
                id=token_id,
                name=name,
                role=role,
                communities=json.dumps(scope[0]),
                streets=json.dumps(scope[1]),
                token_hash=hash_token(token),
                created_at=change.at,
            )
        )
        change.history.append(
            "token.created",
            {
                "token_id": token_id,
                "name": name,
                "role": role,
                "communities": scope[0],
                "streets": scope[1],
            },
        )
        view = TokenView(
            id=token_id,
            name=name,
            role=role,
            communities=scope[0],
            streets=scope[1],
            created_at=change.at,
        )
        change.commit(view)
    return replace(view, token=token)


def revoke_token(z: Zizhi, principal: Principal, token_id: str) -> TokenView:
    """Revoke a live token (admin); it authenticates no more."""
    principal.require(Role.admin)
    with z.change(principal, chain=SYSTEM_CHAIN) as change:
        row = change.conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=change.at)
            .returning(api_tokens)
        ).first()
        if row is None:
            raise NotFound(f"令牌“{token_id}”不存在或已吊销")
        change.history.append("token.revoked", {"token_id": token_id})
        change.commit()
    return _token_view(row)


def list_tokens(z: Zizhi, principal: Principal) -> list[TokenView]:
    """Every token, revoked ones included, without secrets (admin)."""
    principal.require(Role.admin)
    with z.read() as conn:
        rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at)).all()
    return [_token_view(r) for r in rows]


# Revoking a token appends ``token.revoked`` to the system chain, so the system chain's head
# moves with every revocation: it is the generation a cached principal is checked against.
_GENERATION = "SELECT seq FROM chain_heads WHERE chain = ?"
_CACHED_PRINCIPALS = 10_000


def cached_principal(z: Zizhi, token: str) -> Principal | None:
    """The principal of a token this process has authenticated before, if it still stands
    (see ``authenticate_token``); None: ask ``authenticate_token``."""
    cached = z.principals.get(hash_token(token))
    if cached is None or cached[0] != z.db.peek(_GENERATION, (SYSTEM_CHAIN,)):
        return None
    return cached[1]


def authenticate_token(z: Zizhi, token: str) -> Principal:
    """The principal a bearer token stands for; Unauthenticated if none.

    A token seen before is answered from a per-process cache, checked on every call against
    the system chain's head, read fresh from the database (one primary-key read outside any
    transaction): a revocation by any process moves that head, so a revoked token is refused
    on the very next request everywhere.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("令牌无效")
    digest = hash_token(token)
    generation = z.db.peek(_GENERATION, (SYSTEM_CHAIN,))
    cached = z.principals.get(digest)
    if cached is not None and cached[0] == generation:
        return cached[1]
    with z.read() as conn:
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        z.principals.pop(digest, None)
        raise Unauthenticated("令牌无效或已吊销")
    principal = Principal(
        id=f"token:{row.id}",
        name=row.name,
        role=Role(row.role),
        communities=frozenset(json.loads(row.communities)),
        streets=frozenset(json.loads(row.streets)),
    )
    if len(z.principals) >= _CACHED_PRINCIPALS:
        z.principals.clear()
    # Read before the token's row: a revocation committed in between moves the head past
    # ``generation``, and the next call reads the row again.
    z.principals[digest] = (generation, principal)
    return principal


def has_admin(z: Zizhi) -> bool:
    """Whether anyone can administer this installation yet (a live admin token or user)."""
    with z.read() as conn:
        token = conn.execute(
            sa.select(sa.literal(1))
            .where(api_tokens.c.role == Role.admin, api_tokens.c.revoked_at.is_(None))
            .limit(1)
        ).first()
        user = conn.execute(
            sa.select(sa.literal(1))
            .where(users.c.role == Role.admin, users.c.disabled_at.is_(None))
            .limit(1)
        ).first()
    return token is not None or user is not None


# --- internals -------------------------------------------------------------------------------


def _token_view(row: sa.Row[Any]) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        role=row.role,
        communities=json.loads(row.communities),
        streets=json.loads(row.streets),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )

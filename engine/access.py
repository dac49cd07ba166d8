"""Who is asking, and what they may see: principals, scopes, API tokens and users.

A principal is a token or a signed-in user with one role and a scope. Committees see the
communities they are given; street officers every community of their streets; auditors
their scope, or the whole city when given none; admins everything. Outside its scope a
principal is told a thing does not exist (``not_found``), never shown it.

API tokens are 256-bit random strings stored only as their SHA-256 (a fast hash is enough
for a secret with that much entropy); passwords, which people choose, only as Argon2 hashes.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from engine import fields
from engine.domain import Role
from engine.errors import (
    AlreadyExists,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from engine.history import SYSTEM_CHAIN, Actor
from engine.tables import api_tokens, communities, users
from engine.uow import IdempotencyKey, Zizhi

TOKEN_PREFIX = "zz_"
_NAME = fields.text("name", "名称", max_length=100, single_line=True)
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # token:<id> | user:<username> | cli
    name: str
    role: Role
    communities: frozenset[str] = frozenset()
    streets: frozenset[str] = frozenset()

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.role.value)

    @property
    def unrestricted(self) -> bool:
        return self.role is Role.admin or (
            self.role is Role.auditor and not self.communities and not self.streets
        )

    def covers(self, community_id: str, street: str) -> bool:
        return self.unrestricted or community_id in self.communities or street in self.streets

    def scope_clause(self) -> sa.ColumnElement[bool]:
        """A WHERE clause on ``communities`` selecting what this principal may see."""
        if self.unrestricted:
            return sa.true()
        return sa.or_(
            communities.c.id.in_(sorted(self.communities)),
            communities.c.street.in_(sorted(self.streets)),
        )

    def sees_personal_data(self, community_id: str) -> bool:
        """Residents' names and contacts: their own committee and auditors only."""
        if self.role is Role.committee:
            return community_id in self.communities
        return self.role is Role.auditor

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            who = "、".join(r.label for r in roles)
            raise Forbidden(f"此操作只能由{who}执行")


CLI = Principal(id="cli", name="命令行", role=Role.admin)


def visible_community(conn: Connection, principal: Principal, community_id: str) -> sa.Row[Any]:
    row = conn.execute(sa.select(communities).where(communities.c.id == community_id)).first()
    if row is None or not principal.covers(row.id, row.street):
        raise NotFound(f"社区“{community_id}”不存在")
    return row


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
    principal.require(Role.admin)
    scope = _check_grant(name=name, role=role, communities=communities, streets=streets)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    with z.change(principal.actor, idempotency) as change:
        change.lock(SYSTEM_CHAIN)
        if (done := change.replayed(TokenView)) is not None:
            return done
        _check_scope_exists(change.conn, scope)
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
    principal.require(Role.admin)
    with z.change(principal.actor) as change:
        change.lock(SYSTEM_CHAIN)
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
    principal.require(Role.admin)
    with z.read() as conn:
        rows = conn.execute(sa.select(api_tokens).order_by(api_tokens.c.created_at)).all()
    return [_token_view(r) for r in rows]


def authenticate_token(z: Zizhi, token: str) -> Principal:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("令牌无效")
    with z.read() as conn:
        row = conn.execute(
            sa.select(api_tokens).where(api_tokens.c.token_hash == hash_token(token))
        ).first()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("令牌无效或已吊销")
    return Principal(
        id=f"token:{row.id}",
        name=row.name,
        role=Role(row.role),
        communities=frozenset(json.loads(row.communities)),
        streets=frozenset(json.loads(row.streets)),
    )


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


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    username: str
    role: str
    communities: list[str]
    streets: list[str]
    created_at: datetime


def create_user(
    z: Zizhi,
    principal: Principal,
    *,
    username: str,
    role: str,
    password: str,
    communities: Iterable[str] = (),
    streets: Iterable[str] = (),
) -> UserView:
    principal.require(Role.admin)
    if not _USERNAME.match(username):
        raise ValidationFailed.fields({"username": "用户名只能包含字母、数字和 _.@-，最长 64 位"})
    if len(password) < 10 or len(password) > 1000:
        raise ValidationFailed.fields({"password": "密码长度须在 10 至 1000 个字符之间"})
    scope = _check_grant(name=username, role=role, communities=communities, streets=streets)
    password_hash = _hasher.hash(password)  # slow on purpose; done before taking any lock
    with z.change(principal.actor) as change:
        change.lock(SYSTEM_CHAIN)
        _check_scope_exists(change.conn, scope)
        taken = change.conn.execute(
            sa.select(users.c.id).where(users.c.username == username)
        ).first()
        if taken is not None:
            raise AlreadyExists(f"用户名“{username}”已存在")
        user_id = change.conn.execute(
            sa.insert(users)
            .values(
                username=username,
                password_hash=password_hash,
                role=role,
                communities=json.dumps(scope[0]),
                streets=json.dumps(scope[1]),
                created_at=change.at,
            )
            .returning(users.c.id)
        ).scalar_one()
        change.history.append(
            "user.created",
            {
                "user_id": user_id,
                "username": username,
                "role": role,
                "communities": scope[0],
                "streets": scope[1],
            },
        )
        change.commit()
    return UserView(
        id=user_id,
        username=username,
        role=role,
        communities=scope[0],
        streets=scope[1],
        created_at=change.at,
    )


def authenticate_password(z: Zizhi, username: str, password: str) -> Principal:
    with z.read() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == username)).first()
    if row is None or row.disabled_at is not None:
        _hasher.hash(password)  # same cost whether or not the user exists
        raise Unauthenticated("用户名或密码错误")
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("用户名或密码错误") from None
    return Principal(
        id=f"user:{row.username}",
        name=row.username,
        role=Role(row.role),
        communities=frozenset(json.loads(row.communities)),
        streets=frozenset(json.loads(row.streets)),
    )


# --- internals -------------------------------------------------------------------------------


def _check_grant(
    *, name: str, role: str, communities: Iterable[str], streets: Iterable[str]
) -> tuple[list[str], list[str]]:
    errors: dict[str, str] = {}
    if (message := _NAME.check(name)) is not None:
        errors["name"] = message
    if role not in Role.__members__:
        errors["role"] = f"角色必须是 {', '.join(Role)} 之一"
    community_ids = sorted(set(communities))
    street_names = sorted(set(streets))
    if role == Role.committee and (not community_ids or street_names):
        errors["communities"] = "社区居委会必须指定至少一个社区，且不能指定街道"
    if role == Role.street and (not street_names or community_ids):
        errors["streets"] = "街道工作人员必须指定至少一个街道，且不能指定社区"
    if role == Role.admin and (community_ids or street_names):
        errors["role"] = "管理员不限范围，不能指定社区或街道"
    if errors:
        raise ValidationFailed.fields(errors)
    return community_ids, street_names


def _check_scope_exists(conn: Connection, scope: tuple[list[str], list[str]]) -> None:
    wanted_communities, wanted_streets = scope
    errors = {}
    if wanted_communities:
        found = set(
            conn.execute(
                sa.select(communities.c.id).where(communities.c.id.in_(wanted_communities))
            ).scalars()
        )
        if missing := [c for c in wanted_communities if c not in found]:
            errors["communities"] = f"社区不存在：{'、'.join(missing)}"
    if wanted_streets:
        found = set(
            conn.execute(
                sa.select(communities.c.street).where(communities.c.street.in_(wanted_streets))
            ).scalars()
        )
        if missing := [s for s in wanted_streets if s not in found]:
            errors["streets"] = f"街道下还没有任何社区：{'、'.join(missing)}"
    if errors:
        raise ValidationFailed.fields(errors)


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

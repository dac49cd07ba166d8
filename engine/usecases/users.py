"""Users who sign in with a password; passwords, which people choose, only as Argon2 hashes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.errors import (
    AlreadyExists,
    Unauthenticated,
    ValidationFailed,
)
from engine.model import Principal, Role
from engine.store.history import SYSTEM_CHAIN
from engine.store.tables import users
from engine.store.uow import Zizhi
from engine.usecases.access import check_grant, check_scope_exists

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password's Argon2 hash, made by ``hash_password`` (never from outside)."""

    value: str


def hash_password(password: str) -> PasswordHash:
    """Check a new password's length and hash it (slow on purpose)."""
    _check_length(password)
    return PasswordHash(_hasher.hash(password))


def _check_length(password: str) -> None:
    if len(password) < 10 or len(password) > 1000:
        raise ValidationFailed.fields({"password": "密码长度须在 10 至 1000 个字符之间"})


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
    password: str | PasswordHash,
    communities: Iterable[str] = (),
    streets: Iterable[str] = (),
) -> UserView:
    """Create a user who signs in with a password (admin). ``password`` may be a hash made
    once by ``hash_password`` for many users who share it (the demo's users)."""
    principal.require(Role.admin)
    if not _USERNAME.match(username):
        raise ValidationFailed.fields({"username": "用户名只能包含字母、数字和 _.@-，最长 64 位"})
    if isinstance(password, str):
        _check_length(password)
    scope = check_grant(name=username, role=role, communities=communities, streets=streets)
    # Hashing is slow on purpose; done before taking any lock.
    password_hash = (
        password.value if isinstance(password, PasswordHash) else hash_password(password).value
    )
    with z.change(principal, chain=SYSTEM_CHAIN) as change:
        check_scope_exists(change.conn, scope)
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
    """The principal a username and password stand for; the same cost either way."""
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

"""Signing in to the web pages: password check, lock-out, server-side sessions, sign-out.

A session is a random 256-bit id held by the browser in a cookie; the database keeps only
its SHA-256, the username and the session's CSRF token, so signing out (or an expiry) ends
it at once in every process. A session ends after ``IDLE_TIMEOUT`` without a request (a
phone left on a desk, a shared computer at the community centre) and at the latest
``SESSION_LIFETIME`` after signing in; its ``expires_at`` slides forward with use, written
at most once every ``SLIDE_EVERY``, so most page views write nothing. Each request rebuilds
the person's principal from the users table, so a disabled user or a changed scope takes
effect immediately: a person sees exactly what a token of the same role and scope would see.

Lock-out: after ``USER_LIMIT`` failed sign-ins for one username, or ``ADDRESS_LIMIT`` from one
address, within ``WINDOW``, further attempts are refused without checking the password until
the window has passed. Attempts are rows in ``web_attempts`` (usernames and addresses as
digests), so every server process counts the same attempts. Each attempt is written (and
committed) *before* it is counted and before the password is checked, so attempts racing
in parallel cannot all slip under the limit: the k-th to commit counts at least k. A
refused attempt takes its rows back (it checked nothing); a successful one takes its own
and clears the user's failures.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.errors import Unauthenticated, ZizhiError
from engine.model import Principal, Role
from engine.store.tables import users
from engine.store.uow import Zizhi
from engine.store.web_tables import web_attempts, web_sessions
from engine.usecases import users as user_accounts

SESSION_LIFETIME = timedelta(hours=12)
IDLE_TIMEOUT = timedelta(hours=2)
SLIDE_EVERY = timedelta(minutes=5)
WINDOW = timedelta(minutes=15)
USER_LIMIT = 5
ADDRESS_LIMIT = 20


class TooManyAttempts(ZizhiError):
    """Too many attempts from this address or for this user; try again later."""

    code = "too_many_attempts"


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    session_id: str  # the cookie's value; stored only as a digest
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at: datetime


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def admit(z: Zizhi, message: str, *limits: tuple[str, str, timedelta, int]) -> list[int]:
    """Record an attempt under each ``(kind, subject, window, limit)`` and answer the rows'
    ids, or take them back and refuse with ``message`` when any count passes its limit.

    Old rows are pruned on the way."""
    now = z.clock()
    a = web_attempts.c
    with z.db.write() as conn:
        conn.execute(sa.delete(web_attempts).where(a.at < now - timedelta(days=1)))
        ids = [
            conn.execute(
                sa.insert(web_attempts)
                .values(kind=kind, subject=digest(subject), at=now)
                .returning(a.id)
            ).scalar_one()
            for kind, subject, _, _ in limits
        ]
        conn.commit()
    with z.read() as conn:
        over = any(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(web_attempts)
                .where(a.kind == kind, a.subject == digest(subject), a.at > now - window)
            ).scalar_one()
            > limit
            for kind, subject, window, limit in limits
        )
    if over:
        forget(z, ids)
        raise TooManyAttempts(message)
    return ids


def forget(z: Zizhi, ids: list[int]) -> None:
    with z.db.write() as conn:
        conn.execute(sa.delete(web_attempts).where(web_attempts.c.id.in_(ids)))
        conn.commit()


def sign_in(z: Zizhi, username: str, password: str, *, address: str) -> SignedIn:
    """A new session for the person, or Unauthenticated / TooManyAttempts."""
    minutes = int(WINDOW.total_seconds() // 60)
    attempt = admit(
        z,
        f"登录失败次数过多，已暂时锁定；请 {minutes} 分钟后再试",
        ("sign_in_user", username, WINDOW, USER_LIMIT),
        ("sign_in_address", address, WINDOW, ADDRESS_LIMIT),
    )
    # A wrong password leaves the attempt's rows: they are the failures counted.
    principal = user_accounts.authenticate_password(z, username, password)
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    now = z.clock()
    expires_at = now + IDLE_TIMEOUT
    with z.db.write() as conn:
        conn.execute(sa.delete(web_sessions).where(web_sessions.c.expires_at < now))
        conn.execute(
            sa.delete(web_attempts).where(
                sa.or_(
                    web_attempts.c.id.in_(attempt),
                    sa.and_(
                        web_attempts.c.kind == "sign_in_user",
                        web_attempts.c.subject == digest(username),
                    ),
                )
            )
        )
        conn.execute(
            sa.insert(web_sessions).values(
                id_hash=digest(session_id),
                username=username,
                csrf_token=csrf_token,
                created_at=now,
                expires_at=expires_at,
            )
        )
        conn.commit()
    return SignedIn(principal, session_id, csrf_token, expires_at)


def session(z: Zizhi, session_id: str) -> Session:
    """The live session with this id, with its person's current principal."""
    if not session_id or len(session_id) > 100:
        raise Unauthenticated("请先登录")
    s, u = web_sessions.c, users.c
    with z.read() as conn:
        row = conn.execute(
            sa.select(
                s.csrf_token,
                s.created_at,
                s.expires_at,
                u.username,
                u.role,
                u.communities,
                u.streets,
            )
            .join(users, u.username == s.username)
            .where(s.id_hash == digest(session_id), u.disabled_at.is_(None))
        ).first()
    now = z.clock()
    if row is None or row.expires_at <= now:
        raise Unauthenticated("登录已过期，请重新登录")
    expires_at = row.expires_at
    if expires_at - now < IDLE_TIMEOUT - SLIDE_EVERY:  # in use: the idle clock starts again
        expires_at = min(row.created_at + SESSION_LIFETIME, now + IDLE_TIMEOUT)
        with z.db.write() as conn:
            conn.execute(
                sa.update(web_sessions)
                .where(s.id_hash == digest(session_id), s.expires_at < expires_at)
                .values(expires_at=expires_at)
            )
            conn.commit()
    principal = Principal(
        id=f"user:{row.username}",
        name=row.username,
        role=Role(row.role),
        communities=frozenset(json.loads(row.communities)),
        streets=frozenset(json.loads(row.streets)),
    )
    return Session(principal, row.csrf_token, expires_at)


def sign_out(z: Zizhi, session_id: str) -> None:
    """End the web session (nothing to do if it has already ended)."""
    with z.db.write() as conn:
        conn.execute(sa.delete(web_sessions).where(web_sessions.c.id_hash == digest(session_id)))
        conn.commit()

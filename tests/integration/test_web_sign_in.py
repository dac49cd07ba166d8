"""Signing in to the web pages, at the engine: the lock-out holds against attempts racing in
parallel, and a session ends when left idle, slides with use, and ends at its lifetime."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import engine
from engine import CLI, Database, Principal, Zizhi
from engine.errors import Unauthenticated
from engine.rules.workflow import WorkflowRegistry
from engine.usecases import users, web_sign_in
from engine.usecases.web_sign_in import TooManyAttempts
from tests.factories import new_id

PASSWORD = "correct horse 电池"


def _user(z: Zizhi) -> str:
    username = f"u{new_id()}"[:30]
    engine.create_user(z, CLI, username=username, role="auditor", password=PASSWORD)
    return username


def test_wrong_passwords_racing_in_parallel_get_no_more_checks_than_the_limit(
    database: Database, registry: WorkflowRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = Zizhi(database, registry)
    username = _user(z)
    checked: list[str] = []
    real = users.authenticate_password

    def counted(z: Zizhi, name: str, password: str) -> Principal:
        checked.append(name)
        return real(z, name, password)

    monkeypatch.setattr(users, "authenticate_password", counted)
    threads = 12
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    def attempt(n: int) -> None:
        start.wait()
        try:
            web_sign_in.sign_in(z, username, f"guess {n}", address=f"10.9.0.{n}")
        except (Unauthenticated, TooManyAttempts) as exc:
            outcomes.append(exc.code)

    workers = [threading.Thread(target=attempt, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert len(outcomes) == threads
    # Every password check that happened was one of the first USER_LIMIT attempts counted.
    assert len(checked) <= web_sign_in.USER_LIMIT
    assert outcomes.count("unauthenticated") == len(checked)
    assert outcomes.count("too_many_attempts") == threads - len(checked)
    # Racing attempts may all be refused (the limit errs on the safe side), but the refused
    # took their rows back: exactly the failures checked count towards the lock-out.
    for n in range(web_sign_in.USER_LIMIT - len(checked)):
        with pytest.raises(Unauthenticated):
            web_sign_in.sign_in(z, username, "wrong", address=f"10.9.2.{n}")
    with pytest.raises(TooManyAttempts):
        web_sign_in.sign_in(z, username, PASSWORD, address="10.9.1.1")


def test_refused_attempts_do_not_prolong_the_lock_out(
    database: Database, registry: WorkflowRegistry
) -> None:
    now = [datetime.now(UTC)]
    z = Zizhi(database, registry, clock=lambda: now[0])
    username = _user(z)
    for n in range(web_sign_in.USER_LIMIT):
        with pytest.raises(Unauthenticated):
            web_sign_in.sign_in(z, username, "wrong", address=f"10.8.0.{n}")
    for _ in range(3):  # the person keeps trying while locked out
        now[0] += timedelta(minutes=4)
        with pytest.raises(TooManyAttempts):
            web_sign_in.sign_in(z, username, PASSWORD, address="10.8.1.1")
    now[0] += web_sign_in.WINDOW - timedelta(minutes=11)  # the window since the failures
    signed = web_sign_in.sign_in(z, username, PASSWORD, address="10.8.1.1")
    assert signed.principal.name == username


def _signed_in(database: Database, registry: WorkflowRegistry) -> tuple[list[datetime], Any]:
    now = [datetime.now(UTC)]
    z = Zizhi(database, registry, clock=lambda: now[0])
    signed = web_sign_in.sign_in(z, _user(z), PASSWORD, address="10.7.0.1")
    return now, lambda: web_sign_in.session(z, signed.session_id)


def test_a_session_left_idle_ends(database: Database, registry: WorkflowRegistry) -> None:
    now, session = _signed_in(database, registry)
    now[0] += web_sign_in.IDLE_TIMEOUT - timedelta(minutes=1)
    session()  # still there, and now used again
    now[0] += web_sign_in.IDLE_TIMEOUT - timedelta(minutes=1)
    session()
    now[0] += web_sign_in.IDLE_TIMEOUT + timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        session()


@pytest.mark.parametrize("every", [timedelta(minutes=1), timedelta(minutes=30)])
def test_a_session_in_use_lasts_until_its_lifetime_and_no_longer(
    database: Database, registry: WorkflowRegistry, every: timedelta
) -> None:
    now, session = _signed_in(database, registry)
    signed_in_at = now[0]
    used: Callable[[], Any] = session
    while now[0] + every < signed_in_at + web_sign_in.SESSION_LIFETIME:
        now[0] += every
        assert used().expires_at <= signed_in_at + web_sign_in.SESSION_LIFETIME
    now[0] = signed_in_at + web_sign_in.SESSION_LIFETIME + timedelta(seconds=1)
    with pytest.raises(Unauthenticated):
        session()

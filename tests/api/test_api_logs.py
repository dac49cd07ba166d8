"""Secrets and residents' personal data never reach the logs, not even when a write fails."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

import engine.usecases.demands
from engine.store.tables import demands
from tests.api.client import Api

NAME, PHONE = "秘密姓名甲", "13511112222"


def test_no_token_or_resident_data_reaches_the_logs(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    community = api.community()
    token = api.token("committee", communities=[community])
    body = {"content": "楼道灯坏了", "resident": NAME, "contact": PHONE}
    api.ok(api.post(f"/api/v1/communities/{community}/demands", token, body), 201)

    def failing_insert(
        change: Any, principal: Any, community_id: str, project_id: Any, clean: Any
    ) -> Any:
        # The row breaks NOT NULL, so the database error is about a statement that
        # carried the resident's name and phone number.
        change.conn.execute(
            sa.insert(demands),
            {**clean, "community_id": None, "source": "committee", "created_at": change.at},
        )

    monkeypatch.setattr(engine.usecases.demands, "_insert", failing_insert)
    failed = api.post(f"/api/v1/communities/{community}/demands", token, body)
    assert failed.status_code == 500 and failed.json()["code"] == "internal_error"
    assert NAME not in failed.text and PHONE not in failed.text
    assert "unexpected error" in caplog.text  # the failure itself was logged
    for secret in (NAME, PHONE, token, api.admin):
        assert secret not in caplog.text

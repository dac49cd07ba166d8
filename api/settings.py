"""Configuration, read once at the edge from ``ZIZHI_*`` environment variables."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.dispatch_config import DispatchConfig
from engine import AllocationPolicy, UrlGuard, parse_networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZIZHI_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///zizhi.db",
        description="sqlite:///path.db (default: zizhi.db in the working directory) "
        "or postgresql+psycopg://user@host:5432/dbname",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL", description="FULL: a commit is on disk when it returns"
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    threads: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="requests whose engine work runs at once in one process (default: "
        "one per CPU on SQLite, the pool and its overflow on PostgreSQL)",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    self_governance_default_fen: int = Field(default=5_000_000, ge=0)
    party_service_urban_default_fen: int = Field(default=20_000_000, ge=0)
    party_service_rural_default_fen: int = Field(default=0, ge=0)
    self_governance_min_fen: int = Field(default=0, ge=0)
    party_service_urban_min_fen: int = Field(default=20_000_000, ge=0)

    # Webhooks (docs/webhooks.md)
    webhook_retry_schedule: str = Field(
        default="5,300,1800,7200,18000,36000,36000",
        description="seconds to wait before each retry, comma separated",
    )
    webhook_allowed_networks: str = Field(
        default="", description="CIDRs exempt from the SSRF guard, comma separated"
    )
    webhook_disable_after: int = Field(
        default=5 * 86400, ge=60, description="seconds of failure with no success before disabling"
    )
    webhook_timeout: float = Field(default=15.0, gt=0, le=300, description="seconds per attempt")
    webhook_max_response_bytes: int = Field(default=65536, ge=1024, le=10_485_760)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_per_subscription: int = Field(default=4, ge=1, le=256)
    webhook_poll_interval: float = Field(default=1.0, gt=0, le=60)
    webhook_lease_seconds: float | None = Field(
        default=None, gt=0, description="how long a claimed delivery is held (default 2×timeout+30)"
    )

    webhook_ca_bundle: FilePath | None = Field(
        default=None, description="PEM file of further CAs to trust for https receivers"
    )

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    def worker_threads(self, *, sqlite: bool) -> int:
        """How many requests run their engine call in worker threads at once, per process.

        A request waiting for a thread waits on the event loop, which costs nothing; every
        thread past what the work can use only adds to the contention for the GIL (and on
        SQLite for the one writer), and to a request's latency with it. On SQLite the
        engine's work is CPU in this process: one thread per CPU. On PostgreSQL a thread
        also waits for the server: one per connection the pool can lend.
        """
        if self.threads is not None:
            return self.threads
        if sqlite:
            return os.cpu_count() or 1
        return 2 * self.db_pool_size

    def webhook_guard(self) -> UrlGuard:
        return UrlGuard(allowed=parse_networks(self.webhook_allowed_networks))

    def dispatch_config(self) -> DispatchConfig:
        return DispatchConfig(
            retry_schedule=parse_schedule(self.webhook_retry_schedule),
            timeout=self.webhook_timeout,
            max_response_bytes=self.webhook_max_response_bytes,
            disable_after=timedelta(seconds=self.webhook_disable_after),
            lease=(
                timedelta(seconds=self.webhook_lease_seconds)
                if self.webhook_lease_seconds
                else None
            ),
            concurrency=self.webhook_concurrency,
            per_subscription=self.webhook_per_subscription,
            poll_interval=self.webhook_poll_interval,
            guard=self.webhook_guard(),
            ca_bundle=str(self.webhook_ca_bundle) if self.webhook_ca_bundle else None,
        )

    def allocation_policy(self) -> AllocationPolicy:
        return AllocationPolicy(
            self_governance_fen=self.self_governance_default_fen,
            party_service_urban_fen=self.party_service_urban_default_fen,
            party_service_rural_fen=self.party_service_rural_default_fen,
            self_governance_min_fen=self.self_governance_min_fen,
            party_service_urban_min_fen=self.party_service_urban_min_fen,
        )


def parse_schedule(text: str) -> tuple[int, ...]:
    """ "5, 300, 1800" → (5, 300, 1800): whole seconds, at least one, each 1 s to 7 days."""
    try:
        schedule = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError("the retry schedule is whole seconds, comma separated") from None
    if not schedule or any(not 1 <= s <= 7 * 86400 for s in schedule):
        raise ValueError("each retry delay must be between 1 second and 7 days")
    return schedule

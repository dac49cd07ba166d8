"""Configuration, read once at the edge from ``ZIZHI_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine import AllocationPolicy


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
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    self_governance_default_fen: int = Field(default=5_000_000, ge=0)
    party_service_urban_default_fen: int = Field(default=20_000_000, ge=0)
    party_service_rural_default_fen: int = Field(default=0, ge=0)
    self_governance_min_fen: int = Field(default=0, ge=0)
    party_service_urban_min_fen: int = Field(default=20_000_000, ge=0)

    def allocation_policy(self) -> AllocationPolicy:
        return AllocationPolicy(
            self_governance_fen=self.self_governance_default_fen,
            party_service_urban_fen=self.party_service_urban_default_fen,
            party_service_rural_fen=self.party_service_rural_default_fen,
            self_governance_min_fen=self.self_governance_min_fen,
            party_service_urban_min_fen=self.party_service_urban_min_fen,
        )

"""Zizhi's engine: workflows, the fund ledger and the tamper-evident history. No HTTP here.

Use cases are functions in ``engine.places``, ``engine.projects``, ``engine.demands``,
``engine.access`` and ``engine.audit``; each takes a ``Zizhi`` (the dependencies) and the
``Principal`` acting, and runs as one transaction.
"""

from engine.access import CLI, Principal
from engine.db import Database
from engine.domain import CommunityKind, Fund, Role
from engine.errors import ZizhiError
from engine.ledger import AllocationPolicy
from engine.uow import IdempotencyKey, Zizhi

# isort: split
# --- webhooks (issue 10): subscriptions, the outbox's claim, signing, formats, SSRF guard ---
from engine.places import COMMUNITY_ID_PATTERN
from engine.store.outbox import Claimed, Outcome
from engine.store.outbox import any_due as any_deliveries_due
from engine.store.outbox import claim as claim_deliveries
from engine.usecases import webhooks as subscriptions
from engine.usecases.webhooks import (
    AttemptView,
    DeliveryView,
    WebhookView,
    record_attempt,
)
from engine.webhooks.formats import FORMATS as WEBHOOK_FORMATS
from engine.webhooks.formats import bot_refused, wire_body
from engine.webhooks.formats import signed_url as signed_bot_url
from engine.webhooks.guard import Refused, UrlGuard, parse_networks
from engine.webhooks.signing import headers as signature_headers

__all__ = [
    # webhooks (issue 10)
    "COMMUNITY_ID_PATTERN",
    "WEBHOOK_FORMATS",
    "AttemptView",
    "Claimed",
    "DeliveryView",
    "Outcome",
    "Refused",
    "UrlGuard",
    "WebhookView",
    "any_deliveries_due",
    "bot_refused",
    "claim_deliveries",
    "parse_networks",
    "record_attempt",
    "signature_headers",
    "signed_bot_url",
    "subscriptions",
    "wire_body",
    # the engine
    "CLI",
    "AllocationPolicy",
    "CommunityKind",
    "Database",
    "Fund",
    "IdempotencyKey",
    "Principal",
    "Role",
    "Zizhi",
    "ZizhiError",
]

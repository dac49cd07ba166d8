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

__all__ = [
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

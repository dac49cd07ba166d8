"""Small helpers shared by the reliability tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from engine.model import fiscal_year, utc_now


def last_year_clock() -> Callable[[], datetime]:
    """A clock running from the middle of last year, so projects open in last year's funds."""
    start = utc_now()
    then = datetime(fiscal_year(start) - 1, 7, 1, 4, tzinfo=UTC)
    return lambda: then + (utc_now() - start)

"""How the webhook dispatcher runs (``api.dispatcher``): apart from it, so that reading the
settings does not import the HTTP client (every command line reads them; only ``serve`` and
``worker`` send)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import timedelta

from engine import UrlGuard

DEFAULT_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True)
class DispatchConfig:
    retry_schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    timeout: float = 15.0
    max_response_bytes: int = 64 * 1024
    disable_after: timedelta = timedelta(days=5)
    lease: timedelta | None = None  # default: long enough for the slowest attempt
    concurrency: int = 16
    per_subscription: int = 4
    poll_interval: float = 1.0
    jitter: float = 0.2
    guard: UrlGuard = field(default_factory=UrlGuard)
    # A PEM file of further certificate authorities to trust besides the system's (a street
    # platform behind an internal CA); None: the system's alone.
    ca_bundle: str | None = None

    def tls(self) -> ssl.SSLContext:
        """How receivers' certificates are checked: against the host name (sent as SNI,
        though the connection goes to the checked address), by the system's authorities
        and ``ca_bundle``'s."""
        context = ssl.create_default_context()
        if self.ca_bundle is not None:
            context.load_verify_locations(cafile=self.ca_bundle)
        return context

    @property
    def lease_span(self) -> timedelta:
        return self.lease or timedelta(seconds=2 * self.timeout + 30)

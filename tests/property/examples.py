"""How many examples a costly property gets: a share of the active Hypothesis profile's."""

from __future__ import annotations

from hypothesis import settings


def share_of_examples(divisor: int, *, at_least: int = 1) -> int:
    profile = settings.default
    assert profile is not None, "Hypothesis always has a default profile"
    return max(at_least, profile.max_examples // divisor)

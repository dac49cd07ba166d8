"""Every refusal the engine can give, each with a stable ``code``.

The codes are the public contract (DESIGN §8); messages are Simplified Chinese because a
community worker reads them. The API maps codes to HTTP statuses; nothing here knows HTTP.

    ZizhiError
    ├── Unauthenticated        unauthenticated
    ├── Forbidden              forbidden
    ├── NotFound               not_found
    ├── ValidationFailed       validation_error      (.errors: field → message)
    ├── ActionNotAllowed       action_not_allowed    (not valid from the current state)
    ├── GuardFailed            guard_failed          (a workflow condition does not hold)
    ├── FundCapExceeded        fund_cap_exceeded     (the ledger refuses the amount)
    ├── AlreadyExists          already_exists        (an id or invoice that is already taken)
    ├── YearClosed             year_closed           (the fiscal year is closed: no reservations)
    ├── VersionConflict        version_conflict      (If-Match names an old version)
    └── IdempotencyConflict    idempotency_conflict  (same key, different request)

``DefinitionError`` is separate: a workflow file that cannot be loaded is a deployment
mistake, not a refused request.
"""

from __future__ import annotations

from collections.abc import Mapping


class ZizhiError(Exception):
    """A request the engine refuses; nothing was changed."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ZizhiError):
    code = "unauthenticated"


class Forbidden(ZizhiError):
    code = "forbidden"


class NotFound(ZizhiError):
    code = "not_found"


class ValidationFailed(ZizhiError):
    code = "validation_error"

    def __init__(self, message: str, *, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})

    @classmethod
    def fields(cls, errors: Mapping[str, str]) -> ValidationFailed:
        """One error naming every bad field, so a form can mark them all at once."""
        summary = "；".join(f"{field}：{message}" for field, message in errors.items())
        return cls(f"输入有误：{summary}", errors=errors)


class ActionNotAllowed(ZizhiError):
    code = "action_not_allowed"


class GuardFailed(ZizhiError):
    code = "guard_failed"


class FundCapExceeded(ZizhiError):
    code = "fund_cap_exceeded"


class AlreadyExists(ZizhiError):
    code = "already_exists"


class YearClosed(ZizhiError):
    code = "year_closed"


class VersionConflict(ZizhiError):
    code = "version_conflict"

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


class IdempotencyConflict(ZizhiError):
    code = "idempotency_conflict"


class DefinitionError(Exception):
    """A workflow definition is malformed; raised when definitions are loaded."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems

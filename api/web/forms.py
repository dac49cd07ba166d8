"""Forms drawn from field specs — a workflow action's, an expense's, a demand's — and read back.

Nothing here knows a particular action: an action's form is its definition's fields, so a
new workflow version needs no template change. Amounts are shown and typed in yuan; the
engine reads them into fen exactly (``engine.read_form``) and checks them like any input.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import engine
from engine import PUBLIC, FieldSpec, IdempotencyKey, Principal

_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    kind: str  # amount | int | text | textarea | bool
    value: str
    error: str | None
    required: bool
    max_length: int | None


@dataclass(frozen=True, slots=True)
class ActionForm:
    """One workflow action the reader may take, as a form."""

    id: str
    action: engine.ActionDef
    url: str
    fields: list[Field]
    way_out: bool


@dataclass(slots=True)
class Failed:
    """A refused form: which one, what was typed, and the engine's reasons in Chinese."""

    form: str
    values: Mapping[str, str]
    message: str
    errors: dict[str, str] = field(default_factory=dict)


def fields_of(specs: Mapping[str, FieldSpec], form_id: str, failed: Failed | None) -> list[Field]:
    mine = failed if failed is not None and failed.form == form_id else None
    out = []
    for name, spec in specs.items():
        if spec.type == "text":
            kind = "text" if spec.single_line or spec.max_length <= 200 else "textarea"
        else:
            kind = spec.type
        out.append(
            Field(
                name=name,
                label=engine.display_label(spec),
                kind=kind,
                value=mine.values.get(name, "") if mine else "",
                error=mine.errors.get(name) if mine else None,
                required=spec.required and spec.type != "bool",
                max_length=spec.max_length if spec.type == "text" else None,
            )
        )
    return out


def idempotency(
    principal: Principal | None, form: Mapping[str, str], what: Any
) -> IdempotencyKey | None:
    """The form's own key (one per rendered form) and a digest of what it asks for; a
    resident's form without sign-in (``principal`` None) keeps its keys apart from everyone's."""
    key = form.get("form_key", "")
    if not _FORM_KEY.fullmatch(key):
        return None
    digest = hashlib.sha256(
        json.dumps(what, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    owner = PUBLIC.id if principal is None else principal.id
    return IdempotencyKey(owner, f"web:{key}", digest)


def _in_yuan(message: str) -> str:
    """The engine speaks fen (the API's unit); a person typing yuan reads yuan."""
    message = message.replace("（分）", "")
    return re.sub(
        r"金额必须在 (\d+) 至 (\d+) 分之间",
        lambda m: (
            f"金额必须在 {engine.format_fen(int(m[1]))} 至 {engine.format_fen(int(m[2]))} 之间"
        ),
        message,
    )


def failure(form_id: str, form: Mapping[str, str], exc: engine.ZizhiError) -> Failed:
    """What to show beside a refused form; field errors without the English field names."""
    errors = {k: _in_yuan(v) for k, v in (getattr(exc, "errors", {}) or {}).items()}
    message = "请检查标出的字段" if errors else exc.message
    typed = {k: v for k, v in form.items() if k not in ("csrf", "form_key")}
    return Failed(form_id, typed, message, errors)

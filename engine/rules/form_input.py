"""What a person typed into a form, read into the typed values the engine's fields expect.

A web form sends text only. Amounts are typed in yuan and read exactly into fen
(``engine.rules.money``); counts accept full-width digits and spaces; a box left unticked
is ``false``; an empty optional field is left out. Anything unreadable is reported per field
in Chinese, before the engine checks ranges and rules on what could be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import ValidationFailed
from engine.rules.fields import FieldSpec
from engine.rules.money import UnreadableAmount, parse_count, parse_yuan


def read_form(specs: Mapping[str, FieldSpec], form: Mapping[str, str]) -> dict[str, Any]:
    """The fields of ``specs`` read from ``form``; ValidationFailed names every unreadable one."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, spec in specs.items():
        raw = form.get(name)
        if spec.type == "bool":
            values[name] = raw is not None and raw not in ("", "0", "false")
            continue
        if raw is None or not raw.strip():
            if spec.required:
                errors[name] = f"请填写{display_label(spec)}"
            continue
        try:
            if spec.type == "amount":
                values[name] = parse_yuan(raw)
            elif spec.type == "int":
                values[name] = parse_count(raw)
            else:
                values[name] = raw.replace("\r\n", "\n")
        except UnreadableAmount as exc:
            errors[name] = exc.message
    if errors:
        raise ValidationFailed.fields(errors)
    return values


def display_label(spec: FieldSpec) -> str:
    """The label a person reads: amounts are typed in yuan, whatever unit the API uses."""
    if spec.type == "amount":
        base = spec.label.removesuffix("（分）").removesuffix("(分)")
        return f"{base}（元）"
    return spec.label

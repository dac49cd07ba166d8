"""Typed input fields: the one place that decides what a valid amount, count or text is.

Workflow actions declare their fields by type name (``amount``, ``int``, ``text``, ``bool``);
the engine's other inputs (titles, expenses, demands) use the same specs, so every entry
point refuses the same things: strings or fractions where integers belong, booleans posing
as integers, negative or absurd amounts, empty or oversized text, control characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ValidationFailed

# ¥10,000,000 — far above any community fund, far below where integer overflow lurks.
MAX_AMOUNT_FEN = 1_000_000_000
MAX_COUNT = 1_000_000
DEFAULT_TEXT_LENGTH = 2_000

FIELD_TYPES = frozenset({"amount", "int", "text", "bool"})

# C0 controls other than tab, newline and carriage return, plus DEL.
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_CONTROL = re.compile(f"[{_CONTROLS}]")
# What str.strip() removes, spelled out: regex dialects disagree on what \s means.
_SPACES = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def text_pattern(*, single_line: bool) -> str:
    """What ``FieldSpec`` accepts as text, as a JSON Schema pattern for the API document:
    no control characters (nor line breaks in a single line), and not only blanks."""
    breaks = r"\n\r" if single_line else ""
    allowed = f"[^{_CONTROLS}{breaks}]"
    return f"^{allowed}*[^{_CONTROLS}{_SPACES}]{allowed}*$"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str
    label: str
    required: bool = True
    min: int | None = None
    max: int | None = None
    max_length: int = DEFAULT_TEXT_LENGTH
    single_line: bool = False

    def check(self, value: Any) -> str | None:
        """Return a message a person understands, or None when the value is acceptable."""
        if self.type == "bool":
            return None if isinstance(value, bool) else "必须是 true 或 false"
        if self.type in ("amount", "int"):
            return self._check_integer(value)
        return self._check_text(value)

    def _check_integer(self, value: Any) -> str | None:
        # bool is a subclass of int in Python; JSON true is not a number.
        if not isinstance(value, int) or isinstance(value, bool):
            unit = "（单位：分）" if self.type == "amount" else ""
            return f"必须是整数{unit}，不能是小数或字符串"
        low, high = self.bounds()
        if value < low or value > high:
            if self.type == "amount":
                return f"金额必须在 1 至 {high} 分之间"
            return f"必须在 {low} 至 {high} 之间"
        return None

    def bounds(self) -> tuple[int, int]:
        if self.type == "amount":
            return (
                self.min if self.min is not None else 1,
                self.max if self.max is not None else MAX_AMOUNT_FEN,
            )
        return (
            self.min if self.min is not None else 0,
            self.max if self.max is not None else MAX_COUNT,
        )

    def _check_text(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return "必须是文本"
        if not value.strip():
            return "不能为空"
        if len(value) > self.max_length:
            return f"不能超过 {self.max_length} 个字符"
        if _CONTROL.search(value) or (self.single_line and ("\n" in value or "\r" in value)):
            return "含有不允许的控制字符"
        return None

    def json_schema(self) -> dict[str, Any]:
        """The field as JSON Schema, for the OpenAPI document."""
        schema: dict[str, Any]
        if self.type == "bool":
            schema = {"type": "boolean"}
        elif self.type in ("amount", "int"):
            low, high = self.bounds()
            schema = {"type": "integer", "minimum": low, "maximum": high}
        else:
            schema = {
                "type": "string",
                "minLength": 1,
                "maxLength": self.max_length,
                "pattern": text_pattern(single_line=self.single_line),
            }
        schema["title"] = self.label
        return schema


def validate(specs: Mapping[str, FieldSpec], data: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``data`` against ``specs``: every field known, required ones present, all valid.

    Raises ValidationFailed naming every bad field at once.
    """
    errors: dict[str, str] = {}
    for name in data:
        if name not in specs:
            errors[name] = "不允许的字段"
    for name, spec in specs.items():
        if name not in data:
            if spec.required:
                errors[name] = f"缺少必填字段（{spec.label}）"
            continue
        message = spec.check(data[name])
        if message is not None:
            errors[name] = f"{spec.label}{message}"
    if errors:
        raise ValidationFailed.fields(errors)
    return {name: data[name] for name in specs if name in data}


def text(
    name: str,
    label: str,
    *,
    max_length: int = DEFAULT_TEXT_LENGTH,
    required: bool = True,
    single_line: bool = False,
) -> FieldSpec:
    return FieldSpec(
        name, "text", label, required=required, max_length=max_length, single_line=single_line
    )


def amount(name: str, label: str) -> FieldSpec:
    return FieldSpec(name, "amount", label)

"""Typed input fields: the one place that decides what a valid amount, count or text is.

Workflow actions declare their fields by type name (``amount``, ``int``, ``text``, ``bool``);
the engine's other inputs (titles, expenses, demands) use the same specs, so every entry
point refuses the same things: strings or fractions where integers belong, booleans posing
as integers, negative or absurd amounts, empty or oversized text, control characters. Text is
cleaned and judged by ``engine.text``; ``validate`` returns the cleaned values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import text as text_rules
from engine.errors import ValidationFailed

# ¥10,000,000 — far above any community fund, far below where integer overflow lurks.
MAX_AMOUNT_FEN = 1_000_000_000
MAX_COUNT = 1_000_000
DEFAULT_TEXT_LENGTH = 2_000

FIELD_TYPES = frozenset({"amount", "int", "text", "bool"})


def text_pattern(*, single_line: bool) -> str:
    """What ``FieldSpec`` accepts as text, as a JSON Schema pattern for the API document."""
    return text_rules.json_schema_pattern(single_line=single_line)


def optional_text_pattern(*, single_line: bool) -> str:
    """What an optional text accepts (blank reads as none), as a JSON Schema pattern."""
    return text_rules.json_schema_optional_pattern(single_line=single_line)


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
        return self.clean(value)[1]

    def clean(self, value: Any) -> tuple[Any, str | None]:
        """The value as it will be stored (text cleaned), and what is wrong with it, if any."""
        if self.type == "bool":
            return value, None if isinstance(value, bool) else "必须是 true 或 false"
        if self.type in ("amount", "int"):
            return value, self._check_integer(value)
        if not isinstance(value, str):
            return value, "必须是文本"
        cleaned = text_rules.clean(value)
        return cleaned, self._check_text(cleaned)

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

    def _check_text(self, value: str) -> str | None:
        if (wrong := text_rules.problem(value, single_line=self.single_line)) is not None:
            return wrong
        if len(value) > self.max_length:
            return f"不能超过 {self.max_length} 个字符"
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
    cleaned: dict[str, Any] = {}
    for name in data:
        if name not in specs:
            errors[name] = "不允许的字段"
    for name, spec in specs.items():
        if name not in data:
            if spec.required:
                errors[name] = f"缺少必填字段（{spec.label}）"
            continue
        cleaned[name], message = spec.clean(data[name])
        if message is not None:
            errors[name] = f"{spec.label}{message}"
    if errors:
        raise ValidationFailed.fields(errors)
    return cleaned


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

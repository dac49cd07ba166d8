"""What counts as a valid amount, count or text, everywhere in Zizhi."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ValidationFailed
from engine.rules import fields
from engine.rules.fields import MAX_AMOUNT_FEN, FieldSpec

SPECS = {
    "budget_fen": fields.amount("budget_fen", "预算（分）"),
    "plan": fields.text("plan", "方案", max_length=10),
    "score": FieldSpec("score", "int", "评分", min=1, max=5),
    "ok": FieldSpec("ok", "bool", "同意", required=False),
}
GOOD = {"budget_fen": 100, "plan": "清理", "score": 3}


def _refusal(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        fields.validate(SPECS, data)
    assert caught.value.code == "validation_error"
    return caught.value.errors


def test_valid_data_is_returned_in_declaration_order() -> None:
    assert list(fields.validate(SPECS, {"score": 3, "plan": "清理", "budget_fen": 1})) == [
        "budget_fen",
        "plan",
        "score",
    ]


@pytest.mark.parametrize(
    "amount", ["100", 100.0, 99.5, True, None, [100], {"fen": 1}, 0, -1, MAX_AMOUNT_FEN + 1, 10**30]
)
def test_an_amount_must_be_a_positive_integer_of_fen_within_bounds(amount: Any) -> None:
    assert "budget_fen" in _refusal({**GOOD, "budget_fen": amount})


def test_the_largest_amount_is_accepted() -> None:
    assert fields.validate(SPECS, {**GOOD, "budget_fen": MAX_AMOUNT_FEN})["budget_fen"] == (
        MAX_AMOUNT_FEN
    )


@pytest.mark.parametrize("text", ["", "   ", "x" * 11, 5, "a\x00b", "响铃\x07"])
def test_text_must_be_non_blank_bounded_and_free_of_control_characters(text: Any) -> None:
    assert "plan" in _refusal({**GOOD, "plan": text})


def test_newlines_and_tabs_are_fine_in_text() -> None:
    assert fields.validate(SPECS, {**GOOD, "plan": "一\n二\t三"})["plan"] == "一\n二\t三"


def test_single_line_text_refuses_newlines() -> None:
    spec = {"payee": fields.text("payee", "收款方", single_line=True)}
    with pytest.raises(ValidationFailed):
        fields.validate(spec, {"payee": "甲\n乙"})


@pytest.mark.parametrize("score", [0, 6, 2.0, "3"])
def test_bounded_integers_refuse_values_outside_their_range(score: Any) -> None:
    assert "score" in _refusal({**GOOD, "score": score})


def test_unknown_and_missing_fields_are_named_together() -> None:
    errors = _refusal({"budget_fen": 1, "colour": "red"})
    assert errors["colour"] == "不允许的字段"
    assert "缺少必填字段" in errors["plan"]
    assert "缺少必填字段" in errors["score"]


def test_optional_fields_may_be_left_out_but_not_sent_wrong() -> None:
    assert "ok" not in fields.validate(SPECS, GOOD)
    assert "ok" in _refusal({**GOOD, "ok": 1})


def test_the_message_names_the_field_in_chinese() -> None:
    with pytest.raises(ValidationFailed) as caught:
        fields.validate(SPECS, {**GOOD, "budget_fen": "100"})
    assert "预算（分）必须是整数" in caught.value.message

"""Yuan as people type them, read into fen exactly — never through a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import ValidationFailed
from engine.rules.fields import FieldSpec
from engine.rules.form_input import display_label, read_form
from engine.rules.money import UnreadableAmount, format_fen, parse_count, parse_yuan


@pytest.mark.parametrize(
    ("typed", "fen"),
    [
        ("12345.67", 1_234_567),
        ("12,345.67", 1_234_567),
        ("¥12345", 1_234_500),
        ("￥12,345.6", 1_234_560),
        ("１２３", 12_300),
        ("１２，３４５．６７", 1_234_567),
        (" 1 000 ", 100_000),
        ("1\u3000234.50", 123_450),
        ("\u200b99\u200d", 9_900),
        ("0.01", 1),
        (".5", 50),
        ("12345.67元", 1_234_567),
        ("0.1", 10),  # 0.1 as a float is not exact; as typed it is ten fen
        ("4503599627370497.99", 450_359_962_737_049_799),  # past a double's precision
    ],
)
def test_amounts_typed_in_yuan_read_as_exact_fen(typed: str, fen: int) -> None:
    assert parse_yuan(typed) == fen


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("1.234", "两位小数"),
        ("-5", "负数"),
        ("", "请填写"),
        ("　", "请填写"),
        ("1,23.00", "无法识别"),
        ("1e5", "无法识别"),
        ("12,34", "无法识别"),
        ("¥", "无法识别"),
        ("十二元", "无法识别"),
        ("NaN", "无法识别"),
    ],
)
def test_unreadable_amounts_are_refused_with_a_reason(typed: str, reason: str) -> None:
    with pytest.raises(UnreadableAmount) as refused:
        parse_yuan(typed)
    assert reason in refused.value.message


@given(st.integers(min_value=0, max_value=10**15))
def test_an_amount_written_as_yuan_reads_back_to_the_same_fen(fen: int) -> None:
    shown = format_fen(fen)
    assert parse_yuan(shown) == fen
    assert parse_yuan(shown.replace(",", "")) == fen


def test_fen_are_written_as_yuan_with_two_decimals() -> None:
    assert format_fen(1_234_567) == "¥12,345.67"
    assert format_fen(5) == "¥0.05"
    assert format_fen(-250) == "-¥2.50"


def test_counts_accept_full_width_digits_and_spaces_but_not_fractions() -> None:
    assert parse_count("７") == 7 and parse_count(" 1,000 ") == 1000
    for bad in ("1.5", "-3", "七", ""):
        with pytest.raises(UnreadableAmount):
            parse_count(bad)


def test_a_form_is_read_by_its_field_specs_and_every_unreadable_field_is_named() -> None:
    specs = {
        "budget_fen": FieldSpec("budget_fen", "amount", "预算（分）"),
        "attendees": FieldSpec("attendees", "int", "出席人数"),
        "plan": FieldSpec("plan", "text", "方案"),
        "urgent": FieldSpec("urgent", "bool", "紧急"),
        "note": FieldSpec("note", "text", "备注", required=False),
    }
    assert read_form(specs, {"budget_fen": "¥1,000", "attendees": "７", "plan": "a\r\nb"}) == {
        "budget_fen": 100_000,
        "attendees": 7,
        "plan": "a\nb",
        "urgent": False,
    }
    with pytest.raises(ValidationFailed) as refused:
        read_form(specs, {"budget_fen": "1.001", "attendees": "many", "plan": " "})
    assert set(refused.value.errors) == {"budget_fen", "attendees", "plan"}
    assert display_label(specs["budget_fen"]) == "预算（元）"

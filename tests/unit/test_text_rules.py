"""Text as people type it: cleaned, refused and compared by one set of rules."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import text
from engine.errors import ValidationFailed
from engine.rules import fields

TITLE = {"title": fields.text("title", "项目名称", max_length=200, single_line=True)}
PLAN = {"plan": fields.text("plan", "方案", max_length=2000)}
BLANKS = [" ", "\u3000", "\t", "\u00a0", "\u2003", *text.INVISIBLE]
REFUSED_ANYWHERE = [
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x80",
    "\x85\x9f",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
]


def _refused(specs: dict[str, fields.FieldSpec], value: str) -> str:
    with pytest.raises(ValidationFailed) as caught:
        fields.validate(specs, {next(iter(specs)): value})
    return caught.value.errors[next(iter(specs))]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  消防通道改善\u3000", "消防通道改善"),
        ("\u200b\ufeff楼道\u200b", "楼道"),
        ("Cafe\u0301", "Café"),  # NFC: one code point, as a keyboard would give
        ("全角　空格　在中间", "全角　空格　在中间"),  # inside a text nothing is touched
    ],
)
def test_stored_text_is_nfc_and_trimmed_of_blanks_and_invisible_characters(
    typed: str, stored: str
) -> None:
    assert fields.validate(TITLE, {"title": typed})["title"] == stored


def test_long_text_keeps_newlines_and_tabs_and_writes_line_breaks_as_newlines() -> None:
    assert fields.validate(PLAN, {"plan": "一\r\n二\r三\t四\n"})["plan"] == "一\n二\n三\t四"
    assert "只能是一行" in _refused(TITLE, "一\t二")
    assert "只能是一行" in _refused(TITLE, "一\n二")


@pytest.mark.parametrize("bad", REFUSED_ANYWHERE)
def test_control_and_bidi_characters_are_refused_in_any_text(bad: str) -> None:
    for specs in (TITLE, PLAN):
        assert "不允许" in _refused(specs, f"发票{bad}号")


@pytest.mark.parametrize(
    "blank",
    [
        "\u200b",
        "\ufeff",
        "\u3164",
        "\u115f\u1160",
        "\uffa0",
        "\u200b \u3000\u2060",
        # Default-ignorable characters beyond the zero-width ones, and the braille blank
        "\u200e",
        "\u200f",
        "\u061c",
        "\u00ad",
        "\u034f",
        "\u180e",
        "\u2063",
        "\u206f",
        "\u2800",
    ],
)
def test_a_text_of_only_invisible_characters_is_blank(blank: str) -> None:
    assert "不能为空" in _refused(TITLE, blank)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("３２０１００９９ ", "32010099"),
        ("32010099\u200b", "32010099"),
        ("a1", "A1"),
        ("P ", "p"),
        ("街道一\u3000", "街道一"),
        ("金阊 街道", "金阊街道"),
        ("ＡＢＣ－１", "abc-1"),
        ("Straße", "STRASSE"),
        ("a1\u00ad", "A1"),
        ("\u200e32010099\u200f", "32010099"),
        ("3201\u20630099", "32010099"),
        ("P\u2800", "p"),
        ("Cafe\u200b\u0301", "café"),  # composed once the blank is gone
    ],
)
def test_identifiers_compare_in_normal_form(one: str, other: str) -> None:
    assert text.key(one) == text.key(other)


def test_different_identifiers_stay_different() -> None:
    assert text.key("32010099") != text.key("32010098")
    assert text.key("金阊街道") != text.key("沧浪街道")


# --- properties --------------------------------------------------------------------------------

# Letters people type, plus what they paste by accident.
interesting = st.sampled_from(
    [*"aAzZ09０９ＡａＺ街道一丁é", "e\u0301", *BLANKS, "\n", "\r", *REFUSED_ANYWHERE]
)
typed = st.lists(interesting, max_size=12).map("".join) | st.text(max_size=20)
# Visible characters that never compose with their neighbour (no marks, no Hangul jamo).
visible = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"], max_codepoint=0x24F)
    | st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
    | st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E),
    min_size=1,
    max_size=20,
)
blanks = st.lists(st.sampled_from(BLANKS), max_size=4).map("".join)


@given(typed)
def test_key_is_idempotent_and_ignores_blanks_case_and_width(value: str) -> None:
    k = text.key(value)
    assert text.key(k) == k
    assert text.key(value.upper()) == text.key(value.lower()) or not value.isascii()
    assert not re.search(rf"[\s{text.INVISIBLE}]", k)


@given(blanks, visible, blanks, visible, blanks)
def test_blanks_anywhere_do_not_change_the_key(a: str, x: str, b: str, y: str, c: str) -> None:
    assert text.key(a + x + b + y + c) == text.key(x + y)


def _key_by_definition(value: str) -> str:
    """The key as the module's docstring defines it, every step taken for every text."""
    blank = re.compile(rf"[\s{text.INVISIBLE}]+")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return unicodedata.normalize("NFKC", blank.sub("", folded))


@given(
    typed
    | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=20)
    | st.text(min_size=60, max_size=80)  # on both sides of the length that is remembered
)
def test_the_key_of_any_text_is_the_key_by_definition(value: str) -> None:
    # Twice: the second time it may come from what the first remembered.
    assert text.key(value) == _key_by_definition(value)
    assert text.key(value) == _key_by_definition(value)


@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20))
def test_full_width_and_upper_case_forms_have_the_same_key(ascii_id: str) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) if c != "-" else "－" for c in ascii_id.upper())
    assert text.key(full_width) == text.key(ascii_id) == ascii_id


@given(typed)
def test_clean_is_idempotent_nfc_and_trimmed(value: str) -> None:
    cleaned = text.clean(value)
    assert text.clean(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert "\r" not in cleaned
    if cleaned:
        for end in (cleaned[0], cleaned[-1]):
            assert not end.isspace() and end not in text.INVISIBLE


@given(typed, st.booleans())
def test_a_text_is_accepted_exactly_when_the_rules_say_so(value: str, single_line: bool) -> None:
    specs = {"t": fields.text("t", "文本", max_length=10_000, single_line=single_line)}
    cleaned = text.clean(value)
    forbidden = set(map(chr, [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F)]))
    forbidden |= set(map(chr, range(0x2066, 0x206A)))
    if not single_line:
        forbidden -= {"\n", "\t"}
    blank = not re.sub(rf"[\s{text.INVISIBLE}]", "", cleaned)
    should_pass = not blank and not (set(cleaned) & forbidden)
    try:
        got = fields.validate(specs, {"t": value})["t"]
    except ValidationFailed:
        assert not should_pass, repr(value)
    else:
        assert should_pass and got == cleaned, repr(value)
    # The pattern published in the API document agrees on every cleaned text.
    pattern = re.compile(fields.text_pattern(single_line=single_line))
    assert bool(pattern.fullmatch(cleaned)) == should_pass, repr(cleaned)

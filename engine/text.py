"""What Zizhi does with text people type: the one place for cleaning, refusing and comparing.

Every stored text is cleaned the same way (``clean``): NFC-normalised, line breaks made
``\\n``, and trimmed at both ends of whitespace (ideographic space U+3000 included) and of
invisible characters (zero-width spaces and joiners, word joiner, BOM, Hangul fillers).
Then it is refused (``problem``) if it holds a control character — C0 (tab and newline are
allowed only in long, multi-line texts), DEL, C1 (U+0080–U+009F) — or a bidirectional
override, embedding or isolate (U+202A–U+202E, U+2066–U+2069, which can make a text read
differently from what it holds), or if nothing is left once invisible characters and
whitespace are taken out.

Identifiers people compare — invoice numbers, payees, street and district names — are also
compared in a normal form (``key``): NFKC, case-folded, every whitespace and invisible
character removed. So ``３２０１００９９ `` is ``32010099``, ``a1`` is ``A1`` and
``街道一\\u3000`` is ``街道一``. The key is stored in a column of its own, which carries the
unique constraint.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Characters that show nothing: Unicode's default-ignorable characters of the BMP (soft
# hyphen, combining grapheme joiner, zero-width space, non-joiner and joiner, the left-to-right,
# right-to-left and Arabic letter marks, word joiner, the invisible operators, the deprecated
# format characters, BOM, Khmer inherent vowels, Mongolian vowel separator, the Hangul fillers)
# and the braille blank. Not the bidi overrides, embeddings and isolates (refused instead) nor
# the variation selectors (they choose how the character before them is drawn).
INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c\u206d\u206e\u206f\u2800\u3164"
    "\ufeff\uffa0"
)
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
C1_CONTROLS = "\x80-\x9f"
# C0 controls a long text may not hold (tab and newline are fine there), and DEL.
_C0_LONG = "\x00-\x08\x0b-\x1f\x7f"
_C0_LINE = "\x00-\x1f\x7f"

_TRIM = re.compile(rf"^[\s{INVISIBLE}]+|[\s{INVISIBLE}]+$")
_BLANKS = re.compile(rf"[\s{INVISIBLE}]+")
_FORBIDDEN_LONG = re.compile(f"[{_C0_LONG}{C1_CONTROLS}{BIDI_CONTROLS}]")
_FORBIDDEN_LINE = re.compile(f"[{_C0_LINE}{C1_CONTROLS}{BIDI_CONTROLS}]")
_LINE_BREAK = re.compile(r"\r\n?")


def clean(value: str) -> str:
    """NFC, ``\\r\\n`` and ``\\r`` as ``\\n``, no whitespace or invisible characters at the ends."""
    return _TRIM.sub("", _LINE_BREAK.sub("\n", unicodedata.normalize("NFC", value)))


def problem(value: str, *, single_line: bool) -> str | None:
    """What is wrong with a cleaned text, in words a person understands; None if nothing."""
    if is_blank(value):
        return "不能为空"
    found = (_FORBIDDEN_LINE if single_line else _FORBIDDEN_LONG).search(value)
    if found is None:
        return None
    char = found.group()
    if char in "\n\t":
        return "只能是一行，不能含换行符或制表符"
    if re.fullmatch(f"[{BIDI_CONTROLS}]", char):
        return f"含有不允许的文字方向控制字符（U+{ord(char):04X}）"
    return f"含有不允许的控制字符（U+{ord(char):04X}）"


def is_blank(value: str) -> bool:
    """Nothing but whitespace and invisible characters (or nothing at all)."""
    return not _BLANKS.sub("", value)


def key(value: str) -> str:
    """The form in which identifiers are compared: NFKC, case-folded, no blanks at all.

    NFKC once more after the blanks are gone: a blank between a letter and its accent kept
    them apart (``e\\u200b\\u0301``); without it they compose (``é``), as typed without it.

    Verify recomputes the key of every expense's invoice number and payee, so the common
    cases are quick: printable ASCII without a space (most invoice numbers) is its own NFKC
    form, holds no blank, and case-folds as it lower-cases; other texts (payees, which
    repeat) are remembered: the last 4,096 of up to 64 characters (a couple of megabytes at
    most, whatever texts a caller sends)."""
    if value.isascii() and value.isprintable() and " " not in value:
        return value.lower()
    if len(value) <= 64:
        return _remembered_key(value)
    return _full_key(value)


def _full_key(value: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return unicodedata.normalize("NFKC", _BLANKS.sub("", folded))


_remembered_key = functools.lru_cache(maxsize=4096)(_full_key)


def json_schema_pattern(*, single_line: bool) -> str:
    """A JSON Schema pattern (ECMA-262) close to ``problem``: none of the refused characters,
    and at least one character that is not blank. (Whether a text is blank after NFC and
    trimming is the server's to say; the pattern is a guide for forms and generated clients.)"""
    refused = _escape((_C0_LINE if single_line else _C0_LONG) + C1_CONTROLS + BIDI_CONTROLS)
    # What str.isspace() counts as whitespace, spelled out: regex dialects disagree on \s.
    spaces = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    allowed = f"[^{refused}]"
    return f"^{allowed}*[^{refused}{spaces}{_escape(INVISIBLE)}]{allowed}*$"


def json_schema_optional_pattern(*, single_line: bool) -> str:
    """A JSON Schema pattern for a text that may be left blank (blank reads as none): none of
    the refused characters, nothing more."""
    refused = _escape((_C0_LINE if single_line else _C0_LONG) + C1_CONTROLS + BIDI_CONTROLS)
    return f"^[^{refused}]*$"


def _escape(characters: str) -> str:
    """A character class's members as \\uXXXX escapes (a dash stays the range marker)."""
    return "".join(c if c == "-" else f"\\u{ord(c):04x}" for c in characters)

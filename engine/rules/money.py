"""Yuan as people type them, read exactly into fen; fen written back as ¥12,345.67.

Pure and exact: text is read digit by digit through ``Decimal``, never through a float, so
``0.1 + 0.2`` problems cannot arise. Accepted: ``12345.67``, ``12,345.67``, ``¥12345``,
``￥ 12 345``, full-width digits and punctuation (``１２３．４５``), spaces of every kind
(ideographic too), zero-width characters, and a trailing ``元``. Refused: more than two
decimals (``1.234``: a fen cannot be split), signs, exponents, and anything else.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

# Zero-width spaces and joiners, the BOM and the word joiner: invisible, pasted along.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_YUAN = re.compile(r"^[¥]?([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.([0-9]{0,2}))?元?$")


class UnreadableAmount(ValueError):
    """The text is not an amount of yuan; ``message`` says why, in Chinese."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_yuan(text: str) -> int:
    """The amount in fen that ``text`` (yuan, as typed) names exactly."""
    # NFKC folds full-width digits, ￥, ．and ，into their ASCII forms.
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    compact = "".join(ch for ch in folded if not ch.isspace())
    if not compact:
        raise UnreadableAmount("请填写金额")
    match = _YUAN.fullmatch(compact)
    if match is None or (match.group(1) is None and not match.group(2)):
        if re.fullmatch(r"[¥]?[0-9,]*\.[0-9]{3,}元?", compact):
            raise UnreadableAmount("金额最多保留两位小数（到分）")
        if compact.startswith("-"):
            raise UnreadableAmount("金额不能为负数")
        raise UnreadableAmount("金额格式无法识别，请填写如 12345.67 或 12,345.67")
    whole = (match.group(1) or "0").replace(",", "")
    cents = (match.group(2) or "").ljust(2, "0")
    fen = Decimal(whole) * 100 + Decimal(cents)
    return int(fen)


def format_fen(fen: int) -> str:
    """``1234567`` → ``¥12,345.67`` (negative amounts keep their sign in front)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def fen_as_yuan_text(fen: int) -> str:
    """``1234567`` → ``12345.67``: what a form shows in an amount box, ready to edit."""
    yuan, cents = divmod(fen, 100)
    return f"{yuan}.{cents:02d}"


def parse_count(text: str) -> int:
    """A whole number as typed (full-width digits, spaces, thousands commas)."""
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    compact = "".join(ch for ch in folded if not ch.isspace())
    if not compact:
        raise UnreadableAmount("请填写数字")
    if not re.fullmatch(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+", compact):
        if compact.startswith("-") and compact[1:].isdigit():
            raise UnreadableAmount("不能为负数")
        raise UnreadableAmount("请填写整数")
    return int(compact.replace(",", ""))

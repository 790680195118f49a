"""Text as stores, spreadsheets and screens accept it: cleaned, bounded in bytes or in characters."""
from __future__ import annotations

import re
from typing import Any

TRUNCATION_MARK = "…[truncated]"
_SURROGATE_OR_NUL = re.compile("[\ud800-\udfff\x00]")


def clean_text(value: Any) -> str:
    """Text DynamoDB and CSV readers accept: NUL and lone surrogates become U+FFFD."""
    return _SURROGATE_OR_NUL.sub("\ufffd", value if isinstance(value, str) else str(value))


def truncate_utf8(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8, cut on a character boundary, marked when cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    mark = TRUNCATION_MARK if max_bytes >= 4 * len(TRUNCATION_MARK) else ""
    # errors="ignore" drops only the partial character left at the cut.
    return data[:max_bytes - len(mark.encode("utf-8"))].decode("utf-8", "ignore") + mark


def shorten(value: Any, chars: int) -> str:
    """One line of at most `chars` characters: whitespace runs folded, an ellipsis where cut."""
    text = " ".join(("" if value is None else str(value)).split())
    return text if len(text) <= chars else text[:chars - 1] + "…"

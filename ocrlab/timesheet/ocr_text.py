"""Characters as OCR engines print them: look-alikes, folded forms, tolerant labels.

Everything here keeps string length, so a position found in the folded text is the same
position in the text the engine printed, and a value can be quoted as it was read.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters an engine prints for a digit. Only applied inside a token that is numeric already or
# shaped like a number, never to words: "PAID" stays a word, "O8:3O" becomes 08:30.
DIGIT_LOOKALIKES = {"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "i": "1", "|": "1",
                    "!": "1", "t": "1", "S": "5", "s": "5", "$": "5", "B": "8", "Z": "2", "z": "2", "G": "6",
                    "b": "6", "g": "9", "q": "9", "T": "7"}
_TO_DIGIT = str.maketrans(DIGIT_LOOKALIKES)
LOOKALIKE_CLASS = "0-9" + re.escape("".join(DIGIT_LOOKALIKES))
# Digits an engine prints for a letter, for matching labels ("T0tal h0urs", "lD").
_LETTER_LOOKALIKES = {"o": "0oeDQ", "i": "1lI|!í", "l": "1I|i!", "s": "5$", "e": "ecéèę", "a": "aáàä@",
                      "u": "uúü", "d": "d", "t": "t+"}
_FULLWIDTH_PUNCT = {"：": ":", "；": ";", "，": ",", "．": ".", "／": "/", "－": "-", "·": ".", "•": "."}


def _fold_char(c: str) -> str:
    if c in _FULLWIDTH_PUNCT:
        return _FULLWIDTH_PUNCT[c]
    if c.isascii():
        return c
    base = unicodedata.normalize("NFKD", c)[:1]  # "é" -> "e", "ę" -> "e", "：" -> ":"
    return base if base.isascii() and base else c


def fold(text: str) -> str:
    """Accents off, full-width punctuation to ASCII, one character for one character."""
    return "".join(_fold_char(c) for c in text)


def to_digits(token: str) -> str:
    """Digit look-alikes to digits ("O8" -> "08"); other characters unchanged."""
    return token.translate(_TO_DIGIT)


def has_lookalike(token: str) -> bool:
    return any(c in DIGIT_LOOKALIKES for c in token)


def _letter_class(c: str) -> str:
    alts = _LETTER_LOOKALIKES.get(c.lower(), "")
    return "[" + re.escape(c.lower() + c.upper() + alts) + "]"


@lru_cache(maxsize=None)
def label_pattern(label: str) -> re.Pattern[str]:
    """A label as engines print it: any case, look-alike letters, spaces lost or added, and at
    most one letter misread or lost beyond that ("Total heurs", "Week ening"). Labels of three
    letters or fewer must match as they are: too many words would."""
    words = label.split()
    letters = [c for w in words for c in w]

    def variant(wild: int | None, replace: str) -> str:
        out, k = [], 0
        for n, w in enumerate(words):
            if n:
                out.append(r"[-,._]?\s*")
            for c in w:
                out.append(replace if k == wild else _letter_class(c))
                k += 1
        return "".join(out)
    variants = [variant(None, "")]
    if len(letters) > 3:
        variants += [variant(i, r) for r in (r"[^\s:;.,]", "") for i in range(1, len(letters))]
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(variants) + r")(?![a-z])", re.IGNORECASE)


def label_rule(seen: str, label: str) -> str | None:
    """The repair rule for a label read as `seen`: None when it was printed as the form prints it."""
    squashed = re.sub(r"\s+", " ", seen.strip())
    if squashed == label:
        return None
    if re.sub(r"[^a-z]", "", squashed.lower()) == label.replace(" ", "").lower():
        return "label_spacing"
    return "label_confusion"

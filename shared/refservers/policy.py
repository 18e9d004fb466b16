"""The reference Security Hub's content policy: a blocklist, then PII redaction. Pure.

1. A blocklisted word or phrase (whole words, case-, accent- and punctuation-insensitive, as
   in :func:`shared.bot.rules.normalize`) → BLOCK, with the reason naming the term.
2. Personal data → REDACT, replaced by placeholders, checked in this order so a card number is
   not taken for a phone number:
   - ``[card]``: 13-19 digits, optionally grouped by single spaces or dashes, that pass the
     Luhn check (ISO/IEC 7812-1 annex B);
   - ``[email]``: ``local@domain.tld`` (a practical subset of RFC 5322 addr-spec);
   - ``[phone]``: 7-15 digits (E.164's maximum), optionally led by ``+`` and grouped by
     spaces, dashes, dots or parentheses; ISO dates (2024-05-01) are left alone.
3. Otherwise ALLOW, text unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from shared.bot.ports import Screening, Verdict
from shared.bot.rules import normalize

_CARD = re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)")
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Any run of digits and separators; _is_phone then keeps the ones of phone length.
_PHONE = re.compile(r"(?<![\w+])(?:\+\s?)?\(?\d(?:[\s().-]{0,2}\d)*(?!\w)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _is_card(candidate: str) -> bool:
    return luhn_valid(_digits(candidate))


def _is_phone(candidate: str) -> bool:
    return 7 <= len(_digits(candidate)) <= 15 and not _ISO_DATE.fullmatch(candidate)


# (placeholder kind, pattern, extra check on the matched text)
_PII: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("card", _CARD, _is_card),
    ("email", _EMAIL, lambda _: True),
    ("phone", _PHONE, _is_phone),
)


def redact(text: str) -> tuple[str, list[str]]:
    """``text`` with personal data replaced by ``[kind]``, and the kinds found (in order)."""
    found: list[str] = []
    for kind, pattern, accept in _PII:
        text, hit = _substitute(text, kind, pattern, accept)
        if hit:
            found.append(kind)
    return text, found


def _substitute(
    text: str, kind: str, pattern: re.Pattern[str], accept: Callable[[str], bool]
) -> tuple[str, bool]:
    hit = False

    def placeholder(match: re.Match[str]) -> str:
        nonlocal hit
        if not accept(match.group()):
            return match.group()
        hit = True
        return f"[{kind}]"

    return pattern.sub(placeholder, text), hit


class Policy:
    def __init__(self, blocklist: Iterable[str] = ()) -> None:
        terms = {term.strip(): normalize(term) for term in blocklist if term.strip()}
        self.blocklist = {shown: normal for shown, normal in terms.items() if normal}

    def screen(self, text: str) -> Screening:
        padded = f" {normalize(text)} "
        for shown, normal in self.blocklist.items():
            if f" {normal} " in padded:
                return Screening(Verdict.BLOCK, text, f"blocked term: {shown}")
        redacted, kinds = redact(text)
        if kinds:
            return Screening(Verdict.REDACT, redacted, f"redacted: {', '.join(kinds)}")
        return Screening(Verdict.ALLOW, text)

"""The reference Security Hub's policy: blocklist first, then card, e-mail and phone redaction."""

from __future__ import annotations

import pytest

from shared.bot.ports import Verdict
from shared.refservers.policy import Policy, luhn_valid, redact


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("79927398713", True),  # the worked example of ISO/IEC 7812-1 annex B
        ("79927398710", False),
        ("4111111111111111", True),  # Visa test number
        ("378282246310005", True),  # American Express test number
        ("4111111111111112", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("mail John.Doe+news@example.co.uk!", "mail [email]!"),
        ("a@b.io and c_d@mail.example.com", "[email] and [email]"),
        ("call +1 (555) 123-4567 now", "call [phone] now"),
        ("or 555-1234", "or [phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("tel. 030.1234567", "tel. [phone]"),
        ("pay 4111 1111 1111 1111 ok", "pay [card] ok"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("amex 378282246310005", "amex [card]"),
    ],
)
def test_personal_data_is_replaced_by_placeholders(text: str, redacted: str) -> None:
    assert redact(text)[0] == redacted


@pytest.mark.parametrize(
    "text",
    [
        "order 123456 shipped",  # six digits: too short for a phone number
        "on 2024-05-01 at 10:00-14:00",  # a date and opening hours
        "it costs 1,299.00 EUR",
        "invoice 12345678901234567890",  # too long for a phone, not a card
        "4111 1111 1111 1112",  # card-shaped, fails Luhn, longer than a phone number
        "not an address: user@localhost",
    ],
)
def test_numbers_and_text_that_are_not_personal_data_stay(text: str) -> None:
    assert redact(text) == (text, [])


def test_redact_reports_each_kind_once_in_check_order() -> None:
    text = "x@y.com, 555 123 4567, 4111111111111111, z@y.com"
    assert redact(text) == ("[email], [phone], [card], [email]", ["card", "email", "phone"])


def test_plain_text_is_allowed_unchanged() -> None:
    screening = Policy(["scam"]).screen("Hello, what are your opening hours?")
    assert screening.verdict is Verdict.ALLOW
    assert screening.text == "Hello, what are your opening hours?"
    assert screening.reason == ""


def test_personal_data_is_redacted() -> None:
    screening = Policy().screen("I'm ada@example.com, +49 30 1234567")
    assert screening.verdict is Verdict.REDACT
    assert screening.text == "I'm [email], [phone]"
    assert screening.reason == "redacted: email, phone"


@pytest.mark.parametrize(
    "text", ["This is a SCAM!", "scam", "how to buy   drugs?", "Buy-Drugs here"]
)
def test_blocklisted_terms_block_whatever_the_case_or_punctuation(text: str) -> None:
    screening = Policy(["scam", " buy drugs ", ""]).screen(text)
    assert screening.verdict is Verdict.BLOCK
    assert screening.text == text
    assert screening.reason.startswith("blocked term: ")


def test_blocklisted_terms_match_whole_words_only() -> None:
    assert Policy(["ass"]).screen("first class passenger").verdict is Verdict.ALLOW


def test_blocking_wins_over_redaction() -> None:
    screening = Policy(["scam"]).screen("scam: write to x@example.com")
    assert (screening.verdict, screening.reason) == (Verdict.BLOCK, "blocked term: scam")


def test_empty_text_is_allowed() -> None:
    assert Policy(["scam"]).screen("").verdict is Verdict.ALLOW

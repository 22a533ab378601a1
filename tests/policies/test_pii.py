"""PII detection and redaction: each kind found when real, left alone when it only looks alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from policies.guard_settings import PiiGuardSettings
from policies.pii import (
    PiiDetector,
    PiiMatch,
    detect,
    redact,
    redact_value,
    restore,
    restore_value,
)
from policies.pii_checks import de_tax_id_valid, fr_insee_valid, iban_valid, luhn_valid

POSITIVE: list[tuple[str, str]] = [
    ("EMAIL", "jane.doe+shop@example.co.uk"),
    ("EMAIL", "j_smith@mail-server.example.com"),
    ("PHONE", "+44 20 7946 0958"),
    ("PHONE", "+1 (415) 555-2671"),
    ("PHONE", "+49 30 1234567"),
    ("PHONE", "+33 6 12 34 56 78"),
    ("PHONE", "+4915123456789"),
    ("PHONE", "0044 20 7946 0958"),
    ("PHONE", "020 7946 0958"),
    ("PHONE", "0151 23456789"),
    ("PHONE", "06 12 34 56 78"),
    ("PHONE", "0612345678"),
    ("PHONE", "(555) 123-4567"),
    ("PHONE", "555-123-4567"),
    ("PHONE", "415.555.2671"),
    ("CARD", "4111 1111 1111 1111"),
    ("CARD", "5500-0000-0000-0004"),
    ("CARD", "378282246310005"),
    ("CARD", "6011 0009 9013 9424"),
    ("IBAN", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432"),
    ("IBAN", "FR14 2004 1010 0505 0001 3M02 606"),
    ("IBAN", "NL91ABNA0417164300"),
    ("US_SSN", "123-45-6789"),
    ("US_SSN", "078 05 1121"),
    ("UK_NINO", "AB 12 34 56 C"),
    ("UK_NINO", "JG103759A"),
    ("DE_TAX_ID", "86095742719"),
    ("DE_TAX_ID", "86 095 742 719"),
    ("ES_DNI", "12345678Z"),
    ("ES_DNI", "X1234567L"),
    ("ES_DNI", "Y-1234567-X"),
    ("FR_INSEE", "1 85 05 78 006 084 91"),
    ("FR_INSEE", "269029934173285"),
    ("IPV4", "192.168.1.10"),
    ("IPV4", "8.8.8.8"),
    ("IPV6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("IPV6", "2001:db8::1"),
    ("IPV6", "::ffff:192.0.2.128"),
]


@pytest.mark.parametrize(("kind", "value"), POSITIVE)
def test_each_kind_is_found_inside_a_sentence(kind: str, value: str) -> None:
    text = f"Hello, my details: {value}. Thanks!"
    hits = detect(text)
    assert [(h.kind, h.value) for h in hits] == [(kind, value)]
    redaction = redact(text)
    assert value not in redaction.text
    assert redaction.text == f"Hello, my details: [{kind}_1]. Thanks!"
    assert redaction.counts == {kind: 1}


NEGATIVE = [
    # digit runs that are not phones: orders, dates, amounts, times, versions, short codes
    "Order 123456789 has not arrived",
    "Order #0123456789 was cancelled",
    "invoice no. 0987654321 is wrong",
    "It was delivered on 2024-01-15 at 10:30",
    "Delivered 15.01.2024, billed 01.02.2024",
    "I paid 1,234,567.89 USD and 1.234.567,89 EUR",
    "The meeting is at 12:30:45 tomorrow",
    "Running version 10.2.3 of the app, build 20240115",
    "My postcode is 75001 and my code is 123456",
    "Tracking 1Z999AA10123456784 shows nothing",
    # cards failing Luhn, too short, or a repeated digit
    "Card 4111 1111 1111 1112 was declined",
    "Reference 1234 5678 9012",
    "Voucher 0000 0000 0000 0000",
    # IBAN with a wrong checksum or wrong length
    "IBAN DE89 3704 0044 0532 0130 01 please",
    "IBAN DE89 3704 0044 0532 0130 please",
    # SSN ranges never issued
    "000-12-3456 / 666-12-3456 / 900-12-3456 / 123-00-4567 / 123-45-0000",
    # NINO with a forbidden prefix or suffix
    "BG 12 34 56 C and QQ123456C and AB123456E",
    # tax id with a wrong check digit or a digit repeated too often
    "Steuer-ID 86095742718 and 11111111111",
    # DNI with the wrong letter
    "DNI 12345678A",
    # INSEE with a wrong key
    "NIR 1 85 05 78 006 084 36",
    # addresses that are not IPs
    "256.1.1.1 or 1.2.3 or 1.2.3.4.5 and std::vector or a:b:c",
    # emails without a domain
    "Write to support@localhost or @handle or a@b.c",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert detect(text) == []
    assert redact(text).text == text


def test_same_value_same_placeholder_and_restore_round_trips() -> None:
    text = (
        "Email a@example.com or b@example.com. Again: a@example.com. "
        "Card 4111111111111111, phone +44 20 7946 0958."
    )
    redaction = redact(text)
    assert redaction.text == (
        "Email [EMAIL_1] or [EMAIL_2]. Again: [EMAIL_1]. Card [CARD_1], phone [PHONE_1]."
    )
    assert redaction.counts == {"EMAIL": 3, "CARD": 1, "PHONE": 1}
    assert restore(redaction.text, redaction.mapping) == text


def test_restore_puts_back_only_the_placeholders_it_issued() -> None:
    redaction = redact("Contact a@example.com")
    model_output = "Replied to [EMAIL_1]; cc [EMAIL_9] and [PHONE_1] and ⟦EMAIL_1⟧"
    assert restore(model_output, redaction.mapping) == (
        "Replied to a@example.com; cc [EMAIL_9] and [PHONE_1] and ⟦EMAIL_1⟧"
    )
    assert restore(model_output, {}) == model_output


def test_placeholder_shaped_text_in_the_input_is_never_issued_so_never_restored() -> None:
    text = "Literal [EMAIL_1] in my note; my address is a@example.com"
    redaction = redact(text)
    assert redaction.text == "Literal [EMAIL_1] in my note; my address is [EMAIL_2]"
    assert restore(redaction.text, redaction.mapping) == text


def test_white_brackets_style_and_kind_selection() -> None:
    settings = PiiGuardSettings(placeholder_style="white_brackets", kinds=frozenset({"EMAIL"}))
    redaction = redact("a@example.com, 192.168.1.10", settings)
    assert redaction.text == "⟦EMAIL_1⟧, 192.168.1.10"
    assert restore(redaction.text, redaction.mapping) == "a@example.com, 192.168.1.10"


def test_disabled_guard_changes_nothing() -> None:
    redaction = redact("a@example.com", PiiGuardSettings(enabled=False))
    assert (redaction.text, redaction.mapping) == ("a@example.com", {})


def test_nested_values_share_one_mapping() -> None:
    value = {
        "ticket": {"from": "a@example.com", "body": ["call +44 20 7946 0958", "a@example.com"]},
        "count": 2,
        "flag": True,
        "none": None,
    }
    redacted = redact_value(value)
    assert redacted.value == {
        "ticket": {"from": "[EMAIL_1]", "body": ["call [PHONE_1]", "[EMAIL_1]"]},
        "count": 2,
        "flag": True,
        "none": None,
    }
    assert restore_value(redacted.value, redacted.mapping) == value


class NameDetector:
    """A stand-in for a plug-in (e.g. a Presidio adapter): finds one known name."""

    kinds = frozenset({"PERSON"})

    def detect(self, text: str) -> Iterator[PiiMatch]:
        start = text.find("Ada Lovelace")
        if start >= 0:
            yield PiiMatch("PERSON", start, start + len("Ada Lovelace"), "Ada Lovelace", 45)


def test_a_plugged_in_detector_adds_its_kinds() -> None:
    assert isinstance(NameDetector(), PiiDetector)
    redaction = redact("Ada Lovelace, a@example.com", detectors=[NameDetector()])
    assert redaction.text == "[PERSON_1], [EMAIL_1]"
    assert redaction.mapping == {"[PERSON_1]": "Ada Lovelace", "[EMAIL_1]": "a@example.com"}


def test_overlaps_go_to_the_checksummed_kind() -> None:
    # A card number is also a long digit run; the email's digits are not a phone.
    hits = detect("4111 1111 1111 1111 and 06123456789@example.com")
    assert [h.kind for h in hits] == ["CARD", "EMAIL"]


def test_check_digit_functions() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert de_tax_id_valid("86095742719") and not de_tax_id_valid("86095742710")
    assert fr_insee_valid("185057800608491") and not fr_insee_valid("185057800608436")

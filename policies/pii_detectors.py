"""The built-in PII detectors: patterns plus the check digits that tell real values from noise.

Pure functions over a string, stdlib only. Each detector yields ``PiiMatch`` spans; overlaps
between detectors are resolved by ``policies.pii``. A pattern alone over-matches digit runs, so
every numeric kind is confirmed by its own rule: Luhn for cards, ISO 13616 mod 97 for IBANs, the
invalid ranges of US SSNs, the check letter of Spanish DNI/NIE, the ISO 7064 check digit of the
German tax id, the mod-97 key of the French INSEE number, ``ipaddress`` for IP addresses, and for
phone numbers a shape (international prefix, national trunk zero, or North American grouping)
rather than any digit run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from policies.pii_checks import (
    IBAN_LENGTHS,
    de_tax_id_valid,
    es_dni_valid,
    fr_insee_valid,
    iban_valid,
    luhn_valid,
    us_ssn_valid,
)

__all__ = ["BUILTIN_DETECTORS", "PiiMatch", "RegexDetector"]


@dataclass(frozen=True, slots=True)
class PiiMatch:
    """One detected value: its kind (upper case, used in the placeholder) and its span."""

    kind: str
    start: int
    end: int
    value: str
    priority: int = 50
    """Lower wins when two detectors claim overlapping spans (checksummed kinds beat phones)."""


_SEPARATORS = re.compile(r"[\s.\-]")


@dataclass(frozen=True, slots=True)
class RegexDetector:
    """A kind found by a pattern and confirmed by a check on the matched text.

    A numeric kind (``digit_run`` set) is not searched for across the whole text: its pattern is
    tried only where a run of digits of a fitting length starts, ``back`` characters earlier
    (for a prefix such as ``+``, ``DE`` or ``X-``). Python's regex engine cannot skip ahead to a
    pattern that starts with a look-behind or a class, so this is several times faster on a
    ticket, and the runs are found once per text for all kinds.
    """

    kind: str
    pattern: re.Pattern[str]
    priority: int = 50
    digit_run: tuple[int, int] | None = None
    """Allowed lengths of the digit run where a match's first digit is."""
    back: tuple[int, ...] = (0,)
    lead: str = ""
    """Characters a match tried ``back`` characters before its digits may start with."""

    def check(self, match: re.Match[str]) -> bool:
        return True

    def accept(self, text: str, match: re.Match[str]) -> PiiMatch | None:
        """The hit a candidate match gives (maybe a shorter one), or None."""
        if not self.check(match):
            return None
        return PiiMatch(self.kind, match.start(), match.end(), match.group(), self.priority)

    def candidates(self, text: str) -> Iterator[re.Match[str]]:
        if self.digit_run is None:
            yield from self.pattern.finditer(text)
            return
        low, high = self.digit_run
        for start, length in _digit_runs(text):
            if low <= length <= high:
                for offset in self.back:
                    if start >= offset and (not offset or text[start - offset] in self.lead):
                        match = self.pattern.match(text, start - offset)
                        if match is not None:
                            yield match

    def detect(self, text: str) -> Iterator[PiiMatch]:
        last_end = 0
        for match in self.candidates(text):
            if match.start() < last_end:
                continue
            hit = self.accept(text, match)
            if hit is not None:
                last_end = hit.end
                yield hit


_DIGITS = re.compile(r"[0-9]+")
_last_runs: tuple[str, list[tuple[int, int]]] = ("", [])


def _digit_runs(text: str) -> list[tuple[int, int]]:
    """(start, length) of every run of digits; the last text's runs are kept (one tuple, so
    swapping it is atomic), since every numeric detector asks for the same text in turn."""
    global _last_runs
    cached_text, runs = _last_runs
    if cached_text is not text:
        runs = [(m.start(), m.end() - m.start()) for m in _DIGITS.finditer(text)]
        _last_runs = (text, runs)
    return runs


class _Email(RegexDetector):
    """Tried once per ``@``, from where its local part can start."""

    def candidates(self, text: str) -> Iterator[re.Match[str]]:
        last_end = 0
        at = text.find("@")
        while at >= 0:
            start = at
            while start > last_end and at - start < 64 and text[start - 1] in _LOCAL_PART:
                start -= 1
            while start < at and not text[start].isalnum():
                start += 1
            match = self.pattern.match(text, start) if start < at else None
            if match is not None:
                last_end = match.end()
                yield match
            at = text.find("@", max(at + 1, last_end))


_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


class _Card(RegexDetector):
    """The pattern may take digits that follow the number; shorter cuts are tried too."""

    def accept(self, text: str, match: re.Match[str]) -> PiiMatch | None:
        raw = match.group()
        ends = [i + 1 for i, char in enumerate(raw) if char.isdigit()]
        all_digits = _SEPARATORS.sub("", raw)
        for count in range(min(19, len(ends)), 12, -1):
            end = ends[count - 1]
            if end < len(raw) and raw[end].isdigit():
                continue
            digits = all_digits[:count]
            if len(set(digits)) > 1 and luhn_valid(digits):
                start = match.start()
                return PiiMatch(self.kind, start, start + end, raw[:end], self.priority)
        return None


class _Ssn(RegexDetector):
    def check(self, match: re.Match[str]) -> bool:
        return us_ssn_valid(match["area"], match["group"], match["serial"])


class _Compact(RegexDetector):
    """Checked on the value without its separators."""

    def check(self, match: re.Match[str]) -> bool:
        return _COMPACT_CHECKS[self.kind](_SEPARATORS.sub("", match.group()).upper())


class _Iban(RegexDetector):
    """The pattern may run into the next word; the longest valid prefix of whole groups wins."""

    def accept(self, text: str, match: re.Match[str]) -> PiiMatch | None:
        raw = match.group()
        expected = IBAN_LENGTHS.get(raw[:2].upper())
        cuts = [i + 1 for i, char in enumerate(raw) if char.isalnum()]
        lengths = [expected] if expected else range(min(34, len(cuts)), 14, -1)
        for length in lengths:
            if length > len(cuts):
                continue
            end = cuts[length - 1]
            if end < len(raw) and raw[end].isalnum():
                continue  # would cut a group in two
            if iban_valid(_SEPARATORS.sub("", raw[:end]).upper()):
                start = match.start()
                return PiiMatch(self.kind, start, start + end, raw[:end], self.priority)
        return None


class _IpCheck(RegexDetector):
    def check(self, match: re.Match[str]) -> bool:
        value = match.group()
        if self.kind == "IPV6" and (value.count(":") < 2 or not any(c.isdigit() for c in value)):
            return False
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
        return True


class _Ipv6(_IpCheck):
    """Tried only where ``:hex:`` occurs, from the start of the hex-and-colon run around it."""

    def candidates(self, text: str) -> Iterator[re.Match[str]]:
        last_end = 0
        for hint in _COLON_PAIR.finditer(text):
            start = hint.start()
            if start < last_end:
                continue
            while start > 0 and hint.start() - start < 40 and text[start - 1] in _HEX_COLON:
                start -= 1
            match = self.pattern.match(text, start) or self.pattern.match(text, hint.start())
            if match is not None:
                last_end = match.end()
                yield match


_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")


# Words right before a digit run that say it is not a phone number.
_NOT_PHONE_CONTEXT = re.compile(
    r"(?:order|invoice|ticket|ref|reference|case|account|acct|tracking|parcel|serial|"
    r"sku|item|id|no\.?|nr\.?|#|bestellung|rechnung|commande|facture|pedido|factura|ordine)"
    r"[\s:#.-]*$",
    re.IGNORECASE,
)
_NANP = re.compile(r"\(?[2-9]\d{2}\)?[ .\-]?\d{3}[ .\-]\d{4}")
_DATE_LIKE = re.compile(r"\d{1,4}([.\-])\d{1,2}\1\d{1,4}")


def _phone_shape(text: str, start: int, value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    count = len(digits)
    if len(set(digits)) < 3:
        return False
    if value.startswith("+"):
        ok = 8 <= count <= 15 and digits[0] != "0"
    elif digits.startswith("00"):
        ok = 10 <= count <= 15
    elif _NANP.fullmatch(value):
        ok = True
    elif digits.startswith("0"):
        ok = (9 if value != digits else 10) <= count <= 12
    else:
        ok = False
    if not ok or _DATE_LIKE.fullmatch(value):
        return False
    return value.startswith("+") or not _NOT_PHONE_CONTEXT.search(text, max(0, start - 24), start)


class _Phone(RegexDetector):
    """The longest prefix, cut at a separator, that has a phone number's shape."""

    def accept(self, text: str, match: re.Match[str]) -> PiiMatch | None:
        raw = match.group()
        cuts = [len(raw)]
        if raw.startswith(("+", "00")):  # the country code bounds the length: cut what follows
            cuts += [i for i in range(len(raw) - 1, 6, -1) if raw[i] in " .-"]
        for end in cuts:
            value = raw[:end]
            if _phone_shape(text, match.start(), value):
                start = match.start()
                return PiiMatch(self.kind, start, start + end, value, self.priority)
        return None


_COMPACT_CHECKS = {"ES_DNI": es_dni_valid, "DE_TAX_ID": de_tax_id_valid, "FR_INSEE": fr_insee_valid}

_BYTE = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = _BYTE + r"(?:\." + _BYTE + r"){3}"

BUILTIN_DETECTORS: tuple[RegexDetector, ...] = (
    _Email(
        "EMAIL",
        re.compile(
            r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
            r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
        ),
        priority=0,
    ),
    _Iban(
        "IBAN",
        re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,32}", re.IGNORECASE),
        priority=10,
        digit_run=(2, 34),
        back=(2,),
        lead="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    ),
    _Card(
        "CARD",
        re.compile(r"(?<![\d.,-])(?<![A-Za-z]{2}\d\d[ -])\d(?:[ \-]?\d){12,18}(?![\d])"),
        priority=20,
        digit_run=(1, 19),
    ),
    _Ssn(
        "US_SSN",
        re.compile(r"(?<![\d-])(?P<area>\d{3})([- ])(?P<group>\d{2})\2(?P<serial>\d{4})(?![\d-])"),
        priority=30,
        digit_run=(3, 3),
    ),
    RegexDetector(
        "UK_NINO",
        re.compile(
            r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
            r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
        ),
        priority=30,
        digit_run=(2, 6),
        back=(2, 3),
        lead="ABCEGHJKLMNOPRSTWXYZ",
    ),
    _Compact(
        "ES_DNI",
        re.compile(r"(?<![A-Za-z0-9-])(?:\d{8}|[XYZ]-?\d{7})-?[A-Z](?![A-Za-z0-9])"),
        priority=30,
        digit_run=(7, 8),
        back=(0, 1, 2),
        lead="XYZ",
    ),
    _Compact(
        "FR_INSEE",
        re.compile(
            r"(?<![\d])[1-478] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3}"
            r" ?\d{2}(?![\d])"
        ),
        priority=30,
        digit_run=(1, 15),
    ),
    _Compact(
        "DE_TAX_ID",
        re.compile(r"(?<![\d])[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?![\d])"),
        priority=35,
        digit_run=(2, 11),
    ),
    _Ipv6(
        "IPV6",
        re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:"
            + _IPV4
            + r"|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
        ),
        priority=40,
    ),
    _IpCheck(
        "IPV4",
        re.compile(r"(?<![\w.])" + _IPV4 + r"(?![\w]|\.\d)"),
        priority=40,
        digit_run=(1, 3),
    ),
    _Phone(
        "PHONE",
        re.compile(
            r"(?<![\w+.,/:-])(?<!\d[ .\-])(?:\+|\b|(?=\())(?:\(\d{1,4}\)|\d)(?:[ .\-]?(?:\(\d{1,4}\)|\d)){6,17}"
            r"(?![\w])"
        ),
        priority=60,
        digit_run=(1, 15),
        back=(0, 1, 2),
        lead="+(",
    ),
)
"""All built-in detectors, in priority order."""

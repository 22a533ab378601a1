"""Check digits and number rules that tell real identifiers from digit runs that look alike."""

from __future__ import annotations

__all__ = [
    "IBAN_LENGTHS",
    "de_tax_id_valid",
    "es_dni_valid",
    "fr_insee_valid",
    "iban_valid",
    "luhn_valid",
    "us_ssn_valid",
]


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


# Lengths from the SWIFT IBAN registry for the countries most tickets mention; others 15..34.
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "GR": 27, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28,
    "PT": 25, "RO": 24, "SE": 24, "SK": 24,
}  # fmt: skip


def iban_valid(compact: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    if not 15 <= len(compact) <= 34 or not compact.isalnum():
        return False
    expected = IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def us_ssn_valid(area: str, group: str, serial: str) -> bool:
    """Area 000, 666 and 900-999, group 00 and serial 0000 are never issued."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni_valid(compact: str) -> bool:
    """DNI: 8 digits + letter; NIE: X/Y/Z (0/1/2) + 7 digits + letter; letter = number mod 23."""
    body, letter = compact[:-1], compact[-1]
    if body[0] in "XYZ":
        body = str("XYZ".index(body[0])) + body[1:]
    return body.isdigit() and _DNI_LETTERS[int(body) % 23] == letter


def de_tax_id_valid(digits: str) -> bool:
    """Steuerliche Identifikationsnummer: 11 digits, no leading 0, one digit repeated 2 or 3
    times among the first ten (never 3 in a row), ISO 7064 MOD 11,10 check digit."""
    if len(digits) != 11 or digits[0] == "0":
        return False
    head = digits[:10]
    counts = sorted((head.count(d) for d in set(head)), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    if counts[0] == 3 and any(head[i] == head[i + 1] == head[i + 2] for i in range(8)):
        return False
    product = 10
    for char in head:
        total = (int(char) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def fr_insee_valid(compact: str) -> bool:
    """NIR: 13 characters (Corsica 2A/2B count as 19/18) whose key is 97 - (number mod 97)."""
    body, key = compact[:13], compact[13:]
    body = body.replace("2A", "19", 1) if body[5:7] == "2A" else body
    body = body.replace("2B", "18", 1) if body[5:7] == "2B" else body
    return body.isdigit() and key.isdigit() and 97 - int(body) % 97 == int(key)

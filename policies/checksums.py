"""Check digits that tell real card numbers and IBANs from look-alike digit runs."""

from __future__ import annotations


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn (mod 10) check used by payment cards."""
    if not digits.isdigit():
        return False
    total = 0
    # Double every second digit counting from the right (the check digit is not doubled).
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """Whether ``iban`` (spaces allowed) passes the ISO 13616 mod-97 check.

    The country code and the length are checked for shape only (two letters, 15-34 characters);
    the per-country length table is not kept here.
    """
    s = iban.replace(" ", "").upper()
    if not (15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()):
        return False
    if not s.isascii():
        return False
    # Move the country code and check digits to the end, letters become 10..35, then mod 97.
    rearranged = s[4:] + s[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1

"""Luhn and IBAN mod-97 check digits, on published test numbers and one-digit changes of them."""

from __future__ import annotations

import pytest

from policies.checksums import iban_valid, luhn_valid


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111111111111111", True),  # Visa test number
        ("4111111111111112", False),  # last digit changed
        ("5555555555554444", True),  # Mastercard test number
        ("5555555555554445", False),
        ("378282246310005", True),  # Amex, 15 digits
        ("378282246310006", False),
        ("30569309025904", True),  # Diners, 14 digits
        ("4222222222222", True),  # Visa, 13 digits
        ("6221260000000000001", True),  # 19 digits, check digit computed by hand
        ("6221260000000000002", False),
        ("79927398713", True),  # the textbook Luhn example
        ("79927398710", False),
        ("4111 1111 1111 1111", False),  # digits only: callers strip separators
        ("", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("GB82WEST12345698765432", True),
        ("GB82 WEST 1234 5698 7654 32", True),
        ("gb82west12345698765432", True),
        ("GB82WEST12345698765433", False),  # last digit changed
        ("GB28WEST12345698765432", False),  # check digits swapped
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("FR1420041010050500013M02606", True),
        ("NL91ABNA0417164300", True),
        ("BE68539007547034", True),
        ("ES9121000418450200051332", True),
        ("GB82WEST", False),  # too short
        ("1282WEST12345698765432", False),  # country code must be letters
        ("GB82WEST1234569876543!", False),
    ],
)
def test_iban(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid

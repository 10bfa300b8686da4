"""Tests for calibrators/referential.py: which options refer to others, and what that allows.

One table of real-looking option lists. ``fixed`` are the positions of group references ("all of
the above") that stay in place; ``id_refs`` the options that name other option IDs ("Both A and
B"), which leave the question undebiased.
"""

from __future__ import annotations

import pytest

from calibrators.referential import ReferentialCheck, check_referential

NUM = ["1", "2", "3", "4"]
LOWER = ["a", "b", "c", "d"]
ROMAN = ["I", "II", "III", "IV"]

# (options, ids, handling, fixed, id_refs)
CASES = [
    # --- nothing refers to anything: every option may move ---------------------------------------
    pytest.param(
        ["Paris", "London", "Berlin", "Madrid"], None, "permuted", (), (), id="capitals"
    ),
    pytest.param(
        ["Mitochondria", "Ribosome", "Golgi apparatus", "Nucleus"], None, "permuted", (), (),
        id="organelles",
    ),
    pytest.param(
        ["It increases", "It decreases", "It stays the same", "It doubles, then halves"], None,
        "permuted", (), (), id="prose-with-commas",
    ),
    pytest.param(
        ["True", "False"], None, "permuted", (), (), id="two-options",
    ),
    pytest.param(
        ["Salt and pepper", "Oil and vinegar", "Bread and butter", "Fish and chips"], None,
        "permuted", (), (), id="and-between-words-not-ids",
    ),
    pytest.param(
        ["A cat", "A dog and a bird", "The above reasoning is flawed", "Blood type A"], None,
        "permuted", (), (), id="article-A-and-the-word-above",
    ),
    pytest.param(
        # IDs are A-D and matching is case-sensitive: lowercase "a and b" is prose about vectors.
        ["a and b are orthogonal", "a or b is zero", "a, b and c are coplanar", "none"], None,
        "kept_in_place", (3,), (), id="lowercase-text-with-uppercase-ids",
    ),
    pytest.param(
        # With numeric IDs the letters are plain text.
        ["A and B", "B only", "C or D", "Neither"], NUM, "kept_in_place", (3,), (),
        id="letters-are-text-when-ids-are-numbers",
    ),
    pytest.param(
        # "10 and 30" are not the IDs 1 and 3: IDs match as whole tokens.
        ["10 and 30 mg", "12 or 14 mg", "5 mg", "40 mg"], NUM, "permuted", (), (),
        id="numbers-that-contain-ids",
    ),
    # --- a group reference: it stays, the others permute -----------------------------------------
    pytest.param(
        ["Oxygen", "Nitrogen", "Carbon dioxide", "All of the above"], None,
        "kept_in_place", (3,), (), id="all-of-the-above-last",
    ),
    pytest.param(
        ["None of these", "Oxygen", "Nitrogen", "Carbon dioxide"], None,
        "kept_in_place", (0,), (), id="none-of-these-first",
    ),
    pytest.param(
        ["Red", "all the above", "Green", "Blue"], None,
        "kept_in_place", (1,), (), id="all-the-above-lowercase-middle",
    ),
    pytest.param(
        ["Mercury", "Venus", "Neither of these"], None,
        "kept_in_place", (2,), (), id="neither-of-these-three-options",
    ),
    pytest.param(
        ["Iron", "Copper", "Zinc", "None of the above."], None,
        "kept_in_place", (3,), (), id="trailing-full-stop",
    ),
    pytest.param(
        ["1848", "1871", "1914", "All of the above", "None of the above"], None,
        "kept_in_place", (3, 4), (), id="two-group-references-of-five",
    ),
    pytest.param(
        ["Sodium", "Potassium", "Both are correct", "Calcium"], None,
        "kept_in_place", (2,), (), id="both-are-correct",
    ),
    pytest.param(
        ["Any of the following", "Gold", "Silver", "Bronze"], None,
        "kept_in_place", (0,), (), id="any-of-the-following",
    ),
    pytest.param(
        ["Rome", "Athens", "Cairo", "NONE"], None,
        "kept_in_place", (3,), (), id="bare-none-uppercase",
    ),
    # --- options that name other IDs: the question is left undebiased ----------------------------
    pytest.param(
        ["Lion", "Tiger", "Both A and B", "Neither"], None,
        "undebiased", (3,), (2,), id="both-A-and-B",
    ),
    pytest.param(
        ["Heat", "Light", "Sound", "A and C only"], None,
        "undebiased", (), (3,), id="A-and-C-only",
    ),
    pytest.param(
        ["Pine", "Oak", "Maple", "(A), (B), and (C)"], None,
        "undebiased", (), (3,), id="parenthesised-list",
    ),
    pytest.param(
        ["Frogs", "Toads", "Newts", "neither A nor B"], None,
        "undebiased", (), (3,), id="neither-A-nor-B",
    ),
    pytest.param(
        ["A & B", "Copper", "Tin", "Lead"], None,
        "undebiased", (), (0,), id="ampersand-first",
    ),
    pytest.param(
        ["Apples", "Pears", "Plums", "Figs", "A, B, or D"], None,
        "undebiased", (), (4,), id="comma-list-five-options",
    ),
    pytest.param(
        ["Statement one", "Statement two", "Statement three", "1 and 3 only"], NUM,
        "undebiased", (), (3,), id="numeric-ids-1-and-3-only",
    ),
    pytest.param(
        ["1, 2 and 3", "Only the first", "Only the last", "None of them are"], NUM,
        "undebiased", (), (0,), id="numeric-list",
    ),
    pytest.param(
        # With lowercase IDs the same lowercase text is a reference.
        ["x > 0", "x < 0", "x = 0", "(a) or (c)"], LOWER,
        "undebiased", (), (3,), id="lowercase-ids",
    ),
    pytest.param(
        ["Freedom of speech", "Right to vote", "Right to bear arms", "I and II only"], ROMAN,
        "undebiased", (), (3,), id="roman-ids",
    ),
    # --- too few options left to move -----------------------------------------------------------
    pytest.param(
        ["Yes", "None of these"], None,
        "undebiased", (1,), (), id="two-options-one-group-reference",
    ),
    pytest.param(
        ["Cats", "All of the above", "None of the above"], None,
        "undebiased", (1, 2), (), id="all-but-one-are-group-references",
    ),
    pytest.param(
        ["Both", "Neither", "All of these", "Salmon"], None,
        "undebiased", (0, 1, 2), (), id="bare-words-all-but-one",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("options", "ids", "handling", "fixed", "id_refs"), CASES)
def test_check_referential_table(
    options: list[str],
    ids: list[str] | None,
    handling: str,
    fixed: tuple[int, ...],
    id_refs: tuple[int, ...],
) -> None:
    r = check_referential(options, ids)
    assert r == ReferentialCheck(handling, fixed, id_refs)  # type: ignore[arg-type]
    assert r.permutable is (handling != "undebiased")


def test_default_ids_are_capital_letters() -> None:
    # Ten options: the default IDs run A..J, so "I and J" is a reference.
    options = [f"Option text {i}" for i in range(9)] + ["I and J"]
    assert check_referential(options).id_refs == (9,)
    # ... and "K and L" is not (there is no K).
    options[9] = "K and L"
    assert check_referential(options).handling == "permuted"


def test_explicit_letter_ids_match_the_default() -> None:
    options = ["Lion", "Tiger", "Both A and B", "Neither"]
    assert check_referential(options, ["A", "B", "C", "D"]) == check_referential(options)


@pytest.mark.parametrize(("n_options", "ids"), [(4, ["A", "B", "C"]), (3, NUM), (2, ["1"])])
def test_mismatched_ids_are_rejected(n_options: int, ids: list[str]) -> None:
    options = ["x"] * n_options
    with pytest.raises(ValueError, match=f"{n_options} options but {len(ids)} IDs"):
        check_referential(options, ids)


def test_result_is_frozen() -> None:
    r = check_referential(["Paris", "London"])
    with pytest.raises(AttributeError):
        r.handling = "undebiased"  # type: ignore[misc]


def test_ids_named_inside_ordinary_content_are_treated_as_references() -> None:
    # Conservative by design (a false alarm only costs debiasing), but worth knowing: content
    # that happens to contain two IDs joined by "and"/"or" leaves the question undebiased.
    r = check_referential(["Vitamins A and D", "Vitamin K", "Iron", "Zinc"])
    assert r == ReferentialCheck("undebiased", (), (0,))


def test_single_id_reference_is_not_permuted() -> None:
    r = check_referential(["Gold", "Silver", "Bronze", "All of the above except C"])
    assert r.handling == "undebiased"

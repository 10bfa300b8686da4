"""guard.tasks.prompt_text: finding a multiple-choice question's options in a prompt, permuting
them in place, and the last user message. (Only tests/e2e uses find_options, as a helper.)"""

from __future__ import annotations

import random
import re

import pytest

from guard.tasks.prompt_text import _LINE, find_options, last_user_text, locate_options

STEM = "Question: Which is 2 + 2?\n"


@pytest.mark.parametrize(
    ("lines", "ids"),
    [
        (["A. three", "B. four", "C. five"], ("A", "B", "C")),
        (["A) three", "B) four", "C) five"], ("A", "B", "C")),
        (["(A) three", "(B) four", "(C) five"], ("A", "B", "C")),
        (["A: three", "B: four", "C: five"], ("A", "B", "C")),
        (["1. three", "2. four", "3. five"], ("1", "2", "3")),
        (["1) three", "2) four", "3) five"], ("1", "2", "3")),
        (["(1) three", "(2) four", "(3) five"], ("1", "2", "3")),
    ],
)
def test_each_id_style(lines: list[str], ids: tuple[str, ...]) -> None:
    text = STEM + "\n".join(lines) + "\nAnswer:"
    found = find_options(text)
    assert found is not None
    assert found.ids == ids
    assert found.options == ["three", "four", "five"]
    assert found.n == 3
    assert found.id_style == ("letters" if ids[0] == "A" else "numbers")
    for (a, b), option in zip(found.spans, found.options, strict=True):
        assert text[a:b] == option


def test_indentation_and_trailing_spaces_are_not_part_of_the_option() -> None:
    found = find_options("  A.   red  \n\tB. green\t\n")
    assert found is not None
    assert found.options == ["red", "green"]


def test_ten_options_up_to_j_and_up_to_10() -> None:
    letters = find_options("\n".join(f"{c}. opt{c}" for c in "ABCDEFGHIJ"))
    numbers = find_options("\n".join(f"{i}. opt{i}" for i in range(1, 11)))
    assert letters is not None
    assert numbers is not None
    assert letters.ids == tuple("ABCDEFGHIJ")
    assert numbers.ids == tuple(str(i) for i in range(1, 11))
    assert numbers.options[-1] == "opt10"


def test_blank_lines_between_options_are_allowed() -> None:
    found = find_options("A. x\n\nB. y\n")
    assert found is not None
    assert found.options == ["x", "y"]


def test_the_last_run_wins() -> None:
    text = "Example:\nA. cat\nB. dog\n\nNow you:\n1. sun\n2. moon\n3. star\n"
    found = find_options(text)
    assert found is not None
    assert found.ids == ("1", "2", "3")
    assert found.options == ["sun", "moon", "star"]


def test_the_last_run_wins_when_a_stray_option_line_follows_it() -> None:
    text = "A. cat\nB. dog\n\n1. sun\n2. moon\n\nA. not an option list\n"
    found = find_options(text)
    assert found is not None
    assert found.options == ["sun", "moon"]


def test_a_single_option_line_after_a_run_does_not_replace_it() -> None:
    found = find_options("A. cat\nB. dog\nText.\nA. lonely\n")
    assert found is not None
    assert found.options == ["cat", "dog"]


@pytest.mark.parametrize(
    "text",
    [
        "A. x\nC. y\n",  # skips B
        "B. x\nC. y\n",  # does not start at A
        "1. x\n3. y\n",
        "A. x\nA. y\n",  # repeated ID
        "A. x\n",  # one option
        "(A) x\nB. y\n",  # mixed styles
        "A. x\nsome text\nB. y\n",  # text between the lines
        "No options here.",
        "A.x\nB.y\n",  # no space after the ID
    ],
)
def test_not_a_run_of_consecutive_options(text: str) -> None:
    assert find_options(text) is None


def test_a_run_stops_at_the_first_non_consecutive_id() -> None:
    found = find_options("A. x\nB. y\nD. z\n")
    assert found is not None
    assert found.ids == ("A", "B")


def test_crlf_line_endings_are_not_part_of_the_options() -> None:
    found = find_options("Q?\r\nA. x\r\nB. y\r\n")
    assert found is not None
    assert found.options == ["x", "y"]


def test_permuted_moves_only_the_option_texts() -> None:
    text = STEM + "(A) three\n(B) four\n(C) five\n(D) six\nAnswer:"
    found = find_options(text)
    assert found is not None
    out = found.permuted((2, 0, 3, 1))
    assert out == STEM + "(A) five\n(B) three\n(C) six\n(D) four\nAnswer:"
    assert found.permuted((0, 1, 2, 3)) == text
    # Everything outside the options is byte for byte the same.
    again = find_options(out)
    assert again is not None
    assert again.options == ["five", "three", "six", "four"]
    assert out[: found.spans[0][0]] == text[: found.spans[0][0]]
    assert out[-len("\nAnswer:") :] == "\nAnswer:"


def test_permuted_with_options_of_different_lengths_keeps_the_rest() -> None:
    text = "Pick:\n  1)  a\n  2)  a much longer option\nDone.\n"
    found = find_options(text)
    assert found is not None
    out = found.permuted((1, 0))
    assert out == "Pick:\n  1)  a much longer option\n  2)  a\nDone.\n"


def test_permuted_rejects_a_wrong_permutation() -> None:
    found = find_options("A. x\nB. y\n")
    assert found is not None
    with pytest.raises(ValueError, match="permutation"):
        found.permuted((0, 0))


def test_locate_options_uses_find_options_when_they_agree() -> None:
    text = STEM + "A. three\nB. four\n"
    located = locate_options(text, ["three ", "four"])  # stripped before comparing
    assert located == find_options(text)


def test_locate_options_finds_inline_options() -> None:
    text = "Pick one: A) cat B) dog (C) cow"
    located = locate_options(text, ["cat", "dog", "cow"])
    assert located.ids == ("A", "B", "C")
    assert located.options == ["cat", "dog", "cow"]
    assert located.permuted((2, 1, 0)) == "Pick one: A) cow B) dog (C) cat"


def test_locate_options_rejects_an_option_not_in_the_text() -> None:
    with pytest.raises(ValueError, match=r"option B \('bird'\) is not in the last user message"):
        locate_options("A) cat B) dog", ["cat", "bird"])


def test_locate_options_rejects_options_out_of_order() -> None:
    with pytest.raises(ValueError, match=r"option A \('dog'\)"):
        locate_options("A) cat B) dog", ["dog", "cat"])


def test_locate_options_finds_inline_numbered_options() -> None:
    located = locate_options("Pick one: 1) cat 2) dog", ["cat", "dog"])
    assert located.options == ["cat", "dog"]


def test_last_user_text_is_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "trailing"},
    ]
    assert last_user_text(messages) == (3, "second")


def test_last_user_text_is_none_when_the_last_user_content_is_not_a_string() -> None:
    messages = [
        {"role": "user", "content": "earlier, plain"},
        {"role": "user", "content": [{"type": "text", "text": "parts"}]},
    ]
    assert last_user_text(messages) is None


def test_last_user_text_without_a_user_message() -> None:
    assert last_user_text([{"role": "system", "content": "s"}, "junk"]) is None
    assert last_user_text([]) is None


# The pattern before it was made linear, as the reference for what an option line's text is.
_LAZY_LINE = re.compile(
    r"^[ \t]*(?:\((?P<p>[A-J]|10|[1-9])\)|(?P<d>[A-J]|10|[1-9])[.):])[ \t]+"
    r"(?P<text>\S[^\n]*?)[ \t\r]*$",
    re.MULTILINE,
)


@pytest.mark.parametrize("seed", range(10))
def test_option_lines_are_read_as_the_lazy_pattern_read_them(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["A", "B", "1", "(", ")", ".", ":", "x", " ", " ", "\t", "\r", "\n", "\u3000"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        got = [(m.span(), m.groupdict()) for m in _LINE.finditer(text)]
        assert got == [(m.span(), m.groupdict()) for m in _LAZY_LINE.finditer(text)], text


def test_an_option_line_with_a_long_run_of_spaces() -> None:
    spaces = " " * 200_000  # each of them once tried the rest of the run: 40 billion steps
    found = find_options(f"Q?\nA. x{spaces}y\nB. z {spaces}\nAnswer:")
    assert found is not None
    assert found.options == [f"x{spaces}y", "z"]

"""Counts and cut lists as people read them."""

from __future__ import annotations

from ftlens.core.wording import first, plural, runs


def test_plural_says_one_without_s_and_pluralises_the_rest() -> None:
    assert plural(1, "usable example") == "1 usable example"
    assert plural(0, "line") == "0 lines"
    assert plural(2, "class") == "2 classes"
    assert plural(1_234, "match") == "1,234 matches"
    assert plural(3, "child", "children") == "3 children"


def test_a_cut_list_always_says_how_many_more() -> None:
    assert first([1, 2, 3], 5) == "1, 2, 3"
    assert first([1, 2, 3, 4, 5], 5) == "1, 2, 3, 4, 5"
    assert first(range(1, 8), 5) == "1, 2, 3, 4, 5 … and 2 more"
    assert first(iter("abcd"), 2, sep="; ", noun="group") == "a; b … and 2 more groups"
    assert first("abc", 2, noun="pair") == "a, b … and 1 more pair"
    assert first([], 3) == ""


def test_runs_of_line_numbers() -> None:
    assert runs([9, 3, 4, 5, 5, 11, 12]) == ["3–5", "9", "11–12"]
    assert runs([7]) == ["7"] and runs([]) == []

"""Reading answers: label parsing and label probabilities from top_logprobs."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ftlens.core.answers import (
    LabelParser,
    answer_findings,
    answer_token,
    label_probs,
    read_answer,
    words,
)

SPAM = LabelParser(("ham", "spam"))
ROUTING = LabelParser(("billing", "technical support", "sales", "not sure"))


@pytest.mark.parametrize(("answer", "label"), [
    ("spam", "spam"),
    ("Spam", "spam"),
    ("SPAM", "spam"),
    ("  spam \n", "spam"),
    ("spam.", "spam"),
    ('"spam"', "spam"),
    ("**Spam**", "spam"),
    ("Label: spam", "spam"),
    ("I think this is spam.", "spam"),
    ("This message is HAM!", "ham"),
    ("Answer: ham (the sender is known)", "ham"),
    ("spam spam", "spam"),  # the same label twice is still one label
    ("spam or ham", None),  # two labels: ambiguous, never guessed
    ("ham, not spam", "ham"),  # a negated label does not count
    ("it isn't spam", None),
    ("non-spam", None),
    ("not spam", None),
    ("spammy", None),  # whole words only
    ("hamburger", None),
    ("", None),
    ("   ", None),
    ("...", None),
    ("I cannot tell.", None),
    (None, None),
])
def test_parse_spam(answer: str | None, label: str | None) -> None:
    assert SPAM(answer) == label


@pytest.mark.parametrize(("answer", "label"), [
    ("technical support", "technical support"),
    ("Technical Support.", "technical support"),
    ("technical-support", "technical support"),
    ("This goes to technical support", "technical support"),
    ("support", None),  # a part of a label is not the label
    ("Not sure", "not sure"),  # a label that starts with a negation word
    ("I am not sure", "not sure"),
    ("billing or sales", None),
    ("BILLING", "billing"),
])
def test_parse_multi_word_labels(answer: str, label: str | None) -> None:
    assert ROUTING(answer) == label


def test_longer_label_wins_over_the_one_inside_it() -> None:
    p = LabelParser(("spam", "not spam"))
    assert p("not spam") == "not spam"
    assert p("This is not spam.") == "not spam"
    assert p("spam") == "spam"
    assert p("It's spam") == "spam"


def test_labels_that_are_the_same_words_are_refused() -> None:
    with pytest.raises(ValueError, match="same word"):
        LabelParser(("Spam", "spam"))
    with pytest.raises(ValueError, match="same word"):
        LabelParser(("not-spam", "not spam"))


def test_labels_without_letters_match_exactly() -> None:
    p = LabelParser(("+", "-"))
    assert p(" + ") == "+"
    assert p("-") == "-"
    assert p("plus") is None


def test_numeric_labels() -> None:
    p = LabelParser(("1", "2", "3"))
    assert p("2") == "2"
    assert p("Rating: 3") == "3"
    assert p("between 1 and 2") is None


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)
_labels = st.lists(_word, min_size=2, max_size=6, unique=True).filter(
    lambda ls: not set(ls) & {"not", "no", "non", "never", "isnt", "nor", "neither", "aint",
                              "wasnt"})


@settings(max_examples=200, deadline=None)
@given(labels=_labels, pick=st.integers(0, 5), pre=st.sampled_from(["", " ", "\n", '"', "**"]),
       post=st.sampled_from(["", ".", "!", " \n", '"', "**"]), upper=st.booleans())
def test_a_decorated_label_parses_to_itself(labels: list[str], pick: int, pre: str, post: str,
                                            upper: bool) -> None:
    label = labels[pick % len(labels)]
    text = label.upper() if upper else label.capitalize()
    assert LabelParser(tuple(labels))(pre + text + post) == label
    if not set(labels) & {"the", "answer", "is"}:  # else the sentence names two labels
        assert LabelParser(tuple(labels))(f"The answer is {text}{post}") == label


@settings(max_examples=300, deadline=None)
@given(labels=_labels, answer=st.text(max_size=60))
def test_parsing_never_raises_and_answers_a_label_or_none(labels: list[str], answer: str
                                                          ) -> None:
    got = LabelParser(tuple(labels))(answer)
    assert got is None or got in labels
    if got is not None:  # a parsed label's words are in the answer
        assert " ".join(words(got)) in " ".join(words(answer))


@settings(max_examples=100, deadline=None)
@given(labels=_labels, a=st.integers(0, 5), b=st.integers(0, 5))
def test_two_different_labels_are_ambiguous(labels: list[str], a: int, b: int) -> None:
    assume("or" not in labels)  # else "x or x" names two labels
    x, y = labels[a % len(labels)], labels[b % len(labels)]
    got = LabelParser(tuple(labels))(f"{x} or {y}")
    assert got == (x if x == y else None)


# -- probabilities ---------------------------------------------------------------------------

def lp(p: float) -> float:
    return math.log(p)


def test_probabilities_renormalised_over_the_labels() -> None:
    out = label_probs([("spam", lp(0.6)), ("ham", lp(0.2)), ("The", lp(0.15))],
                      ["ham", "spam"])
    assert out.probs == pytest.approx({"spam": 0.75, "ham": 0.25})
    assert out.missing == () and out.shared is False


def test_spellings_of_a_label_add_up() -> None:
    top = [(" spam", lp(0.4)), ("Spam", lp(0.2)), ("SPAM", lp(0.1)), ("ham", lp(0.1)),
           ("sp", lp(0.1))]
    out = label_probs(top, ["spam", "ham"])
    assert out.probs["spam"] == pytest.approx(0.8 / 0.9)
    assert sum(out.probs.values()) == pytest.approx(1.0)


def test_a_label_missing_from_the_top_k_gets_the_floor() -> None:
    # listed: 0.9 + 0.05 + 0.01 = 0.96; smallest listed 0.01; leftover 0.04
    top = [("spam", lp(0.9)), ("The", lp(0.05)), ("I", lp(0.01))]
    out = label_probs(top, ["spam", "ham", "eggs"])
    assert out.missing == ("ham", "eggs")
    floor = min(0.01, 0.04 / 2)
    total = 0.9 + 2 * floor
    assert out.probs == pytest.approx({"spam": 0.9 / total, "ham": floor / total,
                                       "eggs": floor / total})


def test_the_floor_is_the_leftover_share_when_that_is_smaller() -> None:
    top = [("ham", lp(0.5)), ("x", lp(0.3)), ("y", lp(0.19))]  # leftover 0.01, smallest 0.19
    out = label_probs(top, ["ham", "spam"])
    assert out.probs["spam"] == pytest.approx(0.01 / 0.51)


def test_the_floor_keeps_rows_ranked() -> None:
    sure = label_probs([("ham", lp(0.99)), ("x", lp(0.001))], ["ham", "spam"])
    unsure = label_probs([("ham", lp(0.7)), ("x", lp(0.1))], ["ham", "spam"])
    assert 0 < sure.probs["spam"] < unsure.probs["spam"]


def test_no_label_listed_and_nothing_left_gives_uniform() -> None:
    out = label_probs([("The", lp(0.7)), ("A", lp(0.3))], ["ham", "spam", "eggs"])
    assert out.probs == pytest.approx({"ham": 1 / 3, "spam": 1 / 3, "eggs": 1 / 3})
    assert set(out.missing) == {"ham", "spam", "eggs"}


def test_multi_token_labels_count_by_their_first_token() -> None:
    top = [("bill", lp(0.5)), (" technical", lp(0.3)), ("Sales", lp(0.1))]
    out = label_probs(top, ["billing", "technical support", "sales"])
    assert out.probs == pytest.approx({"billing": 5 / 9, "technical support": 3 / 9,
                                       "sales": 1 / 9})


def test_a_token_that_begins_two_labels_is_split_and_said() -> None:
    top = [("not", lp(0.6)), ("spam", lp(0.3))]
    out = label_probs(top, ["not spam", "not sure", "spam"])
    assert out.shared is True
    assert out.probs == pytest.approx({"not spam": 0.3 / 0.9, "not sure": 0.3 / 0.9,
                                       "spam": 0.3 / 0.9})


@settings(max_examples=300, deadline=None)
@given(labels=_labels, top=st.lists(st.tuples(st.text(max_size=6),
                                              st.floats(-30, 0, allow_nan=False)), max_size=20))
def test_probabilities_are_a_distribution(labels: list[str], top: list[tuple[str, float]]
                                          ) -> None:
    out = label_probs(top, labels)
    assert set(out.probs) == set(labels)
    assert sum(out.probs.values()) == pytest.approx(1.0)
    assert all(0 <= p <= 1 for p in out.probs.values())


# -- whole responses ---------------------------------------------------------------------------

def response(content: str | None, tokens: list[tuple[str, list[tuple[str, float]]]] | None
             ) -> dict[str, Any]:
    logprobs = None if tokens is None else {"content": [
        {"token": t, "logprob": alts[0][1] if alts else -0.1,
         "top_logprobs": [{"token": a, "logprob": v} for a, v in alts]} for t, alts in tokens]}
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": logprobs}]}


def test_read_answer_from_the_first_token() -> None:
    r = response("Spam", [("Spam", [("Spam", lp(0.8)), ("Ham", lp(0.2))])])
    a = read_answer(r, SPAM)
    assert a.text == "Spam" and a.label == "spam"
    assert a.probs is not None and a.probs.probs["spam"] == pytest.approx(0.8)


def test_read_answer_skips_to_the_token_that_begins_a_label() -> None:
    r = response("This is spam.", [
        ("This", [("This", lp(0.9)), ("It", lp(0.05))]),
        (" is", [(" is", lp(0.99))]),
        (" spam", [(" spam", lp(0.7)), (" ham", lp(0.3))]),
        (".", [(".", lp(0.99))])])
    a = read_answer(r, SPAM)
    assert a.label == "spam"
    assert a.probs is not None and a.probs.probs["spam"] == pytest.approx(0.7)
    assert a.probs.missing == ()


def test_answer_token_skips_whitespace_and_punctuation() -> None:
    content: list[dict[str, object]] = [{"token": " "}, {"token": '"'}, {"token": "Sure"},
                                        {"token": ","}]
    assert answer_token(content, ["spam"]) == {"token": "Sure"}
    assert answer_token([{"token": " "}, {"token": "\n"}], ["spam"]) is None


@pytest.mark.parametrize("r", [
    {},
    {"choices": []},
    {"choices": [{"message": {"content": None}}]},
    {"choices": [{"message": {"content": "spam"}, "logprobs": None}]},
    {"choices": [{"message": {"content": "spam"}, "logprobs": {"content": None}}]},
    {"choices": [{"message": {"content": "spam"}, "logprobs": {"content": [
        {"token": "spam", "top_logprobs": []}]}}]},
])
def test_responses_without_logprobs_give_no_probabilities(r: dict[str, Any]) -> None:
    a = read_answer(r, SPAM)
    assert a.probs is None
    assert a.label in (None, "spam")


def test_findings_count_floored_shared_and_missing_rows() -> None:
    parser = LabelParser(("not spam", "not sure", "spam"))
    rows = [
        response("spam", [("spam", [("spam", lp(0.9)), ("not", lp(0.05))])]),  # shared
        response("spam", [("spam", [("spam", lp(0.9))])]),  # two labels floored
        response("", None),  # no logprobs
    ]
    answers = [read_answer(r, parser) for r in rows]
    found = {f.id: f for f in answer_findings(answers, 20)}
    assert found["labels_share_first_token"].details["rows"] == 1
    assert found["label_outside_top_logprobs"].details["rows"] == 1
    assert found["no_logprobs"].details["rows"] == 1
    assert answer_findings(answers, 0) == []

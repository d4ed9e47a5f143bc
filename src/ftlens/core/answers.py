"""A model's answer as a label: the label it names, and label probabilities from the
``top_logprobs`` of its first answer token. Pure: no I/O.

**Parsing** (:class:`LabelParser`). Answer and labels are compared as words: case folded,
apostrophes dropped ("isn't" -> "isnt"), every other run of punctuation or whitespace one space.
An answer that *is* a label ("Spam", " spam.\\n", "**SPAM**") gives that label. Otherwise each
label is looked for as a whole-word phrase inside the answer ("I think this is spam."); a
longer label wins over a shorter one inside it ("not spam" over "spam"), and a label right
after a negation ("not", "no", "non", "never", "isnt", ...) does not count. Exactly one label
found gives it; none or several distinct labels give ``None`` (unparseable, never guessed).

**Probabilities** (:func:`label_probs`). They come from the first answer token: the first
generated token that begins a label ("This message is spam." -> " spam"), or, when no token
does, the first one with a letter or digit (leading spaces, quotes and markdown skipped).
Each of its ``top_logprobs`` alternatives counts for a label when its word-normalised text is a
non-empty prefix of the label's ("Spam", " spam" and "sp" all count for "spam"; "bill" for
"billing"), so multi-token labels are scored by their first token. The probabilities of all
the tokens of a label are added (they are disjoint continuations). A token that begins two
labels ("not" for "not spam" and "not sure") cannot tell them apart; its mass is split
equally between them and the row is counted as ``shared``.

**A label missing from the top-k** gets a floor, not zero: any token outside the list has a
probability at most the smallest listed one, and all of them together share the leftover mass
``1 - sum(listed)``; a missing label gets ``min(smallest listed, leftover / n_missing)`` — no
more than one unlisted token can have, and never pushing the total past 1. Zero would tie
every such row at the bottom; the floor keeps them ranked by how sure the model was. Then the
label masses are renormalised to sum to 1, and the row is counted as ``missing``. When no
label has any mass (all missing, nothing left over) the probabilities are uniform.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ftlens.core.findings import Finding
from ftlens.core.wording import plural

_APOSTROPHES = re.compile(r"['’`]")
_NON_WORD = re.compile(r"[\W_]+")
NEGATIONS = frozenset({"not", "no", "non", "never", "isnt", "nor", "neither", "aint", "wasnt"})


def words(text: str) -> tuple[str, ...]:
    """Case-folded words of ``text``: apostrophes dropped, other punctuation separates."""
    return tuple(_NON_WORD.sub(" ", _APOSTROPHES.sub("", text.casefold())).split())


@dataclass(frozen=True)
class LabelParser:
    """Maps an answer to one of ``labels`` or ``None`` (see the module docstring)."""

    labels: tuple[str, ...]
    _phrases: tuple[tuple[tuple[str, ...], str], ...] = field(init=False, repr=False)
    _exact: Mapping[str, str] = field(init=False, repr=False)
    _by_words: Mapping[tuple[str, ...], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        phrases: dict[tuple[str, ...], str] = {}
        exact: dict[str, str] = {}
        for label in self.labels:
            key = words(label)
            other = phrases.get(key) if key else exact.get(label.strip().casefold())
            if other is not None and other != label:
                raise ValueError(f"labels {other!r} and {label!r} are the same word(s); "
                                 "an answer could not tell them apart")
            exact[label.strip().casefold()] = label
            if key:
                phrases[key] = label
        # longest phrases first, so that "not spam" claims its words before "spam"
        ordered = sorted(phrases.items(), key=lambda kv: -len(kv[0]))
        object.__setattr__(self, "_phrases", tuple(ordered))
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_by_words", phrases)

    def __call__(self, answer: str | None) -> str | None:
        if answer is None:
            return None
        hit = self._exact.get(answer.strip().casefold())
        if hit is not None:
            return hit
        found = words(answer)
        if not found:
            return None
        return self._by_words.get(found) or self._inside(found)

    def _inside(self, found: tuple[str, ...]) -> str | None:
        taken = [False] * len(found)
        named: set[str] = set()
        for phrase, label in self._phrases:
            n = len(phrase)
            for start in range(len(found) - n + 1):
                if found[start:start + n] != phrase or any(taken[start:start + n]):
                    continue
                for i in range(start, start + n):
                    taken[i] = True
                if start == 0 or found[start - 1] not in NEGATIONS:
                    named.add(label)
        return named.pop() if len(named) == 1 else None


@dataclass(frozen=True)
class LabelProbs:
    """Probabilities over the labels (summing to 1) for one answer, and how they were got."""

    probs: Mapping[str, float]
    missing: tuple[str, ...]  # labels with no token in the top-k: given the floor
    shared: bool  # some listed mass began two labels and was split between them


def answer_token(content: Sequence[Mapping[str, object]], labels: Sequence[str]
                 ) -> Mapping[str, object] | None:
    """The entry of ``logprobs.content`` to read probabilities from: the first token that
    begins a label ("This message is spam": " spam"), else the first token with a letter or
    digit; None when there is none."""
    keys = _keys(labels)
    first = None
    for entry in content:
        token = entry.get("token")
        if not isinstance(token, str):
            continue
        norm = " ".join(words(token))
        if not norm:
            continue
        if any(key.startswith(norm) for key in keys):
            return entry
        first = first or entry
    return first


def _keys(labels: Sequence[str]) -> list[str]:
    return [" ".join(words(label)) or label.strip().casefold() for label in labels]


def label_probs(top: Iterable[tuple[str, float]], labels: Sequence[str]) -> LabelProbs:
    """Label probabilities from ``(token, logprob)`` alternatives of the first answer token."""
    keys = _keys(labels)
    mass = dict.fromkeys(labels, 0.0)
    seen: set[str] = set()
    listed: list[float] = []
    shared = False
    for token, logprob in top:
        p = math.exp(logprob) if math.isfinite(logprob) else 0.0
        listed.append(p)
        norm = " ".join(words(token))
        if not norm:
            continue
        owners = [label for label, key in zip(labels, keys, strict=True) if key.startswith(norm)]
        for label in owners:
            mass[label] += p / len(owners)
            seen.add(label)
        shared = shared or (len(owners) > 1 and p > 0)
    missing = tuple(label for label in labels if label not in seen)
    if missing:
        leftover = max(0.0, 1.0 - sum(listed))
        floor = min(min(listed, default=leftover), leftover / len(missing))
        for label in missing:
            mass[label] = floor
    total = sum(mass.values())
    if total <= 0 or not math.isfinite(total):
        probs = {label: 1.0 / len(labels) for label in labels}
    else:
        probs = {label: m / total for label, m in mass.items()}
    return LabelProbs(probs, missing, shared)


@dataclass(frozen=True)
class Answer:
    """One response read as a classification answer."""

    text: str | None  # the generated text; None when the response had no message
    label: str | None  # the label it names; None: unparseable
    probs: LabelProbs | None  # None when the response carried no logprobs


def read_answer(response: Mapping[str, object], parser: LabelParser,
                with_probs: bool = True) -> Answer:
    """An OpenAI chat completion (as JSON data) read against ``parser``'s labels."""
    choice = _first_choice(response)
    message = choice.get("message") if choice else None
    text = message.get("content") if isinstance(message, Mapping) else None
    text = text if isinstance(text, str) else None
    probs = None
    if with_probs and choice is not None:
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
        entry = answer_token(content, parser.labels) if isinstance(content, list) else None
        alternatives = entry.get("top_logprobs") if entry is not None else None
        if isinstance(alternatives, list) and alternatives:
            probs = label_probs(_pairs(alternatives), parser.labels)
    return Answer(text, parser(text), probs)


def _first_choice(response: Mapping[str, object]) -> Mapping[str, object] | None:
    choices = response.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return None


def _pairs(alternatives: list[object]) -> Iterable[tuple[str, float]]:
    for alt in alternatives:
        if isinstance(alt, Mapping):
            token, logprob = alt.get("token"), alt.get("logprob")
            if isinstance(token, str) and isinstance(logprob, int | float):
                yield token, float(logprob)


def answer_findings(answers: Sequence[Answer], top_logprobs: int) -> list[Finding]:
    """What the reader of the answers should know about their probabilities."""
    n = len(answers)
    if not n or top_logprobs <= 0:
        return []
    out = []
    without = sum(a.probs is None for a in answers)
    floored = sum(bool(a.probs and a.probs.missing) for a in answers)
    shared = sum(bool(a.probs and a.probs.shared) for a in answers)
    if without:
        out.append(Finding(
            "no_logprobs", "warn", f"{plural(without, 'answer')} came without usable logprobs",
            f"{without:,} of {n:,} responses had no top_logprobs for a first answer token "
            "(empty answer, or an endpoint that does not return logprobs); "
            + ("there are no probabilities to tune a threshold on" if without == n else
               "those rows got uniform probabilities"),
            "use an endpoint that returns logprobs (OpenAI, vLLM, ftlens serve), or "
            "--top-logprobs 0 to skip probabilities",
            details={"rows": without}))
    if floored:
        out.append(Finding(
            "label_outside_top_logprobs", "info",
            f"a label was not among the top {top_logprobs} first tokens in "
            f"{plural(floored, 'row')}",
            f"{floored:,} of {n:,} rows: a label's first token was not listed; it got the "
            "floor min(smallest listed probability, leftover mass / labels missing) before "
            "renormalising, an upper bound on its true share",
            "fine for confident answers; for ranking near the threshold raise "
            "--top-logprobs if the endpoint allows more",
            details={"rows": floored, "top_logprobs": top_logprobs}))
    if shared:
        out.append(Finding(
            "labels_share_first_token", "warn",
            f"labels share a first token in {plural(shared, 'row')}",
            f"{shared:,} of {n:,} rows had probability on a token that begins two or more "
            "labels; it was split equally between them, so first-token probabilities cannot "
            "rank those labels against each other",
            "give labels distinct first words (e.g. 'spam'/'ham' rather than 'not spam'/"
            "'not sure') for a meaningful threshold",
            details={"rows": shared}))
    return out

"""Duplicates, leakage and conflicting labels (exact, on normalised inputs) and near-duplicate
leakage across splits (MinHash LSH from datasketch, confirmed by exact Jaccard)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ftlens.core.minhash import Signature
from ftlens.core.text import jaccard, shingles

Place = tuple[str, int]  # (split, line)


@dataclass(frozen=True)
class SameInputGroup:
    """Examples whose inputs are equal after normalisation."""

    places: tuple[Place, ...]
    labels: tuple[str | None, ...]

    @property
    def splits(self) -> set[str]:
        return {s for s, _ in self.places}

    @property
    def conflicting(self) -> bool:
        return len({lab for lab in self.labels if lab is not None}) > 1


@dataclass(frozen=True)
class ExactResult:
    groups: tuple[SameInputGroup, ...]  # every group of two or more

    def duplicates(self, split: str) -> list[SameInputGroup]:
        """Repeats within ``split`` (same input, same label: conflicts are reported apart)."""
        return [g for g in self.groups
                if not g.conflicting and sum(s == split for s, _ in g.places) > 1]

    def leaks(self) -> list[SameInputGroup]:
        return [g for g in self.groups if len(g.splits) > 1]

    def conflicts(self) -> list[SameInputGroup]:
        return [g for g in self.groups if g.conflicting]


@dataclass(frozen=True)
class SplitPair:
    """How many examples of a held-out split also occur in another split (exactly, or as a
    near-duplicate). ``other`` comes before ``held_out`` in train, valid, test order."""

    other: str
    held_out: str
    lines: tuple[int, ...]  # the held-out split's lines that also occur in ``other``
    of: int  # examples in the held-out split
    pairs: int | None = None  # near-duplicate pairs behind ``lines`` (None: exact leakage)

    @property
    def share(self) -> float:
        return len(self.lines) / self.of if self.of else 0.0

    @property
    def text(self) -> str:
        where = (f"also in {self.other}" if self.pairs is None else
                 f"are near-duplicates of {self.other} inputs ({self.pairs:,} "
                 f"pair{'s' if self.pairs != 1 else ''})")
        return (f"{len(self.lines):,} of {self.of:,} {self.held_out} inputs "
                f"({self.share:.1%}) {where}")

    def to_dict(self) -> dict[str, Any]:
        return {"other": self.other, "held_out": self.held_out, "rows": len(self.lines),
                "of": self.of, "share": round(self.share, 6), "lines": list(self.lines),
                **({"pairs": self.pairs} if self.pairs is not None else {})}


def split_pairs(sizes: Mapping[str, int]) -> list[tuple[str, str]]:
    """(other, held_out) for every two splits present: train↔valid, train↔test, valid↔test."""
    present = [s for s in SPLIT_ORDER if s in sizes]
    return [(a, b) for i, a in enumerate(present) for b in present[i + 1:]]


def exact_leaks(exact: ExactResult, sizes: Mapping[str, int]) -> list[SplitPair]:
    """Per split pair, the held-out lines whose normalised input also occurs in the other."""
    out = []
    for other, held in split_pairs(sizes):
        lines = sorted({line for g in exact.groups if other in g.splits
                        for s, line in g.places if s == held})
        out.append(SplitPair(other, held, tuple(lines), sizes[held]))
    return out


def near_leaks(near: Sequence[NearPair], sizes: Mapping[str, int]) -> list[SplitPair]:
    """Per split pair, the held-out lines with a near-duplicate in the other, and the pairs."""
    out = []
    for other, held in split_pairs(sizes):
        mine = [p for p in near if p.a[0] == other and p.b[0] == held]
        out.append(SplitPair(other, held, tuple(sorted({p.b[1] for p in mine})), sizes[held],
                             pairs=len(mine)))
    return out


def same_input_groups(
    keys: Mapping[str, np.ndarray], lines: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[str | None] | np.ndarray],
) -> ExactResult:
    """Group examples of every split by input fingerprint. ``labels[split][i]`` is the label
    of the i-th example. Sorting makes this O(n log n) in numpy; only groups are touched in
    Python. Groups and their members come in file order (splits as given, then line), not in
    the fingerprints' arbitrary order."""
    splits = list(keys)
    if not splits:
        return ExactResult(())
    all_keys = np.concatenate([np.asarray(keys[s], dtype=np.uint64) for s in splits])
    split_of = np.concatenate([np.full(len(keys[s]), i, dtype=np.int32)
                               for i, s in enumerate(splits)])
    index_in = np.concatenate([np.arange(len(keys[s])) for s in splits])
    order = np.argsort(all_keys)  # each group's members are sorted below
    sorted_keys = all_keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    groups = []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        # members in file order: splits as given, then line
        members = sorted([(int(split_of[m]), int(lines[splits[split_of[m]]][index_in[m]]),
                           labels[splits[split_of[m]]][index_in[m]])
                          for m in order[start : start + size]], key=lambda member: member[:2])
        groups.append(SameInputGroup(tuple((splits[s], line) for s, line, _ in members),
                                     tuple(label for _, _, label in members)))
    order_of = {split: i for i, split in enumerate(splits)}
    groups.sort(key=lambda g: (order_of[g.places[0][0]], g.places[0][1]))
    return ExactResult(tuple(groups))


@dataclass(frozen=True)
class NearPair:
    a: Place  # in the split that is compared against (train, or valid against test)
    b: Place  # in the held-out split
    similarity: float  # exact Jaccard of the normalised texts' 5-byte shingle sets


NearItems = tuple[Sequence[tuple[int, str]], np.ndarray]  # (line, text) pairs, signatures
SPLIT_ORDER = ("train", "valid", "test")


class NearSearch:
    """Near-duplicate pairs across splits: examples from different splits whose normalised
    texts have Jaccard similarity of 5-byte shingles >= ``threshold``.

    Splits are fed as they arrive (e.g. chunk by chunk while later chunks are still being read),
    with their MinHash signatures (:func:`ftlens.core.minhash.signatures`). Held-out examples
    (valid, test) are indexed; every example is looked up among the indexed examples of the
    other splits, so the held-out splits must come before train. datasketch's LSH, run a little
    below the threshold for recall, proposes candidates and every candidate is confirmed
    exactly."""

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        self._lsh: Any = None
        self._texts: dict[Place, str] = {}  # of the indexed examples
        self._found: list[NearPair] = []
        self._train_seen = False
        self._indexed: set[str] = set()  # splits with examples in the index

    def add(self, split: str, items: Sequence[tuple[int, str]], sigs: np.ndarray) -> None:
        held_out = split != "train"
        if held_out and self._train_seen:
            raise ValueError("add the held-out splits before train")
        self._train_seen |= not held_out
        if not len(items) or (not held_out and self._lsh is None):
            return  # nothing to add, or nothing to look up
        lsh = self._index(sigs.shape[1])
        # Nothing to look up while the index holds only this split (the first held-out one).
        look_up = bool(self._indexed - {split})
        if held_out:
            self._indexed.add(split)
        for (line, text), row in zip(items, sigs, strict=True):
            place, sig = (split, line), Signature(row)
            if look_up:
                for other in lsh.query(sig):
                    if other[0] != split:
                        self._confirm(place, text, other)
            if held_out:
                lsh.insert(place, sig, check_duplication=False)
                self._texts[place] = text

    def pairs(self, skip: set[Place] | None = None) -> list[NearPair]:
        """The pairs found, most similar first, without those where both sides are in
        ``skip`` (e.g. already reported as exact leakage)."""
        skip = skip or set()
        return sorted((p for p in self._found if not (p.a in skip and p.b in skip)),
                      key=lambda p: (-p.similarity, p.a, p.b))

    def _index(self, num_perm: int) -> Any:
        if self._lsh is None:
            from datasketch import MinHashLSH  # imported here: it costs a second (scipy)

            # Candidates are confirmed exactly, so the LSH is tuned against misses.
            self._lsh = MinHashLSH(threshold=max(0.05, self.threshold - 0.1),
                                   num_perm=num_perm, weights=(0.2, 0.8))
        return self._lsh

    def _confirm(self, place: Place, text: str, other: Place) -> None:
        sim = jaccard(shingles(text), shingles(self._texts[other]))
        if sim >= self.threshold:
            a, b = sorted((place, other), key=lambda p: SPLIT_ORDER.index(p[0]))
            self._found.append(NearPair(a, b, sim))


def near_duplicate_pairs(items: Mapping[str, NearItems], *, threshold: float = 0.8,
                         skip: set[Place] | None = None) -> list[NearPair]:
    """:class:`NearSearch` over whole splits (``items`` keyed by split)."""
    search = NearSearch(threshold)
    for split in held_out_first(items):
        search.add(split, *items[split])
    return search.pairs(skip)


def held_out_first(splits: Iterable[str]) -> list[str]:
    """Splits in the order :class:`NearSearch` needs them: valid, test, then train."""
    return sorted(splits, key=lambda s: (s == "train", SPLIT_ORDER.index(s)))

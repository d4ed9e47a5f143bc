"""Duplicates, leakage and conflicting labels (exact, on normalised inputs) and near-duplicate
leakage across splits (MinHash LSH from datasketch, confirmed by exact Jaccard)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ftlens.core.minhash import Signature, signatures
from ftlens.core.text import jaccard, normalized_bytes, shingles

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


def same_input_groups(
    keys: Mapping[str, np.ndarray], lines: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[str | None]],
) -> ExactResult:
    """Group examples of every split by input fingerprint. ``labels[split][i]`` is the label
    of the i-th example. Sorting makes this O(n log n) in numpy; only groups are touched in
    Python."""
    splits = list(keys)
    if not splits:
        return ExactResult(())
    all_keys = np.concatenate([np.asarray(keys[s], dtype=np.uint64) for s in splits])
    split_of = np.concatenate([np.full(len(keys[s]), i, dtype=np.int32)
                               for i, s in enumerate(splits)])
    index_in = np.concatenate([np.arange(len(keys[s])) for s in splits])
    order = np.argsort(all_keys, kind="stable")
    sorted_keys = all_keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    groups = []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        members = order[start : start + size]
        places = tuple((splits[split_of[m]], int(lines[splits[split_of[m]]][index_in[m]]))
                       for m in members)
        labs = tuple(labels[splits[split_of[m]]][index_in[m]] for m in members)
        groups.append(SameInputGroup(places, labs))
    return ExactResult(tuple(groups))


@dataclass(frozen=True)
class NearPair:
    a: Place  # in the split that is compared against (train, or valid against test)
    b: Place  # in the held-out split
    similarity: float  # exact Jaccard of character 5-gram sets


def near_duplicate_pairs(
    queries: Mapping[str, Sequence[tuple[int, str]]],
    held_out: Mapping[str, Sequence[tuple[int, str]]],
    *, threshold: float = 0.8, num_perm: int = 64, skip: set[Place] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[NearPair]:
    """Pairs (query example, held-out example) from different splits with Jaccard similarity of
    character 5-grams >= ``threshold``. The LSH runs a little below the threshold for recall;
    every candidate is confirmed exactly. Pairs where both sides are in ``skip`` (already
    reported as exact leakage) are left out."""
    from datasketch import MinHashLSH  # imported here: it costs half a second at startup

    skip = skip or set()
    lsh = MinHashLSH(threshold=max(0.05, threshold - 0.1), num_perm=num_perm)
    index_texts: dict[Place, str] = {}
    for split, items in held_out.items():
        for (line, text), mh in zip(items, _minhashes([t for _, t in items], num_perm),
                                    strict=True):
            index_texts[(split, line)] = text
            lsh.insert((split, line), mh, check_duplication=False)
        if progress:
            progress(len(items))
    pairs = []
    for split, items in queries.items():
        for (line, text), mh in zip(items, _minhashes([t for _, t in items], num_perm),
                                    strict=True):
            for other in lsh.query(mh):
                if other[0] == split or ((split, line) in skip and other in skip):
                    continue
                sim = jaccard(shingles(text), shingles(index_texts[other]))
                if sim >= threshold:
                    pairs.append(NearPair((split, line), other, sim))
        if progress:
            progress(len(items))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


def _minhashes(texts: Sequence[str], num_perm: int) -> list[Signature]:
    sigs = signatures([normalized_bytes(t) for t in texts], num_perm)
    return [Signature(row) for row in sigs]

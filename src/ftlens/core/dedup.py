"""Duplicates, leakage and conflicting labels (exact, on normalised inputs) and near-duplicate
leakage across splits (MinHash LSH from datasketch, confirmed by exact Jaccard)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ftlens.core.minhash import NUM_PERM, Signature
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


def same_input_groups(
    keys: Mapping[str, np.ndarray], lines: Mapping[str, np.ndarray],
    labels: Mapping[str, Sequence[str | None] | np.ndarray],
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
    similarity: float  # exact Jaccard of the normalised texts' 5-byte shingle sets


NearItems = tuple[Sequence[tuple[int, str]], np.ndarray]  # (line, text) pairs, signatures


def near_duplicate_pairs(
    queries: Mapping[str, NearItems], held_out: Mapping[str, NearItems], *,
    threshold: float = 0.8, skip: set[Place] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[NearPair]:
    """Pairs (query example, held-out example) from different splits whose normalised texts
    have Jaccard similarity of 5-byte shingles >= ``threshold``. Items come with their MinHash
    signatures (:func:`ftlens.core.minhash.signatures`); datasketch's LSH, run a little below
    the threshold for recall, proposes candidates and every candidate is confirmed exactly.
    Pairs where both sides are in ``skip`` (already reported as exact leakage) are left out."""
    from datasketch import MinHashLSH  # imported here: it costs half a second at startup

    skip = skip or set()
    num_perm = next((sigs.shape[1] for _, sigs in held_out.values()), NUM_PERM)
    # Candidates are confirmed exactly, so the LSH is tuned against misses, not false alarms.
    lsh = MinHashLSH(threshold=max(0.05, threshold - 0.1), num_perm=num_perm,
                     weights=(0.2, 0.8))
    index_texts: dict[Place, str] = {}
    for split, (items, sigs) in held_out.items():
        for (line, text), row in zip(items, sigs, strict=True):
            index_texts[(split, line)] = text
            lsh.insert((split, line), Signature(row), check_duplication=False)
        if progress:
            progress(len(items))
    pairs = []
    for split, (items, sigs) in queries.items():
        for (line, text), row in zip(items, sigs, strict=True):
            for other in lsh.query(Signature(row)):
                if other[0] == split or ((split, line) in skip and other in skip):
                    continue
                sim = jaccard(shingles(text), shingles(index_texts[other]))
                if sim >= threshold:
                    pairs.append(NearPair((split, line), other, sim))
        if progress:
            progress(len(items))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))

"""Which test rows the model may have seen: their input occurs in the training (or
validation) data, exactly or as a near-duplicate. The audit's own rules decide — the same
normalised fingerprint (:func:`ftlens.core.text.fingerprints`) and the same MinHash search
confirmed by exact Jaccard (:class:`ftlens.core.dedup.NearSearch`) — so an evaluation counts
as seen exactly what the audit reports as leaked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ftlens.core.dedup import NearSearch, held_out_first
from ftlens.core.minhash import NUM_PERM, signatures
from ftlens.core.text import fingerprints, normalized_bytes

HELD_OUT = "test"


class Inputs(Protocol):
    """What is compared of an example (:class:`ftlens.core.chat_format.ExampleView` has it)."""

    @property
    def input_text(self) -> str: ...

    @property
    def near_text(self) -> str: ...


@dataclass(frozen=True)
class SeenRows:
    """Per test row, the split its input also occurs in (``exact``) or has a near-duplicate in
    (``near``, only where not exact); None where the row is unseen."""

    exact: tuple[str | None, ...]
    near: tuple[str | None, ...]

    @property
    def mask(self) -> np.ndarray:
        return np.array([e is not None or n is not None
                         for e, n in zip(self.exact, self.near, strict=True)], dtype=bool)

    @property
    def n_seen(self) -> int:
        return int(self.mask.sum())

    @property
    def n_rows(self) -> int:
        return len(self.exact)

    def rows(self) -> list[dict[str, object]]:
        """The seen rows (0-based position), each with how and where it was seen."""
        return [{"row": i, "how": "exact" if e else "near", "in": e or n}
                for i, (e, n) in enumerate(zip(self.exact, self.near, strict=True))
                if e or n]


def find_seen(test: Sequence[Inputs], known: Mapping[str, Sequence[Inputs]], *,
              near_threshold: float | None = 0.8) -> SeenRows:
    """``known``: the examples of ``train`` and/or ``valid``. ``near_threshold`` None: exact
    matches only."""
    keys = fingerprints([x.input_text for x in test])
    exact: list[str | None] = [None] * len(test)
    for split in ("train", "valid"):  # train first: it names the split a row was seen in
        if split in known and len(known[split]):
            hit = np.isin(keys, fingerprints([x.input_text for x in known[split]]))
            for i in np.flatnonzero(hit):
                exact[i] = exact[i] or split
    near: list[str | None] = [None] * len(test)
    if near_threshold is not None:
        search = NearSearch(near_threshold)
        for split in held_out_first([HELD_OUT, *known]):
            examples = test if split == HELD_OUT else known[split]
            items = [(i, x.near_text) for i, x in enumerate(examples)]
            search.add(split, items, _signatures([t for _, t in items]))
        for pair in search.pairs():
            if pair.b[0] == HELD_OUT and exact[pair.b[1]] is None:
                row = pair.b[1]
                near[row] = near[row] if near[row] == "train" else pair.a[0]
    return SeenRows(tuple(exact), tuple(near))


def _signatures(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.empty((0, NUM_PERM), dtype=np.uint64)
    return signatures([normalized_bytes(t) for t in texts], NUM_PERM)

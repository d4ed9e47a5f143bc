"""Label balance of classification-like data: the final assistant answer as the class."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

MAX_CLASSES = 50
MAX_LABEL_CHARS = 50
RARE_BELOW = 10


@dataclass(frozen=True)
class LabelReport:
    labels: tuple[str, ...]  # by training frequency, most common first
    counts: Mapping[str, Mapping[str, int]]  # split -> label -> count
    majority: str
    imbalance_ratio: float  # most / least common class in train
    baseline_accuracy: Mapping[str, float]  # split -> accuracy of always answering `majority`
    rare: tuple[tuple[str, int], ...]  # train classes with fewer than RARE_BELOW examples
    unseen: Mapping[str, tuple[str, ...]]  # split -> labels that never occur in train


def looks_like_classification(counts: Mapping[str, int], n_examples: int) -> bool:
    """Few distinct, short answers: a classification task (spam/ham, routing, triage)."""
    distinct = len(counts)
    if distinct < 2 or n_examples == 0:
        return False
    short = sum(len(label) * n for label, n in counts.items()) / max(1, sum(counts.values()))
    return distinct <= min(MAX_CLASSES, max(2, n_examples // 5)) and short <= MAX_LABEL_CHARS


def label_report(per_split: Mapping[str, Mapping[str, int]], train: str = "train"
                 ) -> LabelReport | None:
    """``per_split``: split -> label -> count. None when the task is not classification-like."""
    total: dict[str, int] = {}
    for counts in per_split.values():
        for label, n in counts.items():
            total[label] = total.get(label, 0) + n
    train_counts = per_split.get(train, {})
    if not train_counts or not looks_like_classification(total, sum(total.values())):
        return None
    order = sorted(total, key=lambda lab: (-train_counts.get(lab, 0), -total[lab], lab))
    majority = order[0]
    present = [n for n in train_counts.values() if n > 0]
    baseline = {
        split: counts.get(majority, 0) / sum(counts.values())
        for split, counts in per_split.items() if sum(counts.values())
    }
    rare = tuple((lab, n) for lab, n in _by_count(train_counts) if n < RARE_BELOW)
    unseen = {
        split: tuple(sorted(lab for lab in counts if lab not in train_counts))
        for split, counts in per_split.items() if split != train
    }
    return LabelReport(
        labels=tuple(order),
        counts={s: dict(c) for s, c in per_split.items()},
        majority=majority,
        imbalance_ratio=max(present) / min(present),
        baseline_accuracy=baseline,
        rare=rare,
        unseen={s: u for s, u in unseen.items() if u},
    )


def _by_count(counts: Mapping[str, int]) -> Sequence[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))


def match_label(name: str, labels: Collection[str]) -> str | None:
    """``name`` as one of ``labels``: exactly, else up to case and surrounding spaces."""
    if name in labels:
        return name
    found = [lab for lab in labels if lab.strip().casefold() == name.strip().casefold()]
    return found[0] if len(found) == 1 else None

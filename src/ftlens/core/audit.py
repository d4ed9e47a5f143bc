"""The data audit: from split scans to token/cost, labels, duplicates and findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ftlens.core import audit_findings as af
from ftlens.core.audit_options import AuditOptions, Cost
from ftlens.core.dedup import (
    SPLIT_ORDER,
    ExactResult,
    NearPair,
    NearSearch,
    Place,
    near_duplicate_pairs,
    same_input_groups,
)
from ftlens.core.findings import Finding, Verdict, sort_findings, verdict
from ftlens.core.labels import LabelReport, label_report
from ftlens.core.scan import SplitScan
from ftlens.core.tokens import TokenStats, default_epochs, token_stats

ReadExcerpts = Callable[[Sequence[Place]], Mapping[Place, str]]


@dataclass(frozen=True)
class AuditReport:
    splits: Mapping[str, SplitScan]
    tokens: Mapping[str, TokenStats]
    cost: Cost | None
    labels: LabelReport | None
    exact: ExactResult
    near: tuple[NearPair, ...]
    findings: tuple[Finding, ...]
    options: AuditOptions
    removable: Mapping[str, frozenset[int]] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        return verdict(self.findings)


def run_audit(scans: Mapping[str, SplitScan], options: AuditOptions,
              near: NearSearch | None = None, excerpts: ReadExcerpts | None = None
              ) -> AuditReport:
    """Analyse finished scans. ``scans`` holds ``train`` and optionally ``valid`` and ``test``.
    ``near``: a search already fed every split's near-duplicate candidates (while reading);
    otherwise it runs here. ``excerpts``: reads a short excerpt of the input at each of the
    few places the evidence quotes (the caller reads the files; none: places only)."""
    splits = {s: scans[s] for s in SPLIT_ORDER if s in scans}
    for scan in splits.values():
        scan.finish()
    train = splits["train"]
    tokens = {s: _token_stats(scan, options.model.context_limit) for s, scan in splits.items()}
    cost = _cost(train.n_examples, tokens["train"], options)
    labels = label_report({s: _label_counts(scan) for s, scan in splits.items()})
    exact = same_input_groups(
        {s: np.frombuffer(scan.keys, dtype=np.uint64) for s, scan in splits.items()},
        {s: np.frombuffer(scan.lines, dtype=np.uint32) for s, scan in splits.items()},
        {s: _labels_per_example(scan) for s, scan in splits.items()},
    )
    leaked = {p for g in exact.leaks() for p in g.places}
    if len(splits) < 2:
        pairs = []
    elif near is not None:
        pairs = near.pairs(skip=leaked)
    else:
        pairs = near_duplicate_pairs(
            {s: (scan.near, scan.near_signatures) for s, scan in splits.items()},
            threshold=options.near_threshold, skip=leaked)
    quoted = excerpts(af.shown_places(exact, pairs, list(splits))) if excerpts else {}
    findings = [
        *af.format_findings(splits),
        *af.token_findings(tokens, cost, options),
        *af.label_findings(labels),
        *af.duplicate_findings(splits, exact, quoted),
        *af.near_findings(pairs, splits, options, quoted),
    ]
    if "valid" not in splits:
        findings.append(af.no_validation())
    return AuditReport(
        splits=splits, tokens=tokens, cost=cost, labels=labels, exact=exact,
        near=tuple(pairs), findings=tuple(sort_findings(findings)), options=options,
        removable=_removable(splits, exact, pairs),
    )


def _token_stats(scan: SplitScan, limit: int | None) -> TokenStats:
    over = sorted(scan.over_limit)
    return token_stats(
        np.frombuffer(scan.token_counts, dtype=np.uint32), n_examples=scan.n_examples,
        limit=limit, over_limit_lines=[ln for ln, _ in over],
        over_limit_counts=[n for _, n in over],
    )


def _cost(n_train: int, stats: TokenStats, options: AuditOptions) -> Cost | None:
    if n_train == 0:
        return None
    epochs = options.epochs or default_epochs(n_train)
    price = options.price_per_1m if options.price_per_1m is not None else (
        options.model.price_per_1m)
    billed = stats.billed_per_epoch * epochs
    usd = None if price is None else billed / 1e6 * price
    return Cost(epochs, billed, stats.billed_per_epoch_margin * epochs, price, usd)


def _label_counts(scan: SplitScan) -> dict[str, int]:
    ids = np.frombuffer(scan.label_ids, dtype=np.int32)
    counts = np.bincount(ids[ids >= 0], minlength=len(scan.labels))
    return {label: int(n) for label, n in zip(scan.labels, counts, strict=True) if n}


def _labels_per_example(scan: SplitScan) -> np.ndarray:
    """The label of every example (None for id -1: the last entry)."""
    return np.array([*scan.labels, None], dtype=object)[np.frombuffer(scan.label_ids, np.int32)]


def _removable(splits: Mapping[str, SplitScan], exact: ExactResult, near: list[NearPair]
               ) -> dict[str, frozenset[int]]:
    """Lines ``--write-clean`` drops: later copies of a duplicate within a split, and the
    training-side copy of anything shared with a held-out split (train before valid before
    test: the test set stays intact). Conflicting labels are not resolved automatically."""
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    drop: dict[str, set[int]] = {s: set() for s in splits}
    for group in exact.groups:
        if group.conflicting and len(group.splits) == 1:
            continue  # which label is right is the user's call
        last_split = max(group.splits, key=rank.__getitem__)
        kept = False
        for split, line in sorted(group.places, key=lambda p: (-rank[p[0]], p[1])):
            if split == last_split and not kept:
                kept = True
                continue
            drop[split].add(line)
    for pair in near:
        drop[pair.a[0]].add(pair.a[1])
    return {s: frozenset(lines) for s, lines in drop.items()}

"""The findings of the data audit, each with its evidence in numbers and its advice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ftlens.core.audit_options import AuditOptions, Cost
from ftlens.core.dedup import (
    ExactResult,
    NearPair,
    Place,
    SameInputGroup,
    SplitPair,
    exact_leaks,
    near_leaks,
)
from ftlens.core.findings import Finding
from ftlens.core.labels import RARE_BELOW, LabelReport
from ftlens.core.scan import SplitScan
from ftlens.core.tokens import TokenStats
from ftlens.core.wording import first, plural

MIN_EXAMPLES = 10  # OpenAI rejects training files with fewer
IMBALANCE_WARN = 4.0
SHOW = 5  # line numbers quoted in evidence; details carry more
SHOW_GROUPS = 3  # groups quoted in evidence, each with an excerpt of its input
Excerpts = Mapping[Place, str]  # a short excerpt of the input at each place shown


def _lines(lines: Sequence[int]) -> str:
    return first(lines, SHOW)


def format_findings(splits: Mapping[str, SplitScan]) -> list[Finding]:
    out: list[Finding] = _mixed_formats(splits)
    for split, scan in splits.items():
        out.extend(_file_findings(split, scan))
        if scan.shape is None:  # a file of another shape is told so once
            out.extend(_format_errors(split, scan))
        for code, title, advice in (
            ("no_system", "no system message", "add the same system prompt you will use in "
             "production to every example; the model learns it as part of the task"),
            ("no_user", "no user message", "check these examples have the input the model "
             "will see in production"),
        ):
            n = scan.warning_counts.get(code, 0)
            if n:
                out.append(Finding(
                    f"{code}_message", "warn", f"{split}: {plural(n, 'example')} with {title}",
                    f"{scan.path}: lines {_lines(scan.warning_lines[code])}", advice,
                    details={"split": split, "count": n, "lines": scan.warning_lines[code]},
                ))
    return out


def _mixed_formats(splits: Mapping[str, SplitScan]) -> list[Finding]:
    """Chat examples (supervised) and preference pairs (DPO) train different methods: one
    file holds one kind, and the validation file the kind of the training file."""
    out = []
    for split, scan in splits.items():
        if scan.data_format == "mixed":
            out.append(Finding(
                "mixed_formats", "fail", f"{split}: chat examples and preference pairs mixed",
                f"{scan.path} has {plural(scan.n_preference, 'preference pair')} (DPO) and "
                f"{plural(scan.n_examples - scan.n_preference, 'chat example')} "
                "(supervised); a job trains on one kind",
                "split the file: chat examples for a supervised job, preference pairs for a "
                "DPO job", details={"split": split, "preference": scan.n_preference,
                                    "chat": scan.n_examples - scan.n_preference}))
    train, valid = splits.get("train"), splits.get("valid")
    if train and valid and "mixed" not in (train.data_format, valid.data_format) \
            and train.n_examples and valid.n_examples \
            and train.data_format != valid.data_format:
        out.append(Finding(
            "mixed_formats", "fail", f"train holds {train.data_format} data, valid "
            f"{valid.data_format} data", f"{train.path} and {valid.path} are of different "
            "kinds; a job validates on examples of the kind it trains on",
            "give a validation file of the training file's kind",
            details={"train": train.data_format, "valid": valid.data_format}))
    return out


# what a file that is not JSON lines is, and how to convert it ({path}, {stem}: the file's)
SHAPES = {
    "json_array": ("a JSON array, not JSON lines",
                   "write one example per line: jq -c '.[]' {path} > {stem}.lines.jsonl"),
    "csv": ("a CSV table, not JSON lines",
            'turn each row into one {{"messages": [{{"role": "user", "content": TEXT}}, '
            '{{"role": "assistant", "content": LABEL}}]}} line, e.g. with pandas: '
            'df.apply(to_messages, axis=1).to_json("{stem}.chat.jsonl", orient="records", '
            "lines=True)"),
    "utf16": ("encoded as UTF-16, not UTF-8",
              "convert it: iconv -f UTF-16 -t UTF-8 {path} > {stem}.utf8.jsonl"),
}


# a file that starts with a byte-order mark ({path}: the file's), and an empty file's fix
BOM_TEXT = ("begins with the bytes EF BB BF (UTF-8 BOM); JSON readers reject it",
            "save the file as UTF-8 without BOM (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' {path}`)")
EMPTY_FIX = "point ftlens at the right file, or write one JSON example per line"


def _file_findings(split: str, scan: SplitScan) -> list[Finding]:
    out = []
    if scan.shape is not None:  # one finding, not one per line
        what, how = SHAPES[scan.shape]
        return [Finding(
            "not_jsonl", "fail", f"{split}: the file is {what}",
            f"{scan.path} is {what}: fine-tuning data is UTF-8 JSON lines, one example "
            f"object per line ({scan.n_lines:,} lines read, {scan.n_examples:,} usable)",
            how.format(path=scan.path, stem=scan.path.rsplit(".", 1)[0]),
            details={"split": split, "shape": scan.shape})]
    if scan.n_lines == 0:
        return [Finding("empty_file", "fail", f"{split}: the file is empty",
                        f"{scan.path} has no lines", EMPTY_FIX, details={"split": split})]
    if scan.bom:
        out.append(Finding(
            "bom", "fail", f"{split}: the file starts with a byte-order mark",
            f"{scan.path} {BOM_TEXT[0]}", BOM_TEXT[1].format(path=scan.path),
            details={"split": split}))
    if scan.n_examples < MIN_EXAMPLES:
        out.append(Finding(
            "too_few_examples", "fail",
            f"{split}: only {plural(scan.n_examples, 'valid example')}",
            f"{scan.path} has {plural(scan.n_examples, 'usable example')}; OpenAI requires "
            f"at least {MIN_EXAMPLES} and results usually improve from 50–100",
            "add more examples (aim for 50+ per class for classification)",
            details={"split": split, "count": scan.n_examples}))
    return out


def _format_errors(split: str, scan: SplitScan) -> list[Finding]:
    """One ``non_utf8`` finding for undecodable lines, one ``format_error`` for the rest."""
    out = []
    for fid, codes in (("non_utf8", {"non_utf8"}),
                       ("format_error", set(scan.issue_counts) - {"non_utf8"})):
        counts = {c: n for c, n in scan.issue_counts.most_common() if c in codes}
        if not counts:
            continue
        total = sum(counts.values())
        issues = sorted((i for i in scan.issues if i.code in codes), key=lambda i: i.line)
        title = (f"{split}: {plural(total, 'line')} with bytes that are not UTF-8"
                 if fid == "non_utf8" else
                 f"{split}: {plural(total, 'line')} {'breaks' if total == 1 else 'break'} the chat "
                 "format")
        out.append(Finding(
            fid, "fail", title,
            f"{scan.path}: {', '.join(f'{c} ×{n:,}' for c, n in counts.items())}; first at "
            f"line {issues[0].line}: {issues[0].message}",
            issues[0].hint if fid == "non_utf8" else
            "fix each line listed (every problem has its own hint); OpenAI rejects the whole "
            "file if one line is invalid",
            details={"split": split, "counts": counts, "issues": [
                {"line": i.line, "code": i.code, "message": i.message, "hint": i.hint}
                for i in issues]},
        ))
    return out


def token_findings(tokens: Mapping[str, TokenStats], cost: Cost | None,
                   options: AuditOptions) -> list[Finding]:
    out = []
    for split, stats in tokens.items():
        if stats.over_limit_lines:
            out.append(Finding(
                "over_token_limit", "warn",
                f"{split}: {plural(len(stats.over_limit_lines), 'example')} over the "
                f"{stats.limit:,}-token training context",
                f"lines {_lines(list(stats.over_limit_lines))} (longest {stats.max:,} tokens) "
                "will be truncated by OpenAI: the end of the conversation, often the answer, "
                "is cut",
                "shorten these examples or split long conversations",
                details={"split": split, "lines": list(stats.over_limit_lines)}))
    if not options.tokenizer_exact:
        out.append(Finding(
            "token_estimate", "info", "token counts are approximate",
            f"counted with {options.tokenizer}", "counts for this model's own tokenizer may "
            "differ by a few percent"))
    if cost is not None:
        out.append(_cost_finding(cost, tokens["train"], options))
    return out


def _cost_finding(cost: Cost, stats: TokenStats, options: AuditOptions) -> Finding:
    billed = f"{cost.billed_tokens:,.0f}"
    if cost.billed_margin:
        billed = f"≈{billed} ± {cost.billed_margin:,.0f} (from a sample of {stats.n_counted:,})"
    usd = ("no price known for " + options.model.name + " (pass --price-per-1m)"
           if cost.usd is None else f"≈ ${cost.usd:,.2f} at ${cost.price_per_1m:g} per 1M tokens")
    return Finding(
        "cost_estimate", "info",
        f"training would bill about {cost.billed_tokens:,.0f} tokens ({cost.epochs} epochs)",
        f"{billed} billed tokens = tokens per epoch (each example capped at the context) × "
        f"{cost.epochs} epochs; {usd}. An estimate: OpenAI's own count and prices may differ",
        "", details={"epochs": cost.epochs, "billed_tokens": cost.billed_tokens, "usd": cost.usd})


def label_findings(labels: LabelReport | None) -> list[Finding]:
    if labels is None:
        return []
    out = []
    dist = ", ".join(f"{lab} {n:,}" for lab, n in sorted(
        labels.counts["train"].items(), key=lambda kv: -kv[1]))
    base = labels.baseline_accuracy.get("test", labels.baseline_accuracy["train"])
    if labels.imbalance_ratio >= IMBALANCE_WARN:
        out.append(Finding(
            "class_imbalance", "warn",
            f"classes are imbalanced {labels.imbalance_ratio:.1f} : 1",
            f"train: {dist}. Always answering '{labels.majority}' already scores "
            f"{base:.1%} accuracy",
            "judge the model on per-class precision and recall (and macro-F1), not accuracy; "
            "consider more examples of the rare classes",
            details={"ratio": labels.imbalance_ratio, "baseline_accuracy": base}))
    if labels.rare:
        rare = ", ".join(f"'{lab}' ({n})" for lab, n in labels.rare)
        out.append(Finding(
            "rare_class", "warn", f"{plural(len(labels.rare), 'class')} with under "
            f"{RARE_BELOW} training examples", f"train has {rare}",
            "add examples of these classes, merge them, or drop them: the model cannot learn a "
            "class from a handful of examples", details={"classes": dict(labels.rare)}))
    for split, unseen in labels.unseen.items():
        out.append(Finding(
            "unseen_label", "warn", f"{split}: labels that never occur in train",
            f"{', '.join(repr(u) for u in unseen)} appear in {split} but not in train",
            "add training examples of these labels, or fix their spelling",
            details={"split": split, "labels": list(unseen)}))
    return out


def shown_places(exact: ExactResult, near: Sequence[NearPair],
                 splits: Sequence[str]) -> list[Place]:
    """The places whose input the evidence quotes (so their excerpts can be read)."""
    groups = [g for split in splits for g in exact.duplicates(split)[:SHOW_GROUPS]]
    groups += exact.leaks()[:SHOW_GROUPS] + exact.conflicts()[:SHOW_GROUPS]
    return [*(g.places[0] for g in groups), *(p.b for p in near[:SHOW_GROUPS])]


def _quote(place: Place, excerpts: Excerpts) -> str:
    text = excerpts.get(place)
    return f'"{text}" ' if text else ""


def _group_text(g: SameInputGroup, excerpts: Excerpts) -> str:
    return _quote(g.places[0], excerpts) + _places(g.places)


def _places(places: Sequence[Place]) -> str:
    return first((f"{s}:{ln}" for s, ln in places), SHOW, sep=" = ")


def _first_groups(groups: Sequence[SameInputGroup], excerpts: Excerpts,
                  label: bool = False) -> str:
    def one(g: SameInputGroup) -> str:
        labels = f" ({' vs '.join(sorted({str(lab) for lab in g.labels}))})" if label else ""
        return _group_text(g, excerpts) + labels

    return first(map(one, groups), SHOW_GROUPS, sep="; ", noun="group")


def _pairs_text(pairs: Sequence[SplitPair]) -> str:
    return "; ".join(p.text for p in pairs if p.lines)


def duplicate_findings(splits: Mapping[str, SplitScan], exact: ExactResult,
                       excerpts: Excerpts | None = None) -> list[Finding]:
    excerpts = excerpts or {}
    out = []
    for split in splits:
        groups = exact.duplicates(split)
        if groups:
            extra = sum(sum(s == split for s, _ in g.places) - 1 for g in groups)
            out.append(Finding(
                "duplicates", "warn",
                f"{split}: {plural(extra, 'duplicate example')} in "
                f"{plural(len(groups), 'group')}",
                f"same input (ignoring case, punctuation, spacing): "
                f"{_first_groups(groups, excerpts)}",
                "remove repeats (--write-clean does it): they overweight some examples and "
                "make the model memorise them", details=_groups(groups, split=split)))
    leaks = exact.leaks()
    if leaks:
        pairs = exact_leaks(exact, {s: scan.n_examples for s, scan in splits.items()})
        worst = max(pairs, key=lambda p: (p.share, len(p.lines)))
        others = [p for p in pairs if p.lines and p is not worst]
        out.append(Finding(
            "leakage", "fail", worst.text,
            (f"also {_pairs_text(others)}. " if others else "") +
            f"Shared inputs: {_first_groups(leaks, excerpts)}. Metrics on a held-out set that "
            "the model trained on are inflated",
            "remove the shared examples from train (--write-clean does it), or judge the "
            "model on the unseen rows only (ftlens metrics/eval --train)",
            details={**_groups(leaks), "pairs": [p.to_dict() for p in pairs]}))
    conflicts = exact.conflicts()
    if conflicts:
        out.append(Finding(
            "conflicting_labels", "warn",
            f"{plural(len(conflicts), 'input')} with different labels",
            f"the same input is labelled differently: "
            f"{_first_groups(conflicts, excerpts, label=True)}",
            "decide the right label for each and fix the others; contradictory examples cap "
            "the accuracy any model can reach", details=_groups(conflicts)))
    return out


def _groups(groups: list[SameInputGroup], split: str | None = None) -> dict[str, object]:
    return {"split": split, "count": len(groups), "groups": [
        {"places": [{"split": s, "line": ln} for s, ln in g.places], "labels": list(g.labels)}
        for g in groups[:1000]]}


def near_findings(near: Sequence[NearPair], splits: Mapping[str, SplitScan],
                  options: AuditOptions, excerpts: Excerpts | None = None) -> list[Finding]:
    excerpts = excerpts or {}
    out = []
    if near:
        per = near_leaks(near, {s: scan.n_examples for s, scan in splits.items()})
        shown = first((f"{_quote(p.b, excerpts)}{p.a[0]}:{p.a[1]} ~ {p.b[0]}:{p.b[1]} "
                       f"({p.similarity:.2f})" for p in near), SHOW_GROUPS, sep="; ",
                      noun="pair")
        counts = _pairs_text(per)
        out.append(Finding(
            "near_duplicate_leakage", "warn",
            f"{plural(len(near), 'near-duplicate pair')} across splits",
            f"{counts}, Jaccard similarity ≥ {options.near_threshold:g} of normalised 5-byte "
            f"shingles: {shown}",
            "paraphrases of held-out examples in train inflate metrics like exact leakage; "
            "remove or rewrite them (--write-clean drops the train side)",
            details={"pairs": [{"a": {"split": p.a[0], "line": p.a[1]},
                                "b": {"split": p.b[0], "line": p.b[1]},
                                "similarity": round(p.similarity, 4)} for p in near],
                     "split_pairs": [p.to_dict() for p in per]}))
    searched = sum(len(s.near) for s in splits.values())
    total = sum(s.n_examples for s in splits.values())
    if len(splits) > 1 and searched < total:
        out.append(Finding(
            "near_duplicate_sampled", "info",
            f"near-duplicates searched in {searched:,} of {total:,} examples",
            "a deterministic sample keeps the audit fast on large data; exact duplicates and "
            "leakage were checked on every example",
            "pass --near-dup-limit 0 to search every example"))
    return out


def no_validation() -> Finding:
    return Finding(
        "no_validation", "warn", "no validation file",
        "without validation data, the job reports only training loss: overfitting cannot be "
        "seen while it happens",
        "hold out 10–20 % of the examples as a validation file (--valid)")

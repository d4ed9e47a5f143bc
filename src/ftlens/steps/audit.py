"""``audit_files``: the data audit of train/valid/test JSONL files, as a library call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ftlens.core.audit import AuditOptions, AuditReport, run_audit
from ftlens.core.dedup import NearSearch, held_out_first
from ftlens.core.models import DEFAULT_MODEL, model_spec
from ftlens.core.scan import ScanOptions
from ftlens.errors import ConfigError
from ftlens.io import tokenizer
from ftlens.io.chat_jsonl import estimate_examples, gc_paused, open_checked, scan_files
from ftlens.io.excerpts import read_excerpts

TOKEN_SAMPLE = 20_000  # examples per split counted exactly; above it, a uniform sample
NEAR_LIMIT = 20_000  # examples searched for near-duplicates by default

#: progress(stage, advance, total): stage names a phase, advance/total in its own units.
Progress = Callable[[str, int, int], None]


def audit_files(
    train: str | Path, valid: str | Path | None = None, test: str | Path | None = None, *,
    model: str = DEFAULT_MODEL, epochs: int | None = None, price_per_1m: float | None = None,
    context_limit: int | None = None, near_threshold: float = 0.8,
    near_limit: int | None = NEAR_LIMIT, token_sample: int | None = TOKEN_SAMPLE,
    progress: Progress | None = None, workers: int | None = None,
) -> AuditReport:
    """Audit the splits. ``near_limit``/``token_sample`` None or 0: look at every example."""
    _check_options(epochs, price_per_1m, near_threshold)
    paths = {s: open_checked(p) for s, p in (("train", train), ("valid", valid), ("test", test))
             if p is not None}
    spec = model_spec(model)
    if context_limit is not None:
        spec = type(spec)(spec.name, spec.encoding, context_limit, spec.price_per_1m)
    tok = tokenizer.resolve(spec.encoding)
    sizes = {s: estimate_examples(p) if p.stat().st_size else 0 for s, p in paths.items()}
    near_rates = _near_rates(sizes, near_limit)
    options = {split: ScanOptions(
        context_limit=spec.context_limit,
        token_rate=_rate(token_sample, sizes[split]),
        near_rate=near_rates[split],
    ) for split in paths}
    total_bytes = sum(p.stat().st_size for p in paths.values())
    tick = (lambda n: progress("read", n, total_bytes)) if progress else None
    # The near-duplicate search runs in this process while the workers read.
    near = NearSearch(near_threshold)
    scans = scan_files({s: (paths[s], options[s]) for s in held_out_first(paths)}, tok.used,
                       tick, workers, on_scan=lambda scan: near.add(
                           scan.split, scan.near, scan.near_signatures))
    audit_options = AuditOptions(
        model=spec, tokenizer=tok.description, tokenizer_exact=tok.exact, epochs=epochs,
        price_per_1m=price_per_1m, near_threshold=near_threshold)
    with gc_paused():  # the analysis makes few, acyclic objects next to millions of others
        return run_audit(scans, audit_options, near=near,
                         excerpts=lambda places: read_excerpts(paths, places))


def _check_options(epochs: int | None, price: float | None, threshold: float) -> None:
    if epochs is not None and not 1 <= epochs <= 50:
        raise ConfigError(f"--epochs {epochs} is out of range", hint="use 1 to 50")
    if price is not None and price < 0:
        raise ConfigError(f"--price-per-1m {price} is negative", hint="give USD per 1M tokens")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--near-threshold {threshold} is out of range",
                          hint="use a Jaccard similarity in (0, 1], e.g. 0.8")


def _rate(limit: int | None, n: int) -> float:
    return 1.0 if not limit or n <= limit else limit / n


def _near_rates(sizes: Mapping[str, int], limit: int | None) -> dict[str, float]:
    """Held-out splits are searched in full up to half the limit; train fills the rest."""
    held = sum(n for s, n in sizes.items() if s != "train")
    if not limit:
        return dict.fromkeys(sizes, 1.0)
    held_budget = min(held, limit // 2) if sizes.get("train") else min(held, limit)
    rates = {s: _rate(held_budget, held) for s in sizes if s != "train"}
    if "train" in sizes:
        rates["train"] = _rate(limit - held_budget, sizes["train"])
    return rates


def file_findings(path: Path) -> dict[str, object]:
    """One fine-tune file's audit as the dashboard shows it: verdict and findings (given to
    ``create_app`` by the commands that start a service; ``server/`` does not import steps)."""
    report = audit_files(path, workers=1)
    return {"verdict": report.verdict, "findings": [f.to_dict() for f in report.findings]}

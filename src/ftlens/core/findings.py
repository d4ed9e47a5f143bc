"""Findings and the verdict: the one vocabulary every analysis speaks.

A :class:`Finding` is one thing we noticed, with a stable snake_case ``id``, a ``severity``
(``fail`` | ``warn`` | ``info``), a one-line ``title``, the ``evidence`` in plain words with the
numbers, and ``advice`` on what to do. :func:`verdict` combines findings into ``ready``,
``not_ready`` or ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["fail", "warn", "info"]
Verdict = Literal["ready", "not_ready", "inconclusive"]
SEVERITY_ORDER: Mapping[str, int] = {"fail": 0, "warn": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    evidence: str
    advice: str = ""
    #: True when the finding means the evidence is too thin to judge (e.g. too few samples).
    inconclusive: bool = False
    #: Machine-readable details (line numbers, pairs, counts) for ``--json`` and reports.
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "title": self.title,
            "evidence": self.evidence,
            "advice": self.advice,
            "inconclusive": self.inconclusive,
            "details": dict(self.details),
        }


def verdict(findings: Iterable[Finding]) -> Verdict:
    """``not_ready`` if anything fails, else ``inconclusive`` if the evidence is too thin to
    judge, else ``ready``."""
    found = list(findings)
    if any(f.severity == "fail" for f in found):
        return "not_ready"
    if any(f.inconclusive and f.severity != "info" for f in found):
        return "inconclusive"
    return "ready"


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first; stable within a severity."""
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


GATE_LEVELS: Mapping[str, frozenset[str]] = {
    "fail": frozenset({"fail"}), "error": frozenset({"fail"}), "warn": frozenset({"fail", "warn"})}


def gate_failed(findings: Iterable[Finding], fail_on: str | None) -> bool:
    """Whether ``--fail-on`` is met: ``fail`` (alias ``error``) trips on any fail, ``warn`` on
    any fail or warn; None sets no gate."""
    levels = GATE_LEVELS[fail_on] if fail_on is not None else frozenset()
    return any(f.severity in levels for f in findings)

"""Findings, the verdict and the ``--fail-on`` gate; the audit's label findings."""

from __future__ import annotations

import pytest

from ftlens.core.audit_findings import IMBALANCE_WARN, label_findings
from ftlens.core.findings import Finding, gate_failed, sort_findings, verdict
from ftlens.core.labels import label_report


def f(severity: str, *, inconclusive: bool = False, fid: str = "x") -> Finding:
    return Finding(fid, severity, "title", "evidence", inconclusive=inconclusive)  # type: ignore[arg-type]


@pytest.mark.parametrize(("findings", "expected"), [
    ([], "ready"),
    ([f("info")], "ready"),
    ([f("warn"), f("info")], "ready"),
    ([f("fail")], "not_ready"),
    ([f("warn"), f("fail"), f("info")], "not_ready"),
    ([f("warn", inconclusive=True)], "inconclusive"),
    ([f("warn"), f("warn", inconclusive=True), f("info")], "inconclusive"),
    ([f("fail", inconclusive=True)], "not_ready"),
    ([f("fail"), f("warn", inconclusive=True)], "not_ready"),  # a failure outranks thin data
    ([f("info", inconclusive=True)], "ready"),  # informational notes never block
])
def test_verdict(findings: list[Finding], expected: str) -> None:
    assert verdict(findings) == expected
    assert verdict(iter(findings)) == expected  # any iterable, consumed once


@pytest.mark.parametrize(("severities", "fail_on", "expected"), [
    ([], "error", False),
    ([], "warn", False),
    (["info"], "error", False),
    (["info"], "warn", False),
    (["warn"], "error", False),
    (["warn"], "warn", True),
    (["fail"], "error", True),
    (["fail"], "warn", True),
    (["info", "warn", "info"], "warn", True),
    (["fail", "warn"], None, False),
])
def test_gate_failed(severities: list[str], fail_on: str | None, expected: bool) -> None:
    assert gate_failed([f(s) for s in severities], fail_on) is expected


def test_sort_findings_most_severe_first_and_stable() -> None:
    items = [f("info", fid="i1"), f("warn", fid="w1"), f("fail", fid="f1"),
             f("info", fid="i2"), f("fail", fid="f2"), f("warn", fid="w2")]
    assert [x.id for x in sort_findings(items)] == ["f1", "f2", "w1", "w2", "i1", "i2"]


def test_finding_to_dict() -> None:
    finding = Finding("leakage", "fail", "t", "e", "a", details={"count": 2})
    d = finding.to_dict()
    assert d == {"id": "leakage", "severity": "fail", "title": "t", "evidence": "e",
                 "advice": "a", "inconclusive": False, "details": {"count": 2}}
    d["details"]["count"] = 3
    assert finding.details["count"] == 2  # a copy, not the finding's own mapping


def test_finding_is_frozen() -> None:
    finding = f("warn")
    with pytest.raises(AttributeError):
        finding.severity = "fail"  # type: ignore[misc]


# --- label findings -------------------------------------------------------------------------

def _ids(per_split: dict) -> dict[str, Finding]:
    return {x.id: x for x in label_findings(label_report(per_split))}


def test_label_findings_on_broken_counts() -> None:
    found = _ids({"train": {"ham": 15, "spam": 7, "phishing": 2},
                  "test": {"ham": 7, "spam": 4, "scam": 1}})
    assert set(found) == {"class_imbalance", "rare_class", "unseen_label"}
    assert all(x.severity == "warn" for x in found.values())
    assert found["class_imbalance"].details["ratio"] == pytest.approx(7.5)
    # the baseline quoted is the held-out one when there is a test split
    assert found["class_imbalance"].details["baseline_accuracy"] == pytest.approx(7 / 12)
    assert found["rare_class"].details["classes"]["phishing"] == 2
    assert found["unseen_label"].details == {"split": "test", "labels": ["scam"]}


@pytest.mark.parametrize(("train", "warned"), [
    ({"a": 40, "b": 10}, True),  # exactly the threshold
    ({"a": 39, "b": 10}, False),
    ({"a": 50, "b": 50}, False),
])
def test_class_imbalance_threshold(train: dict[str, int], warned: bool) -> None:
    assert IMBALANCE_WARN == 4.0
    assert ("class_imbalance" in _ids({"train": train})) is warned


def test_no_label_findings_for_free_text() -> None:
    assert label_findings(None) == []

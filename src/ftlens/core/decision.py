"""The overall verdict: one rule set over the audit, the curves and the evaluation (not the
worst of their verdicts), told as a short chain of reasons, most important first.

The rules, in order:

1. The evaluation is the direct evidence: each of its failures is a reason not to ship. Its
   verdict is taken on the test rows not seen in training when it knows the training data; the
   leakage it measured then explains the numbers rather than blocking on its own.
2. Leakage the evaluation did not account for makes its score untrustworthy: at best
   inconclusive ("rerun the evaluation with --train").
3. Other failures of the data (format errors, …) and of training (stuck, diverging,
   overfitting) are reasons not to ship.
4. What is only too thin to judge (small samples, memorisation, too few or too noisy steps)
   makes the verdict inconclusive — except that a conclusive evaluation outweighs the curves'
   doubts, since it measured the model itself.
5. Otherwise ready, with the evidence that supports it.

When an earlier checkpoint beat the final model (``checkpoint_better``), that recommendation
follows the reasons that decided the verdict, or leads them when the verdict is ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ftlens.core.findings import Finding, Verdict

SECTIONS = ("eval", "audit", "curves")  # the order reasons of one strength come in
LEAKAGE_IDS = frozenset({"leakage", "near_duplicate_leakage"})
ACCOUNTED = "leakage_inflates_metrics"
SUPPORT_IDS = ("meets_bar", "significant_gain", "loss_decreasing")
RECOMMEND_IDS = ("checkpoint_better",)
EVIDENCE_CHARS = 220


@dataclass(frozen=True)
class Reason:
    verdict: Verdict  # what this reason argues for
    section: str
    finding: str  # the finding id it rests on
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"verdict": self.verdict, "section": self.section, "finding": self.finding,
                "text": self.text}


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[Reason, ...]

    @property
    def sentence(self) -> str:
        """The verdict and its first reason, as one line."""
        head = self.verdict.replace("_", " ")
        return f"{head}: {self.reasons[0].text}" if self.reasons else head


def decide(sections: Mapping[str, Sequence[Finding]]) -> Decision:
    """``sections``: the findings of each analysis present (``eval``, ``audit``, ``curves``)."""
    present = [s for s in SECTIONS if s in sections]
    if not present:
        return Decision("inconclusive", (Reason("inconclusive", "", "", "nothing to judge"),))
    blocking: list[Reason] = []
    doubts: list[Reason] = []
    untrusted: list[Reason] = []  # leakage the evaluation did not account for: first doubt
    evaluation = sections.get("eval")
    conclusive_eval = evaluation is not None and not _inconclusive(evaluation)
    accounted = evaluation is not None and any(f.id == ACCOUNTED for f in evaluation)
    for name in present:
        for f in sections[name]:
            if f.severity == "info":
                continue
            if name == "audit" and f.id in LEAKAGE_IDS and evaluation is not None:
                if not accounted:
                    untrusted.append(_reason("inconclusive", name, f, prefix=(
                        "the test score counts rows the model was trained on; rerun the "
                        "evaluation with --train to judge the unseen rows only")))
                continue  # measured by the evaluation: its finding tells the effect
            if f.inconclusive and not (name == "curves" and conclusive_eval):
                doubts.append(_reason("inconclusive", name, f))
            elif f.severity == "fail" and not f.inconclusive:
                blocking.append(_reason("not_ready", name, f))
    doubts = untrusted + doubts
    advice = [f for f in evaluation or () if f.id in RECOMMEND_IDS]
    if blocking:
        return Decision("not_ready", tuple(
            blocking + [_reason("not_ready", "eval", f) for f in advice] + doubts))
    if doubts:
        return Decision("inconclusive", tuple(
            doubts + [_reason("inconclusive", "eval", f) for f in advice]))
    support = [_reason("ready", "eval", f) for f in advice]
    support += [_reason("ready", name, f) for name in present for fid in SUPPORT_IDS
                for f in sections[name] if f.id == fid]
    if evaluation is None:
        support.insert(0, Reason("ready", "", "", "no evaluation of the model yet: judged on "
                                 "the data and the loss curves alone"))
    return Decision("ready", tuple(support) or (
        Reason("ready", present[0], "", "no failure, warning or doubt in any section"),))


def _inconclusive(findings: Sequence[Finding]) -> bool:
    return any(f.inconclusive and f.severity != "info" for f in findings)


def _reason(verdict: Verdict, section: str, f: Finding, prefix: str = "") -> Reason:
    evidence = f.evidence
    if len(evidence) > EVIDENCE_CHARS:
        cut = max(evidence.rfind(sep, 0, EVIDENCE_CHARS) for sep in ("; ", ". ", ", "))
        evidence = evidence[: cut if cut > 60 else EVIDENCE_CHARS].rstrip(" ;,.") + " …"
    text = f"{f.title} ({evidence})"
    return Reason(verdict, section, f.id, f"{prefix}: {text}" if prefix else text)

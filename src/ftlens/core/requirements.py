"""User gates: ``--require "recall(spam)>=0.9" --require "precision>=0.8"``."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from ftlens.errors import ConfigError

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
_PATTERN = re.compile(
    r"^\s*(?P<metric>[a-z_][a-z0-9_]*)\s*(?:\(\s*(?P<label>[^)]*?)\s*\))?\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+))\s*$")
PER_CLASS = frozenset({"precision", "recall", "f1", "auc", "average_precision"})
OVERALL = frozenset({"accuracy", "balanced_accuracy", "mcc", "kappa", "macro_f1", "micro_f1",
                     "weighted_f1", "unparseable_rate"})


@dataclass(frozen=True)
class Requirement:
    text: str
    metric: str
    label: str | None
    op: str
    value: float

    def holds(self, actual: float) -> bool:
        return _OPS[self.op](actual, self.value)


GRAMMAR = "METRIC[(LABEL)] OP NUMBER, OP one of >= > <= < =="
EXAMPLES = 'e.g. "recall(spam)>=0.9", "precision>=0.8", "macro_f1>0.7"'


def parse_requirement(text: str) -> Requirement:
    m = _PATTERN.match(text)
    if m is None:
        why = ("the bar is a percentage" if "%" in text else
               "it has no comparison" if not re.search(r"[<>=]", text) else
               "it does not read as a metric, a comparison and a number")
        hint = (f"write the bar as a fraction (0.9 for 90 %): {GRAMMAR}; {EXAMPLES}"
                if "%" in text else f"write {GRAMMAR}; {EXAMPLES}; metrics: "
                + ", ".join(sorted(PER_CLASS | OVERALL)))
        raise ConfigError(f"cannot read the requirement {text!r}: {why}", hint=hint)
    metric, label = m["metric"], m["label"] or None
    if metric not in PER_CLASS | OVERALL:
        raise ConfigError(f"unknown metric {metric!r} in requirement {text!r}",
                          hint="use one of " + ", ".join(sorted(PER_CLASS | OVERALL)))
    if label is not None and metric not in PER_CLASS:
        raise ConfigError(f"{metric} takes no class label in {text!r}",
                          hint=f"per-class metrics are {', '.join(sorted(PER_CLASS))}")
    return Requirement(text.strip(), metric, label, m["op"], float(m["value"]))

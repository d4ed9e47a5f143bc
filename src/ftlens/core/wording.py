"""Counts and lists in the words people read: "1 example", "3, 5, 8 … and 12 more"."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, pluralised unless n is 1 ("1 line", "3 lines", "2 matches");
    ``many`` for irregular plurals."""
    if n == 1:
        return f"{n:,} {word}"
    if many is None:
        many = word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{n:,} {many}"


def first(items: Sequence[object] | Iterable[object], limit: int, sep: str = ", ",
          noun: str = "") -> str:
    """The first ``limit`` items joined by ``sep``, then "… and N more[ noun]" when some are
    left out, so a reader always knows the list is cut."""
    items = list(items)
    shown = sep.join(map(str, items[:limit]))
    left = len(items) - limit
    if left <= 0:
        return shown
    return f"{shown} … and " + (plural(left, f"more {noun}") if noun else f"{left:,} more")


def runs(numbers: Iterable[int]) -> list[str]:
    """Sorted line numbers as runs: [3, 4, 5, 9] → ["3–5", "9"]."""
    out: list[str] = []
    start = prev = None
    for n in sorted(set(numbers)):
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(f"{start}–{prev}" if prev != start else str(start))
        start = prev = n
    if start is not None:
        out.append(f"{start}–{prev}" if prev != start else str(start))
    return out

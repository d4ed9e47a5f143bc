"""A toy spam/ham chat set for the training tests."""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM = "Classify this SMS as spam or ham."
TOY = [("WIN a free prize now, click the link", "spam"), ("are we still on for lunch", "ham"),
       ("URGENT your account is locked, verify", "spam"), ("running late, see you at 6", "ham"),
       ("claim your reward today only", "spam"), ("can you pick up milk", "ham"),
       ("you have won a cash prize call now", "spam"), ("thanks for dinner last night", "ham"),
       ("limited offer reply YES to claim", "spam"), ("meeting moved to 3pm", "ham"),
       ("free entry in a weekly draw", "spam"), ("love you, see you soon", "ham")]


def chat(text: str, label: str, **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": text},
                         {"role": "assistant", "content": label, **extra}]}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


WORDS = [
    "apple", "river", "stone", "cloud", "market", "garden", "window", "pencil", "ticket",
    "rocket", "silver", "meadow", "harbor", "candle", "violin", "pepper", "lantern", "saddle",
    "marble", "orchid", "falcon", "cobalt", "thistle", "glacier", "velvet", "tundra", "ember",
    "quartz", "willow", "canyon",
]


def distinct(n: int, *, seed: int) -> list[dict[str, object]]:
    """``n`` spam/ham examples whose texts share no more than chance words: no two are
    near-duplicates (unlike TOY's reworded copies), so a split of them leaks nothing."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "spam" if i % 3 == 0 else "ham"
        words = " ".join(rng.sample(WORDS, 6))
        text = (f"WIN {words} prize code {seed}{i:04d}" if label == "spam"
                else f"see you {words} at {i % 12} ref {seed}{i:04d}")
        rows.append(chat(text, label))
    return rows


def preference(text: str, preferred: str, rejected: str) -> dict[str, object]:
    """An OpenAI preference (DPO) line."""
    return {"input": {"messages": [{"role": "system", "content": SYSTEM},
                                   {"role": "user", "content": text}]},
            "preferred_output": [{"role": "assistant", "content": preferred}],
            "non_preferred_output": [{"role": "assistant", "content": rejected}]}


# the toy set as preferences: the right label over the wrong one
TOY_PREFERENCES = [preference(t, y, "ham" if y == "spam" else "spam") for t, y in TOY]

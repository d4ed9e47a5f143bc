"""How much a model prefers the preferred answers of preference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def mean_preference(model: Any, tokenizer: Any, path: Path) -> float:
    """The mean over the pairs of ``path`` of log p(preferred) - log p(non-preferred)."""
    import torch

    from ftlens.io.chat_dataset import read_preferences
    from ftlens.train.data import collate
    from ftlens.train.loss import AnswerLogps
    from ftlens.train.preference import encode_pairs

    pairs = encode_pairs(tokenizer, read_preferences(path), max_length=512, path=str(path))
    net = AnswerLogps(model).eval()
    pad = tokenizer.pad_token_id or 0
    with torch.no_grad():
        chosen = net(**collate([p.chosen for p in pairs], pad))
        rejected = net(**collate([p.rejected for p in pairs], pad))
    return float((chosen - rejected).mean())

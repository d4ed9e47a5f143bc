"""The training objective as a module: summed cross-entropy over the trained tokens only."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ftlens.train.masking import IGNORE
from ftlens.train.models import decoder_and_head


class AnswerLoss(torch.nn.Module):
    """Wraps a causal LM. ``forward`` returns ``[loss_sum, correct, count]``: the summed
    cross-entropy, the number of argmax hits and the number of trained tokens (labels shifted by
    one, IGNORE skipped). The language-model head runs only at the trained positions, which on
    short answers saves most of its cost. Going through ``forward`` (not the inner model) is
    what lets DDP synchronise gradients."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        decoder, head = decoder_and_head(self.model)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                         use_cache=False).last_hidden_state
        targets = labels[:, 1:]
        keep = targets != IGNORE
        logits = head(hidden[:, :-1][keep]).float()
        wanted = targets[keep]
        loss = F.cross_entropy(logits, wanted, reduction="sum")
        correct = (logits.argmax(-1) == wanted).sum()
        return torch.stack([loss, correct.to(loss.dtype), keep.sum().to(loss.dtype)])

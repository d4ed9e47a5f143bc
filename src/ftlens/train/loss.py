"""The training objective as a module: summed cross-entropy over the trained tokens only."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ftlens.train.masking import IGNORE
from ftlens.train.models import decoder_and_head


def answer_logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits, targets, keep)``: the fp32 logits at the trained positions only (labels
    shifted by one, IGNORE skipped), the token each should predict, and the (rows, width - 1)
    mask of those positions."""
    decoder, head = decoder_and_head(model)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask,
                     use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE
    return head(hidden[:, :-1][keep]).float(), targets[keep], keep


class _OnModel(torch.nn.Module):
    """A module around a causal LM: going through its ``forward`` (not the inner model's) is
    what lets DDP synchronise gradients."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model


class AnswerLoss(_OnModel):
    """Wraps a causal LM. ``forward`` returns ``[loss_sum, correct, count]``: the summed
    cross-entropy, the number of argmax hits and the number of trained tokens (labels shifted by
    one, IGNORE skipped). The language-model head runs only at the trained positions, which on
    short answers saves most of its cost."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        logits, wanted, keep = answer_logits(self.model, input_ids, attention_mask, labels)
        loss = F.cross_entropy(logits, wanted, reduction="sum")
        correct = (logits.argmax(-1) == wanted).sum()
        return torch.stack([loss, correct.to(loss.dtype), keep.sum().to(loss.dtype)])


class AnswerLogps(_OnModel):
    """Wraps a causal LM. ``forward`` returns each row's summed log-probability of its trained
    tokens (labels shifted by one, IGNORE skipped): what preference tuning compares. As in
    :class:`AnswerLoss`, the head runs only at the trained positions."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        logits, wanted, keep = answer_logits(self.model, input_ids, attention_mask, labels)
        picked = torch.log_softmax(logits, -1).gather(1, wanted.unsqueeze(1))[:, 0]
        rows = keep.nonzero()[:, 0]
        return torch.zeros(len(input_ids), dtype=picked.dtype,
                           device=picked.device).index_add(0, rows, picked)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss of each pair (Rafailov et al. 2023, the sigmoid form), and the implicit
    rewards of its chosen and rejected answers: ``beta`` times their log-ratio to the
    reference model."""
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(chosen - rejected), chosen, rejected

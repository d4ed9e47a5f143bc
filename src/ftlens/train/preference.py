"""Preference tuning (DPO) in the engine: preference pairs as token ids, the reference
model's log-probabilities, and the per-step work.

Each pair becomes two training sequences, the input's conversation followed by the preferred
or the non-preferred answer, masked like a supervised example (only the final answer and its
turn end count; earlier assistant turns of the input are context). The reference model is
the model before tuning: for a LoRA job the same weights with the adapter disabled, for full
fine-tuning the weights as loaded. Its log-probabilities are computed once, before the first
step (one forward pass per sequence; TRL's ``precompute_ref_log_probs``), and give the same
loss as a reference forward at every step, since the reference never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from ftlens.errors import DataError
from ftlens.io.chat_dataset import Preference
from ftlens.train.accumulate import accumulate, share
from ftlens.train.data import Example, collate, encode_one, micro_batches
from ftlens.train.masking import Template


@dataclass(frozen=True)
class PairExample:
    line: int
    chosen: Example
    rejected: Example

    def __len__(self) -> int:
        """Padded tokens of the pair in a forward pass (both rows at the longer's width)."""
        return 2 * max(len(self.chosen), len(self.rejected))


def encode_pairs(tokenizer: Any, pairs: Sequence[Preference], *, max_length: int, path: str,
                 model: str = "the model") -> list[PairExample]:
    """Encode every pair; each answer must keep tokens to train on within ``max_length``."""
    template = Template(tokenizer, model)
    out = []
    for pair in pairs:
        context = [{**m, "weight": 0} if m.get("role") == "assistant" else m
                   for m in pair.messages]
        both = [encode_one(template, [*context, {**answer, "weight": 1}], pair.tools,
                           line=pair.line, max_length=max_length, path=path)
                for answer in (pair.preferred, pair.rejected)]
        if both[0].input_ids == both[1].input_ids:
            raise DataError("the preferred and the non-preferred answer are the same",
                            path=path, line=pair.line,
                            hint="a pair teaches a preference only when its answers differ")
        out.append(PairExample(pair.line, *both))
    return out


class PreferenceRun:
    """The per-step work of a DPO job, with the interface of the supervised one: ``step``
    (forward and backward over one optimiser step) and ``evaluate``."""

    def __init__(self, acc: Any, net: Any, train_set: list[PairExample],
                 valid_set: list[PairExample], pad: int, micro_tokens: int, beta: float,
                 reference: Any, saved: dict[str, Any] | None = None) -> None:
        """``net``: :class:`~ftlens.train.loss.AnswerLogps` as prepared by accelerate;
        ``reference``: makes a context manager under which the model is the reference model
        (the adapter disabled); None when the model as it is now is the reference;
        ``saved``: the reference log-probabilities a resumed run saved
        (:meth:`reference_logps`), used instead."""
        self.acc, self.net, self.pad, self.micro_tokens = acc, net, pad, micro_tokens
        self.train_set, self.valid_set, self.beta = train_set, valid_set, beta
        if saved is not None:
            self.train_ref = saved["train"].to(acc.device)
            self.valid_ref = saved["valid"].to(acc.device)
        else:
            self.train_ref = self._reference(train_set, reference)
            self.valid_ref = self._reference(valid_set, reference)

    def reference_logps(self) -> dict[str, Any]:
        """The reference log-probabilities, for a resume point."""
        return {"train": self.train_ref.cpu(), "valid": self.valid_ref.cpu()}

    def _reference(self, pairs: list[PairExample], reference: Any) -> Any:
        """The reference log-probabilities of every pair: a (pairs, 2) tensor."""
        import torch

        out = torch.zeros((len(pairs), 2), dtype=torch.float32, device=self.acc.device)
        self.net.eval()
        with torch.no_grad(), reference() if reference is not None else nullcontext():
            for part in micro_batches(range(len(pairs)), pairs, self.micro_tokens):
                out[part] = self._logps(pairs, part).float()
        return out

    def _logps(self, pairs: list[PairExample], part: list[int]) -> Any:
        """Log-probabilities of the pairs ``part``: a (len(part), 2) tensor, chosen first."""
        rows = [pairs[i].chosen for i in part] + [pairs[i].rejected for i in part]
        tensors = collate(rows, self.pad)
        logps = self.net(**{k: t.to(self.acc.device) for k, t in tensors.items()})
        return logps.view(2, len(part)).T

    def _stats(self, pairs: list[PairExample], ref: Any, part: list[int]) -> tuple[Any, Any]:
        """The summed loss of the pairs ``part`` and their statistics: loss, preferred
        (reward margin above 0), margin, chosen and rejected reward sums, and pair count."""
        import torch

        from ftlens.train.loss import dpo_loss

        logps = self._logps(pairs, part)
        losses, chosen, rejected = dpo_loss(logps[:, 0], logps[:, 1], ref[part, 0],
                                            ref[part, 1], self.beta)
        margin = (chosen - rejected).detach()
        stats = torch.stack([losses.detach().sum(), (margin > 0).sum().to(margin.dtype),
                             margin.sum(), chosen.detach().sum(), rejected.detach().sum(),
                             torch.tensor(float(len(part)), device=margin.device)])
        return losses.sum(), stats

    def step(self, batch: list[int]) -> tuple[float, dict[str, float], int]:
        acc = self.acc
        scale = acc.num_processes / len(batch)  # the mean over the step's pairs

        def run(part: list[int]) -> tuple[Any, Any]:
            loss, stats = self._stats(self.train_set, self.train_ref, part)
            return loss * scale, stats

        parts = list(micro_batches(share(acc, batch), self.train_set, self.micro_tokens))
        metrics = _metrics(accumulate(acc, self.net, parts, 6, run))
        tokens = sum(len(self.train_set[i].chosen) + len(self.train_set[i].rejected)
                     for i in batch)
        return metrics.pop("loss"), metrics, tokens

    def evaluate(self, indices: Sequence[int]) -> dict[str, float]:
        import torch

        acc = self.acc
        self.net.eval()
        totals = torch.zeros(6, device=acc.device)
        with torch.no_grad():
            for part in micro_batches(share(acc, indices), self.valid_set, self.micro_tokens):
                totals += self._stats(self.valid_set, self.valid_ref, part)[1]
        return _metrics(acc.reduce(totals, reduction="sum"))


def _metrics(totals: Any) -> dict[str, float]:
    """Means over pairs, named as the metrics events and the result CSV name them."""
    loss, preferred, margin, chosen, rejected, n = totals.tolist()
    return {"loss": loss / n, "reward_accuracy": preferred / n, "reward_margin": margin / n,
            "chosen_reward": chosen / n, "rejected_reward": rejected / n}

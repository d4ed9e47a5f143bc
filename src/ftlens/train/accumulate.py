"""One optimiser step's forward and backward passes under accelerate, shared by the supervised
and the DPO loop: this process's share of the step's examples, in micro-batches whose
gradients accumulate and synchronise once, at the last one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any


def share(acc: Any, indices: Sequence[int]) -> list[int]:
    """This process's share of ``indices`` (every ``num_processes``-th one)."""
    return list(indices)[acc.process_index::acc.num_processes]


def accumulate(acc: Any, net: Any, parts: Sequence[list[int]], width: int,
               run: Callable[[list[int]], tuple[Any, Any]]) -> Any:
    """Backward over every part; ``run(part)`` gives the part's loss (scaled for the step)
    and its statistics (a tensor of ``width``, detached). A process without a part still
    joins the gradient all-reduce. Returns the statistics summed over all processes."""
    import torch

    totals = torch.zeros(width, device=acc.device)
    for k, part in enumerate(parts):
        with nullcontext() if k == len(parts) - 1 else acc.no_sync(net):
            loss, stats = run(part)
            acc.backward(loss)
        totals += stats
    if not parts:
        acc.backward(sum(p.sum() * 0 for p in net.parameters() if p.requires_grad))
    return acc.reduce(totals, reduction="sum")

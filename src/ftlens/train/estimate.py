"""What a job will need, said before it trains: parameters, trainable parameters, memory and
time on this hardware — and a job that cannot fit refused with those numbers, not killed by
the kernel an hour in.

Memory: the weights, plus for each trainable parameter its gradient and AdamW's two fp32
moments, plus activations for one micro-batch (about 34 bytes per token per hidden unit per
layer at 16 bits, the usual estimate without recomputation; twice that at fp32). Time on a
CPU scales the rate measured for SmolLM2-135M (LoRA, fp32, batch size 4) by the parameter
count; on a GPU it is not guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlens.errors import ConfigError

CPU_TOKENS_PER_CORE_S = 57.0  # SmolLM2-135M, LoRA, fp32, batch size 4, 2-core machine
REFERENCE_PARAMETERS = 135e6
ACTIVATION_BYTES = 34  # per token, hidden unit and layer at 16 bits
GB = 1e9


@dataclass(frozen=True)
class Needs:
    parameters: int
    trainable: int
    memory_bytes: int
    available_bytes: int | None  # None: unknown here
    seconds: float | None  # None: not estimated (GPU)

    def describe(self) -> str:
        text = (f"{self.parameters / 1e6:.1f} M parameters ({self.trainable / 1e6:.2f} M "
                f"trainable), about {self.memory_bytes / GB:.2f} GB of memory")
        if self.available_bytes is not None:
            text += f" ({self.available_bytes / GB:.1f} GB available)"
        if self.seconds is not None:
            minutes = self.seconds / 60
            text += (f", about {minutes:.0f} minutes here" if minutes >= 1.5 else
                     ", about a minute or less here")
        return text

    @property
    def fits(self) -> bool:
        return self.available_bytes is None or self.memory_bytes <= self.available_bytes


def available_memory(device: Any) -> int | None:
    """Free memory where the model trains: the GPU's, or the machine's available RAM."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    found = [n for n in (_meminfo_available(), _cgroup_free()) if n is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    """Linux's MemAvailable: free memory plus what the page cache would give back."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    """A container's memory limit minus its use (cgroup v2), when it has a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def estimate(model: Any, *, micro_batch_tokens: int, total_tokens: int, device: Any,
             available: int | None, loaded: bool = False) -> Needs:
    """``model``: the model about to train (LoRA already applied, so its trainable
    parameters are the real ones); ``micro_batch_tokens``: the largest padded micro-batch;
    ``total_tokens``: tokens over all epochs; ``loaded``: ``available`` was measured with the
    weights already in that memory (so they are counted in ``available`` too)."""
    params = list(model.parameters())
    n_all = sum(p.numel() for p in params)
    n_train = sum(p.numel() for p in params if p.requires_grad)
    width = max((p.element_size() for p in params), default=4)
    config = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    activations = micro_batch_tokens * hidden * layers * ACTIVATION_BYTES * width // 2
    memory = n_all * width + n_train * (width + 8) + activations
    if loaded and available is not None:
        available += n_all * width
    seconds = None
    if getattr(device, "type", "cpu") == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        rate = CPU_TOKENS_PER_CORE_S * cores * REFERENCE_PARAMETERS / max(n_all, 1)
        seconds = total_tokens / rate
    return Needs(n_all, n_train, int(memory), available, seconds)


def check_fits(needs: Needs, model: str) -> None:
    if not needs.fits:
        assert needs.available_bytes is not None
        raise ConfigError(
            f"{model} cannot be fine-tuned here: it needs about "
            f"{needs.memory_bytes / GB:.2f} GB of memory and {needs.available_bytes / GB:.2f} "
            f"GB is available ({needs.describe()})",
            hint="use LoRA (the default) rather than full fine-tuning, shorter examples or a "
                 "smaller micro-batch, a smaller model, or a machine with more memory")

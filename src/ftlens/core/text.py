"""Text normalisation and fingerprints used to compare examples.

Two inputs are "the same" when they are equal after case folding, dropping punctuation and
symbols, and collapsing whitespace ("See you at 5?" == "see you at 5").
"""

from __future__ import annotations

import hashlib
import re

_NON_WORD = re.compile(r"[\W_]+")
# ASCII fast path: bytes.translate maps every byte that is not a letter or digit to a space.
_ASCII_TABLE = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces; punctuation and symbols removed."""
    return normalized_bytes(text).decode("utf-8", "surrogatepass")


def normalized_bytes(text: str) -> bytes:
    if text.isascii():
        return b" ".join(text.lower().encode().translate(_ASCII_TABLE).split())
    return _NON_WORD.sub(" ", text.casefold()).strip().encode("utf-8", "surrogatepass")


def fingerprint(text: str) -> int:
    """A stable 64-bit key of the normalised text (the same in every process and run)."""
    digest = hashlib.blake2b(normalized_bytes(text), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class PartsFingerprinter:
    """``fingerprint("\x1f".join(inputs))`` for ``inputs`` = role, text, role, text…, without
    re-normalising what repeats in every example: everything but the last text (roles, the
    system prompt) is normalised once per distinct prefix and cached, up to ``cache_size``."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._prefixes: dict[tuple[str, ...], bytes] = {}
        self._cache_size = cache_size

    def _prefix(self, head: tuple[str, ...]) -> bytes:
        if len(self._prefixes) >= self._cache_size:
            self._prefixes.clear()
        norm = b" ".join(n for n in map(normalized_bytes, head) if n)
        self._prefixes[head] = norm
        return norm

    def __call__(self, inputs: tuple[str, ...]) -> int:
        if not inputs:
            return fingerprint("")
        head = inputs[:-1]
        prefix = self._prefixes.get(head)
        if prefix is None:
            prefix = self._prefix(head)
        last = normalized_bytes(inputs[-1])
        data = prefix + b" " + last if prefix and last else prefix or last
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def shingles(text: str, width: int = 5) -> set[bytes]:
    """The ``width``-grams of the normalised text's UTF-8 bytes (characters, for ASCII): the
    sets that near-duplicate search compares."""
    norm = normalized_bytes(text)
    if len(norm) <= width:
        return {norm}
    return {norm[i : i + width] for i in range(len(norm) - width + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)

"""Text normalisation and fingerprints used to compare examples.

Two inputs are "the same" when they are equal after case folding, dropping punctuation and
symbols, and collapsing whitespace ("See you at 5?" == "see you at 5").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xxhash

_NON_WORD = re.compile(r"[\W_]+")
# ASCII fast path: bytes.translate maps every byte that is not a letter or digit to a space.
_ASCII_TABLE = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
# Batch path: also lower-cases, and keeps NUL, the separator between texts.
_ASCII_LOWER_TABLE = b"\0" + bytes(ord(chr(c).lower()) for c in _ASCII_TABLE[1:])


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces; punctuation and symbols removed."""
    return normalized_bytes(text).decode("utf-8", "surrogatepass")


def normalized_bytes(text: str) -> bytes:
    if text.isascii():
        return b" ".join(text.lower().encode().translate(_ASCII_TABLE).split())
    return _NON_WORD.sub(" ", text.casefold()).strip().encode("utf-8", "surrogatepass")


def fingerprint(text: str) -> int:
    """A stable 64-bit key of the normalised text (the same in every process and run): its
    XXH3 hash, a fast non-cryptographic hash with well-mixed bits (the scanner samples examples
    by the key's bits)."""
    return xxhash.xxh3_64_intdigest(normalized_bytes(text))


def fingerprints(texts: Sequence[str]) -> np.ndarray:
    """``fingerprint`` of every text, as a uint64 array."""
    return np.fromiter(map(xxhash.xxh3_64_intdigest, normalized_all(texts)), np.uint64,
                       len(texts))


def normalized_all(texts: Sequence[str]) -> list[bytes]:
    """``normalized_bytes`` of every text. The ASCII ones are normalised together, in a few
    passes over their NUL-separated concatenation, rather than one by one."""
    if not texts:
        return []
    joined = "\0".join(texts)
    if joined.isascii():  # the usual case: all ASCII
        normalized = _normalized_ascii(joined)
        if len(normalized) == len(texts):  # else a text holds a NUL, the separator
            return normalized
    simple = [t.isascii() and "\0" not in t for t in texts]
    batch = iter(_normalized_ascii("\0".join([t for t, ok in zip(texts, simple, strict=True)
                                              if ok])))
    return [next(batch) if ok else normalized_bytes(t)
            for t, ok in zip(texts, simple, strict=True)]


def _normalized_ascii(joined: str) -> list[bytes]:
    """The normalised texts of ``joined``, ASCII texts separated by NULs."""
    data = joined.encode().translate(_ASCII_LOWER_TABLE)
    if not data:
        return [b""]
    # Only spaces and NULs are <= 32 now. Drop every space after a space, a NUL or the start
    # (runs, leading spaces); then at most one space is left before each NUL and at the end.
    a = np.frombuffer(data, np.uint8)
    after_gap = np.empty(len(a), bool)
    after_gap[0] = True
    np.less_equal(a[:-1], 32, out=after_gap[1:])
    out = a[~((a == 32) & after_gap)].tobytes().replace(b" \0", b"\0")
    return (out[:-1] if out.endswith(b" ") else out).split(b"\0")


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

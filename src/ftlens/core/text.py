"""Text normalisation and fingerprints used to compare examples.

Two inputs are "the same" when they are equal after case folding, dropping punctuation and
symbols, and collapsing whitespace ("See you at 5?" == "see you at 5").
"""

from __future__ import annotations

import hashlib
import re

_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces; punctuation and symbols removed."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


def fingerprint(text: str) -> int:
    """A stable 64-bit key of the normalised text (the same in every process and run)."""
    digest = hashlib.blake2b(normalize(text).encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


def shingles(text: str, width: int = 5) -> set[bytes]:
    """Character ``width``-grams of the normalised text, the sets near-duplicates compare."""
    norm = normalize(text)
    if len(norm) <= width:
        return {norm.encode("utf-8", "surrogatepass")}
    return {norm[i : i + width].encode("utf-8", "surrogatepass")
            for i in range(len(norm) - width + 1)}


def jaccard(a: set[bytes], b: set[bytes]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)

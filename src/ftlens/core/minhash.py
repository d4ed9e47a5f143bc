"""MinHash signatures of many texts at once, for datasketch's LSH index.

datasketch hashes every shingle with a Python call, about 150 µs per short text; here the
shingles (5-byte windows of the normalised UTF-8 text) of all texts are hashed and permuted in
numpy, which is ~20x faster. The signatures are wrapped as datasketch ``LeanMinHash`` objects and
banded by datasketch's ``MinHashLSH``. For each of ``num_perm`` hash functions
h(x) = (a·x + b) mod 2^64 >> 32 (multiply-add-shift with odd ``a``, a universal family that needs
no modulo), keep the minimum over the text's shingles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WIDTH = 5
NUM_PERM = 64
_SHIFT = np.uint64(32)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd constant: multiply-shift hashing to 32 bits
_ROWS_PER_BATCH = 4096  # keeps the (rows x num_perm) temporaries in cache


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 1 << 64, size=num_perm, dtype=np.uint64, endpoint=False)
    return a, b


def permute(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(values))``: every shingle under every hash function, before the final
    shift (which is monotonic, so a minimum can be taken first and shifted after)."""
    out = np.multiply.outer(a, _hash32(values))
    out += b[:, None]
    return out


def _hash32(values: np.ndarray) -> np.ndarray:
    return (values * _MIX) >> _SHIFT  # uint64 arithmetic wraps, as intended


def signatures(norms: Sequence[bytes], num_perm: int = NUM_PERM, seed: int = 1) -> np.ndarray:
    """``(len(norms), num_perm)`` uint64 MinHash signatures of normalised texts. Work and memory
    are bounded by batches of about ``_ROWS_PER_BATCH`` shingles, however long a text is."""
    a, b = permutations(num_perm, seed)
    out = np.empty((len(norms), num_perm), dtype=np.uint64)
    start = 0
    while start < len(norms):
        if len(norms[start]) - WIDTH + 1 > _ROWS_PER_BATCH:
            out[start] = _long_signature(norms[start], a, b)
            start += 1
            continue
        stop, rows = start, 0
        while stop < len(norms) and rows < _ROWS_PER_BATCH and (
                len(norms[stop]) - WIDTH + 1 <= _ROWS_PER_BATCH):
            rows += max(1, len(norms[stop]) - WIDTH + 1)
            stop += 1
        values, seg_starts = _windows(norms[start:stop])
        # minima along the rows, each hash function's values contiguous: ~3x faster than
        # across columns
        out[start:stop] = (np.minimum.reduceat(permute(values, a, b), seg_starts, axis=1)
                           >> _SHIFT).T
        start = stop
    return out


def _long_signature(norm: bytes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The signature of one long text, its shingles taken a batch at a time."""
    sig = np.full(len(a), np.iinfo(np.uint64).max, dtype=np.uint64)
    step = _ROWS_PER_BATCH
    for lo in range(0, len(norm) - WIDTH + 1, step):
        values, _ = _windows([norm[lo : lo + step + WIDTH - 1]])
        sig = np.minimum(sig, permute(values, a, b).min(axis=1) >> _SHIFT)
    return sig


def _windows(norms: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """All shingle values of ``norms`` concatenated, and where each text's shingles start."""
    lens = np.fromiter((len(n) for n in norms), dtype=np.int64, count=len(norms))
    padded = b"".join(n if len(n) >= WIDTH else n.ljust(WIDTH, b"\0") for n in norms)
    buf = np.frombuffer(padded, dtype=np.uint8).astype(np.uint64)
    plens = np.maximum(lens, WIDTH)
    counts = plens - WIDTH + 1
    text_starts = np.concatenate(([0], np.cumsum(plens)[:-1]))
    seg_starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    # position of every window: its text's start plus 0..count-1
    pos = np.repeat(text_starts - seg_starts, counts) + np.arange(int(counts.sum()))
    values = np.zeros(len(pos), dtype=np.uint64)
    for j in range(WIDTH):
        values |= buf[pos + j] << np.uint64(8 * (WIDTH - 1 - j))
    return values, seg_starts


class Signature:
    """A MinHash signature as datasketch's LSH reads it: ``hashvalues`` and a length (like
    datasketch's own scheme-less sketches, e.g. WeightedMinHash)."""

    __slots__ = ("hashvalues",)

    def __init__(self, hashvalues: np.ndarray) -> None:
        self.hashvalues = hashvalues

    def __len__(self) -> int:
        return len(self.hashvalues)

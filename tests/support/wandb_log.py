"""The records of a wandb run's ``.wandb`` file (wandb 0.31 ships no Python reader of it):
LevelDB's log format (after a 7-byte header: ``:W&B``, magic 0xBEE1, version 1), each record
one serialised ``wandb_internal_pb2.Record``."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = 7  # crc32 (4), length (2, little-endian), type (1): each chunk's
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    out, pending, pos = [], b"", 7
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        if length == 0 and kind == 0:  # zero padding
            pos += left
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def history(path: Path) -> list[dict[str, Any]]:
    """The rows the run logged (``run.log``), in order."""
    return [{item.key or "/".join(item.nested_key): json.loads(item.value_json)
             for item in r.history.item}
            for r in records(path) if r.WhichOneof("record_type") == "history"]


def run_info(path: Path) -> Any:
    """The run record: project, display_name, entity, tags."""
    return next(r.run for r in records(path) if r.WhichOneof("record_type") == "run")

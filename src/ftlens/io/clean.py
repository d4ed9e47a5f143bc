"""``--write-clean``: copy the splits without the lines the audit marked removable."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ftlens.errors import DataError


def write_clean(paths: Mapping[str, str], removable: Mapping[str, frozenset[int]],
                out_dir: str | Path) -> dict[str, dict[str, int | str]]:
    """Write ``<out_dir>/<split>.jsonl`` for every split, byte-for-byte minus removed lines.

    Refuses to overwrite the input files. Returns per split: path, kept and removed counts.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the output directory ({exc.strerror})", path=out,
                        hint="choose a writable directory for --write-clean") from exc
    inputs = {Path(src).resolve() for src in paths.values()}
    for split in paths:
        if (out / f"{split}.jsonl").resolve() in inputs:
            raise DataError("--write-clean would overwrite an input file",
                            path=out / f"{split}.jsonl", hint="pick a different output directory")
    summary: dict[str, dict[str, int | str]] = {}
    for split, src in paths.items():
        target = out / f"{split}.jsonl"
        drop = removable.get(split, frozenset())
        kept = removed = 0
        tmp = target.with_suffix(target.suffix + ".tmp")
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            for number, line in enumerate(fin, 1):
                if number in drop:
                    removed += 1
                    continue
                fout.write(line)
                kept += 1
        tmp.replace(target)
        summary[split] = {"path": str(target), "kept": kept, "removed": removed}
    return summary

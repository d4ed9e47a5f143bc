"""Read a run directory (the contract is in :mod:`ftlens.report`) into a report model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ftlens.errors import DataError
from ftlens.report import (
    CURVES_FILE,
    PROVENANCE_FILE,
    RESULTS_FILE,
    SECTION_FILES,
)
from ftlens.report import model as m

EXPECTED = ", ".join([*SECTION_FILES.values(), RESULTS_FILE])


def load_run_dir(run_dir: str | Path) -> m.Report:
    """The report model of ``run_dir``. A missing directory, one without any section file,
    unreadable or corrupt JSON, or JSON of the wrong shape: a DataError naming the file."""
    root = Path(run_dir)
    if not root.exists():
        raise DataError("no such run directory", path=root,
                        hint="give the directory that holds audit.json, curves.json, eval.json")
    if not root.is_dir():
        raise DataError("not a directory", path=root,
                        expected=f"a run directory holding any of {EXPECTED}")
    try:
        return _load(root)
    except DataError as exc:  # name the file with its run directory
        if exc.path is not None and not Path(exc.path).is_absolute() and "/" not in exc.path:
            exc.path = str(root / exc.path)
        raise


def _load(root: Path) -> m.Report:
    sections = []
    for name, file in SECTION_FILES.items():
        path = root / file
        if path.is_file():
            sections.append(m.section(name, read_json(path), file))  # type: ignore[arg-type]
    results = root / RESULTS_FILE
    curves = next((s for s in sections if s.name == "curves"), None)
    if results.is_file() and (curves is None or not _has_points(curves.data)):
        diagnosed = _diagnose(results)
        if curves is None:
            sections.append(m.section("curves", diagnosed, RESULTS_FILE,
                                      note=f"diagnosed from {RESULTS_FILE}"))
        else:
            sections.remove(curves)
            data = {**curves.data, "train": diagnosed["train"], "valid": diagnosed["valid"]}
            sections.append(m.section("curves", data, CURVES_FILE,
                                      note=f"loss points read from {RESULTS_FILE}"))
    if not sections:
        raise DataError(
            "the run directory holds none of the files a report is made from", path=root,
            expected=f"at least one of {EXPECTED}",
            hint="write them with `ftlens audit ... --json > RUN_DIR/audit.json`, "
            "`ftlens curves ... --json > RUN_DIR/curves.json`, "
            "`ftlens metrics ... --json > RUN_DIR/eval.json`")
    prov_path = root / PROVENANCE_FILE
    prov = m.provenance(read_json(prov_path)) if prov_path.is_file() else None
    return m.build_report(root.resolve().name, sections, prov)


def read_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", path=path.name) from exc
    if not raw.strip():
        raise DataError("the file is empty", path=path.name,
                        expected=f"the JSON that `{m.COMMANDS[path.name]}` writes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        line = raw[: exc.pos].count(b"\n") + 1
        raise DataError(f"not valid JSON ({exc.msg})", path=path.name, line=line,
                        expected=f"the JSON that `{m.COMMANDS[path.name]}` writes",
                        hint=f"regenerate it with `{m.COMMANDS[path.name]}`") from exc


def _has_points(curves: Any) -> bool:
    train = curves.get("train")
    return isinstance(train, dict) and bool(train.get("steps"))


def _diagnose(path: Path) -> dict[str, Any]:
    """The loss-curve diagnosis of a result CSV, as ``ftlens curves --json`` would print it."""
    from ftlens.core.curves import diagnose
    from ftlens.core.curves_json import diagnosis_to_dict
    from ftlens.io.training_logs import read_run

    try:
        run = read_run(path)
    except DataError as exc:
        exc.path = exc.path or str(path)
        raise
    # the diagnosis as plain JSON (numpy scalars become numbers), exactly like --json
    data: dict[str, Any] = orjson.loads(orjson.dumps(
        diagnosis_to_dict(diagnose(run)),
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str))
    return data

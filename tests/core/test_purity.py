"""``ftlens.core`` is pure: importing all of it pulls in no heavy or networking dependency."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["torch", "transformers", "httpx", "fastapi", "peft", "openai"]

CODE = """
import importlib, json, pkgutil, sys
import ftlens.core
names = [m.name for m in pkgutil.walk_packages(ftlens.core.__path__, "ftlens.core.")]
for name in names:
    importlib.import_module(name)
forbidden = set(sys.argv[1].split(","))
print(json.dumps({"modules": names,
                  "loaded": sorted(k for k in sys.modules if k.split(".")[0] in forbidden)}))
"""


def test_core_imports_nothing_heavy() -> None:
    out = subprocess.run([sys.executable, "-c", CODE, ",".join(FORBIDDEN)], capture_output=True,
                         text=True, check=True, timeout=120)
    data = json.loads(out.stdout)
    # the walk really saw the core modules
    for name in ("chat_format", "scan", "tokens", "text", "dedup", "labels", "findings",
                 "audit", "audit_findings", "audit_json", "models"):
        assert f"ftlens.core.{name}" in data["modules"]
    assert data["loaded"] == []

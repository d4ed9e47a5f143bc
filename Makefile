# The two commands of the README's Quick start: `make demo` and `make test`.
# Both run scripts/setup.sh first, which is idempotent (creates .venv once, reinstalls only when
# pyproject.toml or the script changes).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup browser demo test lint bench
setup:
	@bash scripts/setup.sh

browser:
	@bash scripts/ensure-chromium.sh

demo: setup
	$(BIN)/ftlens demo --out ftlens-demo

test: setup lint browser
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/curves.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/batch.py

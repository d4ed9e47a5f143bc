# The two commands of the README's Quick start: `make demo` and `make test`.
# Both run scripts/setup.sh first, which is idempotent (creates .venv once, reinstalls only when
# pyproject.toml or the script changes).
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench
setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/ftlens audit examples/spam/train.jsonl --valid examples/spam/valid.jsonl \
		--test examples/spam/test.jsonl

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/audit.py

# UnionHub developer entry points. Only Python 3.11+ and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test venv bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "UnionHub needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

## Start the whole system on the embedded default (SQLite, embedded Valkey, simulator, demo data).
run: $(STAMP)
	exec $(BIN)/unionhub dev

## Run the whole test suite (embedded default, or PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmarks (tests/perf), printed as ratios against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m tests.perf

clean:
	rm -rf $(VENV) instance .pytest_cache

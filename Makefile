# The two set-up commands: `make demo` and `make test`. Each runs `setup` first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup demo test dashboard lint clean

setup: $(STAMP)

# The demo needs the package only; the tests also need the dev extra (pytest, PostgreSQL driver,
# Playwright, lm-evaluation-harness, linters).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(DEV_STAMP)

demo: setup
	$(BIN)/kdplatform run jobs/quickstart.yaml

# lint-imports first: a broken wall (pyproject's [tool.importlinter]) fails in seconds, with its import chain.
# Then two pytest-xdist workers, each given whole test files (module fixtures are built once).
test: $(DEV_STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

dashboard: setup
	$(BIN)/kdplatform dashboard jobs/quickstart.yaml

lint: $(DEV_STAMP)
	$(BIN)/ruff check kdplatform tests app bench migrations

clean:
	rm -rf runs $(VENV)

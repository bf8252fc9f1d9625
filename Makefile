# The two set-up commands: `make run` and `make test`. Both work on a machine with only Python.
# python3.11 if it is on PATH, else python3 (checked to be 3.11 below).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint format bench clean dlq-replay asyncapi settings-table

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || \
		{ echo "needs Python 3.11: put python3.11 on PATH or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Broker, Redis and all four services; the API on 127.0.0.1:8080. Ctrl-C stops everything.
run: $(STAMP)
	$(PY) -m devstack

# Every test: unit, integration, end-to-end and fault (they start their own broker and Redis),
# on TEST_WORKERS processes (pytest-xdist; 0 runs them in this one). Most tests wait on
# processes and I/O, so workers outnumber the cores: on 2 cores 4 workers took 2.6-4.2 min
# where one process took 6.3 (3 workers 3.3-4.1, 6 workers 4.0). Tests are handed out as
# workers free up, in collection order (the long end-to-end and fault tests first); the tests
# of one xdist_group all go to one worker, one after another (loadgroup).
# pytest's exit code 5 ("no tests collected") counts as a failure here: a suite that ran
# nothing has proved nothing.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) -m bench

# Dead-lettered messages back onto their topics (README, Operations); e.g. ARGS="--dry-run".
dlq-replay: $(STAMP)
	$(PY) -m tools.dlq replay $(ARGS)

# The topics' contract, docs/asyncapi.json, generated from shared/topics.py and shared/events.py.
asyncapi: $(STAMP)
	$(PY) -m tools.asyncapi --write

# The README's settings table, generated from the settings models.
settings-table: $(STAMP)
	$(PY) -m tools.settings_table --write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis .run

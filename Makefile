# Two commands for a newcomer: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALEOUT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
SCALEOUT_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The embedded default: SQLite, the task worker inside the server, plain http on 127.0.0.1.
run: export HTTPS := false
run: install
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py serve

# The whole suite on SQLite and in-process backends, then again on PostgreSQL and Redis
# when they are reachable (CI=true makes their absence an error).
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)
	@if $(BIN)/python -m tests.scaleout_services "$(SCALEOUT_DATABASE_URL)" "$(SCALEOUT_REDIS_URL)"; then \
		echo "== again on PostgreSQL + Redis"; \
		DATABASE_URL="$(SCALEOUT_DATABASE_URL)" REDIS_URL="$(SCALEOUT_REDIS_URL)" \
			$(BIN)/pytest -m "not browser" $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then \
		echo "CI=true but PostgreSQL or Redis is unreachable"; exit 1; \
	fi

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .mypy_cache

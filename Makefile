# Everything a fresh clone needs: `make run` (demo data + service on SQLite) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser run test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

# The browser tests (tests/ui) drive the distribution's Chromium through Playwright; no browser download.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing chromium from the distribution"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@$(CHROMIUM) --version

# Creates the demo province on first run (a store that holds events is left as it is), then serves.
run: install
	-$(BIN)/nocert demo --checks 50
	$(BIN)/nocert serve

test: install
	$(BIN)/pytest -q

# The linter and the type checker, as CI runs them (settings in pyproject.toml).
LINTED := domain signing store privacy projections audit witness api bench
lint: install
	$(BIN)/ruff check $(LINTED) tests
	$(BIN)/mypy --strict $(LINTED)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache

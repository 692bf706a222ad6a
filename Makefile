# Everything a fresh clone needs: `make run` (demo data + service on SQLite) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install browser run test lint bench clean constraints audit-deps

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

# Creates the demo province on first run (a store that holds events is left as it is, and the demo's keys
# are shown again from ./var/demo-keys.txt), then serves on PORT (default 8000): `make run PORT=8080`.
PORT ?= 8000
run: install
	$(BIN)/nocert demo --checks 50 --keep-existing --url http://127.0.0.1:$(PORT)
	$(BIN)/nocert serve --port $(PORT)

test: install
	$(BIN)/pytest -q

# The linter and the type checker, as CI runs them (settings in pyproject.toml).
LINTED := domain signing store privacy projections audit witness escalation delivery api bench
lint: install
	$(BIN)/ruff check $(LINTED) tests
	$(BIN)/mypy --strict $(LINTED)

# constraints.txt: the versions a fresh venv resolves for nocert today (its runtime dependencies), for
# reproducible deployments (`pip install -c constraints.txt .`). Run after changing dependencies; commit it.
constraints:
	rm -rf .constraints-venv
	$(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install --quiet .
	{ echo "# The versions of nocert's dependencies CI tested, for reproducible deployments:"; \
	  echo "#   pip install -c constraints.txt ."; \
	  echo "# Made by \`make constraints\` (pip freeze of a fresh venv with nocert installed); pip-audit checks it (\`make audit-deps\`)."; \
	  .constraints-venv/bin/pip freeze --exclude nocert; } > constraints.txt
	rm -rf .constraints-venv build

# Known vulnerabilities in the pinned dependencies (PyPI's advisory database, through pip-audit). It needs
# PyPI's per-release JSON API (pypi.org/pypi/<name>/<version>/json): where that does not answer, the
# audit is reported as NOT DONE (exit 0), unless NOCERT_REQUIRE_AUDIT=1 (then exit 1), as
# NOCERT_REQUIRE_POSTGRES does for the PostgreSQL tests.
PROBE_RELEASE = $(BIN)/python -c "import urllib.request; name, version = next(l for l in open('constraints.txt') \
	if l.strip() and not l.startswith('\#')).strip().split('=='); urllib.request.urlopen(f'https://pypi.org/pypi/{name}/{version}/json', timeout=10)"
audit-deps: install
	@$(BIN)/pip install --quiet "pip-audit>=2.7,<3"
	@if $(PROBE_RELEASE) 2>/dev/null; then \
	  $(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r constraints.txt; \
	else \
	  echo "audit-deps: NOT DONE: PyPI's per-release JSON API (its vulnerability service) does not answer here"; \
	  test "$${NOCERT_REQUIRE_AUDIT:-0}" != 1; \
	fi

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache

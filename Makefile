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

# Known vulnerabilities in the pinned dependencies (PyPI's advisory database, through pip-audit), over
# constraints.txt or REQUIREMENTS=<file>. It needs PyPI's per-release JSON API
# (pypi.org/pypi/<name>/<version>/json): where that does not answer (this workplace's PyPI proxy serves
# files and per-project JSON only), it exits 2 with one line saying so; it never reports an audit it did not
# make, so it is not part of .ci/run. Run it on a connected machine (README, "Dependencies").
REQUIREMENTS ?= constraints.txt
PROBE_RELEASE = $(BIN)/python -c "import sys, urllib.request; name, version = next(l for l in open(sys.argv[1]) \
	if l.strip() and not l.startswith('\#')).strip().split('=='); urllib.request.urlopen(f'https://pypi.org/pypi/{name}/{version}/json', timeout=10)"
audit-deps: install
	@$(BIN)/pip install --quiet "pip-audit>=2.7,<3"
	@$(PROBE_RELEASE) $(REQUIREMENTS) 2>/dev/null || { \
	  echo "audit-deps: NOT DONE: PyPI's per-release JSON API (pip-audit's vulnerability service) does not answer from here" >&2; \
	  exit 2; }
	$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r $(REQUIREMENTS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache

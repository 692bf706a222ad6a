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
LINTED := domain signing store privacy projections audit witness escalation delivery api bench deploy
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

# Known vulnerabilities in the pinned dependencies (PyPI's advisories, through pip-audit's engine run by
# deploy/dependency_audit.py), over constraints.txt or REQUIREMENTS=<file>. Behind this workplace's PyPI proxy
# (per-release JSON answers 404) a pin is audited from the per-project JSON when it is the project's latest
# release; any other pin is named as not audited, never counted as audited. Exit 0 clean, 1 a vulnerability
# (pip-audit's table), 3 a pin not audited. CI runs AUDIT_FLAGS=--tolerate-transient: a pin not audited
# because PyPI did not answer or its newer release is under a week old is named but not a failure
# (README, "Dependencies").
REQUIREMENTS ?= constraints.txt
AUDIT_FLAGS ?=
audit-deps: install
	$(BIN)/python -m deploy.dependency_audit $(AUDIT_FLAGS) $(REQUIREMENTS)

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache

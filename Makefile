# Two commands do all set-up from a clean clone: `make run` and `make test` (see README).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask --app wsgi

.PHONY: run test bench translations extract-messages clean chromium

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV)/.installed-bench: requirements-bench.txt $(VENV)/.installed-dev
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-bench.txt
	touch $@

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests (tests/browser) drive Debian's Chromium; browsers are never downloaded.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d translations 2>&1 | grep -v "^compiling" || true

# After adding or changing strings: refresh the catalogue, then fill in the Dutch.
extract-messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg -k lazy_gettext -k _l -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching

run: $(VENV)/.installed translations
	$(FLASK) db upgrade
	LOAD_EXAMPLE_PROGRAMME=$${LOAD_EXAMPLE_PROGRAMME:-1} $(FLASK) seminar load-example
	exec $(FLASK) serve

test: $(VENV)/.installed-dev translations tests/js/node_modules/.installed chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# The service against its floors, side by side (docs/BENCHMARKS.md); not part of `make test`.
# BENCH_ARGS=--quick for a short run that writes no doc; `.venv/bin/python -m bench --help`.
bench: $(VENV)/.installed-bench translations
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tests/js/node_modules .pytest_cache

# Two commands do all set-up on a fresh machine:
#   make run    creates .venv, installs, migrates a fresh demo database, starts a local KMS, serves :8000 with a
#               task worker and the scheduler beside it (one Ctrl-C stops all three; SQLite, nothing else to run)
#   make test   installs and runs the whole suite (DATABASE_URL selects PostgreSQL; default SQLite)
#   make test-envelope   the envelope core's tests alone: pure Python, no Django, no KMS (a few seconds)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HTMX := static/vendor/htmx.min.js
PYTEST_ARGS ?=

.PHONY: run test test-envelope bench lint browser-deps redis clean readme-screenshots

$(STAMP): pyproject.toml
	@test -x $(PY) || "$$(scripts/find-python)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

$(HTMX): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

# Debian's Chromium drives the browser tests (Playwright's own browser download is not available here).
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Redis on loopback, production's shared cache: the multi-process revocation test runs gunicorn processes on it
# (tests/hardening/test_multiprocess_revocation.py). Debian's package; started if down, nothing kept on disk.
redis:
	@command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { \
		redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null; \
		for _ in $$(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done; }

run: $(STAMP) $(HTMX)
	DJANGO_SETTINGS_MODULE=konnect_admin.settings_dev $(PY) manage.py demo

test: $(STAMP) $(HTMX) browser-deps redis
	$(PY) -m pytest $(PYTEST_ARGS)

# `make test` runs these too; here without pytest-django (nor any other installed pytest plugin: they cost more
# start-up than the tests take), so nothing in them can lean on Django or the local KMS.
test-envelope: $(STAMP)
	PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 $(PY) -m pytest tests/encryption_keys/envelope -p no:django $(PYTEST_ARGS)

# The README's two screenshots are the final screenshots of two browser tests: the key page with the disabled-key
# banner, and a trace with its decryption-error cards. (The page walk's, per role and width, are in
# test-artifacts/screenshots/walk/.)
readme-screenshots: $(STAMP) $(HTMX) browser-deps
	$(PY) -m pytest -q -p no:randomly -p no:cacheprovider \
		tests/browser/test_encryption_keys.py::test_org_admin_links_a_key_and_sees_the_checklist \
		tests/browser/test_debugger.py::test_trace_waterfall_payload_panel_and_error_card
	cp test-artifacts/screenshots/test_org_admin_links_a_key_and_sees_the_checklist.png docs/screenshots/key-detail.png
	cp test-artifacts/screenshots/test_trace_waterfall_payload_panel_and_error_card.png docs/screenshots/trace-waterfall.png

bench: $(STAMP) $(HTMX)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles db.sqlite3 var

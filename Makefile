# The two set-up commands of the README: `make run` and `make test`. Both install what
# they need (system packages, the virtualenv, Asterisk) the first time.
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup system run test test-postgres lint unit integration bench clean

setup: system $(INSTALLED)

system:
	@bash scripts/install-system.sh
	@bash asterisk/provision.sh >/dev/null

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: setup
	@bash scripts/services.sh mosquitto
	$(BIN)/ivr up --simulate-agents

lint: $(INSTALLED)
	$(BIN)/ruff check ivr tests bench
	$(BIN)/mypy

#: Call tests run a second time with their tickets on PostgreSQL (the whole suite on it:
#: make test-postgres).
POSTGRES_CALL_TESTS := tests/integration/test_foundation.py tests/integration/test_tickets_live.py

#: Two workers: the call tests mostly wait on the phone (prompts, rings, queue timeouts), and
#: each starts its own Asterisk on free ports, so two at a time halve the wall time. Work
#: stealing: the default scheduling hands the first quarter of the tests (every integration
#: test, collected first) to one worker.
WORKERS := -n 2 --dist worksteal

test: setup lint
	@bash scripts/services.sh mosquitto postgresql
	$(BIN)/pytest $(WORKERS) --junitxml=var/test-report.xml
	IVR_TEST_DATABASE=postgresql $(BIN)/pytest $(WORKERS) --junitxml=var/test-report-postgres.xml $(POSTGRES_CALL_TESTS)

test-postgres: setup
	@bash scripts/services.sh mosquitto postgresql
	IVR_TEST_DATABASE=postgresql $(BIN)/pytest $(WORKERS) tests/integration

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit

integration: setup
	@bash scripts/services.sh mosquitto postgresql
	$(BIN)/pytest $(WORKERS) tests/integration

bench: setup
	@bash scripts/services.sh mosquitto postgresql
	$(BIN)/python -m bench

clean:
	rm -rf var/pbx var/phones var/calls

# The two set-up commands of the README live here.
#   make demo   install the tool, start the local cloud, apply the demo manifest (twice)
#   make test   install everything, start the local cloud, run unit + integration tests
#               (the fault-injection tier, tests/faults, included; `make faults` alone)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OS_CLIENT_CONFIG_FILE ?= $(CURDIR)/.devcloud/clouds.yaml

.PHONY: venv demo test unit integration faults lint cloud-up cloud-down bench schema

$(BIN)/bootstrap: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	# Byte-compiled now, as a wheel install would be: with PYTHONDONTWRITEBYTECODE set,
	# an editable install compiles every module of the tool again on every run.
	$(BIN)/python -m compileall -q bootstrap
	touch $@

venv: $(BIN)/bootstrap

cloud-up:
	devcloud/up

cloud-down:
	devcloud/down

demo: venv cloud-up
	OS_CLOUD=devcloud $(BIN)/bootstrap apply manifests/demo.yaml --yes
	@echo "--- a second apply changes nothing:"
	OS_CLOUD=devcloud $(BIN)/bootstrap apply manifests/demo.yaml --yes

unit: venv
	$(BIN)/pytest -q -m 'not integration and not faults'

integration: venv cloud-up
	$(BIN)/pytest -q -m integration

faults: venv cloud-up
	$(BIN)/pytest -q -m faults tests/faults

lint: venv
	$(BIN)/ruff check .
	$(BIN)/python -m bootstrap.schema --check

schema: venv
	$(BIN)/python -m bootstrap.schema

test: venv cloud-up
	$(BIN)/ruff check .
	$(BIN)/python -m bootstrap.schema --check
	$(BIN)/pytest -q

# Phases at scale (local: up to 10,000 without the cloud; identity: on the cloud, with
# the write ceiling and the drift re-run; mixed: with networks, subnets and rules);
# `make bench BENCH_SIZES=100,1000,10000`.
BENCH_SIZES ?= 100,1000
bench: venv cloud-up
	$(BIN)/python -m bench --scenario local --sizes 100,1000,10000
	$(BIN)/python -m bench --scenario identity --sizes $(BENCH_SIZES)
	$(BIN)/python -m bench --scenario mixed --sizes $(BENCH_SIZES)

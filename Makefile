# Two commands set everything up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQS := $(wildcard requirements/*.txt) ros_ws/src/rl_deploy/setup.py

.PHONY: venv test lint typecheck unit demo clean

venv: $(STAMP)

$(STAMP): $(REQS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	$(BIN)/python -m pip install -q --no-deps -e ros_ws/src/rl_deploy
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests

test: lint typecheck unit

demo: venv
	$(BIN)/rl-deploy demo --out demo_out

clean:
	rm -rf $(VENV) demo_out ros_ws/build ros_ws/install ros_ws/log

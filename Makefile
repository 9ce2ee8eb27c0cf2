# Interlock developer commands. Every target installs what it needs first.
# `make up` runs the platform; `make test` runs every check and test.

PY := .venv/bin/python
DEVSTACK := $(PY) -m interlock.devstack
SERVICE ?=

.PHONY: help install up down status logs test check lint typecheck proto clean bench chaos

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install:  ## create .venv with every package and tool (no-op when up to date)
	@./scripts/install

up: install  ## start every server and service, wait until healthy, print the gateway and login
	@$(DEVSTACK) up

down: install  ## stop everything `make up` started
	@$(DEVSTACK) down

status: install  ## every process with its PID and health
	@$(DEVSTACK) status

logs: install  ## follow logs: all, or one with SERVICE=name
	@$(DEVSTACK) logs $(SERVICE)

.PHONY: observe
observe: install  ## Prometheus (Debian's package) scraping `make up`'s stack with the alert rules; prints its address
	@./scripts/observe

check: install  ## formatting, lint and strict typing
	@./scripts/check

test: check  ## checks, then the whole test suite against real servers it starts itself
	@$(PY) -m pytest

bench: install  ## benchmarks (not tests; minutes): Interlock vs Temporal end to end (BENCH_SCALE=1), then bench/auth.py and bench/artifacts.py
	@$(PY) -m bench

chaos: install  ## faults while runs are in flight (minutes, a fresh stack): every service killed, broker/PostgreSQL/MongoDB/S3 restarted
	@$(PY) -m bench.chaos

proto: install  ## regenerate Python code from proto/
	@$(PY) scripts/gen_proto.py

clean: install  ## stop everything and delete local data (.data/, and PostgreSQL's folder when root)
	@$(DEVSTACK) clean

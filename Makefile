# Two commands do all the set-up:  `make run` (the system, embedded default) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test venv lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	scripts/bootstrap.sh

venv: $(VENV)/.installed

run: venv
	scripts/run.sh

test: venv
	scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	scripts/bench.sh

clean:
	rm -rf $(VENV) var .pytest_cache .coverage htmlcov

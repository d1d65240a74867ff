# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install the package with pinned dependencies first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench mutate clean

# The pinned development set (constraints.txt: torch 2.13, numpy 2.4, hypothesis 6.170, ...)
# needs Python 3.11 or newer; the package itself installs on 3.9 and later.
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "make demo and make test need Python 3.11+ (the pinned constraints); wd-guard itself installs on Python 3.9+ with pip")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e '.[lightning,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -n 2 --timeout 600

bench: $(STAMP)
	$(PY) benchmarks/stats_speed.py
	$(PY) benchmarks/lint_speed.py

# Mutation testing of the core (slow; not part of CI). MODULES narrows it, for example
# `make mutate MODULES="lint/rules/penalties.py wd_guard/classify.py"`; the scores are
# printed at the end (`$(PY) scripts/mutate.py --scores` prints them again).
$(VENV)/.mutation: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[lightning,dev,mutation]'
	touch $(VENV)/.mutation

mutate: $(VENV)/.mutation
	$(PY) scripts/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) build *.egg-info

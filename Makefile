# Two entry points, each creating .venv when it is missing:
#   make run   - set up, then run `python -m bench model=dssm increc=on` on the default dataset (a few minutes)
#   make test  - set up, then run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup clean

setup: $(STAMP)

# torch==2.13.0 first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m bench.existing.warm  # numba's kernels compiled once here, not by each first process
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m bench model=dssm increc=on $(ARGS)

# Two test workers, one thread each (tests/conftest.py): the suite fits 5 minutes on 2 cores.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(ARGS)

clean:
	rm -rf $(VENV) outputs .cache .pytest_cache

# rsvlm_jax — the two commands a newcomer runs:
#   make demo [WORKDIR=/tmp/run1]   build the synthetic scene set, train, evaluate, write $(WORKDIR)/metrics.json
#   make test                       install the test extras and run the test suite
# The demo's environment has no TensorFlow; the test environment adds it for TFDS's builder harness.

PYTHON ?= python3
VENV ?= .venv
TEST_VENV ?= .venv-test
BENCH_VENV ?= .venv-bench
BENCH_OUT ?= bench_results
WORKDIR ?= workdir/demo
DATA_DIR ?= data
DEMO_ARGS ?=
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.PHONY: demo test bench install install-test install-bench dataset clean

$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e .
	touch $@

$(TEST_VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(TEST_VENV)/bin/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

$(BENCH_VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -c constraints.txt -e '.[bench]'
	touch $@

install: $(VENV)/.installed
install-test: $(TEST_VENV)/.installed
install-bench: $(BENCH_VENV)/.installed

dataset: install
	$(VENV)/bin/python -m rsvlm_jax.build_dataset synthetic_scenes/demo --data_dir=$(DATA_DIR)

demo: dataset
	$(VENV)/bin/python -m rsvlm_jax.main --config=configs/demo.py:data_dir=$(DATA_DIR)$(if $(DEMO_ARGS),$(comma)$(DEMO_ARGS)) \
	  --workdir=$(WORKDIR)

test: install-test
	$(TEST_VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) tests

# Every benchmark in its quick form, JSON into $(BENCH_OUT)/ (needs the demo dataset: `make dataset`).
bench: install-bench dataset
	$(BENCH_VENV)/bin/python -m bench.decode --out $(BENCH_OUT)/decode.json
	$(BENCH_VENV)/bin/python -m bench.input_pipeline --out $(BENCH_OUT)/input_pipeline.json --data_dir $(DATA_DIR)
	$(BENCH_VENV)/bin/python -m bench.train_step --out $(BENCH_OUT)/train_step.json --quick
	$(BENCH_VENV)/bin/python -m bench.dris --out $(BENCH_OUT)/dris.json --quick --data_dir $(DATA_DIR)

clean:
	rm -rf $(VENV) $(TEST_VENV) $(BENCH_VENV) workdir .pytest_cache

comma := ,

# GridClock. `make up` runs the stack locally, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SVC    ?=
RUN_TIME ?= 60s
DURATION ?= 120
SEED     ?= 7
SEEDS    ?= 10
PYTEST_ARGS ?=
N ?= 3

.PHONY: help up up-hosts down-hosts chaos chaos-soak test lint ps stop start kill clean loadtest rush-hour bench screenshots venv k8s

help:
	@echo "make up | test | lint | ps | stop SVC=x | start SVC=x | kill SVC=x | clean"
	@echo "make loadtest | rush-hour RUN_TIME=60s | bench | screenshots | k8s N=3"
	@echo "make up-hosts | down-hosts | chaos DURATION=120 SEED=7 | chaos-soak SEEDS=10 (root, Linux)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(PY) -m stack up

up-hosts: $(STAMP)
	$(PY) -m stack up-hosts

down-hosts: $(STAMP)
	@$(PY) -m stack down-hosts

chaos: $(STAMP)
	$(PY) -m chaos run --duration $(DURATION) --seed $(SEED)

chaos-soak: $(STAMP)
	$(PY) -m chaos soak --seeds $(SEEDS) --duration $(DURATION)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

ps: $(STAMP)
	@$(PY) -m stack ps

stop: $(STAMP)
	@$(PY) -m stack stop $(SVC)

start: $(STAMP)
	@$(PY) -m stack start $(SVC)

kill: $(STAMP)
	@$(PY) -m stack kill $(SVC)

clean:
	rm -rf data run loadtest/reports bench/results tests/artifacts .pytest-tmp chaos/reports

loadtest: $(STAMP)
	$(PY) -m loadtest ui

rush-hour: $(STAMP)
	$(PY) -m loadtest rush-hour --run-time $(RUN_TIME)

bench: $(STAMP)
	$(PY) -m bench

# Kubernetes manifests for N KV nodes in deploy/kubernetes/nN/ (docs/kubernetes.md).
k8s: $(STAMP)
	$(PY) -m stack k8s --nodes $(N)

screenshots: $(STAMP)
	$(PY) -m panel.screenshots

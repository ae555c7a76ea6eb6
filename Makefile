# Two commands set up a fresh machine: `make run` (the default experiment) and `make test`.
# `make run CONFIG=configs/text-minilm.yaml` runs another experiment (one config file, its outputs
# in results/<experiment>/); report, sync take the same CONFIG.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1

.PHONY: run plan test install lint format report ui sync bench clean

CONFIG ?= config.yaml
CONFIG_ARG = --configfile $(CONFIG)
EMBRM = PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m embrm
EXPERIMENT = $(shell $(EMBRM) plan --name $(CONFIG))
# On a terminal, progress bars (overall and per rule, with the time left) replace Snakemake's log
# lines (workflow/snakemake_logger_plugin_embrm).
LOGGER = $(shell test -t 2 && echo --logger embrm)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	touch $(STAMP)

install: $(STAMP)

# The plan checks the config file and its inputs first (file and line of a YAML error, a missing
# file), then Snakemake runs it; an interrupted run resumes with the same command.
run: $(STAMP)
	$(EMBRM) plan --quiet $(CONFIG)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) $(CONFIG_ARG) $(LOGGER)

plan: $(STAMP)
	$(EMBRM) plan $(CONFIG)

# The linters run first: a lint error fails `make test` (and CI, .ci/run) before any test runs.
test: $(STAMP) lint
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

# snakemake --lint exits non-zero on any lint of the rules (a missing log, a hard-coded path).
lint: $(STAMP)
	$(BIN)/ruff check workflow tests benchmarks
	$(BIN)/ruff format --check workflow tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix workflow tests benchmarks
	$(BIN)/ruff format workflow tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

report: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake $(CONFIG_ARG) \
		--report results/$(EXPERIMENT)/report.html

# MLflow UI on loopback only, against the project's database (every experiment is an MLflow
# experiment of the same name in it); one worker and no job runner keep
# it near 0.5 GB (about 3 GB with MLflow's defaults). `make ui UI_PORT=5001` picks another port.
UI_PORT ?= 5000
MLFLOW_DB ?= $(CURDIR)/results/mlflow.db
ui: $(STAMP)
	@test -f $(MLFLOW_DB) || { echo "error: $(MLFLOW_DB) does not exist yet; run the workflow first (make run)" >&2; exit 1; }
	@echo "MLflow UI: http://127.0.0.1:$(UI_PORT)/#/experiments (pick the experiment, then 'Model training')"
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --host 127.0.0.1 --port $(UI_PORT) \
		--workers 1 --backend-store-uri sqlite:///$(MLFLOW_DB)

# Log to MLflow whatever is not there yet (after an outage, or into a new tracking.uri).
sync: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) $(CONFIG_ARG) \
		--forcerun track results/$(EXPERIMENT)/tracking/synced.json

bench: $(STAMP)
	$(BIN)/python benchmarks/default_grid.py

clean:
	rm -rf results .snakemake

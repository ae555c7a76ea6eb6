# Two commands set up a fresh machine: `make run` (the default experiment) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1

.PHONY: run test install lint format report ui sync bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[cpu,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES)

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check workflow tests benchmarks
	$(BIN)/ruff format --check workflow tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff check --fix workflow tests benchmarks
	$(BIN)/ruff format workflow tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

report: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --report results/report.html

# MLflow UI on loopback only, against the project's database; one worker and no job runner keep
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
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/snakemake --cores $(CORES) --forcerun track results/tracking/synced.json

bench: $(STAMP)
	$(BIN)/python benchmarks/default_grid.py

clean:
	rm -rf results .snakemake

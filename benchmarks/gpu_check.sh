#!/usr/bin/env bash
# The GPU check in one call (see benchmarks/gpu_check.py and docs/paper-scale.md, "On a GPU"):
#
#   benchmarks/gpu_check.sh [OUT_DIR] [--quick] [--sections abcde] [--deadline SECONDS]
#
# Run from the repository root. OUT_DIR defaults to $OUT, else gpu_check_out; the interpreter is
# $PYTHON, else python3. Prints a compact report and writes it, with every section's numbers and
# logs, under OUT_DIR. Full shapes need a GPU and stop by themselves within about 9 minutes;
# --quick runs small shapes anywhere (CUDA parts are then reported as skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_check_out}"
if [[ $# -gt 0 && "$1" != --* ]]; then
    out="$1"
    shift
fi
mkdir -p "$out"
export PYTHONPATH="$PWD/workflow${PYTHONPATH:+:$PYTHONPATH}"
export MLFLOW_DISABLE_TELEMETRY=true HF_HUB_OFFLINE=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$out" "$@"

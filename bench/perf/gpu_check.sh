#!/usr/bin/env bash
# The prepared device check of issue 44, as one call on a lent GPU (bench/perf/gpu_check.py says what it runs):
#   bash bench/perf/gpu_check.sh [FOLDER]     figures to FOLDER, else $OUT (the device tool's folder), else results/perf
# PYTHON picks the interpreter (default: .venv/bin/python when present, else python3); DEVICE the device (cuda);
# BUDGET the seconds (450); STEPS a comma-separated subset of the steps (all).
set -euo pipefail
cd "$(dirname "$0")/../.."
folder="${1:-${OUT:-results/perf}}"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
export PYTHONUNBUFFERED=1
exec "$python" -m bench.perf.gpu_check --device "${DEVICE:-cuda}" --out "$folder" --budget "${BUDGET:-450}" ${STEPS:+--steps "$STEPS"}

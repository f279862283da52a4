#!/usr/bin/env bash
# Sets up, then runs our benchmarks and their peers side by side (benches/run.py):
#   scripts/bench.sh [comparison…] [--reps N] [--threads N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec python benches/run.py "$@"

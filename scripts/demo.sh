#!/usr/bin/env bash
# Sets up (idempotent), builds and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo run -q -p dupify-examples --example demo

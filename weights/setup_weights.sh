#!/usr/bin/env bash
# Generates the model assets tests and the demo need, with the project venv's Python:
# every `weights/gen_*.py` script runs when it, or requirements-dev.txt, changed since its
# last run (stamp files under weights/test/.stamps). Outputs go to weights/test/ and weights/real/
# (both git-ignored); the committed heads in weights/heads/ are inputs too.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p weights/test/.stamps
for gen in weights/gen_*.py; do
    [ -e "$gen" ] || continue
    name=$(basename "$gen" .py)
    stamp=weights/test/.stamps/$name
    # Inputs: the script, the modules the generators share, the pinned packages, the fixtures.
    want=$( (cat "$gen" weights/efficientnet_reference.py requirements-dev.txt; find dupify-core/tests/assets weights/heads -type f 2>/dev/null | sort | xargs cat) | sha256sum | cut -d' ' -f1)
    # The installed real models live outside weights/test: redo them when they are gone.
    if [ "$name" = gen_efficientnet ] && [ ! -f weights/real/efficientnet-lite2/model.safetensors ]; then
        rm -f "$stamp"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "[setup] running $gen" >&2
        "$PY" "$gen"
        echo "$want" > "$stamp"
    fi
done

#!/usr/bin/env bash
# Idempotent project setup: a project-local Python venv with the pinned torch (the LibTorch
# that tch links against) and the Python test/benchmark tools, the `.venv/libtorch` link that
# .cargo/config.toml points at, the tokenizer vocabulary and the seeded test models.
# A second run checks stamps and returns in seconds.
#
# First run: ~3.5 GB of wheels (torch with its CUDA libraries), a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VENV=$ROOT/.venv

log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        log "$PY is $("$PY" --version 2>&1); Python 3.11 or newer is needed (set PYTHON=...)"
        exit 1
    }
    log "creating venv at .venv"
    "$PY" -m venv "$VENV"
fi

req_hash=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_hash" ]; then
    log "installing Python requirements (torch 2.11.0 with CUDA wheels is ~3.5 GB on first run)"
    # --no-cache-dir: a second copy of the wheels in ~/.cache would double the disk used.
    "$VENV/bin/python" -m pip install -q --no-cache-dir --upgrade pip
    "$VENV/bin/python" -m pip install -q --no-cache-dir -r requirements-dev.txt
    echo "$req_hash" > "$VENV/.requirements.sha256"
fi

torch_dir=$("$VENV/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
if [ "$(readlink "$VENV/libtorch" 2>/dev/null)" != "$torch_dir" ]; then
    ln -sfn "$torch_dir" "$VENV/libtorch"
    log "linked .venv/libtorch -> $torch_dir"
fi

# Model assets (tokenizer vocabulary, seeded test checkpoints + reference outputs).
if [ -f weights/setup_weights.sh ]; then
    bash weights/setup_weights.sh
fi

# Node binding toolchain (napi-rs CLI), installed from the lockfile.
if [ -f dupify-node/package.json ] && command -v npm >/dev/null; then
    lock_hash=$(cat dupify-node/package.json dupify-node/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat dupify-node/node_modules/.dupify-stamp 2>/dev/null)" != "$lock_hash" ]; then
        log "installing Node tooling"
        (cd dupify-node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        echo "$lock_hash" > dupify-node/node_modules/.dupify-stamp
    fi
fi
# Headless browser for the server's web-page test (dupify-server/web-tests): Debian's
# chromium, driven by playwright-core (which downloads no browser of its own).
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing chromium (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        log "WARNING: /usr/bin/chromium is missing; install Debian's chromium package (as root) for the web-page test"
    fi
fi
if [ -f dupify-server/web-tests/package.json ] && command -v npm >/dev/null; then
    lock_hash=$(cat dupify-server/web-tests/package.json dupify-server/web-tests/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat dupify-server/web-tests/node_modules/.dupify-stamp 2>/dev/null)" != "$lock_hash" ]; then
        log "installing the web-page test tooling (playwright-core)"
        (cd dupify-server/web-tests && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
        echo "$lock_hash" > dupify-server/web-tests/node_modules/.dupify-stamp
    fi
fi
log "ready"

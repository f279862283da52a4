#!/usr/bin/env bash
# Fuzzes a live dupify-server against its own OpenAPI document with Schemathesis: every
# operation of /v1/openapi.json, with a valid key, checking that no answer is a 5xx and that
# every status, content type, header and body conforms to the document. Uses the debug binary
# `cargo test` builds (or $DUPIFY_SERVER_BIN); run by scripts/test.sh after the Rust tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
BIN=${DUPIFY_SERVER_BIN:-target/$CARGO_BUILD_TARGET/debug/dupify-server}
[ -x "$BIN" ] || cargo build -q -p dupify-server
DATA=$(mktemp -d)
"$BIN" --port 0 --device cpu --data-dir "$DATA" >"$DATA/stdout" 2>"$DATA/stderr" &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 600); do
    grep -q '^web page: ' "$DATA/stdout" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$DATA/stderr" >&2; exit 1; }
    sleep 0.1
done
URL=$(sed -n 's/^listening: //p' "$DATA/stdout")
KEY=$(sed -n 's/^live key: //p' "$DATA/stdout")
[ -n "$URL" ] && [ -n "$KEY" ] || { echo "server did not start" >&2; cat "$DATA/stderr" >&2; exit 1; }
# The first key is Unlimited (1,000 requests a minute); `--rate-limit` keeps the run under it,
# so every case reaches its handler instead of a 429.
set +e
schemathesis run "$URL/v1/openapi.json" \
    --header "X-API-Key: $KEY" \
    --generation-with-security-parameters false \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --rate-limit 900/m \
    --request-timeout 30 \
    --seed "${SCHEMATHESIS_SEED:-20261206}" \
    --generation-database none \
    --no-color \
    "$@"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    echo "--- server stderr ---" >&2
    tail -n 40 "$DATA/stderr" >&2
fi
exit $rc

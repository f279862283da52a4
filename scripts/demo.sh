#!/usr/bin/env bash
# The README demo, through the `dupify` CLI: set up (idempotent), build once, index the bundled
# CC0 sample photos (dupify-core/tests/assets/clothing, licence there) minus one held-back photo
# into a fresh catalog, then search with the held-back photo (top dupes with per-channel
# scores) and print its colours, silhouette, attributes and quality.
#
# Model: the library's default (weights/real/clip-vit-base-patch32 when it holds a CLIP
# checkpoint, else the pretrained EfficientNet-Lite2 that scripts/setup.sh installs).
# DUPIFY_MODEL=DIR picks another model directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

cargo build -q -p dupify-cli --bin dupify
DUPIFY="${CARGO_TARGET_DIR:-target}/$CARGO_BUILD_TARGET/debug/dupify"

DEMO=target/demo
QUERY=dress/3f844e1e-4a00-4b64-8c1d-3b847191bf11.jpg
rm -rf "$DEMO"
mkdir -p "$DEMO/photos"
cp -R dupify-core/tests/assets/clothing/. "$DEMO/photos/"
mv "$DEMO/photos/$QUERY" "$DEMO/query.jpg"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

say dupify index "$DEMO/photos" --catalog "$DEMO/shop.db"
"$DUPIFY" index "$DEMO/photos" --catalog "$DEMO/shop.db"

printf '\nquery: %s (a dress, held back from the catalog)\n' "$DEMO/query.jpg" >&2
say dupify search "$DEMO/query.jpg" --catalog "$DEMO/shop.db" --limit 5
"$DUPIFY" search "$DEMO/query.jpg" --catalog "$DEMO/shop.db" --limit 5

say dupify extract "$DEMO/query.jpg" --ops colors,silhouette,attributes,quality
"$DUPIFY" extract "$DEMO/query.jpg" --ops colors,silhouette,attributes,quality

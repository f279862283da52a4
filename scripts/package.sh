#!/usr/bin/env bash
# Builds the distributable artefacts into dist/ from the shared target/ (the Python and Node
# tests use these same builds, so nothing is compiled twice):
#   dist/dupify-<version>-cp39-abi3-linux_x86_64.whl  the Python module (maturin)
#   dist/dupify-<version>.tgz                          the Node package (napi build + npm pack)
#   dist/crates/<crate>-<version>.crate, and unpacked  dupify-build, -types, -keys, -core,
#                                                      -cli, -server
# PROFILE=release builds release artefacts (default: dev, the profile the tests use).
# scripts/install_checks.sh installs them outside the checkout as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
PROFILE=${PROFILE:-dev}
VERSION=$DUPIFY_VERSION
CRATES=(dupify-build dupify-types dupify-keys dupify-core dupify-cli dupify-server)

rm -rf dist
mkdir -p dist/crates

echo "package: Python wheel ($PROFILE)" >&2
maturin build -q --profile "$PROFILE" -m dupify-py/Cargo.toml -o dist

echo "package: Node addon + loader ($PROFILE), npm pack" >&2
if [ "$PROFILE" = release ]; then build=build:release; else build=build; fi
(cd dupify-node && npm run --silent "$build" && npm pack --silent --pack-destination ../dist >/dev/null)

echo "package: crates (cargo package; scripts/install_checks.sh builds them out of tree)" >&2
# Packaged together, so each one's dependencies on the others resolve to the packages being
# made. Not verified here: building the unpacked packages is what the install check does.
args=()
for c in "${CRATES[@]}"; do args+=(-p "$c"); done
cargo package -q --no-verify --allow-dirty "${args[@]}"
for c in "${CRATES[@]}"; do
    cp "target/package/$c-$VERSION.crate" dist/crates/
    tar -xzf "dist/crates/$c-$VERSION.crate" -C dist/crates
done
ls -1 dist dist/crates >&2

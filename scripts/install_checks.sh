#!/usr/bin/env bash
# Installs the artefacts of scripts/package.sh (dist/) as a user would, in a scratch directory
# outside the checkout, and runs the README's install lines and first-use programs verbatim
# (scripts/readme_block.py prints a README block by its `<!-- check: NAME -->` marker):
#
#   Rust    a new Cargo project depending on dupify-core and dupify-keys (the packaged crates,
#           through the README's [patch.crates-io]), LibTorch given the tch way (LIBTORCH);
#   Python  a new venv, `pip install` of the wheel, the README program;
#   Node    a new npm project, `npm install` of the tarball, the README programs as CommonJS
#           and as ESM, LibTorch found through the Python on PATH.
#
# Every program prints the embedding size and dominant colour of the same photo with the same
# model: they must agree with each other. The CLI and server crates are built from their
# packages too, and the CLI extracts the same photo. Each program sees only its scratch directory: the
# model directory and the photo are copied in; no file of the checkout is on any search path.
#
# What is shared with the checkout, to stay within CI's time and disk: the Rust build uses
# the checkout's target/ (and a copy of its Cargo.lock), so only the dupify crates are
# compiled again; the venv sees the project venv's torch and its requirements (nothing else)
# through a .pth file instead of downloading them again (scripts/torch_site.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/env.sh
VERSION=$DUPIFY_VERSION

block() { python3 "$ROOT/scripts/readme_block.py" "$1"; }
step() { printf '\n--- install check: %s\n' "$*" >&2; }

[ -d dist/crates ] || { echo "dist/ missing: run scripts/package.sh first" >&2; exit 1; }
MODEL=$ROOT/weights/real/efficientnet-lite2
PHOTO=$ROOT/dupify-core/tests/assets/clothing/dress/3f844e1e-4a00-4b64-8c1d-3b847191bf11.jpg
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/dupify-install.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
case "$SCRATCH" in "$ROOT"/*) echo "scratch inside the checkout" >&2; exit 1 ;; esac

# A user's project directory: the artefacts, a model directory and a photo, nothing else.
project() {
    mkdir -p "$SCRATCH/$1"
    cp -r "$ROOT/dist" "$SCRATCH/$1/dist"
    cp -r "$MODEL" "$SCRATCH/$1/efficientnet-lite2"
    cp "$PHOTO" "$SCRATCH/$1/dress.jpg"
    cd "$SCRATCH/$1"
}

# ---------------------------------------------------------------------------------- Rust
step "Rust: a new Cargo project on the packaged crates"
project rust
{
    printf '[package]\nname = "first-use"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
    block rust-cargo-toml
} >Cargo.toml
mkdir -p src examples
block rust-main >src/main.rs
block rust-keys >examples/keys.rs
cp "$ROOT/Cargo.lock" Cargo.lock
# The tch way, with the LibTorch the checkout builds against (and the same environment as
# its .cargo/config.toml, so the compiled dependencies in target/ are reused).
export LIBTORCH=$ROOT/.venv/libtorch LIBTORCH_CXX11_ABI=1 CARGO_TARGET_DIR=$ROOT/target
bash -euo pipefail -c "$(block rust-run)" >"$SCRATCH/rust.out"
cat "$SCRATCH/rust.out"
grep -Eq '^embedding: 1280 dims, dominant colour #[0-9a-f]{6}$' "$SCRATCH/rust.out"
grep -Eq '^key [0-9]+ may embed$' "$SCRATCH/rust.out"

step "Rust: the dupify CLI and server built from their packages"
# As `cargo install` would build them, but in the debug profile with the same dependency
# builds as above (a workspace over the unpacked packages, the same patches): a release
# build of everything would take longer than the rest of CI. The CLI then extracts the
# photo, which must agree with the library programs.
mkdir -p "$SCRATCH/tools" && cd "$SCRATCH/tools"
cp -r "$SCRATCH/rust/dist/crates/dupify-cli-$VERSION" "$SCRATCH/rust/dist/crates/dupify-server-$VERSION" .
{
    printf '[workspace]\nresolver = "2"\nmembers = ["dupify-cli-%s", "dupify-server-%s"]\n\n' "$VERSION" "$VERSION"
    block rust-cargo-toml | sed -n '/^\[patch.crates-io\]/,$p' | sed "s|\"dist/|\"$SCRATCH/rust/dist/|"
} >Cargo.toml
cp "$ROOT/Cargo.lock" Cargo.lock
cargo build -q --workspace
bin=$CARGO_TARGET_DIR/$CARGO_BUILD_TARGET/debug
"$bin/dupify-server" --help >/dev/null
LD_LIBRARY_PATH=$LIBTORCH/lib "$bin/dupify" extract "$SCRATCH/rust/dress.jpg" \
    --model "$SCRATCH/rust/efficientnet-lite2" --ops embed,colors --json |
    python3 -c 'import json, sys
f = json.load(sys.stdin)[0]["features"]
print("embedding: %d dims, dominant colour %s" % (len(f["embedding"]), f["colors"]["colors"][0]["hex"]))' \
    >"$SCRATCH/cli.out"
cat "$SCRATCH/cli.out"
unset LIBTORCH LIBTORCH_CXX11_ABI CARGO_TARGET_DIR

# -------------------------------------------------------------------------------- Python
step "Python: a new venv, pip install of the wheel"
project python
BASE_PYTHON=$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')
"$BASE_PYTHON" -m venv venv
SITE=$(venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$ROOT/.venv/bin/python" "$ROOT/scripts/torch_site.py" "$SCRATCH/torch-site" >/dev/null
echo "$SCRATCH/torch-site" >"$SITE/torch-from-project-venv.pth"
block python-main >first_use.py
(
    export PATH=$SCRATCH/python/venv/bin:/usr/local/bin:/usr/bin:/bin
    unset VIRTUAL_ENV PYTHONPATH
    bash -euo pipefail -c "$(block python-install)" >"$SCRATCH/python-install.log" 2>&1 ||
        { cat "$SCRATCH/python-install.log" >&2; exit 1; }
    python -c 'import dupify, sys; assert "/dupify-install." in dupify.__file__, dupify.__file__'
    python first_use.py
) >"$SCRATCH/python.out"
cat "$SCRATCH/python.out"
grep -Eq '^embedding: 1280 dims, dominant colour #[0-9a-f]{6}$' "$SCRATCH/python.out"
grep -Fxq 'top hit: sku-1' "$SCRATCH/python.out"

step "Python: the [ray] extra and the README's Ray job into a catalog"
mkdir -p photos && cp dress.jpg photos/
block python-ray-main >ray_job.py
(
    export PATH=$SCRATCH/python/venv/bin:/usr/local/bin:/usr/bin:/bin
    unset VIRTUAL_ENV PYTHONPATH
    bash -euo pipefail -c "$(block python-ray-install)" >"$SCRATCH/ray-install.log" 2>&1 ||
        { cat "$SCRATCH/ray-install.log" >&2; exit 1; }
    python ray_job.py 2>"$SCRATCH/ray-job.log" || { tail -50 "$SCRATCH/ray-job.log" >&2; exit 1; }
) >"$SCRATCH/ray.out"
cat "$SCRATCH/ray.out"
grep -Fxq 'stored 1, failed 0' "$SCRATCH/ray.out"

# ---------------------------------------------------------------------------------- Node
step "Node: a new npm project, npm install of the tarball"
project node
npm init -y >/dev/null
block node-cjs >first-use.cjs
block node-esm >first-use.mjs
(
    # LibTorch through the torch package of the Python on PATH, as the README says: the
    # user's Python is the venv of the Python check.
    export PATH=$SCRATCH/python/venv/bin:/usr/local/bin:/usr/bin:/bin
    unset DUPIFY_LIBTORCH DUPIFY_PYTHON NODE_PATH
    bash -euo pipefail -c "$(block node-install)" >"$SCRATCH/node-install.log" 2>&1 ||
        { cat "$SCRATCH/node-install.log" >&2; exit 1; }
    node -e 'const p = require.resolve("dupify"); if (!p.includes("/dupify-install.")) throw p'
    node first-use.cjs
    node first-use.mjs
    node -e 'console.log("libtorch from " + require("dupify").libtorch.source)'
) >"$SCRATCH/node.out"
cat "$SCRATCH/node.out"
grep -Fxq 'top hit: sku-1' "$SCRATCH/node.out"
grep -Fxq 'libtorch from python (python3)' "$SCRATCH/node.out"

# ------------------------------------------------------------------------- all the same
step "every program printed the same embedding size and colour"
lines=$(grep -h '^embedding:' "$SCRATCH"/{rust,cli,python,node}.out | sort -u)
if [ "$(printf '%s\n' "$lines" | wc -l)" -ne 1 ]; then
    echo "the bindings disagree:" >&2
    printf '%s\n' "$lines" >&2
    exit 1
fi
echo "install checks passed: $lines (Rust library and CLI, Python, Node CommonJS and ESM)" >&2

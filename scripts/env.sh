# Sourced by the project scripts: one shared target directory for cargo, maturin and napi.
# napi-rs always passes `--target <host>`, so every build here names the host triple too;
# otherwise cargo would keep two copies of every artefact (target/debug and target/<triple>).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_BUILD_TARGET=${CARGO_BUILD_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
export VIRTUAL_ENV=$ROOT/.venv
export PATH=$ROOT/.venv/bin:$PATH
# The workspace version (every crate, the wheel and the npm package share it).
export DUPIFY_VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)

#!/usr/bin/env bash
# Packages Dupify's benchmark binaries for a CUDA machine, and optionally runs them there.
#
#   scripts/bench_cuda.sh [--out DIR] [--with-weights] [--exes FILE]
#
# `--exes FILE` skips the build and packages already-built binaries, listed one per line as
# `<name><TAB><path>` (the list this script derives from cargo's JSON messages).
#
# Builds the criterion benches and the peak-memory program here (release, against the project
# venv's LibTorch 2.11), strips their RUNPATH so they load the *target* machine's LibTorch
# (its Python's torch 2.11 package and nvidia/* libraries, via LD_LIBRARY_PATH set by the run
# script), and copies into DIR (default .device/bench, git-ignored), in the checkout's layout:
#   bin/<bench>, bin/peak_memory        the binaries (no RUNPATH, symbols stripped)
#   benches/run.py, benches/suite.json, benches/cuda/, benches/peers/*.py
#   weights/test/clip/vit-b-32/         config + tokenizer merges; the 600 MB checkpoint only
#                                       with --with-weights (else run.sh regenerates it there
#                                       with benches/cuda/make_model.py, same architecture)
#   dupify-core/tests/assets/clothing/  the 40 committed photos
#   photos/                             those 40 + the 372 of $DUPIFY_BENCH_PHOTOS_SRC
#                                       (default /work/shared/data/clothing-small/test)
#   run.sh                              sets LD_LIBRARY_PATH, runs ours and the PyTorch-eager
#                                       peers alternating (benches/run.py), writes results/
# On the device: `cd DIR && ./run.sh` (or `./run.sh --cpu` on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.device/bench
WITH_WEIGHTS=0
EXES_FILE=
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$(realpath -m "$2"); shift 2 ;;
        --with-weights) WITH_WEIGHTS=1; shift ;;
        --exes) EXES_FILE=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 [--out DIR] [--with-weights] [--exes FILE]" >&2; exit 2 ;;
    esac
done
# shellcheck source=scripts/env.sh
source scripts/env.sh
command -v patchelf >/dev/null || { echo "patchelf is needed (apt-get install patchelf)" >&2; exit 1; }
[ -f weights/test/clip/vit-b-32/config.json ] || bash scripts/setup.sh

log() { printf '[bench_cuda] %s\n' "$*" >&2; }
if [ -n "$EXES_FILE" ]; then
    exes=$(cat "$EXES_FILE")
else
log "building benchmark binaries (release)"
# `cargo bench --no-run` builds every bench target, and the package's binaries (peak_memory)
# in the same profile and features; its JSON messages name the executables.
exes=$(cargo bench -p dupify-benches --no-run --message-format=json |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    kinds = m.get("target", {}).get("kind", [])
    harnessed_bin = "bin" in kinds and m.get("profile", {}).get("test")  # cargo bench builds those too
    if (m.get("reason") == "compiler-artifact" and m.get("executable")
            and ("bench" in kinds or "bin" in kinds) and not harnessed_bin):
        print(m["target"]["name"] + "\t" + m["executable"])
')
fi
[ -n "$exes" ] || { echo "cargo produced no executables" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/benches/peers" "$OUT/benches/cuda" "$OUT/weights/test/clip/vit-b-32" \
    "$OUT/dupify-core/tests/assets" "$OUT/photos" "$OUT/results"
while IFS=$'\t' read -r name exe; do
    dst=$OUT/bin/$name
    cp "$exe" "$dst"
    strip --strip-unneeded "$dst"
    patchelf --remove-rpath "$dst"
    if readelf -d "$dst" | grep -Eq 'R(UN)?PATH'; then
        echo "$dst still has an RPATH/RUNPATH" >&2
        exit 1
    fi
    log "bin/$name ($(du -h "$dst" | cut -f1))"
done <<< "$exes"

cp benches/run.py benches/suite.json "$OUT/benches/"
cp benches/peers/*.py "$OUT/benches/peers/"
cp benches/cuda/suite.json benches/cuda/make_model.py "$OUT/benches/cuda/"
cp benches/cuda/run.sh "$OUT/run.sh"
M=weights/test/clip/vit-b-32
cp "$M/config.json" "$M/bpe_simple_vocab_16e6.txt.gz" "$OUT/$M/"
if [ "$WITH_WEIGHTS" = 1 ]; then
    cp "$M/model.safetensors" "$M/attribute_heads.safetensors" "$OUT/$M/"
fi
cp -r dupify-core/tests/assets/clothing "$OUT/dupify-core/tests/assets/"
cp -r dupify-core/tests/assets/clothing/. "$OUT/photos/"
SRC=${DUPIFY_BENCH_PHOTOS_SRC:-/work/shared/data/clothing-small/test}
if [ -d "$SRC" ]; then
    cp -r "$SRC"/. "$OUT/photos/"
else
    log "no $SRC: photos/ holds only the 40 committed photos"
fi
log "photos: $(find "$OUT/photos" -name '*.jpg' | wc -l)"
log "package: $OUT ($(du -sh "$OUT" | cut -f1)); run it there with: cd $OUT && ./run.sh"

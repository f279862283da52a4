#!/usr/bin/env bash
# Runs Dupify's packaged benchmarks next to their PyTorch-eager peers on this machine and
# writes the same table/JSON as `scripts/bench.sh` (results/ in this folder).
#
#   ./run.sh [--cpu] [run.py options…] [comparison…]
#   NAMES="preprocess e2e_embed_cpu" ./run.sh --cpu --quick
#
# Made by scripts/bench_cuda.sh. The binaries carry no RUNPATH: they load this machine's
# LibTorch, the one inside its Python's torch 2.11 package (and its nvidia/* CUDA libraries).
# Default: benches/cuda/suite.json with GPU-utilisation sampling. `--cpu`: the CPU rows of
# benches/suite.json ($NAMES, default: e2e, preprocess, CLIP) instead, e.g. to check a package
# on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
T=$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))')
SP=$(dirname "$T")
export LD_LIBRARY_PATH=$T/lib:$(ls -d "$SP"/nvidia/*/lib "$SP"/nvidia/cu13/lib 2>/dev/null | tr '\n' :)${LD_LIBRARY_PATH:-}
"$PY" - <<'PY'
import torch, sys
v = torch.__version__.split("+")[0]
if not v.startswith("2.11."):
    sys.exit(f"this package was built against LibTorch 2.11; this Python has torch {torch.__version__}")
print(f"[bench] torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
      + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""), file=sys.stderr)
PY
if [ ! -f weights/test/clip/vit-b-32/model.safetensors ]; then
    echo "[bench] generating the seeded ViT-B/32 checkpoint" >&2
    "$PY" benches/cuda/make_model.py
fi
export DUPIFY_BENCH_ROOT=$PWD
export DUPIFY_BENCH_PHOTOS=${DUPIFY_BENCH_PHOTOS:-$PWD/photos}
if [ "${1:-}" = "--cpu" ]; then
    shift
    # shellcheck disable=SC2086 # NAMES is a list
    exec "$PY" benches/run.py --bin-dir bin --suite benches/suite.json --out-dir results "$@" \
        ${NAMES:-e2e_embed_cpu preprocess clip_vit_b32_cpu}
fi
exec "$PY" benches/run.py --bin-dir bin --suite benches/cuda/suite.json --out-dir results --gpu-util "$@"

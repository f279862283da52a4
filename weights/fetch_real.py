#!/usr/bin/env python3
"""Downloads a real CLIP checkpoint from the Hugging Face hub into weights/real/<name>/ and
verifies every file against a pinned SHA-256 (where internet exists; the build machines have
none, so tests never need this). The files are those `ClipModel::from_dir` reads:
config.json, model.safetensors and merges.txt (CLIP's BPE merges, same as
bpe_simple_vocab_16e6.txt.gz).

    python weights/fetch_real.py                     # openai/clip-vit-base-patch32
    python weights/fetch_real.py fashion-clip        # patrickjohncyh/fashion-clip
    python weights/fetch_real.py --print-checksums   # after a first --trust-on-first-use run

Checksums: a file whose pinned hash is known must match it, or the download is deleted and the
script fails. Hashes not pinned yet (see CHECKSUMS below) are refused unless
--trust-on-first-use is given, which records them in weights/real/<name>/SHA256SUMS so later
runs are verified; paste them into CHECKSUMS to pin them for everyone.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent
FILES = ["config.json", "model.safetensors", "merges.txt"]

MODELS = {
    "clip-vit-base-patch32": "openai/clip-vit-base-patch32",
    "clip-vit-base-patch16": "openai/clip-vit-base-patch16",
    "clip-vit-large-patch14": "openai/clip-vit-large-patch14",
    "fashion-clip": "patrickjohncyh/fashion-clip",
}

# Pinned SHA-256 per (model, file). The build machines cannot reach the hub, so none could be
# verified when this script was written: they are filled in by a maintainer from a
# --trust-on-first-use run (weights/real/<name>/SHA256SUMS) and then enforced.
CHECKSUMS: dict[str, dict[str, str]] = {name: {} for name in MODELS}


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fetch(name: str, revision: str, tofu: bool) -> Path:
    repo = MODELS[name]
    out = ROOT / "real" / name
    out.mkdir(parents=True, exist_ok=True)
    sums_file = out / "SHA256SUMS"
    recorded = {}
    if sums_file.exists():
        for line in sums_file.read_text().splitlines():
            digest, fname = line.split(maxsplit=1)
            recorded[fname.strip()] = digest
    lines = []
    for fname in FILES:
        dest = out / fname
        if not dest.exists():
            url = f"https://huggingface.co/{repo}/resolve/{revision}/{fname}"
            print(f"[fetch] {url}", file=sys.stderr)
            tmp = dest.with_suffix(dest.suffix + ".part")
            urllib.request.urlretrieve(url, tmp)
            tmp.rename(dest)
        digest = sha256(dest)
        want = CHECKSUMS[name].get(fname) or recorded.get(fname)
        if want is None and not tofu:
            dest.unlink()
            raise SystemExit(f"{name}/{fname}: no pinned SHA-256; rerun with --trust-on-first-use "
                             f"to record {digest}")
        if want is not None and want != digest:
            dest.unlink()
            raise SystemExit(f"{name}/{fname}: SHA-256 {digest} != pinned {want}; file deleted")
        lines.append(f"{digest}  {fname}")
    sums_file.write_text("\n".join(lines) + "\n")
    print(f"[fetch] {name}: verified -> {out}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="clip-vit-base-patch32", choices=sorted(MODELS))
    ap.add_argument("--revision", default="main", help="hub revision (pin a commit for reproducibility)")
    ap.add_argument("--trust-on-first-use", action="store_true",
                    help="accept files without a pinned hash and record their SHA-256")
    ap.add_argument("--print-checksums", action="store_true", help="print recorded SHA256SUMS and exit")
    args = ap.parse_args()
    if args.print_checksums:
        print((ROOT / "real" / args.model / "SHA256SUMS").read_text(), end="")
        return
    fetch(args.model, args.revision, args.trust_on_first_use)


if __name__ == "__main__":
    main()

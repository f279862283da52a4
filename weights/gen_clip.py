#!/usr/bin/env python3
"""Builds the seeded random-weight CLIP checkpoints and the reference outputs the Rust CLIP is
checked against (dupify-core/tests/clip_*.rs). Run by weights/setup_weights.sh; everything it
writes goes to weights/test/clip/ (git-ignored) plus the tokenizer merges file
weights/bpe_simple_vocab_16e6.txt.gz (copied from the open-clip-torch wheel, git-ignored).

Reference implementation: Hugging Face `transformers` CLIPModel (version pinned in
requirements-dev.txt), CPU, fp32. Token ids: `open_clip.tokenizer.SimpleTokenizer` (the OpenAI
CLIP tokenizer; HF's CLIPTokenizer needs vocab.json/merges.txt from the hub).

Per model directory (`tiny`, `vit-b-32`):
  config.json, model.safetensors          the checkpoint, exactly as `save_pretrained` writes it
  bpe_simple_vocab_16e6.txt.gz            tokenizer merges, so `ClipModel::from_dir` finds them
  reference.safetensors                   pixel_values [N,3,S,S] (CLIPImageProcessor output),
                                          image_embeds [N,D], input_ids [M,77] (int64),
                                          text_embeds [M,D], logit_scale [1]
  reference.json                          image paths, texts, processor class, versions
and weights/test/clip/tokenizer_corpus.json: >= 1,000 generated strings with open_clip's ids.

The reference embeddings are `visual_projection(vision_model(pixel_values).pooler_output)` and
`text_projection(text_model(input_ids).pooler_output)`, L2-normalised (transformers 5's
`get_*_features` return output objects, so the projections are applied here explicitly).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import open_clip
import torch
import transformers
from open_clip.tokenizer import SimpleTokenizer, default_bpe
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "weights" / "test" / "clip"
ASSETS = ROOT / "dupify-core" / "tests" / "assets" / "clothing"
BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"

torch.set_num_threads(max(1, torch.get_num_threads()))

# The text fixtures embedded by both implementations (the tokenizer corpus is separate).
TEXTS = [
    "a photo of a red dress",
    "black leather ankle boots",
    "Levi’s 501® Original Fit Jeans – Stonewash",
    "robe d'été en lin, crème & bleu",
    "ワンピース 夏 花柄",
    "oversized hoodie 🔥🔥 limited drop!!!",
    "men's slim-fit chinos, 32\"x34\"",
    "floral midi skirt &amp; matching top",
    "",
    "a striped long-sleeve t-shirt in navy and white cotton jersey with a crew neck, "
    "relaxed fit, dropped shoulders, ribbed cuffs and hem, garment-dyed for a soft vintage "
    "hand feel, pairs with jeans, chinos, shorts or skirts, machine washable at 30 degrees",
    "straw sun hat",
    "KIDS SNEAKERS Size 12",
]

TINY = {
    "projection_dim": 40,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        # Newer configs name the real end-of-text id; legacy ones (below) say 2.
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
    "vision_config": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
        "num_channels": 3,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
    },
}

# openai/clip-vit-base-patch32's config.json values (legacy eos_token_id == 2: HF pools at the
# argmax of the ids).
VIT_B_32 = {
    "projection_dim": 512,
    "logit_scale_init_value": 2.6592,
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
        "projection_dim": 512,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
        "num_channels": 3,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
        "projection_dim": 512,
    },
}


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def fixture_images(per_category: int) -> list[Path]:
    out = []
    for cat in sorted(p for p in ASSETS.iterdir() if p.is_dir()):
        out += sorted(cat.glob("*.jpg"))[:per_category]
    return out


def build(name: str, cfg: dict, seed: int, images: list[Path], tok: SimpleTokenizer) -> None:
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    config = CLIPConfig(text_config=cfg["text_config"], vision_config=cfg["vision_config"],
                        projection_dim=cfg["projection_dim"],
                        logit_scale_init_value=cfg["logit_scale_init_value"])
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    # Default init leaves every LayerNorm at (1, 0) and many biases at 0, which would hide a
    # swapped or skipped norm/bias. Perturb them so each parameter matters for parity.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname or "layrnorm" in pname or pname.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.1)
            if "class_embedding" in pname or "position_embedding" in pname:
                p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(d, safe_serialization=True)
    shutil.copyfile(ROOT / "weights" / BPE_NAME, d / BPE_NAME)

    size = cfg["vision_config"]["image_size"]
    proc = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    pix = proc(images=[Image.open(p).convert("RGB") for p in images], return_tensors="pt")["pixel_values"]
    ids = tok(TEXTS, context_length=77)
    with torch.no_grad():
        img = model.visual_projection(model.vision_model(pixel_values=pix).pooler_output)
        txt = model.text_projection(model.text_model(input_ids=ids).pooler_output)
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    save_file({
        "pixel_values": pix.contiguous().float(),
        "image_embeds": img.contiguous().float(),
        "input_ids": ids.contiguous().to(torch.int64),
        "text_embeds": txt.contiguous().float(),
        "logit_scale": model.logit_scale.detach().reshape(1).float().contiguous(),
    }, str(d / "reference.safetensors"))
    meta = {
        "images": [str(p.relative_to(ROOT)) for p in images],
        "texts": TEXTS,
        "processor": f"{type(proc).__module__}.{type(proc).__name__}",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "seed": seed,
        "model_sha256": sha256(d / "model.safetensors"),
    }
    (d / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    print(f"[gen_clip] {name}: {len(images)} images, {len(TEXTS)} texts -> {d}", file=sys.stderr)


# ---- tokenizer corpus -------------------------------------------------------------------------

BRANDS = ["Levi's", "Zara", "H&M", "Uniqlo", "Agnès b.", "Comme des Garçons", "Acne Studios",
          "Maison Margiela", "Dr. Martens", "A.P.C.", "Björn Borg", "Mötley Crüe", "ユニクロ",
          "无印良品", "삼성", "Nike", "adidas", "Tommy Hilfiger", "Hermès", "Chloé", "Kenzo"]
COLOURS = ["red", "navy", "off-white", "crème", "bordeaux", "beige", "noir", "blanc cassé",
           "olive", "sky blue", "rosé", "café au lait", "黑色", "白", "빨간색", "charcoal", "ÉCRU"]
ITEMS = ["dress", "midi skirt", "t-shirt", "hoodie", "jeans", "chinos", "sneakers", "ankle boots",
         "bucket hat", "trench coat", "cardigan", "blouse", "shorts", "jumpsuit", "ワンピース",
         "连衣裙", "치마", "veste en jean", "pull à col roulé", "Strickjacke", "Größe", "jupe plissée"]
ADJ = ["slim-fit", "oversized", "vintage", "organic cotton", "100% linen", "faux-leather",
       "water-resistant", "hand-made", "limited edition", "été", "señorita", "naïve", "ﬁne-knit",
       "ＦＵＬＬ－ＷＩＤＴＨ", "“quoted”", "‘single’", "it’s", "don't", "WE'LL", "she'd", "you're"]
EMOJI = ["🔥", "✨", "👗", "👟", "❤️", "👩‍👩‍👧", "🇫🇷", "👍🏽", "😀", "🧥", "💯", "🛍️", "☀"]
PUNCT = ["!!!", "...", "???", "---", "***", "$$$", "!?!?", "~~~", ":)", "¡¡", "«»", "…", "—",
         "(new)", "[sale]", "{x}", "#ootd", "@brand", "50% off", "2-for-1", "$19.99", "€29,90",
         "¥3,980", "32\"x34\"", "5'11\"", "/ / /", "|", "^_^", "<3", "&&", "_-_"]
ENTITIES = ["&amp;", "&quot;", "&#39;", "&eacute;", "&nbsp;", "&lt;b&gt;", "&#x1F600;", "&amp;amp;",
            "&copy", "&reg;", "&trade;", "&hellip;", "&#8217;", "&notanentity;", "&#0;", "&#128;",
            "&AMP;", "&amp;eacute;", "&#65;&#66;", "&#x110000;", "&ampfoo"]
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \r\n ", "\u2009", "\u200b", "\x0b"]
WORDS_LONG = ("soft breathable lightweight relaxed tailored cropped pleated ribbed knitted "
              "quilted padded hooded belted buttoned zipped printed embroidered distressed "
              "washed faded stretch denim corduroy velvet satin silk wool cashmere merino").split()


def corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pick = rng.choice
    out: list[str] = []

    def title() -> str:
        parts = [pick(BRANDS), pick(ADJ), pick(COLOURS), pick(ITEMS)]
        rng.shuffle(parts)
        return " ".join(parts)

    templates = [
        lambda: title(),
        lambda: title().upper(),
        lambda: f"{title()} {pick(EMOJI)}{pick(EMOJI)}",
        lambda: f"{pick(PUNCT)}{title()}{pick(PUNCT)}{pick(PUNCT)}",
        lambda: f"{pick(BRANDS)} {pick(ENTITIES)} {pick(ITEMS)} {pick(ENTITIES)}",
        lambda: pick(SPACES).join([pick(ADJ), pick(COLOURS), pick(ITEMS)]) + pick(SPACES),
        lambda: f"a photo of a {pick(COLOURS)} {pick(ITEMS)}",
        lambda: " ".join(rng.choice(WORDS_LONG) for _ in range(rng.randint(60, 120))),
        lambda: ", ".join(title() for _ in range(rng.randint(5, 12))),
        lambda: "".join(pick(EMOJI) for _ in range(rng.randint(1, 30))),
        lambda: "".join(pick(PUNCT) for _ in range(rng.randint(1, 20))),
        lambda: f"{pick(ITEMS)}{rng.randint(0, 99999)}x{rng.random():.3f}",
        lambda: "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(1, 90))),
        lambda: "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(1, 40))),
        lambda: "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x24F),
                                         rng.randint(0x370, 0x3FF), rng.randint(0x400, 0x4FF)]))
                        for _ in range(rng.randint(1, 60))),
        lambda: f"{pick(ADJ).title()} {pick(ITEMS).title()} – Größe {rng.randint(32, 48)} · {pick(COLOURS)}",
        lambda: f"e\u0301te\u0301 {pick(ITEMS)} (NFD accents)",
        lambda: f"{pick(ITEMS)}\x00\x07\x1b[31m{pick(COLOURS)}\x1b[0m\ufeff",
        lambda: f"<b>{title()}</b> {pick(ENTITIES)}",
        lambda: f"{pick(ITEMS)} <end_of_text> {pick(ITEMS)} <start_of_text>",
        lambda: f"WHAT'S {pick(ITEMS).upper()}? IT'S {pick(COLOURS).upper()}'S",
    ]
    fixed = ["", " ", "\n\t ", "a", "A", "!", "'s", "'", "🫠", "İstanbul çanta", "ΣΟΦΊΑ ΚΑΛΟΣ",
             "ﬁne ﬂannel", "ＡＢＣ１２３", "Levi’s “Original”", "x" * 300, "ab " * 200,
             "\u00a0\u00a0leading nbsp", "Ǆungla ǈubljana", "Ⅻ ½ ² ①", "Ｔシャツ ｶﾀｶﾅ"]
    out += fixed
    while len(out) < n:
        out.append(rng.choice(templates)())
    return out


def build_corpus(tok: SimpleTokenizer) -> None:
    texts = corpus(1200, seed=1234)
    rows = tok(texts, context_length=77).tolist()
    items = [{"text": t, "ids": tok.encode(t), "row": r} for t, r in zip(texts, rows)]
    (OUT / "tokenizer_corpus.json").write_text(
        json.dumps({"context_length": 77, "reference": "open_clip.tokenizer.SimpleTokenizer "
                    + open_clip.__version__, "items": items}, ensure_ascii=False))
    n_trunc = sum(1 for it in items if len(it["ids"]) + 2 > 77)
    print(f"[gen_clip] tokenizer corpus: {len(items)} strings, {n_trunc} truncated", file=sys.stderr)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    bpe = Path(default_bpe())
    shutil.copyfile(bpe, ROOT / "weights" / BPE_NAME)
    tok = SimpleTokenizer()
    build_corpus(tok)
    build("tiny", TINY, seed=0, images=fixture_images(4), tok=tok)
    build("vit-b-32", VIT_B_32, seed=32, images=fixture_images(1)[:8], tok=tok)


if __name__ == "__main__":
    main()

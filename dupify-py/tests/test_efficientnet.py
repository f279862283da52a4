"""The pretrained EfficientNet-Lite2 through the Python module: the default model resolver,
what the model is, image embeddings, its trained category head, and a clear error for text.

Needs ``weights/real/efficientnet-lite2`` (installed by ``scripts/setup.sh``); fails, never
skips, without it.
"""

from __future__ import annotations

import pytest

import dupify
from conftest import ROOT, photos

LITE2 = ROOT / "weights" / "real" / "efficientnet-lite2"


@pytest.fixture(scope="module")
def lite2():
    assert (LITE2 / "model.safetensors").is_file(), f"{LITE2} missing: run scripts/setup.sh"
    return dupify.Extractor(LITE2, device="cpu", threads=2)


def test_default_model_is_the_pretrained_encoder_without_a_clip():
    found = dupify.default_model_dir(ROOT)
    clip = ROOT / "weights" / "real" / "clip-vit-base-patch32" / "model.safetensors"
    want = clip.parent if clip.is_file() else LITE2
    assert found == want


def test_model_info_and_embedding(lite2):
    info = lite2.model_info()
    assert info["architecture"] == "efficientnet_lite"
    assert info["dimensions"] == 1280 and info["image_size"] == 260
    assert info["has_text_tower"] is False
    f = lite2.extract(photos(1)[0], ops="embed")
    assert f.dimensions == 1280
    assert f.model == info["content_hash"]


def test_category_head_and_no_text(lite2):
    # The first fixture photo is a dress (folders are sorted).
    f = lite2.extract(photos(1)[0], ops="attributes")
    assert f.attributes is not None
    report = f.attributes.to_dict()
    cat = report["attributes"][0]
    assert cat["attribute"] == "category" and cat["head"] == "linear"
    assert abs(sum(d["probability"] for d in cat["distribution"]) - 1.0) < 1e-4
    # Only the attributes a head exists for: the category alone.
    assert [a["attribute"] for a in report["attributes"]] == ["category"]
    with pytest.raises(dupify.DupifyError) as e:
        lite2.embed_text("a red dress")
    assert e.value.code == "not_available"
    assert "image-only" in str(e.value)

"""Catalog from Python: CRUD, listing with filters, every search form and filter, namespaces,
persistence, and bad inputs with the hosted codes."""

from __future__ import annotations

import numpy as np
import pytest

import dupify
from conftest import photos

NS = dupify.Namespace("acme", "test")


def _vec(*xs):
    return np.array(xs, dtype=np.float32)


@pytest.fixture
def cat():
    c = dupify.Catalog(dim=3)
    rows = [
        ("a", "Red dress", "Zara", "dress", 100.0, _vec(1, 0, 0), {"season": "summer"}),
        ("b", "Red dress dupe", "H&M", "dress", 30.0, _vec(0.9, 0.1, 0), {"season": "summer"}),
        ("c", "Blue dress", "H&M", "dress", 25.0, _vec(0.6, 0.8, 0), {"season": "winter"}),
        ("d", "Boots", "Zara", "shoes", 80.0, _vec(0, 0, 1), {}),
    ]
    for ext, title, brand, category, price, emb, meta in rows:
        c.upsert(
            NS,
            {"external_id": ext, "title": title, "brand": brand, "category": category,
             "price": price, "metadata": meta},
            features={"clip": emb},
        )
    return c


def test_crud_and_product_fields(cat):
    p = cat.get_by_external_id(NS, "a")
    assert (p.title, p.brand, p.category, p.price, p.currency) == ("Red dress", "Zara", "dress", 100.0, "USD")
    assert p.metadata == {"season": "summer"}
    assert p.embedding.dtype == np.float32 and np.allclose(p.embedding, [1, 0, 0])
    assert p.namespace == NS and p.namespace.environment == "test"
    assert p.to_dict()["external_id"] == "a" and p.to_dict()["id"] == p.id
    assert cat.get(NS, p.id) == p
    updated = cat.upsert(NS, {"external_id": "a", "title": "Red dress v2", "price": 90})
    assert updated.id == p.id and updated.title == "Red dress v2" and updated.price == 90.0
    cat.delete(NS, p.id)
    with pytest.raises(dupify.NotFoundError) as e:
        cat.get(NS, p.id)
    assert e.value.code == "not_found"
    with pytest.raises(dupify.NotFoundError):
        cat.delete(NS, p.id)


def test_list_pages_and_filters(cat):
    first = cat.list(NS, limit=3)
    assert [p.external_id for p in first.items] == ["a", "b", "c"] and first.next_cursor
    rest = cat.list(NS, limit=3, cursor=first.next_cursor)
    assert [p.external_id for p in rest.items] == ["d"] and rest.next_cursor is None
    assert rest.to_dict()["next_cursor"] is None
    cheap = cat.list(NS, filter={"max_price": 50})
    assert {p.external_id for p in cheap.items} == {"b", "c"}
    hm = cat.list(NS, filter={"brand": "H&M", "metadata_eq": {"season": "winter"}})
    assert [p.external_id for p in hm.items] == ["c"]
    pairs = cat.list(NS, filter={"metadata_eq": [["season", "summer"]]})
    assert {p.external_id for p in pairs.items} == {"a", "b"}
    other = dupify.Namespace("acme", "live")
    assert cat.list(other).items == []
    assert cat.list(("acme", "test")).items == cat.list(NS).items


def test_search_forms_and_filters(cat):
    hits = cat.search(NS, embedding=_vec(1, 0, 0), limit=2)
    assert [h.product.external_id for h in hits] == ["a", "b"]
    assert hits[0].score >= hits[1].score and hits[0].scores.clip == pytest.approx(1.0, abs=1e-5)
    assert hits[0].scores.shape is None
    assert hits[0].to_dict()["product"]["external_id"] == "a"
    assert [h.product.external_id for h in cat.search(NS, embedding=[1.0, 0.0, 0.0], limit=2)] == ["a", "b"]
    a = cat.get_by_external_id(NS, "a")
    dupes = cat.search(NS, by_product=a.id, cheaper_by_percent=50)
    assert a.id not in [h.product.id for h in dupes]
    assert {h.product.external_id for h in dupes} == {"b", "c"}
    only_dress = cat.search(NS, embedding=_vec(0, 0, 1), filter={"category": "dress"})
    assert "d" not in {h.product.external_id for h in only_dress}
    weighted = cat.search(NS, embedding=_vec(1, 0, 0), weights={"clip": 1.0, "shape": 0.0, "color": 0.0})
    assert weighted[0].product.external_id == "a"
    page2 = cat.search(NS, embedding=_vec(1, 0, 0), limit=1, offset=1)
    assert [h.product.external_id for h in page2] == ["b"]


def test_search_with_extracted_features(extractor):
    cat = dupify.Catalog()
    ims = photos(4)
    for i, path in enumerate(ims):
        f = extractor.extract(path, "embed,colors,silhouette")
        cat.upsert(NS, {"external_id": f"p{i}", "price": 10.0 + i}, features=f)
    q = extractor.extract(ims[2], "embed,colors,silhouette")
    hits = cat.search(NS, features=q, limit=4)
    assert hits[0].product.external_id == "p2"
    assert hits[0].scores.clip == pytest.approx(1.0, abs=1e-4)
    assert hits[0].scores.shape == pytest.approx(1.0, abs=1e-4)
    assert hits[0].scores.color is not None
    colors = [{"lab": list(c.lab), "share": c.share} for c in q.colors.colors]
    by_color = cat.search(NS, colors=colors, limit=1)
    assert by_color[0].scores.color is not None and by_color[0].scores.clip is None
    batch = cat.upsert_batch(NS, [({"external_id": "p9"}, q), {"external_id": "p10"}])
    assert [p.external_id for p in batch] == ["p9", "p10"]
    assert batch[0].features["clip"] is not None and batch[1].features["clip"] is None


def test_persistence_and_index_report(tmp_path):
    path = tmp_path / "cat.db"
    c = dupify.Catalog(path, index={"brute_force_below": 2, "m": 8, "ef_construction": 16,
                                    "ef_search": 16, "rebuild_tombstone_ratio": 0.5})
    rng = np.random.default_rng(0)
    for i in range(5):
        c.upsert(NS, {"external_id": f"x{i}"}, features={"clip": rng.normal(size=8).astype(np.float32)})
    c.flush()
    (rep,) = c.index_report()
    assert rep.mode == "ann" and rep.live == 5 and rep.namespace == NS
    # five points: every ef from the floor up finds the exact top 10, so calibration keeps it
    assert rep.ef_search == 16 and rep.recall_at_10 == 1.0
    del c
    c2 = dupify.Catalog(str(path))
    assert c2.path == path
    assert len(c2.list(NS).items) == 5
    assert c2.index_report()[0].live == 5


@pytest.mark.parametrize(
    "call,code",
    [
        (lambda c: c.upsert(NS, {"title": "no id"}), "missing_parameter"),
        (lambda c: c.upsert(NS, {"external_id": "x", "price": -1}), "invalid_parameter"),
        (lambda c: c.upsert(NS, {"external_id": "x", "currency": "dollars"}), "invalid_parameter"),
        (lambda c: c.upsert(NS, {"external_id": "x", "colour": "red"}), "invalid_parameter"),
        (lambda c: c.upsert(NS, {"external_id": "x"}, features={"clip": [1.0, 2.0]}), "invalid_parameter"),
        (lambda c: c.upsert(NS, "not a dict"), "invalid_parameter"),
        (lambda c: c.search(NS, embedding=[0.0, 0.0, 0.0]), "invalid_parameter"),
        (lambda c: c.search(NS, embedding="abc"), "invalid_parameter"),
        (lambda c: c.search(NS, embedding=[1.0, 0, 0], filter={"min_price": 5, "max_price": 1}), "invalid_parameter"),
        (lambda c: c.search(NS, embedding=[1.0, 0, 0], filter={"catgory": "dress"}), "invalid_parameter"),
        (lambda c: c.search(NS, by_product="no-such-id"), "not_found"),
        # One parser for every search's keywords: a typo is named, never silently ignored.
        (lambda c: c.search(NS, embedding=[1.0, 0, 0], limt=3), "invalid_parameter"),
        (lambda c: c.search(NS, embedding=[1.0, 0, 0], limit=-1), "invalid_parameter"),
        (lambda c: c.search(NS, embedding=[1.0, 0, 0], min_score="high"), "invalid_parameter"),
        (lambda c: c.list(("acme", "staging")), "invalid_parameter"),
        (lambda c: c.list("acme"), "invalid_parameter"),
        (lambda c: dupify.Namespace("", "live"), "invalid_parameter"),
        (lambda c: dupify.Catalog(dim=0), "invalid_parameter"),
        (lambda c: dupify.Catalog(index={"m": 1000}), "invalid_parameter"),
    ],
)
def test_bad_catalog_inputs(cat, call, code):
    with pytest.raises(dupify.DupifyError) as e:
        call(cat)
    assert e.value.code == code, str(e.value)


def test_count_and_brand_filters(cat):
    assert cat.count(NS) == 4
    assert cat.count(NS, {"category": "dress"}) == 3
    assert cat.count(NS, {"exclude_brands": ["Zara"]}) == 2
    assert cat.count(("acme", "live")) == 0
    a = cat.get_by_external_id(NS, "a")
    own = cat.search(NS, by_product=a.id, exclude_own_brand=True)
    assert {h.product.brand for h in own} == {"H&M"}
    strict = cat.search(NS, embedding=_vec(1, 0, 0), min_score=0.995)
    assert [h.product.external_id for h in strict] == ["a"]
    with pytest.raises(dupify.InvalidRequestError) as e:
        cat.search(NS, embedding=_vec(1, 0, 0), exclude_own_brand=True)
    assert e.value.code == "missing_parameter"


def test_ingest_search_image_and_text(tiny_model):
    x = dupify.Extractor(tiny_model, device="cpu", batch_size=2)
    cat = dupify.Catalog()
    ims = photos(5)
    items = [({"external_id": f"p{i}", "brand": "B", "price": 20.0}, path) for i, path in enumerate(ims)]
    items.append(({"external_id": "bad"}, b"not an image"))
    seen = []
    report = cat.ingest(NS, x, items, progress=lambda d, t: seen.append((d, t)))
    assert (report.indexed, report.skipped) == (5, 0)
    assert [(f.external_id, f.code) for f in report.failed] == [("bad", "unsupported_format")]
    assert report.to_dict()["indexed"] == 5
    assert seen and seen[-1] == (6, 6)
    again = cat.ingest(NS, x, items[:5])
    assert (again.indexed, again.skipped, again.failed) == (0, 5, [])
    stored = cat.get_by_external_id(NS, "p3")
    assert stored.image_hash == x.extract(ims[3]).content_hash
    hits = cat.search_image(NS, x, ims[3], limit=3)
    assert hits[0].product.external_id == "p3"
    # The image search makes its own query vectors: passing one is refused, by name.
    with pytest.raises(dupify.InvalidRequestError) as e:
        cat.search_image(NS, x, ims[3], embedding=[1.0] * 512)
    assert "embedding" in str(e.value)
    assert hits[0].scores.clip == pytest.approx(1.0, abs=1e-4)
    text_hits = cat.search_text(NS, x, "a photo of a hat", limit=5)
    assert len(text_hits) == 5 and all(h.scores.clip is not None for h in text_hits)
    want = cat.search(NS, embedding=x.embed_text("a photo of a hat"), limit=5)
    assert [h.product.id for h in text_hits] == [h.product.id for h in want]
    with pytest.raises(dupify.InvalidRequestError) as e:
        cat.search_text(NS, x, "   ")
    assert e.value.code == "missing_parameter"
    with pytest.raises(dupify.InvalidRequestError):
        cat.ingest(NS, x, [("not a pair",)])


def test_ingest_cancel(tiny_model):
    x = dupify.Extractor(tiny_model, device="cpu", batch_size=2)
    cat = dupify.Catalog()
    token = dupify.CancelToken()
    token.cancel()
    items = [({"external_id": f"p{i}"}, path) for i, path in enumerate(photos(4))]
    report = cat.ingest(NS, x, items, cancel=token)
    assert report.indexed == 0 and {f.code for f in report.failed} == {"cancelled"}
    assert cat.count(NS) == 0

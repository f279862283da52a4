"""The Extractor from Python: every operation, every input kind, parity with the Rust API,
bad inputs with the right `.code`, batches with progress and cancellation, and the GIL
released during the work."""

from __future__ import annotations

import base64
import pathlib
import threading

import numpy as np
import pytest

import dupify
from conftest import INPUT, photos, rust_features

PHOTOS = photos(4)
PNG = INPUT / "source.png"
RGBA_PNG = INPUT / "rgba.png"


def _without_time(d: dict) -> dict:
    d = dict(d)
    d.pop("processing_time_ms")
    return d


def _same_except_hash(a: dupify.Features, b: dupify.Features) -> None:
    """Equal extracted values; raw pixels hash differently from encoded bytes by design."""
    da, db = _without_time(a.to_dict()), _without_time(b.to_dict())
    assert da.pop("content_hash") != "" and db.pop("content_hash") != ""
    assert da == db


@pytest.fixture(scope="module")
def rust_reference(tiny_model):
    files = [*PHOTOS, PNG, RGBA_PNG]
    return files, rust_features(tiny_model, "all", files)


def test_results_equal_the_rust_api(extractor, rust_reference):
    files, reference = rust_reference
    ours = extractor.extract_batch(files, "all")
    assert len(ours) == len(reference)
    for f, r, path in zip(ours, reference, files):
        assert isinstance(f, dupify.Features), (path, f)
        assert _without_time(f.to_dict()) == _without_time(r), path
        assert f.to_json().startswith("{")


def test_features_attributes_match_their_dict(extractor):
    f = extractor.extract(PHOTOS[0], "all")
    d = f.to_dict()
    assert f.content_hash == d["content_hash"] and len(f.content_hash) == 64
    assert (f.width, f.height) == (d["width"], d["height"])
    assert isinstance(f.embedding, np.ndarray) and f.embedding.dtype == np.float32
    assert f.embedding.shape == (f.dimensions,) == (extractor.embed_dim,)
    assert np.array_equal(f.embedding, np.array(d["embedding"], dtype=np.float32))
    assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-4
    assert f.model == d["model"] == extractor.model_id
    assert not f.cached and f.processing_time_ms > 0
    c = f.colors
    assert c.to_dict() == d["colors"] and c.family == d["colors"]["family"]
    assert c.foreground == d["colors"]["foreground"]
    top = c.colors[0]
    assert (top.hex, list(top.rgb), top.name) == (
        d["colors"]["colors"][0]["hex"],
        d["colors"]["colors"][0]["rgb"],
        d["colors"]["colors"][0]["name"],
    )
    assert top.family == d["colors"]["colors"][0]["family"]
    s = f.silhouette
    assert s.to_dict() == d["silhouette"]
    assert s.bbox.to_dict() == d["silhouette"]["bbox"] and s.bbox.width > 0
    assert s.embedding.dtype == np.float32 and len(s.embedding) == len(d["silhouette"]["embedding"])
    assert f.cutout_png.startswith(b"\x89PNG")
    assert base64.b64decode(d["cutout_png"]) == f.cutout_png
    a = f.attributes
    assert a.to_dict() == d["attributes"] and a.category == d["attributes"]["category"]
    assert a.category_source in {"predicted", "given"}
    p = a.attributes[0]
    assert p.label == p.distribution[0].label or p.label in {x.label for x in p.distribution}
    assert abs(sum(x.probability for x in p.distribution) - 1.0) < 1e-4
    assert p.head in {"zero_shot", "linear"}
    q = f.quality
    assert q.to_dict() == d["quality"] and 0.0 <= q.overall <= 1.0
    for obj in (f, c, top, s, s.bbox, a, p, q):
        assert type(obj).__name__ in repr(obj)
    assert f == extractor.extract(PHOTOS[0], "all"), "equality ignores processing time"
    assert f != extractor.extract(PHOTOS[1], "all")


def test_single_op_helpers_equal_extract(extractor):
    img = PHOTOS[1]
    assert np.array_equal(extractor.embed(img), extractor.extract(img).embedding)
    assert extractor.colors(img) == extractor.extract(img, "colors").colors
    assert extractor.silhouette(img) == extractor.extract(img, "silhouette").silhouette
    assert extractor.cutout(img) == extractor.extract(img, "cutout").cutout_png
    assert extractor.attributes(img) == extractor.extract(img, "attributes").attributes
    assert extractor.quality(img) == extractor.extract(img, "quality").quality
    only_colors = extractor.extract(img, "colors")
    assert only_colors.embedding is None and only_colors.silhouette is None


def test_every_input_kind_gives_the_same_features(extractor, tiny_model):
    path = PHOTOS[2]
    raw = path.read_bytes()
    by_path = extractor.extract(path, "all")
    same_hash = [
        str(path),
        raw,
        bytearray(raw),
        memoryview(raw),
        dupify.Base64(base64.b64encode(raw).decode()),
        "data:image/jpeg;base64," + base64.b64encode(raw).decode(),
    ]
    for image in same_hash:
        f = extractor.extract(image, "all")
        assert _without_time(f.to_dict()) == _without_time(by_path.to_dict()), type(image)
    # Decoded pixels: the core's own full-size decode (EXIF applied) as numpy, then via PIL.
    # Encoded, this photo is large enough for the tiny model's views to decode at reduced
    # scale, which pixels handed in never are: compare them with a full-size decode.
    full = dupify.Extractor(tiny_model, device="cpu", reduced_decode_margin=0)
    by_path = full.extract(path, "all")
    pixels = dupify.decode(raw)
    assert pixels.dtype == np.uint8 and pixels.shape == (by_path.height, by_path.width, 3)
    _same_except_hash(full.extract(pixels, "all"), by_path)
    _same_except_hash(full.extract(np.asfortranarray(pixels), "all"), by_path)
    from PIL import Image

    _same_except_hash(full.extract(Image.fromarray(pixels), "all"), by_path)


def test_png_bytes_numpy_and_pil_agree(extractor):
    from PIL import Image

    by_bytes = extractor.extract(PNG.read_bytes(), "all")
    with Image.open(PNG) as im:
        im.load()
        arr = np.asarray(im.convert("RGB"))
        _same_except_hash(extractor.extract(im, "all"), by_bytes)
    _same_except_hash(extractor.extract(arr, "all"), by_bytes)
    # RGBA: alpha travels through numpy H×W×4 and PIL "RGBA".
    rgba_bytes = extractor.extract(RGBA_PNG, "all")
    rgba = dupify.decode(RGBA_PNG)
    assert rgba.shape[2] == 4
    _same_except_hash(extractor.extract(rgba, "all"), rgba_bytes)
    with Image.open(RGBA_PNG) as im:
        assert im.mode == "RGBA"
        _same_except_hash(extractor.extract(im, "all"), rgba_bytes)
        # Other modes are converted by Pillow (LA keeps alpha).
        la = extractor.extract(im.convert("LA"), "colors")
        assert la.colors is not None


def test_batch_equals_single(extractor):
    batch = extractor.extract_batch(PHOTOS, "all")
    for path, b in zip(PHOTOS, batch):
        s = extractor.extract(path, "all")
        assert np.max(np.abs(b.embedding - s.embedding)) <= 1e-5
        db, ds = b.to_dict(), s.to_dict()
        for key in ("colors", "silhouette", "quality", "cutout_png", "content_hash", "model"):
            assert db[key] == ds[key], key
        assert [p["label"] for p in db["attributes"]["attributes"]] == [
            p["label"] for p in ds["attributes"]["attributes"]
        ]


def test_text_embeddings(extractor):
    one = extractor.embed_text("a red floral summer dress")
    many = extractor.embed_texts(["a red floral summer dress", "black leather boots"])
    assert one.dtype == np.float32 and one.shape == (extractor.embed_dim,)
    assert many.shape == (2, extractor.embed_dim) and many.dtype == np.float32
    assert np.max(np.abs(many[0] - one)) <= 1e-5
    assert abs(float(np.linalg.norm(many[1])) - 1.0) < 1e-4
    assert extractor.embed_texts([]).shape[0] == 0


BAD_INPUTS = [
    (b"definitely not an image", "unsupported_format", dupify.ImageError),
    (b"", "image_processing_failed", dupify.ImageError),
    (dupify.Base64("***not base64***"), "invalid_base64", dupify.ImageError),
    ("data:image/png;base64,%%%%", "invalid_base64", dupify.ImageError),
    ("/no/such/file.jpg", "invalid_parameter", dupify.InvalidRequestError),
    (INPUT / "tiny.tiff", "unsupported_format", dupify.ImageError),
    (PNG.read_bytes()[:200], "image_processing_failed", dupify.ImageError),
    (np.zeros((4, 4, 3), dtype=np.float32), "invalid_parameter", dupify.InvalidRequestError),
    (np.zeros((4, 4), dtype=np.uint8), "invalid_parameter", dupify.InvalidRequestError),
    (np.zeros((4, 4, 2), dtype=np.uint8), "invalid_parameter", dupify.InvalidRequestError),
    (np.zeros((0, 4, 3), dtype=np.uint8), "image_processing_failed", dupify.ImageError),
    ("https://example.com/a.jpg", "not_available", dupify.NotAvailableError),
    (12345, "invalid_parameter", dupify.InvalidRequestError),
]


@pytest.mark.parametrize("image,code,cls", BAD_INPUTS, ids=[c for _, c, _ in BAD_INPUTS])
def test_bad_inputs_raise_the_right_code(extractor, image, code, cls):
    with pytest.raises(cls) as e:
        extractor.extract(image, "embed,colors")
    assert e.value.code == code
    assert str(e.value)


def test_limits_and_bad_ops(tiny_model):
    small = dupify.Extractor(tiny_model, device="cpu", max_pixels=100)
    with pytest.raises(dupify.ImageError) as e:
        small.extract(PHOTOS[0], "colors")
    assert e.value.code == "image_processing_failed" and e.value.http_status == 422
    with pytest.raises(dupify.InvalidRequestError) as e:
        small.extract(PHOTOS[0], "embed,sparkles")
    assert e.value.code == "invalid_parameter"
    with pytest.raises(dupify.InvalidRequestError) as e:
        small.extract(PHOTOS[0], " , ")
    assert e.value.code == "missing_parameter"


def test_reduced_decode_margin_reaches_the_core(tiny_model, tmp_path):
    from PIL import Image

    with Image.open(PHOTOS[0]) as im:
        big = im.convert("RGB").resize((im.width * 3, im.height * 3), Image.LANCZOS)
    path = tmp_path / "large.jpg"
    big.save(path, quality=90)
    reduced = dupify.Extractor(tiny_model, device="cpu").extract(path, "embed,silhouette")
    full = dupify.Extractor(tiny_model, device="cpu", reduced_decode_margin=0).extract(
        path, "embed,silhouette"
    )
    # Both report the photo's own size; only the decode differs, so the embeddings are close
    # but not equal.
    assert (reduced.width, reduced.height) == (full.width, full.height) == big.size
    a, b = np.asarray(reduced.embedding), np.asarray(full.embedding)
    assert not np.array_equal(a, b)
    assert float(a @ b) > 0.99


def test_model_ops_without_a_model():
    x = dupify.Extractor(device="cpu")
    assert x.colors(PHOTOS[0]).colors, "CPU-only operations work without a model"
    with pytest.raises(dupify.NotAvailableError) as e:
        x.embed(PHOTOS[0])
    assert e.value.code == "not_available"
    with pytest.raises(dupify.NotAvailableError):
        x.embed_text("dress")


def test_batch_keeps_per_item_errors(extractor):
    out = extractor.extract_batch(
        [PHOTOS[0], b"nope", dupify.Base64("!!"), "/no/such.jpg", PHOTOS[1]], "embed,colors"
    )
    assert isinstance(out[0], dupify.Features) and isinstance(out[4], dupify.Features)
    assert [e.code for e in out[1:4]] == ["unsupported_format", "invalid_base64", "invalid_parameter"]
    assert all(isinstance(e, dupify.DupifyError) for e in out[1:4])
    with pytest.raises(dupify.InvalidRequestError):
        extractor.extract_batch(str(PHOTOS[0]))
    mixed = extractor.extract_batch([object(), PHOTOS[0], np.zeros((2, 2), np.uint8)], "colors")
    assert isinstance(mixed[1], dupify.Features)
    assert [mixed[0].code, mixed[2].code] == ["invalid_parameter", "invalid_parameter"]
    with pytest.raises(dupify.InvalidRequestError):
        extractor.extract_batch(42)


def test_progress_and_cancel(tiny_model):
    x = dupify.Extractor(tiny_model, device="cpu", batch_size=2)
    images = photos(8)
    seen = []
    token = dupify.CancelToken()

    def progress(done, total):
        seen.append((done, total))
        if done == 2:
            token.cancel()

    out = x.extract_batch(images, "embed", progress=progress, cancel=token)
    assert seen == [(i, 8) for i in range(1, 9)]
    assert token.cancelled
    assert all(isinstance(f, dupify.Features) for f in out[:2])
    assert [getattr(e, "code", None) for e in out[2:]] == ["cancelled"] * 6
    assert isinstance(out[2], dupify.CancelledError)


def test_progress_exception_cancels_and_is_reraised(tiny_model):
    x = dupify.Extractor(tiny_model, device="cpu", batch_size=2)
    calls = []

    def progress(done, total):
        calls.append(done)
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        x.extract_batch(photos(8), "embed", progress=progress)
    assert calls[0] == 1


def test_gil_is_released_during_a_batch(tiny_model):
    """While one thread runs a long batch, this thread keeps running Python: it sees the batch
    at several intermediate progress states. The progress callback is a C builtin
    (dict.__setitem__), which never runs Python bytecode, so the only way this thread can
    observe intermediate states is by running while the batch is in native code."""
    x = dupify.Extractor(tiny_model, device="cpu", batch_size=2, threads=1)
    images = photos(16)
    marks: dict = {}
    result: list = []
    t = threading.Thread(
        target=lambda: result.append(x.extract_batch(images, "all", progress=marks.__setitem__))
    )
    seen = set()
    loops = 0
    t.start()
    while t.is_alive():
        seen.add(len(marks))
        loops += 1
    t.join()
    assert len(result[0]) == 16 and all(isinstance(f, dupify.Features) for f in result[0])
    intermediate = {n for n in seen if 0 < n < 16}
    assert len(intermediate) >= 2, f"main thread saw progress states {sorted(seen)} only"
    assert loops > 100


def test_threads_share_one_extractor(extractor):
    expected = {p: extractor.extract(p, "embed,colors") for p in PHOTOS}
    got: dict = {}

    def work(p):
        got[p] = extractor.extract(p, "embed,colors")

    threads = [threading.Thread(target=work, args=(p,)) for p in PHOTOS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in PHOTOS:
        assert got[p].to_dict()["colors"] == expected[p].to_dict()["colors"]
        assert np.max(np.abs(got[p].embedding - expected[p].embedding)) <= 1e-5


def test_cache(tiny_model):
    x = dupify.Extractor(tiny_model, device="cpu", cache_capacity=8)
    raw = PHOTOS[0].read_bytes()
    first = x.extract(raw, "embed")
    second = x.extract(dupify.Base64(base64.b64encode(raw).decode()), "embed")
    assert not first.cached and second.cached
    assert np.array_equal(first.embedding, second.embedding)


def test_palette_shape_and_color_helpers(extractor):
    a, b = extractor.extract(PHOTOS[0], "colors,silhouette"), extractor.extract(PHOTOS[3], "colors,silhouette")
    assert dupify.palette_distance(a, a) == 0.0
    d = dupify.palette_distance(a.colors, b.colors)
    assert d > 0.0 and d == dupify.palette_distance(b, a)
    assert dupify.palette_distance(a.colors.colors, b.colors.colors) == d
    assert dupify.delta_e2000((50, 0, 0), (50, 0, 0)) == 0.0
    assert dupify.delta_e2000((0, 0, 0), (100, 0, 0)) > 50
    sa = a.silhouette.embedding
    assert abs(dupify.shape_similarity(sa, sa) - 1.0) < 1e-5
    assert dupify.shape_similarity(sa, list(b.silhouette.embedding)) < 1.0
    with pytest.raises(dupify.InvalidRequestError):
        dupify.shape_similarity(sa, sa[:3])
    with pytest.raises(dupify.InvalidRequestError):
        dupify.palette_distance(a, "navy")


def test_extractor_properties(extractor, tiny_model):
    assert extractor.device == "cpu"
    assert pathlib.Path(extractor.model_dir) == tiny_model
    assert len(extractor.model_id) > 8
    assert "Extractor(" in repr(extractor)
    extractor.warm_up()


def test_garbage_never_escapes_as_anything_but_dupify_errors(extractor):
    """Random bytes, truncated files and odd arrays give DupifyError, never a panic or a
    foreign exception."""
    rng = np.random.default_rng(7)
    jpeg, png = PHOTOS[0].read_bytes(), PNG.read_bytes()
    inputs = [rng.bytes(int(n)) for n in rng.integers(1, 4000, size=20)]
    inputs += [jpeg[:n] for n in (2, 10, 100, 600, len(jpeg) // 2)]
    inputs += [png[:n] for n in (8, 33, 60, len(png) // 3)]
    inputs += [b"\x89PNG\r\n\x1a\n" + rng.bytes(200), b"GIF89a" + rng.bytes(50), b"RIFF" + rng.bytes(40)]
    inputs += [np.zeros((1, 30_000, 3), dtype=np.uint8), np.zeros((2, 2, 4), dtype=np.uint8)[:, :, :3:2]]
    for image in inputs:
        try:
            f = extractor.extract(image, "all")
        except dupify.DupifyError as e:
            assert e.code in {
                "unsupported_format", "image_processing_failed", "invalid_parameter", "invalid_base64",
            }, (e.code, str(e))
        else:
            assert isinstance(f, dupify.Features)
    out = extractor.extract_batch(inputs, "embed,colors")
    assert len(out) == len(inputs)
    assert all(isinstance(r, (dupify.Features, dupify.DupifyError)) for r in out)


def test_features_round_trip_through_the_core_json(extractor):
    f = extractor.extract(PHOTOS[0], "all")
    back = dupify.Features.from_json(f.to_json())
    assert back == f
    assert back.to_dict() == f.to_dict()
    with pytest.raises(dupify.InvalidRequestError) as e:
        dupify.Features.from_json('{"content_hash": 3}')
    assert "Features" in str(e.value)

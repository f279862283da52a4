"""dupify.ray on a local Ray cluster started here: 2 CPUs, loopback, no dashboard.

About a minute in all on the 2-core CI machine (Ray's start ~5 s, each job a few seconds).
The photos are the committed fixtures plus one corrupt file; the model is the seeded tiny
CLIP, whose numbers are real even if its embeddings are not semantic.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import ray
import ray.cloudpickle

import dupify
import dupify.ray as dray

from conftest import photos

OPS = "embed,colors,silhouette"
N = 6

# DiesOnce (below) travels to the actors by value: the workers cannot import this module.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """N photos in category folders plus a corrupt "photo"."""
    root = tmp_path_factory.mktemp("shop")
    files = []
    for p in photos(N):
        dst = root / p.parent.name / p.name
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes(p.read_bytes())
        files.append(dst)
    bad = root / "broken" / "not-an-image.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"\xff\xd8\xff this is not a JPEG")
    return root, files, bad


def _rows(ds) -> dict:
    return {r["path"]: r for r in ds.take_all()}


def test_rows_equal_in_process_extraction_and_a_bad_image_is_one_error_row(cluster, shop, tiny_model):
    root, files, bad = shop
    ds = ray.data.read_binary_files([str(f) for f in files + [bad]], include_paths=True)
    rows = _rows(dray.extract_dataset(ds, model_dir=str(tiny_model), ops=OPS, batch_size=4))
    assert len(rows) == N + 1

    x = dupify.Extractor(tiny_model, device="cpu", batch_size=4)
    *ok, failed = x.extract_batch(files + [bad], OPS)
    for path, f in zip(files, ok):
        r = rows[str(path)]
        assert r["error"] is None and r["error_code"] is None
        assert r["content_hash"] == f.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
        assert r["model"] == f.model == x.model_id
        emb = np.asarray(r["embedding"], dtype=np.float32)
        assert emb.shape == (x.embed_dim,)
        assert np.max(np.abs(emb - f.embedding)) <= 1e-5  # the core's batch-vs-single bound
        expected = f.to_dict()
        got = json.loads(r["features"])
        for key in ("colors", "silhouette", "model", "width", "height"):
            assert got[key] == expected[key], key

    broken = rows[str(bad)]
    assert broken["error_code"] in {"unsupported_format", "image_processing_failed"}
    # The same error as in-process extraction gives for that file.
    assert isinstance(failed, dupify.DupifyError)
    assert (broken["error_code"], broken["error"]) == (failed.code, str(failed))
    assert broken["embedding"] is None and broken["features"] is None
    assert broken["content_hash"] == hashlib.sha256(bad.read_bytes()).hexdigest()


class DiesOnce(dray.Extract):
    """Kills its own process after extracting one batch, the first time only."""

    marker = ""

    def __call__(self, batch):
        out = super().__call__(batch)
        if os.path.exists(self.marker):
            os.remove(self.marker)
            os._exit(1)
        return out


def test_an_actor_killed_mid_job_is_retried_without_duplicate_rows(cluster, shop, tiny_model, tmp_path):
    root, files, _ = shop
    marker = tmp_path / "die"
    marker.write_text("once")
    DiesOnce.marker = str(marker)
    ds = ray.data.read_binary_files([str(f) for f in files], include_paths=True)
    out = dray.extract_dataset(
        ds, model_dir=str(tiny_model), ops="embed", batch_size=2, extract_class=DiesOnce
    ).take_all()
    assert not marker.exists(), "the actor never died: the test proves nothing"
    paths = [r["path"] for r in out]
    assert sorted(paths) == sorted(map(str, files))  # every photo, each once
    assert all(r["error"] is None for r in out)


def test_parquet_resume_skips_what_is_done_and_ingest_stores_without_extracting(
    cluster, shop, tiny_model, tmp_path
):
    root, files, bad = shop
    out = tmp_path / "features"
    ds = dray.index_folder_rows(root)
    dray.extract_dataset(ds, model_dir=str(tiny_model), ops=OPS, batch_size=4).write_parquet(str(out))
    # Resuming: only the failed image is extracted again.
    again = dray.extract_dataset(
        dray.index_folder_rows(root), model_dir=str(tiny_model), ops=OPS, resume_from=out
    ).take_all()
    assert [r["path"] for r in again] == [str(bad)]

    cat = dupify.Catalog(str(tmp_path / "shop.db"))
    ns = dupify.Namespace("ray", "test")
    report = dray.ingest(out, cat, ns)
    assert (report["stored"], report["failed"]) == (N, 1)
    assert report["failures"][0]["product"]["external_id"] == "broken/not-an-image.jpg"
    assert cat.count(ns) == N
    # The stored features are the rows' (no second extraction): same hash and embedding.
    first = files[0]
    ext_id = f"{first.parent.name}/{first.name}"
    p = cat.get_by_external_id(ns, ext_id)
    assert p.category == first.parent.name and p.title == first.stem
    x = dupify.Extractor(tiny_model, device="cpu")
    f = x.extract(first, "embed")
    assert p.image_hash == f.content_hash
    hits = cat.search_image(ns, x, first, limit=1)
    assert hits[0].product.external_id == ext_id


def test_rows_of_another_model_are_refused(cluster, shop, tiny_model, tmp_path):
    root, files, _ = shop
    rows = dray.extract_dataset(
        ray.data.read_binary_files([str(f) for f in files[:2]], include_paths=True),
        model_dir=str(tiny_model),
        ops="embed",
    ).take_all()
    cat = dupify.Catalog(str(tmp_path / "c.db"))
    ns = dupify.Namespace("ray", "test")
    assert dray.ingest(ray.data.from_items(rows[:1]), cat, ns)["stored"] == 1
    other = dict(rows[1])
    feats = json.loads(other["features"])
    feats["model"] = "clip-vit-base-patch32@" + "0" * 16
    other["features"] = json.dumps(feats)
    other["model"] = feats["model"]
    with pytest.raises(dupify.DupifyError) as e:
        dray.ingest(ray.data.from_items([other]), cat, ns)
    assert "model" in str(e.value)
    assert cat.count(ns) == 1


def test_concurrent_writers_into_the_postgresql_catalog(cluster, shop, tiny_model):
    # A database of its own: a catalog's embedding dimension is fixed by its first product,
    # and test_postgres.py stores 4-d ones in DUPIFY_TEST_PG_URL's.
    url = os.environ.get("DUPIFY_TEST_PG_RAY_URL")
    assert url, (
        "DUPIFY_TEST_PG_RAY_URL is not set: `scripts/pg.sh createdb dupify_py_ray` prints one "
        "(scripts/test.sh sets it)"
    )
    root, files, _ = shop
    rows = dray.extract_dataset(dray.index_folder_rows(root), model_dir=str(tiny_model), ops=OPS)
    ns = dupify.Namespace(f"ray-{uuid.uuid4().hex[:8]}", "test")
    report = dray.ingest(rows, url, ns, writers=2, batch_size=2)
    assert (report["stored"], report["failed"]) == (N, 1)
    assert dupify.Catalog(url).count(ns) == N


def test_actor_cpus_leave_room_for_reading(cluster):
    # 2 CPUs: a default read task needs 1 of them; files read by index_folder_rows, 0.25.
    assert dray.actor_cpus(1, None) == pytest.approx(1.0)
    assert dray.actor_cpus(3, None) == pytest.approx(1 / 3)
    assert dray.actor_cpus(1, None, dray.LIGHT_TASK_CPUS) == pytest.approx(1.75)
    assert dray.actor_cpus(2, 0.5) == 0.5
    assert dray.default_actors() == 2  # one one-thread actor per CPU left after reading
    with pytest.raises(ValueError, match="fractional num_cpus"):
        dray.actor_cpus(2, 1)
    with pytest.raises(ValueError, match="fractional num_cpus"):
        dray.actor_cpus(1, 1.5)
    with pytest.raises(ValueError, match="num_actors"):
        dray.actor_cpus(0, None)
    with pytest.raises(ValueError, match="postgres:// URL"):
        dray.ingest(ray.data.from_items([]), "shop.db", dupify.Namespace("a", "test"), writers=2)


def test_python_m_dupify_ray_index_on_the_running_cluster(cluster, shop, tiny_model, tmp_path):
    root, _, _ = shop
    db = tmp_path / "cli.db"
    out = subprocess.run(
        [
            sys.executable, "-m", "dupify.ray", "index", str(root), "--catalog", str(db),
            "--model", str(tiny_model), "--address", cluster, "--parquet", str(tmp_path / "pq"),
        ],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 1, out.stderr  # the corrupt file is a failure, listed
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"stored": N, "failed": 1}
    assert "broken/not-an-image.jpg: " in out.stderr
    assert dupify.Catalog(str(db)).count(dupify.Namespace("local", "test")) == N

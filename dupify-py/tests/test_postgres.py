"""The catalog and the key store from postgres:// URLs, through the same Python classes as
their SQLite files. scripts/test.sh starts a throwaway PostgreSQL (scripts/pg.sh) and sets
DUPIFY_TEST_PG_URL to a database of its own for this suite; without it these tests fail."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

import dupify


@pytest.fixture(scope="module")
def url():
    u = os.environ.get("DUPIFY_TEST_PG_URL")
    assert u, "DUPIFY_TEST_PG_URL is not set: run `scripts/pg.sh start` (scripts/test.sh does)"
    return u


def test_catalog_from_a_url_round_trips(url):
    # A namespace of its own per run: the database outlives a single test.
    ns = dupify.Namespace(f"py-{uuid.uuid4().hex[:8]}", "test")
    cat = dupify.Catalog(url)
    a = cat.upsert(
        ns,
        {"external_id": "a", "title": "Red dress", "brand": "Zara", "price": 100.0},
        features={"clip": np.array([1, 0, 0, 0], dtype=np.float32)},
    )
    cat.upsert(
        ns,
        {"external_id": "b", "title": "Dupe", "brand": "H&M", "price": 30.0},
        features={"clip": np.array([0.9, 0.1, 0, 0], dtype=np.float32)},
    )
    # Another handle on the same database sees both (a second app server would).
    other = dupify.Catalog(url)
    hits = other.search(ns, by_product=a.id, cheaper_by_percent=50)
    assert [h.product.external_id for h in hits] == ["b"]
    assert other.count(ns) == 2
    other.delete(ns, a.id)
    with pytest.raises(dupify.NotFoundError):
        cat.get(ns, a.id)


def test_key_store_from_a_url_shares_revocation(url):
    pepper = b"python postgres test pepper"
    s1 = dupify.KeyStore(url, pepper=pepper)
    s2 = dupify.KeyStore(url, pepper=pepper)
    created = s1.create(f"py-{uuid.uuid4().hex[:8]}", "live", limits=dupify.Limits(2))
    p = s2.verify(created.key)
    assert s1.check_rate(p).allowed and s2.check_rate(p).allowed
    # The per-minute limit is shared by every handle on the database.
    assert not s1.check_rate(s1.verify(created.key)).allowed
    s1.revoke(created.record.id)
    with pytest.raises(dupify.AuthenticationError):
        s2.verify(created.key)


def test_a_bad_url_names_no_password():
    with pytest.raises(dupify.DupifyError) as e:
        dupify.Catalog("postgres://app:s3cretpw@127.0.0.1:1/nodb")
    assert "s3cretpw" not in str(e.value)

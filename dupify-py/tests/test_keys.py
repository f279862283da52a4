"""KeyStore from Python: create/list/get/revoke/regenerate, request authentication, scopes,
rate limits, quotas and usage, with the hosted error codes."""

from __future__ import annotations

import re

import pytest

import dupify

T0 = 1_790_000_000  # a fixed instant (2026-09-21), so calendar buckets are known


@pytest.fixture
def clock():
    return dupify.ManualClock(T0)


@pytest.fixture
def store(clock):
    return dupify.KeyStore(pepper=b"test pepper", clock=clock)


def test_create_list_get_and_formats(store):
    created = store.create("Production", "live", scopes=["colors", "batch"], limits="starter")
    assert re.fullmatch(r"fe_live_[A-Za-z0-9]{32}", created.key)
    rec = created.record
    assert (rec.name, rec.environment, rec.status) == ("Production", "live", "active")
    assert rec.scopes == ["colors", "batch"]
    assert rec.limits == dupify.Limits.tier("starter") == dupify.Limits(60, 1000)
    assert rec.preview.startswith("fe_live_") and rec.preview.endswith(created.key[-4:])
    assert created.key not in repr(created), "repr never shows the secret"
    assert created.to_dict()["key"] == created.key
    assert created.to_dict()["record"] == rec.to_dict()
    test_key = store.create("Dev", "test")
    assert test_key.key.startswith("fe_test_") and test_key.record.scopes == ["all"]
    assert [r.id for r in store.list()] == [rec.id, test_key.record.id]
    assert store.get(rec.id) == rec
    assert dupify.parse_key(created.key).environment == "live"
    assert dupify.parse_key(created.key).preview == rec.preview


def test_authenticate_headers(store):
    k = store.create("k", "live").key
    for headers in (
        {"X-API-Key": k},
        {"authorization": f"Bearer {k}"},
        [("x-api-key", f"  {k} "), ("Authorization", "Basic abc")],
    ):
        p = store.authenticate(headers)
        assert p.environment == "live" and p.scopes == ["all"]
        assert p.to_dict()["key_id"] == p.key_id
    assert store.verify(k) == store.authenticate({"X-API-Key": k})


@pytest.mark.parametrize(
    "headers,code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Basic abc"}, "missing_api_key"),
        ({"X-API-Key": "fe_live_short"}, "invalid_api_key"),
        ({"X-API-Key": "sk_live_" + "a" * 32}, "invalid_api_key"),
        ({"X-API-Key": "fe_live_" + "a" * 32}, "invalid_api_key"),
    ],
)
def test_authentication_failures(store, headers, code):
    with pytest.raises(dupify.AuthenticationError) as e:
        store.authenticate(headers)
    assert e.value.code == code and e.value.http_status == 401


def test_conflicting_keys_revocation_expiry_and_regeneration(store, clock):
    a, b = store.create("a").key, store.create("b").key
    with pytest.raises(dupify.AuthenticationError) as e:
        store.authenticate([("X-API-Key", a), ("Authorization", f"Bearer {b}")])
    assert e.value.code == "invalid_api_key"
    rec = store.verify(a)
    store.revoke(rec.key_id)
    with pytest.raises(dupify.AuthenticationError) as e:
        store.verify(a)
    assert e.value.code == "invalid_api_key"
    exp = store.create("soon", expires_at=T0 + 60)
    assert store.verify(exp.key).key_id == exp.record.id
    clock.advance(61)
    with pytest.raises(dupify.AuthenticationError) as e:
        store.verify(exp.key)
    assert e.value.code == "expired_api_key"
    old = store.create("rotate", limits=dupify.Limits(100))
    new = store.regenerate(old.record.id, grace_secs=30)
    assert new.key != old.key and new.record.lineage_id == old.record.lineage_id
    assert store.get(old.record.id).status == "rotating"
    assert store.verify(old.key) and store.verify(new.key)
    clock.advance(31)
    with pytest.raises(dupify.AuthenticationError):
        store.verify(old.key)
    # A revoked key cannot be regenerated: the record is in the wrong state (409).
    with pytest.raises(dupify.ConflictError) as e:
        store.regenerate(old.record.id)
    assert (e.value.code, e.value.http_status) == ("conflict", 409)
    with pytest.raises(dupify.NotFoundError) as e:
        store.get(999_999)
    assert e.value.code == "not_found" and e.value.http_status == 404


def test_scopes_and_the_batch_rule(store):
    k = store.create("colors only", scopes=["colors", "batch"]).key
    p = store.authenticate({"X-API-Key": k})
    store.authorize(p, "colors")
    store.authorize(p, "batch", contains=["colors"])
    for op, contains in (("embed", None), ("batch", ["embed"]), ("catalog", None)):
        with pytest.raises(dupify.PermissionDeniedError) as e:
            store.authorize(p, op, contains)
        assert e.value.code == "insufficient_scope" and e.value.http_status == 403
    with pytest.raises(dupify.InvalidRequestError) as e:
        store.authorize(p, "batch")
    assert e.value.code == "missing_parameter"
    with pytest.raises(dupify.InvalidRequestError):
        store.authorize(p, "teleport")


def test_rate_limit_and_quota(store, clock):
    k = store.create("free", limits="free")
    p = store.verify(k.key)
    decisions = [store.check_rate(p) for _ in range(11)]
    assert all(d.allowed for d in decisions[:10])
    assert decisions[0].headers.limit == 10 and decisions[0].headers.monthly_limit == 50
    assert [d.headers.remaining for d in decisions[:3]] == [9, 8, 7]
    limited = decisions[10]
    assert not limited.allowed and limited.decision == "rate_limited"
    assert limited.retry_after_secs >= 1
    assert ("X-RateLimit-Limit", "10") in limited.header_pairs
    assert limited.to_dict()["decision"] == "rate_limited"
    with pytest.raises(dupify.RateLimitError) as e:
        limited.raise_for_status()
    assert e.value.code == "rate_limit_exceeded" and e.value.http_status == 429
    assert e.value.retry_after_secs == limited.retry_after_secs
    assert e.value.headers["X-RateLimit-Limit"] == "10"
    decisions[0].raise_for_status()  # allowed: no exception

    q = store.create("quota", limits=dupify.Limits(per_minute=1000, monthly=3))
    pq = store.verify(q.key)
    assert [store.check_rate(pq).allowed for _ in range(4)] == [True, True, True, False]
    over = store.check_rate(pq)
    assert over.decision == "quota_exceeded"
    with pytest.raises(dupify.RateLimitError) as e:
        over.raise_for_status()
    assert e.value.code == "quota_exceeded"
    store.set_limits(q.record.id, dupify.Limits(1000, 10))
    assert store.check_rate(store.verify(q.key)).allowed
    with pytest.raises(dupify.InvalidRequestError):
        dupify.Limits(0)
    with pytest.raises(dupify.InvalidRequestError):
        dupify.Limits.tier("platinum")


def test_usage_counts(store):
    k = store.create("u", scopes=["embed", "colors", "batch"])
    p = store.verify(k.key)
    store.check_rate(p)
    store.authorize(p, "embed")
    store.authorize(p, "batch", contains=["embed", "colors"])
    store.flush()
    u = store.usage(k.record.id)
    assert u.key_id == k.record.id
    (day,) = u.daily.values()
    assert day.requests == 1
    assert day.by_scope == {"embed": 2, "colors": 1, "batch": 1}
    assert u.monthly["2026-09"].by_scope == day.by_scope
    assert u.to_dict()["key_id"] == k.record.id


def test_file_store_persists_and_bad_arguments(tmp_path):
    path = tmp_path / "keys.db"
    s1 = dupify.KeyStore(path, pepper=b"pepper")
    key = s1.create("persisted").key
    del s1
    s2 = dupify.KeyStore(str(path), pepper=b"pepper")
    assert s2.verify(key).environment == "live"
    with pytest.raises(dupify.InvalidRequestError):
        dupify.KeyStore(pepper=b"")
    with pytest.raises(dupify.InvalidRequestError):
        s2.create("x", "staging")
    with pytest.raises(dupify.InvalidRequestError):
        s2.create("", "live")
    with pytest.raises(dupify.InvalidRequestError):
        s2.create("x", scopes=["everything"])
    with pytest.raises(dupify.InvalidRequestError):
        s2.authenticate(42)


def test_release_and_shutdown_keep_the_monthly_quota_exact(tmp_path):
    path = tmp_path / "keys.db"
    s1 = dupify.KeyStore(path, pepper=b"pepper")
    k = s1.create("q", limits=dupify.Limits(1000, monthly=1000))
    p = s1.verify(k.key)
    for _ in range(5):
        assert s1.check_rate(p).allowed
    # A request refused before any work gives its call back.
    s1.release(p)
    # Hands back the reserved but unspent calls (a block of 10 for this quota).
    s1.shutdown()
    s2 = dupify.KeyStore(path, pepper=b"pepper")
    p2 = s2.verify(k.key)
    admitted = 0
    while s2.check_rate(p2).allowed:
        admitted += 1
        assert admitted <= 1000
    assert admitted == 1000 - 4
    s2.flush()
    (month,) = s2.usage(k.record.id).monthly.values()
    assert month.requests == 1000

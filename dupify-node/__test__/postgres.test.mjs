// The catalog and the key store from postgres:// URLs, through the same classes as their
// SQLite files. scripts/test.sh starts a throwaway PostgreSQL (scripts/pg.sh) and sets
// DUPIFY_TEST_PG_URL to a database of its own for this suite; without it these tests fail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { Catalog, KeyStore } from '../index.mjs'

function url() {
  const u = process.env.DUPIFY_TEST_PG_URL
  assert.ok(u, 'DUPIFY_TEST_PG_URL is not set: run `scripts/pg.sh start` (scripts/test.sh does)')
  return u
}

test('a catalog opened from a URL is shared by every handle on the database', async () => {
  const ns = { account: `node-${randomUUID().slice(0, 8)}`, environment: 'test' }
  const cat = await Catalog.open(url())
  const a = await cat.upsert(ns, {
    external_id: 'a', brand: 'Zara', price: 100, features: { clip: [1, 0, 0, 0] },
  })
  await cat.upsert(ns, {
    external_id: 'b', brand: 'Mango', price: 30, features: { clip: [0.9, 0.1, 0, 0] },
  })
  const other = await Catalog.open(url())
  const hits = await other.search(ns, { by_product: a.id, cheaper_by_percent: 50 })
  assert.deepEqual(hits.map((h) => h.product.external_id), ['b'])
  await other.delete(ns, a.id)
  await assert.rejects(cat.get(ns, a.id), (e) => e.code === 'not_found')
})

test('a key store opened from a URL shares limits and revocation', async () => {
  const pepper = 'node postgres test pepper'
  const s1 = await KeyStore.open(url(), pepper)
  const s2 = await KeyStore.open(url(), pepper)
  const k = await s1.create({
    name: `node-${randomUUID().slice(0, 8)}`, environment: 'live', limits: { per_minute: 2, monthly: null },
  })
  const p = s2.verify(k.key)
  assert.equal(s1.checkRate(p).decision, 'allowed')
  assert.equal(s2.checkRate(p).decision, 'allowed')
  assert.equal(s1.checkRate(s1.verify(k.key)).decision, 'rate_limited')
  await s1.revoke(k.record.id)
  assert.throws(() => s2.verify(k.key), (e) => e.code === 'invalid_api_key')
})

test('a bad URL is refused without its password', async () => {
  await assert.rejects(Catalog.open('postgres://app:s3cretpw@127.0.0.1:1/nodb'), (e) => {
    assert.ok(!String(e.message).includes('s3cretpw'), e.message)
    return true
  })
})

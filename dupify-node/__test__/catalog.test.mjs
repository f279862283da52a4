// Catalog: products, filters, search (embedding, dupes-of, cheaper), errors, persistence.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Catalog } from '../index.mjs'
import { rejectsWithCode, throwsWithCode } from './helpers.mjs'

const ns = { account: 'acme', environment: 'test' }

/** Deterministic unit-ish vectors (no randomness: failures reproduce). */
function vec(seed, dim = 8) {
  const v = new Float32Array(dim)
  for (let i = 0; i < dim; i++) v[i] = Math.sin(seed * 12.9898 + i * 78.233)
  return v
}

function cosine(a, b) {
  let d = 0, na = 0, nb = 0
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
  return d / Math.sqrt(na * nb)
}

function product(i, extra = {}) {
  return {
    external_id: `sku-${i}`,
    title: `Item ${i}`,
    brand: i % 2 ? 'Zara' : 'Mango',
    category: i % 3 ? 'dress' : 'shirt',
    price: 10 + i,
    currency: 'USD',
    metadata: { color: i % 2 ? 'red' : 'blue' },
    features: { clip: vec(i), colors: [{ lab: [50, 10, 10], share: 1 }] },
    ...extra,
  }
}

test('upsert, get, getByExternalId, list with filters and pages, delete', async () => {
  const cat = Catalog.openInMemory()
  const saved = await cat.upsert(ns, product(1))
  assert.match(saved.id, /^[0-9a-f-]{36}$/)
  assert.equal(saved.external_id, 'sku-1')
  assert.deepEqual(saved.namespace, ns)
  assert.ok(saved.features.clip instanceof Float32Array)
  // Stored normalised: same direction as the input.
  assert.ok(cosine(saved.features.clip, vec(1)) > 0.99999)
  assert.deepEqual(await cat.get(ns, saved.id), saved)
  assert.deepEqual(await cat.getByExternalId(ns, 'sku-1'), saved)

  // Upsert by external_id replaces, keeps the id.
  const again = await cat.upsert(ns, product(1, { title: 'Renamed', features: { clip: Array.from(vec(1)) } }))
  assert.equal(again.id, saved.id)
  assert.equal(again.title, 'Renamed')

  const many = await cat.upsertBatch(ns, [2, 3, 4, 5, 6].map((i) => product(i)))
  assert.equal(many.length, 5)
  const all = await cat.list(ns)
  assert.equal(all.items.length, 6)
  assert.equal(all.next_cursor, null)
  const zara = await cat.list(ns, {}, { brand: 'Zara' })
  assert.deepEqual(zara.items.map((p) => p.external_id).sort(), ['sku-1', 'sku-3', 'sku-5'])
  const cheap = await cat.list(ns, null, { max_price: 13, category: 'dress' })
  assert.deepEqual(cheap.items.map((p) => p.external_id).sort(), ['sku-1', 'sku-2'])
  const red = await cat.list(ns, undefined, { metadata_eq: [['color', 'red']] })
  assert.equal(red.items.length, 3)
  const p1 = await cat.list(ns, { limit: 4 })
  assert.equal(p1.items.length, 4)
  assert.ok(p1.next_cursor)
  const p2 = await cat.list(ns, { limit: 4, cursor: p1.next_cursor })
  assert.equal(p2.items.length, 2)
  assert.equal(new Set([...p1.items, ...p2.items].map((p) => p.id)).size, 6)

  // Namespaces are separate.
  assert.equal((await cat.list({ account: 'acme', environment: 'live' })).items.length, 0)

  await cat.delete(ns, saved.id)
  await rejectsWithCode(cat.get(ns, saved.id), 'not_found')
  await rejectsWithCode(cat.delete(ns, saved.id), 'not_found')
  await rejectsWithCode(cat.getByExternalId(ns, 'sku-1'), 'not_found')
})

test('search by embedding ranks by cosine; dupes of a product; cheaper; score breakdown', async () => {
  const cat = Catalog.openInMemory()
  const stored = await cat.upsertBatch(ns, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => product(i)))
  const q = vec(3)
  const hits = await cat.search(ns, { embedding: q, limit: 8 })
  assert.equal(hits.length, 8)
  assert.equal(hits[0].product.external_id, 'sku-3')
  const sims = hits.map((h) => h.scores.clip)
  for (const [i, h] of hits.entries()) {
    assert.ok(Math.abs(h.scores.clip - cosine(q, vec(Number(h.product.external_id.slice(4))))) < 1e-5)
    if (i > 0) assert.ok(sims[i - 1] >= sims[i])
  }
  assert.deepEqual(
    (await cat.search(ns, { embedding: Array.from(q), limit: 3 })).map((h) => h.product.id),
    hits.slice(0, 3).map((h) => h.product.id),
  )
  const filtered = await cat.search(ns, { embedding: q, filter: { brand: 'Mango' } })
  assert.ok(filtered.length > 0)
  assert.ok(filtered.every((h) => h.product.brand === 'Mango'))

  const target = stored.find((p) => p.external_id === 'sku-8')
  const dupes = await cat.search(ns, { by_product: target.id, limit: 10 })
  assert.ok(dupes.every((h) => h.product.id !== target.id))
  assert.equal(dupes.length, 7)
  const cheaper = await cat.search(ns, { by_product: target.id, cheaper_by_percent: 20 })
  // sku-8 costs 18: at least 20 % cheaper means ≤ 14.4.
  assert.ok(cheaper.length > 0)
  assert.ok(cheaper.every((h) => h.product.price <= 14.4))

  const weighted = await cat.search(ns, { embedding: q, weights: { clip: 1, shape: 0, color: 0 }, limit: 1 })
  assert.ok(Math.abs(weighted[0].score - weighted[0].scores.clip) < 1e-6)
})

test('bad catalog arguments reject with the hosted codes', async () => {
  const cat = Catalog.openInMemory({ dim: 8 })
  await rejectsWithCode(cat.upsert(ns, product(1, { price: -1 })), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns, product(1, { currency: 'dollars' })), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns, product(1, { features: { clip: new Float32Array(3) } })), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns, product(1, { features: { clip: [1, NaN, 0] } })), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns, { title: 'no id' }), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns), 'missing_parameter')
  const cyclic = product(1)
  cyclic.metadata = { self: cyclic }
  await rejectsWithCode(cat.upsert(ns, cyclic), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(ns, product(1, { metadata: { f: () => 1 } })), 'invalid_parameter')
  await rejectsWithCode(cat.upsert({ account: '', environment: 'test' }, product(1)), 'invalid_parameter')
  await rejectsWithCode(cat.upsert({ account: 'a', environment: 'staging' }, product(1)), 'invalid_parameter')
  await rejectsWithCode(cat.upsert(undefined, product(1)), 'missing_parameter')
  await rejectsWithCode(cat.search(ns, { embedding: vec(1), limit: 5000 }), 'invalid_parameter')
  await rejectsWithCode(cat.search(ns, { by_product: 'no-such-id' }), 'not_found')
  await rejectsWithCode(cat.search(ns), 'missing_parameter')
  await rejectsWithCode(cat.get(ns, 12), 'invalid_parameter')
  await rejectsWithCode(cat.list(ns, { limit: 'ten' }), 'invalid_parameter')
  await rejectsWithCode(cat.upsertBatch(ns, [product(1), product(2, { price: -5 })]), 'invalid_parameter')
  assert.equal((await cat.list(ns)).items.length, 0, 'a failed batch writes nothing')
  throwsWithCode(() => Catalog.openInMemory({ dim: 0 }), 'invalid_parameter')
  throwsWithCode(() => Catalog.openInMemory({ index: { m: 1000 } }), 'invalid_parameter')
  throwsWithCode(() => Catalog.openInMemory({ size: 1 }), 'invalid_parameter')
})

test('a catalog on disk keeps its products and index across open, flush and reopen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dupify-cat-'))
  try {
    const path = join(dir, 'catalog.db')
    const cat = await Catalog.open(path, { index: { bruteForceBelow: 4 } })
    await cat.upsertBatch(ns, [1, 2, 3, 4, 5, 6].map((i) => product(i)))
    const before = await cat.search(ns, { embedding: vec(2), limit: 3 })
    await cat.flush()
    const report = await cat.indexReport()
    assert.equal(report.length, 1)
    assert.deepEqual(report[0].namespace, ns)
    assert.equal(report[0].live, 6)
    assert.equal(report[0].mode, 'ann')
    // six points: the floor (32) already finds the exact top 10, so calibration keeps it
    assert.equal(report[0].ef_search, 32)
    assert.equal(report[0].recall_at_10, 1)
    const reopened = await Catalog.open(path, { index: { bruteForceBelow: 4 } })
    assert.equal((await reopened.list(ns)).items.length, 6)
    const after = await reopened.search(ns, { embedding: vec(2), limit: 3 })
    assert.deepEqual(after.map((h) => h.product.id), before.map((h) => h.product.id))
    await rejectsWithCode(Catalog.open(), 'missing_parameter')
    await rejectsWithCode(Catalog.open(path, { dim: -1 }), 'invalid_parameter')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

// Catalog with an extractor: ingest (progress, resume, per-item failures, cancel), count,
// search by image and by text, and the filters added with them.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { CancelToken, Catalog, Extractor } from '../index.mjs'
import { BATCH_VS_SINGLE, clothingPhotos, modelDir, plain, rejectsWithCode } from './helpers.mjs'

const ns = { account: 'shop', environment: 'live' }
const photos = clothingPhotos().filter((_, i) => i % 4 === 0) // one per category: 10
let x

before(() => {
  x = new Extractor({ modelDir: modelDir(), device: 'cpu' })
})

function items() {
  return photos.map((p, i) => ({
    product: {
      external_id: `p${i}`,
      brand: i % 2 ? 'Zara' : 'Mango',
      category: p.split('/').at(-2),
      price: 20 + i,
    },
    image: i % 2 ? readFileSync(p) : p,
  }))
}

test('ingest stores extracted features, reports progress, and resumes by image hash', async () => {
  const cat = Catalog.openInMemory()
  const seen = []
  const report = await cat.ingest(ns, x, items(), { progress: (d, t) => seen.push([d, t]) })
  assert.deepEqual(report, { indexed: photos.length, skipped: 0, failed: [] })
  assert.deepEqual(seen.at(-1), [photos.length, photos.length])
  assert.equal(await cat.count(ns), photos.length)
  assert.equal(await cat.count(ns, { brand: 'Zara' }), photos.length / 2)
  assert.equal(await cat.count(ns, { exclude_brands: ['Zara'] }), photos.length / 2)

  // The stored features are the extractor's (ingest extracts in batches: model outputs
  // agree with a single extraction within the core's batch-vs-single bound).
  const p0 = await cat.getByExternalId(ns, 'p0')
  const f0 = await x.extract(photos[0], 'embed,silhouette')
  assert.equal(p0.image_hash, f0.content_hash)
  assert.ok(p0.features.clip.every((v, i) => Math.abs(v - f0.embedding[i]) <= BATCH_VS_SINGLE))
  assert.deepEqual(Array.from(p0.features.shape), Array.from(f0.silhouette.embedding))

  const again = await cat.ingest(ns, x, items())
  assert.deepEqual(again, { indexed: 0, skipped: photos.length, failed: [] })
})

test('ingest reports bad items without aborting, and honours cancellation', async () => {
  const cat = Catalog.openInMemory()
  const list = items().slice(0, 3)
  list.push({ product: { external_id: 'bad' }, image: Buffer.from('not an image') })
  const r = await cat.ingest(ns, x, list)
  assert.equal(r.indexed, 3)
  assert.equal(r.failed.length, 1)
  assert.equal(r.failed[0].external_id, 'bad')
  assert.equal(r.failed[0].code, 'unsupported_format')

  const token = new CancelToken()
  token.cancel()
  const c = await Catalog.openInMemory().ingest(ns, x, items(), { cancel: token })
  assert.equal(c.indexed, 0)
  assert.equal(c.failed.length, photos.length)
  assert.ok(c.failed.every((f) => f.code === 'cancelled'))

  await rejectsWithCode(cat.ingest(ns, x, [{ product: { external_id: 'y' } }]), 'missing_parameter')
  await rejectsWithCode(cat.ingest(ns, x, [{ image: photos[0] }]), 'missing_parameter')
  await rejectsWithCode(cat.ingest(ns, x, 'nope'), 'invalid_parameter')
  await rejectsWithCode(cat.ingest(ns, {}, []), 'invalid_parameter')
  await rejectsWithCode(cat.ingest(ns, undefined, []), 'missing_parameter')
  await rejectsWithCode(cat.ingest(ns, new Extractor({ threads: 1 }), items()), 'not_available')
})

test('searchImage equals search with the image features; searchText equals search with the text embedding', async () => {
  const cat = Catalog.openInMemory()
  await cat.ingest(ns, x, items())
  const q = photos[3]
  const f = await x.extract(q, 'embed,colors,silhouette')
  const viaImage = await cat.searchImage(ns, x, q, { limit: 5 })
  const viaFeatures = await cat.search(ns, {
    embedding: f.embedding,
    shape: f.silhouette.embedding,
    colors: f.colors.colors.map((c) => ({ lab: c.lab, share: c.share })),
    limit: 5,
  })
  assert.equal(viaImage.length, 5)
  assert.deepEqual(plain(viaImage), plain(viaFeatures))
  // The photo itself is in the catalog: it ranks first with a perfect CLIP score.
  assert.equal(viaImage[0].product.external_id, 'p3')
  assert.ok(Math.abs(viaImage[0].scores.clip - 1) < 1e-5)

  const t = await x.embedText('a red summer dress')
  const viaText = await cat.searchText(ns, x, 'a red summer dress', { limit: 4, filter: { brand: 'Mango' } })
  const viaEmbedding = await cat.search(ns, { embedding: t, limit: 4, filter: { brand: 'Mango' } })
  assert.deepEqual(plain(viaText), plain(viaEmbedding))
  assert.ok(viaText.every((h) => h.product.brand === 'Mango'))

  const own = await cat.getByExternalId(ns, 'p0')
  const others = await cat.search(ns, { by_product: own.id, exclude_own_brand: true, limit: 20 })
  assert.ok(others.length > 0)
  assert.ok(others.every((h) => h.product.brand !== own.brand))
  const high = await cat.search(ns, { by_product: own.id, min_score: 2 })
  assert.deepEqual(high, [])

  await rejectsWithCode(cat.searchText(ns, x, '   '), 'missing_parameter')
  await rejectsWithCode(cat.searchText(ns, x, 3), 'invalid_parameter')
  await rejectsWithCode(cat.searchImage(ns, x, Buffer.from('xx')), 'unsupported_format')
  await rejectsWithCode(cat.searchImage(ns, x), 'missing_parameter')
  await rejectsWithCode(cat.search(ns, { embedding: t, exclude_own_brand: true }), 'missing_parameter')
})

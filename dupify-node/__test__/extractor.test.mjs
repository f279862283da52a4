// Extractor: results equal to the Rust API's, every input form, batches, bad inputs.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CancelToken, Extractor } from '../index.mjs'
import {
  assets, assertSameAsRust, assertSameUpToBatching, BATCH_VS_SINGLE, clothingPhotos, modelDir,
  plain, rejectsWithCode, rustFeatures, throwsWithCode,
} from './helpers.mjs'

const photos = clothingPhotos()
// Five fixtures: four photos from different categories and a PNG with alpha.
const files = [photos[0], photos[9], photos[17], photos[33], join(assets, 'input', 'rgba.png')]
let x
let reference

before(() => {
  x = new Extractor({ modelDir: modelDir(), device: 'cpu' })
  reference = rustFeatures('all', files)
})

test('extract: every operation equals the Rust API on the same file', async () => {
  for (const [i, f] of files.entries()) {
    // The Rust API on this file alone: the same single-image forward pass.
    const [single] = rustFeatures('all', [f])
    const got = await x.extract(f, 'all')
    assert.ok(got.embedding instanceof Float32Array)
    assert.ok(got.silhouette.embedding instanceof Float32Array)
    assert.ok(Buffer.isBuffer(got.cutout_png))
    assert.equal(got.cutout_png.subarray(1, 4).toString(), 'PNG')
    assert.equal(got.dimensions, got.embedding.length)
    assertSameAsRust(got, single, `files[${i}]`)
  }
})

test('extractBatch equals the Rust API batch, and single extraction up to batching', async () => {
  const seen = []
  const batch = await x.extractBatch(files, ['all'], {
    progress: (done, total) => seen.push([done, total]),
  })
  assert.equal(batch.length, files.length)
  assert.equal(reference.length, files.length)
  for (const [i, f] of files.entries()) {
    assertSameAsRust(batch[i], reference[i], `batch[${i}]`)
    assertSameUpToBatching(batch[i], await x.extract(f, 'all'), `batch[${i}]`)
  }
  assert.deepEqual(seen.at(-1), [files.length, files.length])
  assert.equal(seen.length, files.length)
  seen.forEach(([d], i) => assert.equal(d, i + 1))
})

test('Buffer, Uint8Array, ArrayBuffer, path, {path}, {bytes} and base64 give identical features', async () => {
  const f = files[1]
  const bytes = readFileSync(f)
  const u8 = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
  const forms = [
    f,
    { path: f },
    bytes,
    u8,
    u8.buffer,
    { bytes: u8 },
    { base64: bytes.toString('base64') },
    { base64: `data:image/jpeg;base64,${bytes.toString('base64url')}` },
  ]
  const want = plain(await x.extract(f, 'embed,colors,silhouette'))
  for (const [i, form] of forms.entries()) {
    const got = plain(await x.extract(form, 'embed,colors,silhouette'))
    assert.deepEqual(got, want, `form ${i}`)
  }
  // In a batch too: every form of the same image gives the same features.
  const batch = await x.extractBatch(forms, 'embed,colors')
  for (const item of batch) assert.deepEqual(plain(item), plain(batch[0]))
})

test('raw pixels are accepted and their geometry is checked', async () => {
  // A 64x48 white frame with a dark square in the middle, as RGB and as RGBA.
  const [w, h] = [64, 48]
  const rgb = new Uint8Array(w * h * 3).fill(250)
  const rgba = new Uint8Array(w * h * 4).fill(250)
  for (let y = 12; y < 36; y++) {
    for (let x0 = 20; x0 < 44; x0++) {
      rgb.fill(20, (y * w + x0) * 3, (y * w + x0) * 3 + 3)
      rgba.fill(20, (y * w + x0) * 4, (y * w + x0) * 4 + 3)
    }
  }
  const a = await x.extract({ width: w, height: h, layout: 'rgb', data: rgb }, 'colors,silhouette')
  assert.equal(a.width, w)
  assert.equal(a.height, h)
  assert.ok(a.colors.colors.length > 0)
  const b = await x.extract({ width: w, height: h, layout: 'rgba', data: rgba }, 'colors,silhouette')
  assert.deepEqual(plain(b.colors), plain(a.colors))
  // The buffer does not hold width * height * 3 bytes: the core rejects the argument.
  await rejectsWithCode(
    x.extract({ width: w + 1, height: h, layout: 'rgb', data: rgb }, 'colors'),
    'invalid_parameter',
  )
  await rejectsWithCode(
    x.extract({ width: w, height: h, layout: 'cmyk', data: rgb }, 'colors'),
    'invalid_parameter',
  )
  await rejectsWithCode(x.extract({ width: w, height: h, data: rgb }, 'colors'), 'missing_parameter')
})

test('text embeddings are unit Float32Arrays, and embedTexts matches embedText', async () => {
  const one = await x.embedText('a red dress')
  assert.ok(one instanceof Float32Array)
  assert.equal(one.length, await x.embedDim())
  const norm = Math.sqrt(one.reduce((s, v) => s + v * v, 0))
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`)
  const many = await x.embedTexts(['a red dress', 'blue jeans'])
  assert.equal(many.length, 2)
  // A batch of two texts against one: the core's batch-vs-single contract.
  assert.ok(many[0].every((v, i) => Math.abs(v - one[i]) <= BATCH_VS_SINGLE))
  assert.deepEqual(Array.from((await x.embedTexts(['a red dress']))[0]), Array.from(one))
  assert.deepEqual(await x.embedTexts([]), [])
  assert.match(await x.modelId(), /^[0-9a-f]{8,}/)
  assert.equal(await x.warmUp(), undefined)
  const f = await x.extract(files[0], 'embed')
  assert.equal(f.model, await x.modelId())
})

test('bad images reject with the hosted codes; a batch keeps going past them', async () => {
  await rejectsWithCode(x.extract(Buffer.from('definitely not an image'), 'colors'), 'unsupported_format')
  const jpeg = readFileSync(files[0])
  await rejectsWithCode(x.extract(jpeg.subarray(0, 600), 'colors'), 'image_processing_failed')
  await rejectsWithCode(x.extract(Buffer.alloc(0), 'colors'), 'image_processing_failed')
  await rejectsWithCode(x.extract({ base64: '***' }, 'colors'), 'invalid_base64')
  await rejectsWithCode(x.extract('/nonexistent/dupify.jpg', 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extract(join(assets, 'input', 'tiny.tiff'), 'colors'), 'unsupported_format')
  await rejectsWithCode(x.extract({ url: 'https://example.com/a.jpg' }, 'colors'), 'not_available')

  const batch = await x.extractBatch([files[0], Buffer.from('junk'), { base64: '%%' }, files[1]], 'colors')
  assert.equal(batch.length, 4)
  assert.ok(!(batch[0] instanceof Error))
  assert.ok(batch[1] instanceof Error)
  assert.equal(batch[1].code, 'unsupported_format')
  assert.equal(batch[1].status, 422)
  assert.ok(batch[2] instanceof Error)
  assert.equal(batch[2].code, 'invalid_base64')
  assert.equal(batch[3].content_hash, (await x.extract(files[1], 'colors')).content_hash)
})

test('bad arguments reject (or throw, for the constructor) with the hosted codes', async () => {
  await rejectsWithCode(x.extract(), 'missing_parameter')
  await rejectsWithCode(x.extract(files[0]), 'missing_parameter')
  await rejectsWithCode(x.extract(files[0], 'embed,sparkle'), 'invalid_parameter')
  await rejectsWithCode(x.extract(files[0], ''), 'missing_parameter')
  await rejectsWithCode(x.extract(files[0], 42), 'invalid_parameter')
  await rejectsWithCode(x.extract(42, 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extract({ nothing: true }, 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extract(new Float64Array(4), 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extractBatch('not an array', 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extractBatch([files[0], 7], 'colors'), 'invalid_parameter')
  await rejectsWithCode(x.extractBatch([files[0]], 'colors', { progress: 'no' }), 'invalid_parameter')
  await rejectsWithCode(x.extractBatch([files[0]], 'colors', { cancel: {} }), 'invalid_parameter')
  await rejectsWithCode(x.embedText(), 'missing_parameter')
  await rejectsWithCode(x.embedText(5), 'invalid_parameter')
  await rejectsWithCode(x.embedTexts(['a', 3]), 'invalid_parameter')

  throwsWithCode(() => new Extractor({ threads: 0 }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ batchSize: 0 }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ device: 'tpu' }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ precision: 'f8' }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ sparkle: true }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ limits: { maxBytes: 0 } }), 'invalid_parameter')
  throwsWithCode(() => new Extractor({ modelDir: '/nonexistent/dupify-model' }), 'model_error')
  throwsWithCode(() => new Extractor('cpu'), 'invalid_parameter')
})

test('limits from the options apply', async () => {
  const small = new Extractor({ limits: { maxBytes: 100 }, threads: 1 })
  await rejectsWithCode(small.extract(files[0], 'colors'), 'image_processing_failed')
  const ok = await new Extractor({ threads: 1, workingSide: 64 }).extract(files[0], 'colors')
  assert.ok(ok.colors.colors.length > 0)
})

test('reducedDecodeMargin is an option of its own: 0 and 2 accepted, a negative refused', async () => {
  // Options are checked by name (unknown ones are refused), so acceptance means the core got
  // it; what the margin does to large photos is the core's tests' business. Every margin
  // reports the photo's own size.
  const want = await new Extractor({ threads: 1 }).extract(files[1], 'colors')
  for (const m of [0, 2]) {
    const got = await new Extractor({ threads: 1, reducedDecodeMargin: m }).extract(files[1], 'colors')
    assert.deepEqual([got.width, got.height], [want.width, want.height])
    assert.ok(got.colors.colors.length > 0)
  }
  throwsWithCode(() => new Extractor({ reducedDecodeMargin: -1 }), 'invalid_parameter')
})

test('model operations without a model reject as not_available; CPU operations work', async () => {
  const cpuOnly = new Extractor({ threads: 1 })
  await rejectsWithCode(cpuOnly.extract(files[0], 'embed'), 'not_available')
  await rejectsWithCode(cpuOnly.embedText('shirt'), 'not_available')
  await rejectsWithCode(cpuOnly.modelId(), 'not_available')
  const f = await cpuOnly.extract(files[0], 'colors,quality,silhouette')
  assert.equal(f.embedding, null)
  assert.equal(f.model, null)
  assertSameAsRust(
    { ...f, embedding: reference[0].embedding, dimensions: reference[0].dimensions,
      attributes: reference[0].attributes, model: reference[0].model,
      cutout_png: reference[0].cutout_png },
    reference[0],
  )
})

test('a cancelled token fails every item not yet started with `cancelled`', async () => {
  const token = new CancelToken()
  assert.equal(token.isCancelled, false)
  token.cancel()
  assert.equal(token.isCancelled, true)
  const r = await x.extractBatch(files, 'colors', { cancel: token })
  assert.equal(r.length, files.length)
  for (const item of r) {
    assert.ok(item instanceof Error)
    assert.equal(item.code, 'cancelled')
  }
})
